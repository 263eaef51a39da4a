//! The real test identity provider (`tests/idp/server.js`, npm `oidc-provider`, over TLS with
//! a CA made for the run) and small helpers, shared by the integration tests of the core and
//! of the CLI.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;
use tempfile::TempDir;

/// The repository root (the crates are `crates/<name>`).
pub fn repo() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
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
