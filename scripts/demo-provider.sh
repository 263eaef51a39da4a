# Sourced by the demo scripts (run-app.sh, demo.sh): starts the bundled demo provider with its
# real login page on 127.0.0.1 and points Keylink at it.
#
#   start_demo_provider PORT DIR REDIRECT
#
# starts tests/idp/server.js --interactive on PORT (logs in DIR), stops it by PID when the
# calling script exits, and exports KEYLINK_CONFIG (a `demo` provider with the given redirect
# transport) and KEYLINK_DATA_DIR, both under DIR.
start_demo_provider() {
    local port="$1" dir="$2" redirect="$3"
    mkdir -p "$dir"
    rm -f "$dir/idp.out"
    node tests/idp/server.js --port "$port" --interactive >"$dir/idp.out" 2>"$dir/idp.log" &
    demo_idp_pid=$!
    trap 'kill "$demo_idp_pid" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
        [[ -s "$dir/idp.out" ]] && break
        kill -0 "$demo_idp_pid" 2>/dev/null || {
            echo "demo: the demo provider did not start; see $dir/idp.log" >&2
            exit 1
        }
        sleep 0.1
    done
    [[ -s "$dir/idp.out" ]] || {
        echo "demo: the demo provider did not start within 10 s; see $dir/idp.log" >&2
        exit 1
    }
    cat >"$dir/keylink.toml" <<TOML
[providers.demo]
name = "Keylink demo provider"
issuer = "http://127.0.0.1:$port"
client_id = "keylink-demo"
scopes = ["openid", "profile", "email", "offline_access"]
redirect = "$redirect"
TOML
    export KEYLINK_CONFIG="$dir/keylink.toml"
    export KEYLINK_DATA_DIR="$dir/data"
    echo "Demo provider running at http://127.0.0.1:$port (sign in with any username and password)."
}
