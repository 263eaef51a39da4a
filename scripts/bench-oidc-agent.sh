# shellcheck shell=bash
# Sourced by bench.sh (from the repository root, after its helpers are defined): starts Debian's
# oidc-agent holding a real account at a test provider, so that section 2 can measure a whole
# `oidc-token` process next to `keylink token`. Installs oidc-agent-cli when missing.
#
# Uses from bench.sh: $work, start_idp, and idp_pids, whose PIDs bench.sh's cleanup kills (the
# agent's PID is added there too). Leaves $issuer as it was. Sets:
#   oidc_token_cmd  the command to measure, e.g. `hyperfine -N "$oidc_token_cmd"`;
#   OIDC_SOCK       (exported) the agent's private socket, which oidc-token needs.
#
# oidc-agent 4.2.6 authenticates at the token endpoint with HTTP Basic even for a public client
# (with an empty secret, which oidc-provider refuses), so the provider runs with a client that has
# a secret (server.js --confidential-client). It accepts an http issuer: no TLS is needed.

if ! command -v oidc-token >/dev/null; then
    sudo=""; [[ "$(id -u)" == 0 ]] || sudo=sudo
    $sudo apt-get install -y -qq oidc-agent-cli >/dev/null
fi

# Prints a refresh token for the client $2 (secret $3) at the provider with issuer $1, from an
# authorization code flow that user-agent.js completes as alice. prompt=consent keeps
# offline_access in the grant, and oidc-agent asks for that scope when it refreshes.
oidc_agent_refresh_token() {
    node --input-type=module - "$@" "$work/oidc-agent/redirect" "$PWD/tests/idp/user-agent.js" <<'EOF'
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

const [issuer, clientId, clientSecret, captureFile, userAgent] = process.argv.slice(2);
const redirectUri = 'http://127.0.0.1/callback';
const verifier = randomBytes(32).toString('base64url');
const config = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
const authorization = new URL(config.authorization_endpoint);
authorization.search = new URLSearchParams({
  client_id: clientId,
  response_type: 'code',
  redirect_uri: redirectUri,
  scope: 'openid profile email offline_access',
  prompt: 'consent',
  state: randomBytes(16).toString('base64url'),
  code_challenge: createHash('sha256').update(verifier).digest('base64url'),
  code_challenge_method: 'S256',
});
const browser = spawnSync(process.execPath, [userAgent, authorization.href], {
  env: { ...process.env, KEYLINK_UA_CAPTURE: captureFile },
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (browser.status !== 0) {
  throw new Error(`user-agent.js could not complete the sign-in (exit ${browser.status})`);
}
const code = new URL(readFileSync(captureFile, 'utf8').trim()).searchParams.get('code');
if (!code) throw new Error('the provider redirected without a code');
const response = await fetch(config.token_endpoint, {
  method: 'POST',
  headers: { authorization: `Basic ${Buffer.from(`${clientId}:${clientSecret}`).toString('base64')}` },
  body: new URLSearchParams({
    grant_type: 'authorization_code', code, redirect_uri: redirectUri, code_verifier: verifier,
  }),
});
const tokens = await response.json();
if (!response.ok || !tokens.refresh_token) {
  throw new Error(`the code exchange failed: HTTP ${response.status} ${tokens.error ?? ''}`);
}
process.stdout.write(tokens.refresh_token);
EOF
}

oidc_agent_setup() {
    local dir="$work/oidc-agent" client_id=oidc-agent-bench client_secret
    local keylink_issuer="${issuer:-}" agent_issuer refresh_token token
    client_secret="$(head -c 18 /dev/urandom | base64 | tr '+/' '-_')"
    start_idp --confidential-client "$client_id:$client_secret"
    agent_issuer="$issuer"
    issuer="$keylink_issuer"

    mkdir -p -m 700 "$dir" "$dir/config"
    export OIDC_SOCK="$dir/agent.sock" OIDC_CONFIG_DIR="$dir/config"
    # --console keeps the agent in the foreground, so $! is its PID; --no-autoload, because
    # loading an account on demand would prompt for its password.
    oidc-agent --console --quiet --no-autoload --socket-path="$OIDC_SOCK" >>"$dir/agent.log" 2>&1 &
    idp_pids+=($!)
    for _ in $(seq 1 100); do [[ -S "$OIDC_SOCK" ]] && break; sleep 0.1; done
    if [[ ! -S "$OIDC_SOCK" ]]; then
        echo "bench-oidc-agent.sh: oidc-agent did not create its socket; see $dir/agent.log" >&2
        return 1
    fi

    refresh_token="$(oidc_agent_refresh_token "$agent_issuer" "$client_id" "$client_secret")"
    # The account file oidc-gen writes is encrypted with this password; the refresh token goes
    # through the environment, not the command line.
    (umask 077 && echo keylink-bench >"$dir/password")
    if ! OIDC_REFRESH_TOKEN="$refresh_token" oidc-gen bench --issuer "$agent_issuer" \
        --client-id "$client_id" --client-secret "$client_secret" --rt-env \
        --scope "openid profile email offline_access" --pw-file "$dir/password" \
        --prompt none --confirm-default </dev/null >"$dir/gen.log" 2>&1; then
        echo "bench-oidc-agent.sh: oidc-gen could not add the account:" >&2
        cat "$dir/gen.log" >&2
        return 1
    fi

    oidc_token_cmd="oidc-token bench"
    # The token oidc-token prints must be one the provider accepts, not an error message.
    token="$($oidc_token_cmd)"
    if ! TOKEN="$token" node -e '
        fetch(`${process.argv[1]}/me`, { headers: { authorization: `Bearer ${process.env.TOKEN}` } })
            .then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1));' "$agent_issuer"; then
        echo "bench-oidc-agent.sh: the provider refused the access token oidc-token printed" >&2
        return 1
    fi
}

oidc_agent_setup
