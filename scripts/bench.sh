#!/usr/bin/env bash
# Benchmarks (release build), run by `make bench` inside a private keyring session:
#   1. in-process `access_token` on a valid token;
#   2. a whole `keylink token` process next to `secret-tool lookup` of a same-sized secret, and
#      with the token agent running next to oidc-agent's `oidc-token`;
#   3. two processes of ten callers each refreshing an expiring token at once (wall time).
# Needs hyperfine (installed from Debian when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v hyperfine >/dev/null; then
    sudo=""; [[ "$(id -u)" == 0 ]] || sudo=sudo
    $sudo apt-get install -y -qq hyperfine >/dev/null
fi
cargo build --release --quiet --bin keylink --example token_callers
keylink="$PWD/target/release/keylink"
callers="$PWD/target/release/examples/token_callers"

work="$(mktemp -d -t keylink-bench.XXXXXX)"
# The agent's socket goes to a private runtime directory of this run.
export XDG_RUNTIME_DIR="$work/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
idp_pids=()
cleanup() {
    for pid in "${idp_pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    rm -rf "$work"
}
trap cleanup EXIT

# Starts the test provider with extra flags and sets `issuer`. Not run in a subshell, so the
# provider's PID reaches the cleanup.
start_idp() {
    local out="$work/idp-$RANDOM.out"
    node tests/idp/server.js "$@" >"$out" 2>>"$work/idp.log" &
    idp_pids+=($!)
    for _ in $(seq 1 100); do [[ -s "$out" ]] && break; sleep 0.1; done
    issuer="$(sed -E 's/.*"issuer":"([^"]+)".*/\1/' "$out")"
}

# Links an account at the provider with issuer $1 in a fresh data dir $2; prints its id.
link_account() {
    mkdir -p "$2"
    printf '[providers.demo]\nissuer = "%s"\nclient_id = "keylink-demo"\n' "$1" >"$2/keylink.toml"
    KEYLINK_CONFIG="$2/keylink.toml" KEYLINK_DATA_DIR="$2/data" \
        BROWSER="$PWD/tests/idp/user-agent.js" KEYLINK_UA_HANDLER="$keylink open-url" \
        "$keylink" link demo --timeout 30
}

echo "== machine"
echo "$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"

echo "== 1. in-process access_token, valid token"
start_idp
account="$(link_account "$issuer" "$work/a")"
export KEYLINK_CONFIG="$work/a/keylink.toml" KEYLINK_DATA_DIR="$work/a/data"
cargo bench --quiet --bench access_token -- "$account"

echo "== 2. whole process: keylink token from the keychain vs secret-tool lookup"
secret_len="$(secret-tool lookup service dev.keylink username "$(cat "$work/a/data/keychain-id"):$account" | wc -c)"
head -c "$secret_len" /dev/zero | tr '\0' x | secret-tool store --label="keylink bench" service keylink-bench username bench
hyperfine --warmup 5 --runs 100 -N \
    "$keylink token $account" \
    "secret-tool lookup service keylink-bench username bench"
secret-tool clear service keylink-bench username bench

echo "== 2b. whole process: keylink token with the agent running vs oidc-agent's oidc-token"
source scripts/bench-oidc-agent.sh
"$keylink" agent 2>>"$work/agent.log" &
idp_pids+=($!)
for _ in $(seq 1 100); do [[ -S "$XDG_RUNTIME_DIR/keylink/dev.keylink.sock" ]] && break; sleep 0.05; done
# Many short runs: the two differ by less than the machine's jitter. /bin/true is the floor of
# starting any program here.
hyperfine --warmup 100 --runs 3000 -N --export-json "$work/2b.json" \
    "$keylink token $account" \
    "$oidc_token_cmd" \
    /bin/true
# The median and the 10th percentile too: a VM's stray slow runs move the mean.
node -e '
  for (const r of JSON.parse(require("fs").readFileSync(process.argv[1])).results) {
    const t = [...r.times].sort((a, b) => a - b), ms = (x) => (x * 1e3).toFixed(3);
    console.log(`${r.command.split(" ").slice(0, 2).join(" ").padEnd(40)} mean ${ms(r.mean)} ms, median ${ms(t[t.length >> 1])} ms, p10 ${ms(t[Math.floor(t.length / 10)])} ms`);
  }' "$work/2b.json"

echo "== 3. two processes x ten callers, expiring token (each run refreshes at the provider)"
start_idp --access-ttl 30
account="$(link_account "$issuer" "$work/b")"
export KEYLINK_CONFIG="$work/b/keylink.toml" KEYLINK_DATA_DIR="$work/b/data"
hyperfine --warmup 2 --runs 20 \
    "$callers $account 10 >/dev/null & $callers $account 10 >/dev/null; wait"
