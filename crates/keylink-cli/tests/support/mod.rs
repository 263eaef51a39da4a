//! Test harness: the real test identity provider (npm `oidc-provider` over TLS with a CA made
//! for the run), a fault-injecting provider for what oidc-provider will not produce, a
//! private home for each test, and helpers to run the real `keylink` binary.
#![allow(dead_code)]

pub mod device;
pub mod fake_idp;
pub mod fault_proxy;
pub mod git_server;
pub mod http_server;

// The provider and helpers the core's tests use too.
#[path = "../../../keylink/tests/support/idp.rs"]
mod idp;
pub use idp::*;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use tempfile::TempDir;

/// The `keylink` binary under test.
pub fn keylink_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_keylink"))
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
        // The home's own runtime directory: a token agent a test starts listens there, and
        // the user's own agent is never asked.
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(dir.path().join("run"))
            .unwrap();
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
            .env("XDG_RUNTIME_DIR", self.runtime_dir())
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

    /// The home's `XDG_RUNTIME_DIR` (mode 0700).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.path().join("run")
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
        use keylink::store::SecretStore;
        let mut entry = self.keychain_entry(account).expect("a linked account");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        entry["expires_at"] = serde_json::json!(now - 60);
        let store = keylink::store::Chunked::new(
            keylink::store::Keychain::open(keylink::store::KEYCHAIN_SERVICE).unwrap(),
        );
        store
            .set(&self.token_key(account), &entry.to_string())
            .unwrap();
    }

    /// Replaces the token set stored in the keychain for `account`.
    pub fn set_keychain_entry(&self, account: &str, entry: &serde_json::Value) {
        use keylink::store::SecretStore;
        let store = keylink::store::Chunked::new(
            keylink::store::Keychain::open(keylink::store::KEYCHAIN_SERVICE).unwrap(),
        );
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
        use keylink::store::SecretStore;
        let store = keylink::store::Chunked::new(
            keylink::store::Keychain::open(keylink::store::KEYCHAIN_SERVICE).unwrap(),
        );
        let raw = store.get(&self.token_key(account)).unwrap()?;
        Some(serde_json::from_str(raw.secret()).unwrap())
    }
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

/// Runs `command` with `input` written to its stdin (then closed), as git, kubectl or docker
/// feed their credential helpers, and waits up to a minute for it to finish.
pub fn run_with_input(command: &mut Command, input: &str) -> Output {
    use std::io::Write;
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}
