//! kubectl's exec credential plugin and docker's credential helper, driven as the tools drive
//! them: the real `kubectl` against a fake Kubernetes API server that accepts only tokens the
//! test provider accepts, and `docker-credential-keylink` with docker's stdin and stdout.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::{Home, Idp, keylink_bin, run_with_input, stderr, wait_for, wait_output};

/// The fake API server: HTTPS with the test CA's certificate for 127.0.0.1; every request's
/// bearer token is checked at the provider's userinfo endpoint (as a client trusting the test
/// CA) and only an accepted one gets an answer other than 401. One JSON line per request on
/// stdout. It runs on Node (which the test provider needs anyway): the tests have no TLS
/// server of their own.
const KUBE_API_JS: &str = r#"
const fs = require('node:fs');
const https = require('node:https');

const [certFile, keyFile, caFile, userinfo] = process.argv.slice(2);
const ca = fs.readFileSync(caFile);

function accepted(token) {
  return new Promise((resolve) => {
    const request = https.get(userinfo, {
      ca,
      agent: false,
      headers: { authorization: `Bearer ${token}` },
    }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
  });
}

const status = (code, reason) => ({
  kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure',
  message: reason, reason, code,
});
const namespace = (name) => ({ metadata: { name, uid: `uid-${name}`, resourceVersion: '1' } });
let port = 0;
const routes = {
  '/version': () => ({ major: '1', minor: '30', gitVersion: 'v1.30.0', platform: 'linux/amd64' }),
  '/api': () => ({
    kind: 'APIVersions', versions: ['v1'],
    serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: `127.0.0.1:${port}` }],
  }),
  '/apis': () => ({ kind: 'APIGroupList', apiVersion: 'v1', groups: [] }),
  '/api/v1': () => ({
    kind: 'APIResourceList', groupVersion: 'v1',
    resources: [{
      name: 'namespaces', singularName: 'namespace', namespaced: false, kind: 'Namespace',
      verbs: ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], shortNames: ['ns'],
    }],
  }),
  '/api/v1/namespaces': () => ({
    kind: 'NamespaceList', apiVersion: 'v1', metadata: { resourceVersion: '1' },
    items: ['default', 'kube-system', 'linked-by-keylink'].map(namespace),
  }),
};

