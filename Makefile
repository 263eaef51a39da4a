# Keylink: `make run` links a demo account; `make test` runs every test.
.PHONY: run test bench deps build lint

deps:
	scripts/install-deps.sh

build: deps
	cargo build

## Runs the `keylink` CLI against the bundled demo provider (its real login page, any
## username and password).
run: deps
	scripts/demo.sh

## Everything CI runs: formatting, lints, unit and end-to-end tests in a private D-Bus session
## with its own gnome-keyring.
test: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	scripts/with-keyring.sh cargo test --workspace

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

## Benchmarks (release build); figures are reported in the README.
bench: deps
	scripts/with-keyring.sh scripts/bench.sh
