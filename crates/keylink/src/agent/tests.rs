use std::collections::HashMap;
use std::ffi::OsString;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::{Agent, AgentError, ask, socket_path};
use crate::app::{AppIdentity, Environment};

/// An environment whose runtime, data and configuration paths are all under `dir`.
fn env_in(dir: &Path) -> Environment {
    let vars: HashMap<&str, OsString> = [
        ("XDG_RUNTIME_DIR", dir.join("run")),
        ("KEYLINK_DATA_DIR", dir.join("data")),
        ("KEYLINK_CONFIG", dir.join("keylink.toml")),
        ("KEYLINK_POLICY", dir.join("policy.toml")),
        ("HOME", dir.to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k, v.into_os_string()))
    .collect();
    std::fs::DirBuilder::new().create(dir.join("run")).unwrap();
    std::fs::set_permissions(dir.join("run"), std::fs::Permissions::from_mode(0o700)).unwrap();
    Environment::capture(|name| vars.get(name).cloned())
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::symlink_metadata(path).unwrap().mode() & 0o777
}

/// A bound agent serving on a thread, stopped and joined when dropped.
struct Serving {
    path: PathBuf,
    stopper: super::AgentStopper,
    thread: Option<std::thread::JoinHandle<Result<(), AgentError>>>,
}

impl Serving {
    fn start(env: &Environment) -> Serving {
        let agent = Agent::bind(AppIdentity::keylink(), env.clone()).unwrap();
        let path = agent.path().to_owned();
        let stopper = agent.stopper();
        let thread = Some(std::thread::spawn(move || agent.serve()));
        Serving {
            path,
            stopper,
            thread,
        }
    }

