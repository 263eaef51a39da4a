//! Device sign-in (RFC 8628) from the outside: a running `keylink link --device` whose code is
//! read from its stderr, the person on their other device played by `tests/idp/user-agent.js`,
//! and the provider's device counters.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::thread::JoinHandle;
use std::time::Duration;

use super::{Home, Idp, repo, wait_output};

/// The grant type the provider counts device polls under.
pub const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A `keylink link --device` that has printed its code and is waiting. Dropping it kills the
/// process.
pub struct DeviceLink {
    child: Option<Child>,
    pub verification_uri: String,
    pub user_code: String,
    pub verification_uri_complete: Option<String>,
    /// Everything printed on stderr up to the code.
    head: String,
    /// Reads the rest of stderr, so the process never blocks on a full pipe.
    drain: Option<JoinHandle<String>>,
}

/// How a device link ended.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Home {
    /// Starts `keylink link PROVIDER --device ARGS` and reads the code it prints.
    pub fn start_device_link(&self, provider: &str, args: &[&str]) -> DeviceLink {
        self.start_device_link_with(
            self.keylink()
                .args(["link", provider, "--device"])
                .args(args),
        )
    }

    /// Like [`Home::start_device_link`] with a command of the caller's (extra environment).
    pub fn start_device_link_with(&self, command: &mut Command) -> DeviceLink {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut head = String::new();
        let (mut uri, mut code, mut complete) = (None, None, None);
        for line in lines.by_ref() {
            let Ok(line) = line else { break };
            head.push_str(&line);
            head.push('\n');
            if let Some(rest) = line.strip_prefix("To link your ") {
                let (_, rest) = rest.split_once(" account, open ").unwrap();
                let (u, c) = rest.split_once(" and enter the code ").unwrap();
                uri = Some(u.to_owned());
                code = Some(c.to_owned());
            } else if let Some(rest) =
                line.strip_prefix("Or open this address, which has the code filled in: ")
            {
                complete = Some(rest.to_owned());
            } else if line.starts_with("Waiting up to ") {
                break;
            }
        }
        let (Some(verification_uri), Some(user_code)) = (uri, code) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("keylink link --device printed no code; stderr:\n{head}");
        };
        let drain = std::thread::spawn(move || {
            let mut rest = String::new();
            for line in lines.map_while(Result::ok) {
                rest.push_str(&line);
                rest.push('\n');
            }
            rest
        });
        DeviceLink {
            child: Some(child),
            verification_uri,
            user_code,
            verification_uri_complete: complete,
            head,
            drain: Some(drain),
        }
    }

    /// The person on their other device: `tests/idp/user-agent.js` in device mode opens
    /// `args` (the complete verification URI, or the URI and the user code), signs in as
    /// this home's login and confirms or aborts (`decision`).
    pub fn device_person(&self, decision: &str, args: &[&str]) -> Output {
        let mut person = Command::new(repo().join("tests/idp/user-agent.js"));
        person
            .args(args)
            .envs(
                self.keylink()
                    .get_envs()
                    .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
            )
            .env("KEYLINK_UA_DEVICE", decision)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        wait_output(person.spawn().unwrap(), Duration::from_secs(30))
    }
}

impl DeviceLink {
    /// Waits for the link to end (at most `timeout`).
    pub fn finish(mut self, timeout: Duration) -> Finished {
        let out = wait_output(self.child.take().unwrap(), timeout);
        let rest = self.drain.take().unwrap().join().unwrap();
        Finished {
            status: out.status,
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: format!("{}{rest}", self.head),
        }
    }
}

impl Drop for DeviceLink {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The provider's device-flow counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceStats {
    /// Device authorization requests.
    pub authorizations: u64,
    /// Token requests with the device grant (polls), answered or not.
    pub polls: u64,
    /// Polls answered `slow_down` because they came sooner than `--device-poll-interval`.
    pub slow_downs: u64,
    /// Token requests of any grant answered with an error.
    pub token_errors: u64,
    /// Authorization code exchanges.
    pub code_exchanges: u64,
}

impl Idp {
    pub fn device_stats(&self) -> DeviceStats {
        let stats: serde_json::Value = self
            .http()
            .get(format!("{}/__test/stats", self.issuer))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let n = |v: &serde_json::Value| v.as_u64().unwrap();
        DeviceStats {
            authorizations: n(&stats["device_authorizations"]),
            polls: n(&stats["token_requests"][DEVICE_GRANT]),
            slow_downs: n(&stats["device_slow_downs"]),
            token_errors: n(&stats["token_errors"]),
            code_exchanges: n(&stats["token_requests"]["authorization_code"]),
        }
    }
}
