# Keylink: `make run` opens the app with a demo provider; `make test` runs every test.
.PHONY: run run-host demo-cli test bench deps build lint audit public-api package fuzz

deps:
	scripts/install-deps.sh
	scripts/install-app-deps.sh

build: deps
	cargo build --workspace

## Opens the Keylink desktop app against the bundled demo provider (its real login page, any
## username and password).
run: deps
	scripts/run-app.sh

## The example app that embeds the plugin (examples/tauri-host), against the same demo provider.
run-host: deps
	scripts/run-host.sh

## The same demo with the `keylink` command-line tool instead of the app.
demo-cli: deps
	scripts/demo.sh

## Everything CI runs: formatting, lints (the fuzz targets' entry points too), an offline audit of the dependencies against the
## RustSec advisory database snapshot in ../shared/advisory-db, the public API listing is current
## (scripts/public-api.sh), unit and end-to-end tests of the
## core and the CLI in a private D-Bus session with its own gnome-keyring, the app end to end
## in a real window (Xvfb, WebDriver), then the .deb and .rpm: built, checked unpacked, and
## (as root) installed, sign-ins handed to the installed app, removed. Every target is built
## once, before the tests: binaries built with the tests share their dependencies' features
## (tauri's `test`), so nothing is compiled twice for the end-to-end tests.
test: deps
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p keylink --features fuzzing -- -D warnings
	scripts/audit.sh
	scripts/public-api.sh --check
	scripts/test-guest-js.sh
	cargo build --workspace --all-targets
	scripts/with-keyring.sh cargo test --workspace
	scripts/test-app.sh e2e
	scripts/test-packages.sh

## The .deb and .rpm (release build), in target/release/bundle/deb/ and target/release/bundle/rpm/.
package: deps
	scripts/package.sh

## The dependency audit alone (offline, see scripts/audit.sh).
audit:
	scripts/audit.sh

## Regenerates the public API listings, crates/<crate>/public-api.txt (see CONTRIBUTING.md).
public-api:
	scripts/public-api.sh

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p keylink --features fuzzing -- -D warnings

## Every parser under cargo-fuzz (nightly), 1,000,000 executions per target, one target after
## the other at the lowest CPU priority; not part of `make test` (see the README, "Fuzzing").
fuzz:
	scripts/fuzz.sh

## Benchmarks (release build); figures are reported in the README.
bench: deps
	scripts/with-keyring.sh scripts/bench.sh
