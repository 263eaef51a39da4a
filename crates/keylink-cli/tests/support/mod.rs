//! Test harness: the real test identity provider (npm `oidc-provider` over TLS with a CA made
//! for the run), a fault-injecting provider for what oidc-provider will not produce, a
//! private home for each test, and helpers to run the real `keylink` binary.
#![allow(dead_code)]

pub mod device;
pub mod fake_idp;
pub mod fault_proxy;
pub mod http_server;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

/// The repository root (this crate is `crates/keylink-cli`).
pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// The `keylink` binary under test.
pub fn keylink_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keylink"))
}

/// Waits for `condition` to hold, checking every 20 ms, up to `timeout`.
pub fn wait_for(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits for a child to exit, killing it (by PID) if it takes longer than `timeout`.
pub fn wait_output(mut child: Child, timeout: Duration) -> Output {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait().expect("try_wait") {
            Some(_) => return child.wait_with_output().expect("output"),
            None if Instant::now() >= deadline => {
                let _ = child.kill();
                let out = child.wait_with_output().expect("output");
                panic!(
                    "process did not finish within {timeout:?}; stderr:\n{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// A certificate authority made for one test run, and a server certificate for 127.0.0.1.
pub struct TestCa {
    pub ca_pem: PathBuf,
    pub cert_pem: PathBuf,
    pub key_pem: PathBuf,
}

impl TestCa {
    pub fn create(dir: &Path) -> TestCa {
        use rcgen::{
            BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
        };
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "Keylink test CA");
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let server_key = KeyPair::generate().unwrap();
        let mut server_params = CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
        server_params
            .distinguished_name
            .push(DnType::CommonName, "127.0.0.1");
        let server_cert = server_params.signed_by(&server_key, &issuer).unwrap();
        let ca = TestCa {
            ca_pem: dir.join("ca.pem"),
            cert_pem: dir.join("server.pem"),
            key_pem: dir.join("server-key.pem"),
        };
        std::fs::write(&ca.ca_pem, ca_cert.pem()).unwrap();
        std::fs::write(&ca.cert_pem, server_cert.pem()).unwrap();
        std::fs::write(&ca.key_pem, server_key.serialize_pem()).unwrap();
        ca
    }
}

/// The real test identity provider: `tests/idp/server.js` (npm `oidc-provider`) over TLS.
pub struct Idp {
    child: Child,
    pub issuer: String,
    pub ca: TestCa,
    dir: TempDir,
    http: reqwest::blocking::Client,
}

/// What the provider received, counted at the provider.
#[derive(Debug, Deserialize, PartialEq, Eq, Default)]
pub struct Stats {
    pub token_requests: TokenRequests,
    pub token_errors: u64,
    pub revocations: u64,
    pub userinfo: u64,
}

#[derive(Debug, Deserialize, PartialEq, Eq, Default)]
pub struct TokenRequests {
    pub authorization_code: u64,
    pub refresh_token: u64,
}

impl Idp {
    pub fn start() -> Idp {
        Self::start_with(&[])
    }

    /// Starts the provider. Node has been seen, rarely, to hang in its own start-up before
    /// printing anything; such a start is killed after 30 s and tried again, once.
    pub fn start_with(extra_args: &[&str]) -> Idp {
        let dir = tempfile::tempdir().unwrap();
        let ca = TestCa::create(dir.path());
        assert!(
            repo().join("tests/idp/node_modules/oidc-provider").is_dir(),
            "the test provider's packages are missing: run `npm ci --prefix tests/idp` (the README's test command does)"
        );
        let (child, line) = match Self::spawn(&ca, extra_args) {
            Some(started) => started,
            None => Self::spawn(&ca, extra_args)
                .expect("the test provider printed nothing within 30 s, twice"),
        };
        #[derive(Deserialize)]
        struct Ready {
            issuer: String,
        }
        let mut child = child;
        let ready: Ready = match serde_json::from_str(&line) {
            Ok(r) => r,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the test provider did not start ({e}): {line:?}");
            }
        };
        let cert = reqwest::Certificate::from_pem(&std::fs::read(&ca.ca_pem).unwrap()).unwrap();
        let http = reqwest::blocking::Client::builder()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            // Node closes idle keep-alive connections after 5 s; reusing one that it is just
            // closing fails with a reset, so every request gets a fresh connection.
            .pool_max_idle_per_host(0)
            .build()
            .unwrap();
        Idp {
            child,
            issuer: ready.issuer,
            ca,
            dir,
            http,
        }
    }

    /// Runs `node tests/idp/server.js` and waits up to 30 s for its handshake line; a start
    /// that says nothing in that time is killed (by PID) and `None` returned.
    fn spawn(ca: &TestCa, extra_args: &[&str]) -> Option<(Child, String)> {
        let mut child = Command::new("node")
            .arg(repo().join("tests/idp/server.js"))
            .arg("--tls-cert")
            .arg(&ca.cert_pem)
            .arg("--tls-key")
            .arg(&ca.key_pem)
            .args(extra_args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start node tests/idp/server.js");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // The reader ends when the line arrives or the pipe closes (the process exits).
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => Some((child, line)),
            Err(_) => {
                eprintln!("the test provider printed nothing within 30 s; starting it again");
                let _ = child.kill();
                let _ = child.wait();
                None
            }
        }
    }

    pub fn stats(&self) -> Stats {
        self.http
            .get(format!("{}/__test/stats", self.issuer))
            .send()
            .unwrap()
            .json()
            .unwrap()
    }

    pub fn http(&self) -> &reqwest::blocking::Client {
        &self.http
    }

    /// Uses a refresh token directly at the provider; true when the provider accepts it.
    pub fn refresh_accepted(&self, refresh_token: &str) -> bool {
        let status = self
            .http
            .post(format!("{}/token", self.issuer))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
                ("client_id", "keylink-demo"),
            ])
            .send()
            .unwrap()
            .status();
        status.is_success()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A private home for one test: configuration, data directory, and the environment the real
/// `keylink` binary runs in (the scripted browser, the test CA).
pub struct Home {
    pub dir: TempDir,
    pub config: PathBuf,
    pub data: PathBuf,
    pub ca: Option<PathBuf>,
    pub login: String,
    captures: std::cell::Cell<u32>,
}

impl Home {
    /// A home whose configuration has the `demo` (deep link) and `demo-loopback` providers of
    /// `idp`.
    pub fn for_idp(idp: &Idp) -> Home {
        let config = format!(
            r#"
[providers.demo]
name = "Demo"
issuer = "{issuer}"
client_id = "keylink-demo"
scopes = ["openid", "profile", "email", "offline_access"]
redirect = "deep-link"

[providers.demo-loopback]
name = "Demo (loopback)"
issuer = "{issuer}"
client_id = "keylink-demo"
redirect = "loopback"

[network]
ca_file = "{ca}"
timeout_secs = 10
"#,
            issuer = idp.issuer,
            ca = idp.ca.ca_pem.display()
        );
        Home::with_config(&config, Some(idp.ca.ca_pem.clone()))
    }

    pub fn with_config(config: &str, ca: Option<PathBuf>) -> Home {
        assert_eq!(
            std::env::var("KEYLINK_IN_TEST_SESSION").as_deref(),
            Ok("1"),
            "these tests use the session's keyring: run them through scripts/with-keyring.sh (make test)"
        );
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("keylink.toml");
        std::fs::write(&config_path, config).unwrap();
        Home {
            config: config_path,
            data: dir.path().join("data"),
            dir,
            ca,
            login: "alice".into(),
            captures: std::cell::Cell::new(0),
        }
    }

    /// `keylink` with this home's environment.
    pub fn keylink(&self) -> Command {
        let mut cmd = Command::new(keylink_bin());
        cmd.env("KEYLINK_CONFIG", &self.config)
            // No system policy unless a test writes one: the machine's own never applies.
            .env("KEYLINK_POLICY", self.dir.path().join("policy.toml"))
            .env("KEYLINK_DATA_DIR", &self.data)
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_DATA_HOME", self.dir.path().join("xdg-data"))
            .env("BROWSER", repo().join("tests/idp/user-agent.js"))
            .env(
                "KEYLINK_UA_HANDLER",
                format!("{} open-url", keylink_bin().display()),
            )
            .env("KEYLINK_UA_LOGIN", &self.login)
            .env("KEYLINK_UA_LOG", self.dir.path().join("user-agent.log"))
            .env_remove("RUST_LOG")
            .env_remove("KEYLINK_UA_CAPTURE")
            .stdin(Stdio::null());
        if let Some(ca) = &self.ca {
            cmd.env("NODE_EXTRA_CA_CERTS", ca);
        }
        cmd
    }

    /// Runs `keylink ARGS` to completion (at most 60 s).
    pub fn run(&self, args: &[&str]) -> Output {
        let child = self
            .keylink()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(60))
    }

    /// Runs `keylink ARGS` and expects success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "keylink {args:?} failed ({:?}):\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Links an account at `provider` through the scripted browser; returns the account JSON.
    pub fn link(&self, provider: &str) -> serde_json::Value {
        let out = self.ok(&["link", provider, "--json", "--timeout", "30"]);
        serde_json::from_str(&out).unwrap()
    }

    /// `keylink list --json`.
    pub fn list(&self) -> Vec<serde_json::Value> {
        serde_json::from_str(&self.ok(&["list", "--json"])).unwrap()
    }

    /// Starts `keylink link` with a browser that signs in but captures the redirect instead of
    /// delivering it. Returns the waiting `keylink link` process and the redirect URL.
    pub fn link_captured(&self, provider: &str) -> (Child, String) {
        let n = self.captures.get() + 1;
        self.captures.set(n);
        let capture = self.dir.path().join(format!("redirect-{n}.url"));
        let child = self
            .keylink()
            .args(["link", provider, "--json", "--timeout", "30"])
            .env("KEYLINK_UA_CAPTURE", &capture)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for(
            "the browser to reach the redirect",
            Duration::from_secs(30),
            || capture.exists(),
        );
        let url = std::fs::read_to_string(&capture).unwrap().trim().to_owned();
        (child, url)
    }

    /// A browser that only records the URL it is asked to open (see `opened_url_file`).
    pub fn recording_browser(&self) -> PathBuf {
        let recorder = self.dir.path().join("record-browser.sh");
        if !recorder.exists() {
            let opened = self.opened_url_file();
            std::fs::write(
                &recorder,
                format!(
                    "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
                    opened.display()
                ),
            )
            .unwrap();
            std::fs::set_permissions(
                &recorder,
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
        }
        recorder
    }

    /// Where the recording browser writes the URL it was asked to open.
    pub fn opened_url_file(&self) -> PathBuf {
        self.dir.path().join("opened")
    }

    /// Starts `keylink link PROVIDER --json` with the recording browser; returns the waiting
    /// process and the authorization URL it opened.
    pub fn start_recorded_link(&self, provider: &str) -> (Child, String) {
        let opened = self.opened_url_file();
        let _ = std::fs::remove_file(&opened);
        let child = self
            .keylink()
            .args(["link", provider, "--json", "--timeout", "30"])
            .env("BROWSER", self.recording_browser())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the browser to be opened", Duration::from_secs(30), || {
            opened.exists()
        });
        let url = std::fs::read_to_string(&opened).unwrap();
        std::fs::remove_file(&opened).unwrap();
        (child, url)
    }

    /// Runs `keylink open-url URL`.
    pub fn open_url(&self, url: &str) -> Output {
        self.run(&["open-url", url])
    }

    /// Makes the stored access token of `account` look expired a minute ago, as if the
    /// account had been left alone for longer than the token lives.
    pub fn expire_access_token(&self, account: &str) {
        use keylink::SecretStore;
        let mut entry = self.keychain_entry(account).expect("a linked account");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        entry["expires_at"] = serde_json::json!(now - 60);
        let store =
            keylink::Chunked::new(keylink::Keychain::open(keylink::KEYCHAIN_SERVICE).unwrap());
        store
            .set(&self.token_key(account), &entry.to_string())
            .unwrap();
    }

    /// The keychain key of `account`'s tokens: this data directory's keychain id and the
    /// account id.
    pub fn token_key(&self, account: &str) -> String {
        let id = std::fs::read_to_string(self.data.join("keychain-id"))
            .expect("a data directory with a linked account has a keychain id");
        format!("{}:{account}", id.trim())
    }

    /// The token set stored in the keychain for `account`, read through the same store layers
    /// Keylink uses (chunks reassembled), as JSON.
    pub fn keychain_entry(&self, account: &str) -> Option<serde_json::Value> {
        use keylink::SecretStore;
        let store =
            keylink::Chunked::new(keylink::Keychain::open(keylink::KEYCHAIN_SERVICE).unwrap());
        let raw = store.get(&self.token_key(account)).unwrap()?;
        Some(serde_json::from_str(raw.secret()).unwrap())
    }
}

/// Sets a query parameter of a URL (replacing it, or removing it when `value` is None).
pub fn with_param(url: &str, name: &str, value: Option<&str>) -> String {
    let mut parsed = url::Url::parse(url).unwrap();
    let pairs: Vec<(String, String)> = parsed
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut q = parsed.query_pairs_mut();
        q.clear();
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        if let Some(v) = value {
            q.append_pair(name, v);
        }
    }
    parsed.to_string()
}

/// A query parameter of a URL.
pub fn param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `cmd` on a session bus of its own, started by `dbus-run-session` with `bus_config`.
pub fn run_in_private_bus(cmd: &Command, bus_config: &Path) -> Output {
    let mut outer = Command::new("dbus-run-session");
    outer.arg("--config-file").arg(bus_config).arg("--");
    let mut outer = wrapping(outer, cmd);
    outer.env_remove("DBUS_SESSION_BUS_ADDRESS");
    wait_output(outer.spawn().unwrap(), Duration::from_secs(60))
}

/// `outer` (a program that runs the command after its own arguments, such as
/// `dbus-run-session --` or `time`) running `cmd` with `cmd`'s environment, stdin closed and
/// the output captured.
pub fn wrapping(mut outer: Command, cmd: &Command) -> Command {
    outer
        .arg(cmd.get_program())
        .args(cmd.get_args())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => outer.env(k, v),
            None => outer.env_remove(k),
        };
    }
    outer
}