function send(response, code, body) {
  response.writeHead(code, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

const server = https.createServer({
  cert: fs.readFileSync(certFile),
  key: fs.readFileSync(keyFile),
}, async (request, response) => {
  const bearer = /^Bearer (.+)$/.exec(request.headers.authorization || '');
  const token = bearer ? bearer[1] : null;
  const ok = token !== null && await accepted(token);
  const path = request.url.split('?')[0];
  console.log(JSON.stringify({
    method: request.method, url: request.url, path, token, accepted: ok,
    userAgent: request.headers['user-agent'],
  }));
  if (!ok) {
    send(response, 401, status(401, 'Unauthorized'));
  } else if (request.method === 'GET' && routes[path]) {
    send(response, 200, routes[path]());
  } else {
    send(response, 404, status(404, 'NotFound'));
  }
});
server.listen(0, '127.0.0.1', () => {
  port = server.address().port;
  console.log(JSON.stringify({ port }));
});
"#;

/// The namespaces the fake API server lists, as `kubectl get -o name` prints them.
const NAMESPACES: [&str; 3] = [
    "namespace/default",
    "namespace/kube-system",
    "namespace/linked-by-keylink",
];

/// A running fake Kubernetes API server; dropping it stops it (by PID).
struct KubeApi {
    child: Child,
    url: String,
    requests: Arc<Mutex<Vec<Value>>>,
    _dir: TempDir,
}

impl KubeApi {
    /// Starts the server with the provider's certificate for 127.0.0.1 (signed by the test
    /// CA), checking tokens at the provider's userinfo endpoint.
    fn start(idp: &Idp) -> KubeApi {
        let discovery: Value = idp
            .http()
            .get(format!("{}/.well-known/openid-configuration", idp.issuer))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let userinfo = discovery["userinfo_endpoint"].as_str().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("kube-api.js");
        std::fs::write(&script, KUBE_API_JS).unwrap();
        let mut child = Command::new("node")
            .arg(&script)
            .arg(&idp.ca.cert_pem)
            .arg(&idp.ca.key_pem)
            .arg(&idp.ca.ca_pem)
            .arg(userinfo)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node for the fake Kubernetes API server");
        let stdout = child.stdout.take().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let recorded = requests.clone();
        // Ends when the server exits and the pipe closes.
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = ready_tx.send(first);
            }
            for line in lines.map_while(Result::ok) {
                if let Ok(request) = serde_json::from_str(&line) {
                    recorded.lock().unwrap().push(request);
                }
            }
        });
        let mut server = KubeApi {
            child,
            url: String::new(),
            requests,
            _dir: dir,
        };
        let ready: Value = ready_rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .and_then(|line| serde_json::from_str(&line).ok())
            .expect("the fake Kubernetes API server did not start within 30 s");
        server.url = format!("https://127.0.0.1:{}", ready["port"]);
        server
    }

    /// The requests it answered so far: method, url, path, token, accepted, userAgent.
    fn requests(&self) -> Vec<Value> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `program` with the environment `keylink` gets in `home` (its configuration, data
/// directory, HOME and the session's keyring), so whatever it runs finds the linked accounts.
fn in_home(home: &Home, program: impl AsRef<std::ffi::OsStr>) -> Command {
    let keylink = home.keylink();
    let mut cmd = Command::new(program);
    for (name, value) in keylink.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    cmd.env_remove("KUBECONFIG")
        .env_remove("KUBERNETES_EXEC_INFO")
        .env_remove("DOCKER_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs `cmd` to completion (at most 60 s).
fn run(mut cmd: Command) -> Output {
    wait_output(cmd.spawn().unwrap(), Duration::from_secs(60))
}

/// The version of the installed kubectl; fails (never skips) when there is none.
fn kubectl_version() -> String {
    match Command::new("kubectl")
        .args(["version", "--client", "-o", "json"])
        .stdin(Stdio::null())
        .output()
    {
        Ok(out) if out.status.success() => {
            let version: Value = serde_json::from_slice(&out.stdout).unwrap();
            version["clientVersion"]["gitVersion"]
                .as_str()
                .unwrap()
                .to_owned()
        }
        Ok(out) => panic!(
            "`kubectl version --client` failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            panic!("kubectl is not installed: run scripts/install-deps.sh (make test does)")
        }
        Err(e) => panic!("kubectl could not be started: {e}"),
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn kubectl_lists_namespaces_with_the_linked_accounts_token() {
    let version = kubectl_version();
    eprintln!("kubectl {version}");
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap();
    let api = KubeApi::start(&idp);

    // The server is no rubber stamp: without a token, or with one the provider never issued,
    // it answers 401.
    let namespaces = format!("{}/api/v1/namespaces", api.url);
    let anonymous = idp.http().get(&namespaces).send().unwrap();
    assert_eq!(anonymous.status(), 401);
    let forged = idp
        .http()
        .get(&namespaces)
        .bearer_auth("not-a-token-the-provider-issued")
        .send()
        .unwrap();
    assert_eq!(forged.status(), 401);
    let before_kubectl = api.requests().len();

    let ca = idp.ca.ca_pem.to_str().unwrap();
    let kubeconfig = home.ok(&[
        "kubeconfig",
        "alice@example.test",
        "--server",
        &api.url,
        "--certificate-authority",
        ca,
    ]);
    let kubeconfig_file = home.dir.path().join("kubeconfig");
    std::fs::write(&kubeconfig_file, kubeconfig).unwrap();

    // kubectl reads it as written: one cluster, user and context, the user running this very
    // keylink for the account's id.
    let mut view = in_home(&home, "kubectl");
    view.arg("--kubeconfig")
        .arg(&kubeconfig_file)
        .args(["config", "view", "-o", "json"]);
    let view = run(view);
    assert!(view.status.success(), "{}", stderr(&view));
    let view: Value = serde_json::from_slice(&view.stdout).unwrap();
    assert_eq!(view["current-context"], "keylink-demo");
    assert_eq!(view["clusters"][0]["name"], "keylink-demo");
    assert_eq!(view["clusters"][0]["cluster"]["server"], api.url.as_str());
    assert_eq!(view["clusters"][0]["cluster"]["certificate-authority"], ca);
    let exec = &view["users"][0]["user"]["exec"];
    let command = std::fs::canonicalize(exec["command"].as_str().unwrap()).unwrap();
    assert_eq!(command, std::fs::canonicalize(keylink_bin()).unwrap());
    assert_eq!(exec["args"], json!(["kubectl-credential", id]));
    assert_eq!(exec["apiVersion"], "client.authentication.k8s.io/v1beta1");
    assert_eq!(view["contexts"][0]["context"]["user"], "keylink-demo");
    assert_eq!(view["contexts"][0]["context"]["cluster"], "keylink-demo");

    let mut get = in_home(&home, "kubectl");
    get.arg("--kubeconfig")
        .arg(&kubeconfig_file)
        .args(["get", "namespaces", "-o", "name"]);
    let out = run(get);
    assert!(
        out.status.success(),
        "kubectl get namespaces failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    let printed: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
    assert_eq!(printed, NAMESPACES);

    // Every request kubectl made carried the account's current access token, which the
    // provider accepted.
    wait_for(
        "the API server to record the namespace list",
        Duration::from_secs(10),
        || {
            api.requests()[before_kubectl..]
                .iter()
                .any(|r| r["path"] == "/api/v1/namespaces")
        },
    );
    let token = home.ok(&["token", id]).trim().to_owned();
    let by_kubectl = api.requests()[before_kubectl..].to_vec();
    let paths: Vec<&str> = by_kubectl
        .iter()
        .map(|r| r["url"].as_str().unwrap())
        .collect();
    let mut agents: Vec<&str> = by_kubectl
        .iter()
        .map(|r| r["userAgent"].as_str().unwrap_or_default())
        .collect();
    agents.dedup();
    eprintln!("kubectl ({agents:?}) requested {paths:?}");
    for request in &by_kubectl {
        assert_eq!(request["accepted"], true, "{}", request["url"]);
        assert!(
            request["token"] == token.as_str(),
            "kubectl sent a token other than the account's for {}",
            request["url"]
        );
    }
    // The plugin handed over the stored token: nothing was refreshed.
    assert_eq!(idp.stats().token_requests.refresh_token, 0);
}

#[test]
fn kubectl_credential_answers_in_the_api_version_kubectl_asked_for() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap();
    let expires_at = home.keychain_entry(id).unwrap()["expires_at"]
        .as_i64()
        .unwrap();

    // What kubectl sets for the plugin (interactive is false when its stdin is not a
    // terminal), and no variable at all as an older kubectl or a person would run it.
    let requests = [
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1beta1","spec":{"interactive":false}}"#,
            ),
            id,
            "client.authentication.k8s.io/v1beta1",
        ),
        (
            Some(
                r#"{"kind":"ExecCredential","apiVersion":"client.authentication.k8s.io/v1","spec":{"interactive":false}}"#,
            ),
            "alice@example.test",
            "client.authentication.k8s.io/v1",
        ),
        (None, id, "client.authentication.k8s.io/v1"),
    ];
    for (exec_info, account, api_version) in requests {
        let mut cmd = home.keylink();
        cmd.args(["kubectl-credential", account])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match exec_info {
            Some(info) => cmd.env("KUBERNETES_EXEC_INFO", info),
            None => cmd.env_remove("KUBERNETES_EXEC_INFO"),
        };
        let out = run(cmd);
        assert!(
            out.status.success(),
            "kubectl-credential for {api_version} failed ({:?}): {}",
            out.status.code(),
            stderr(&out)
        );
        let credential: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(credential["apiVersion"], api_version);
        assert_eq!(credential["kind"], "ExecCredential");
        let token = home.ok(&["token", id]).trim().to_owned();
        assert!(
            credential["status"]["token"] == token.as_str(),
            "status.token ({api_version}) is not what `keylink token` prints"
        );
        let expiry = credential["status"]["expirationTimestamp"]
            .as_str()
            .unwrap();
        let expiry_unix = keylink::clock::parse_rfc3339(expiry)
            .unwrap_or_else(|| panic!("expirationTimestamp {expiry:?} is not RFC 3339"));
        assert_eq!(expiry_unix, expires_at, "{expiry}");
        assert!(expiry_unix > now() + 60, "{expiry} is not in the future");
    }
    assert_eq!(idp.stats().token_requests.refresh_token, 0);

    // An account that is not linked: kubectl shows the message, gets no credential.
    let mut cmd = home.keylink();
    cmd.args(["kubectl-credential", "nobody@example.test"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let out = run(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(stderr(&out).starts_with("keylink: "), "{}", stderr(&out));
}

/// `docker-credential-keylink ACTION` with `input` on stdin, as docker runs it.
fn docker_helper(home: &Home, action: &str, input: &str) -> Output {
    let mut cmd = in_home(home, env!("CARGO_BIN_EXE_docker-credential-keylink"));
    // docker writes the request without a trailing newline and closes stdin.
    run_with_input(cmd.arg(action), input)
}

/// Links alice and maps two registries to her: one by email with the default user name, one
/// (on a port) by account id with a user name of its own. Returns her account id.
fn link_and_map_registries(home: &Home) -> String {
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap().to_owned();
    let mut config = std::fs::read_to_string(&home.config).unwrap();
    config.push_str(&format!(
        r#"
[credentials."https://registry.example.test"]
account = "alice@example.test"

[credentials."https://robots.example.test:5000"]
account = "{id}"
username = "robot"
"#
    ));
    std::fs::write(&home.config, config).unwrap();
    id
}

/// The JSON `get` printed, after checking it succeeded.
fn docker_get(home: &Home, server: &str) -> Value {
    let out = docker_helper(home, "get", server);
    assert!(
        out.status.success(),
        "get {server} failed ({:?}): {}",
        out.status.code(),
        stderr(&out)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn assert_not_found(home: &Home, server: &str) {
    let out = docker_helper(home, "get", server);
    assert_eq!(out.status.code(), Some(1), "get {server}: {}", stderr(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "credentials not found in native keychain",
        "get {server}"
    );
}

#[test]
fn docker_helper_gets_the_token_for_mapped_registries_only() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link_and_map_registries(&home);
    let token = home.ok(&["token", &id]).trim().to_owned();

    // docker names a registry by URL (Docker Hub's with a path), or by bare host, which
    // means https; the default port is the same server.
    for server in [
        "https://registry.example.test",
        "registry.example.test",
        "https://registry.example.test/v1/",
        "https://registry.example.test:443",
    ] {
        let answer = docker_get(&home, server);
        assert_eq!(answer["ServerURL"], server);
        assert_eq!(answer["Username"], "oauth2", "{server}");
        assert!(
            answer["Secret"] == token.as_str(),
            "the secret for {server} is not the account's token"
        );
        assert_eq!(answer.as_object().unwrap().len(), 3, "{server}");
    }
    let robots = docker_get(&home, "robots.example.test:5000");
    assert_eq!(robots["Username"], "robot");
    assert!(robots["Secret"] == token.as_str());

    // Only the exact origin: another host, scheme or port gets docker's "not found", so
    // docker asks the person instead.
    for server in [
        "https://unmapped.example.test",
        "unmapped.example.test",
        "http://registry.example.test",
        "registry.example.test:5000",
        "robots.example.test",
        "",
    ] {
        assert_not_found(&home, server);
    }
    assert_eq!(idp.stats().token_requests.refresh_token, 0);
}

#[test]
fn docker_helper_stores_nothing_and_erase_keeps_the_account() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link_and_map_registries(&home);
    let token = home.ok(&["token", &id]).trim().to_owned();
    let accounts = home.list();
    let keychain = home.keychain_entry(&id).unwrap();

    // `docker login` hands over a password to keep: refused, for a mapped registry and for
    // any other, and the password shows up nowhere.
    for server in [
        "https://registry.example.test",
        "https://elsewhere.example.test",
    ] {
        let request = json!({
            "ServerURL": server, "Username": "someone", "Secret": "registry-password-canary"
        });
        let out = docker_helper(&home, "store", &request.to_string());
        assert_eq!(
            out.status.code(),
            Some(1),
            "store {server}: {}",
            stderr(&out)
        );
        assert!(out.stdout.is_empty(), "store {server}");
        assert!(!stderr(&out).is_empty(), "store {server} says why");
        assert!(!stderr(&out).contains("registry-password-canary"));
    }
    assert_eq!(home.list(), accounts);
    assert_eq!(home.keychain_entry(&id).unwrap(), keychain);
    assert_not_found(&home, "https://elsewhere.example.test");
    let answer = docker_get(&home, "https://registry.example.test");
    assert_eq!(answer["Username"], "oauth2");
    assert!(answer["Secret"] == token.as_str());

    // `docker logout`: docker forgets its side; the account stays linked and keeps answering.
    let out = docker_helper(&home, "erase", "https://registry.example.test");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(home.list(), accounts);
    assert_eq!(home.list()[0]["status"], "ok");
    assert_eq!(home.keychain_entry(&id).unwrap(), keychain);
    let answer = docker_get(&home, "https://registry.example.test");
    assert!(answer["Secret"] == token.as_str());
}

#[test]
fn docker_helper_lists_the_configured_registries() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link_and_map_registries(&home);
    let out = docker_helper(&home, "list", "");
    assert!(out.status.success(), "{}", stderr(&out));
    let list: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        list,
        json!({
            "https://registry.example.test": "oauth2",
            "https://robots.example.test:5000": "robot",
        })
    );
    // No tokens in a list: docker shows it to whoever asks.
    let token = home.ok(&["token", &id]).trim().to_owned();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&token));
}
