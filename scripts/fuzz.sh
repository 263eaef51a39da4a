#!/usr/bin/env bash
# Runs every cargo-fuzz target of the core (crates/keylink/fuzz, SECURITY 56) for a number of
# executions each, one after the other, and prints how many ran and how long each took.
#
#   scripts/fuzz.sh                 every target, 1,000,000 executions each
#   scripts/fuzz.sh 10000           every target, 10,000 executions each (a smoke run)
#   scripts/fuzz.sh 1000000 jwks    only the named targets
#
# Needs the nightly toolchain (libFuzzer and AddressSanitizer); installs cargo-fuzz when it is
# missing. New inputs go to crates/keylink/fuzz/target/corpus/, so the committed corpus only
# changes when someone minimises it on purpose (see crates/keylink/fuzz/README.md). A crash, a
# hang over 5 s or an allocation over 512 MB stops the run with the input in
# crates/keylink/fuzz/artifacts/<target>/ and a non-zero exit.
set -euo pipefail

runs=${1:-1000000}
shift || true
if ! [[ $runs =~ ^[0-9]+$ ]]; then
    echo "fuzz.sh: the number of executions must be a whole number, not \"$runs\"" >&2
    exit 2
fi

cd "$(dirname "$0")/../crates/keylink"

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing; install it with: rustup toolchain install nightly" >&2
    exit 2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz (once, a few minutes)" >&2
    cargo install cargo-fuzz --locked
fi

if (($# > 0)); then
    targets=("$@")
else
    mapfile -t targets < <(cargo +nightly fuzz list)
fi

# The longest input worth trying per target: a little over what the parser accepts or what a
# real document of its kind holds (redirect URLs are capped at 8 KiB).
max_len() {
    case $1 in
        redirect) echo 9000 ;;
        jwks) echo 8192 ;;
        id_token_header | id_token_claims) echo 2048 ;;
        *) echo 4096 ;;
    esac
}

# Build once with the sanitizer and debug assertions (cargo-fuzz's default), at low priority:
# the machine may be busy with other builds.
nice -n 19 cargo +nightly fuzz build

summary=()
for target in "${targets[@]}"; do
    scratch=fuzz/target/corpus/$target
    mkdir -p "$scratch" "fuzz/corpus/$target"
    log=fuzz/target/$target.log
    echo "fuzz.sh: $target, $runs executions" >&2
    # One process (libFuzzer's default, the same as -jobs=1), at the lowest CPU priority.
    if ! nice -n 19 cargo +nightly fuzz run "$target" "$scratch" "fuzz/corpus/$target" -- \
        -runs="$runs" -rss_limit_mb=512 -malloc_limit_mb=512 -timeout=5 \
        -max_len="$(max_len "$target")" -print_final_stats=1 >"$log" 2>&1; then
        tail -n 40 "$log" >&2
        echo "fuzz.sh: $target failed; the input is in crates/keylink/fuzz/artifacts/$target/ and the whole log in crates/keylink/$log" >&2
        exit 1
    fi
    done_line=$(grep -E '^Done [0-9]+ runs in [0-9]+ second' "$log" | tail -n 1)
    executed=$(sed -E 's/^Done ([0-9]+) runs.*/\1/' <<<"$done_line")
    seconds=$(sed -E 's/.* in ([0-9]+) second.*/\1/' <<<"$done_line")
    summary+=("$(printf '%-16s %10s %8s' "$target" "$executed" "${seconds}s")")
done

printf '%-16s %10s %8s\n' target executions time
printf '%s\n' "${summary[@]}"