    /// Sends `line` as the request and returns the agent's answer line.
    fn exchange(&self, line: &str) -> String {
        let stream = UnixStream::connect(&self.path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (&stream).write_all(line.as_bytes()).unwrap();
        (&stream).write_all(b"\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&stream).read_line(&mut answer).unwrap();
        answer
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        self.stopper.stop();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[test]
fn the_socket_is_in_a_private_directory_of_the_runtime_dir() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let path = socket_path(&AppIdentity::keylink(), &env).unwrap();
    assert_eq!(path, dir.path().join("run/keylink/dev.keylink.sock"));
    let serving = Serving::start(&env);
    assert_eq!(mode(&dir.path().join("run/keylink")), 0o700);
    assert_eq!(mode(&serving.path), 0o600);
    drop(serving);
    assert!(!path.exists(), "the agent removes the socket it created");
}

#[test]
fn no_runtime_dir_means_no_agent() {
    let none = Environment::capture(|_| None);
    assert!(matches!(
        socket_path(&AppIdentity::keylink(), &none),
        Err(AgentError::NoRuntimeDir)
    ));
    let relative = Environment::capture(|name| (name == "XDG_RUNTIME_DIR").then(|| "run".into()));
    assert!(matches!(
        Agent::bind(AppIdentity::keylink(), relative),
        Err(AgentError::NoRuntimeDir)
    ));
    let long = format!("/{}", "r".repeat(100));
    let long =
        Environment::capture(|name| (name == "XDG_RUNTIME_DIR").then(|| long.clone().into()));
    assert!(matches!(
        socket_path(&AppIdentity::keylink(), &long),
        Err(AgentError::PathTooLong(_))
    ));
}

#[test]
fn a_directory_others_can_enter_is_refused_by_both_sides() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let agent_dir = dir.path().join("run/keylink");
    std::fs::create_dir(&agent_dir).unwrap();
    std::fs::set_permissions(&agent_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = Agent::bind(AppIdentity::keylink(), env.clone()).unwrap_err();
    assert!(matches!(err, AgentError::UnsafeDir { .. }), "{err}");
    assert!(
        err.to_string()
            .contains("other users can enter it (mode 755)"),
        "{err}"
    );
    assert!(
        !agent_dir.join("dev.keylink.sock").exists(),
        "nothing was created"
    );

    // An agent whose directory was opened afterwards is not asked.
    std::fs::set_permissions(&agent_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let serving = Serving::start(&env);
    std::fs::set_permissions(&agent_dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    assert!(
        ask(
            &AppIdentity::keylink(),
            &env,
            "someone",
            Duration::from_secs(60)
        )
        .is_none()
    );
    std::fs::set_permissions(&agent_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(serving);
}

#[test]
fn a_live_agent_is_kept_and_a_dead_ones_socket_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let serving = Serving::start(&env);
    let err = Agent::bind(AppIdentity::keylink(), env.clone()).unwrap_err();
    assert!(matches!(err, AgentError::AlreadyServing(_)), "{err}");
    assert!(serving.path.exists(), "the live agent's socket stays");
    drop(serving);

    // A socket nobody listens on, as a killed agent leaves it.
    let path = socket_path(&AppIdentity::keylink(), &env).unwrap();
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    assert!(path.exists());
    let serving = Serving::start(&env);
    assert!(serving.exchange("{}").contains("not_served"));
    drop(serving);

    // Something else in its place is left alone.
    std::fs::write(&path, "mine").unwrap();
    let err = Agent::bind(AppIdentity::keylink(), env).unwrap_err();
    assert!(matches!(err, AgentError::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "mine");
}

#[test]
fn requests_it_cannot_answer_alike_are_not_served() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let serving = Serving::start(&env);
    let request = |data_dir: &Path, config: &[PathBuf], version: u32| {
        serde_json::json!({
            "version": version,
            "account": "alice@example.com",
            "min_ttl_secs": 60,
            "data_dir": data_dir,
            "config": config,
        })
        .to_string()
    };
    let config = super::protocol::config_files(&env);
    let not_served = |answer: String, why: &str| {
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap();
        assert!(
            answer["not_served"]["reason"]
                .as_str()
                .unwrap()
                .contains(why),
            "{answer}"
        );
    };
    not_served(
        serving.exchange(&request(&dir.path().join("other-data"), &config, 1)),
        "another data directory or configuration",
    );
    not_served(
        serving.exchange(&request(&dir.path().join("data"), &config[..1], 1)),
        "another data directory or configuration",
    );
    not_served(
        serving.exchange(&request(&dir.path().join("data"), &config, 2)),
        "another protocol version",
    );
    not_served(
        serving.exchange("GET / HTTP/1.1"),
        "not one this agent understands",
    );
    // The right paths, but no configuration file: the caller reports that error.
    not_served(
        serving.exchange(&request(&dir.path().join("data"), &config, 1)),
        "configuration",
    );
    // The client reads "not served" as no answer at all.
    assert!(
        ask(
            &AppIdentity::keylink(),
            &env,
            "alice@example.com",
            Duration::from_secs(60)
        )
        .is_none()
    );
    assert!(!dir.path().join("data").exists(), "nothing was written");
}

#[test]
fn a_caller_that_sends_nothing_holds_up_no_other() {
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let serving = Serving::start(&env);
    // Connected, silent: its thread waits up to 5 s for a request.
    let silent: Vec<UnixStream> = (0..3)
        .map(|_| UnixStream::connect(&serving.path).unwrap())
        .collect();
    let started = std::time::Instant::now();
    assert!(serving.exchange("{}").contains("not_served"));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the request waited for the silent callers"
    );
    // Stopping waits for none of them, and nobody is answered after it.
    let path = serving.path.clone();
    let started = std::time::Instant::now();
    drop(serving);
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the stop waited"
    );
    assert!(!path.exists());
    drop(silent);
}

#[test]
fn status_says_whether_an_agent_serves_and_why_not() {
    use super::{AgentStatus, status};
    let dir = tempfile::tempdir().unwrap();
    let env = env_in(dir.path());
    let path = socket_path(&AppIdentity::keylink(), &env).unwrap();
    assert_eq!(
        status(&AppIdentity::keylink(), &env),
        AgentStatus::NotRunning(path.clone())
    );
    let serving = Serving::start(&env);
    assert_eq!(
        status(&AppIdentity::keylink(), &env),
        AgentStatus::Serving(path.clone())
    );
    let agent_dir = path.parent().unwrap();
    std::fs::set_permissions(agent_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    assert!(matches!(
        status(&AppIdentity::keylink(), &env),
        AgentStatus::UnsafeDir { .. }
    ));
    std::fs::set_permissions(agent_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    drop(serving);
    assert_eq!(
        status(&AppIdentity::keylink(), &Environment::capture(|_| None)),
        AgentStatus::NoRuntimeDir
    );
}
