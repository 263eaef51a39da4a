//! The token agent: `keylink token` answered from the agent's memory exactly as from the
//! keychain, changes made by other processes seen at once, and nothing for another user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Home, Idp, stderr, wait_for, wait_output, wrapping};

/// A uid no account on the machine has, for "another local user".
const OTHER_USER: u32 = 54322;

/// A running `keylink agent` of a home, stopped by its PID when dropped.
struct Agent {
    child: Child,
    log: PathBuf,
    socket: PathBuf,
}

impl Agent {
    fn start(home: &Home) -> Agent {
        let log = home.dir.path().join("agent.log");
        let child = home
            .keylink()
            .arg("agent")
            .env("RUST_LOG", "keylink=debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let socket = home.runtime_dir().join("keylink/dev.keylink.sock");
        let agent = Agent { child, log, socket };
        wait_for("the agent's socket", Duration::from_secs(20), || {
            agent.socket.exists()
        });
        agent
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// How many requests the agent has answered with a token.
    fn answered(&self) -> usize {
        self.log()
            .matches("the agent answered a token request")
            .count()
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `keylink ARGS` with no agent to ask: a runtime directory without one.
fn without_agent(home: &Home, args: &[&str]) -> Output {
    let child = home
        .keylink()
        .args(args)
        .env("XDG_RUNTIME_DIR", home.dir.path().join("no-agent"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

/// Runs `args` through the agent and without it, and asserts the same output and exit code;
/// returns the agent's.
fn same_either_way(home: &Home, agent: &Agent, args: &[&str], answered: bool) -> Output {
    let before = agent.answered();
    let through_agent = home.run(args);
    let after = agent.answered();
    assert_eq!(
        after - before,
        usize::from(answered),
        "keylink {args:?}: the agent's answers; its log:\n{}",
        agent.log()
    );
    let direct = without_agent(home, args);
    assert_eq!(
        through_agent.status.code(),
        direct.status.code(),
        "keylink {args:?}: exit codes differ: {} / {}",
        stderr(&through_agent),
        stderr(&direct)
    );
    assert_eq!(
        String::from_utf8_lossy(&through_agent.stdout),
        String::from_utf8_lossy(&direct.stdout),
        "keylink {args:?}: stdout differs"
    );
    assert_eq!(
        stderr(&through_agent),
        stderr(&direct),
        "keylink {args:?}: stderr differs"
    );
    through_agent
}

#[test]
fn keylink_token_is_answered_by_the_agent_exactly_as_by_the_keychain() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap();
    let email = account["email"].as_str().unwrap();
    let agent = Agent::start(&home);

    // Private: the directory is the user's and closed to everyone else, and so is the socket.
    let dir = std::fs::metadata(agent.socket.parent().unwrap()).unwrap();
    assert_eq!(dir.mode() & 0o777, 0o700);
    assert_eq!(dir.uid(), std::fs::metadata("/proc/self").unwrap().uid());
    assert_eq!(
        std::fs::metadata(&agent.socket).unwrap().mode() & 0o777,
        0o600
    );

    // doctor says where it serves, and that tokens come from the keychain without it.
    let agent_check = |out: Output| {
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "agent")
            .cloned()
            .unwrap()
    };
    let check = agent_check(home.run(&["doctor", "--json"]));
    assert_eq!(check["status"], "ok");
    let serving = format!("token agent: serving on {}", agent.socket.display());
    assert_eq!(check["message"], serving.as_str());
    let check = agent_check(without_agent(&home, &["doctor", "--json"]));
    assert_eq!(check["status"], "ok");
    assert!(
        check["message"]
            .as_str()
            .unwrap()
            .contains("so tokens come from the keychain"),
        "{check}"
    );

    // The first answer reads the keychain, every later one comes from memory; all of them
    // are what the keychain gives.
    for args in [
        &["token", id][..],
        &["token", id],
        &["token", email, "--json"],
        &["token", "--min-ttl", "120", id],
        // The credential helpers ask it too: kubectl runs this on every call.
        &["kubectl-credential", email],
    ] {
        let out = same_either_way(&home, &agent, args, true);
        assert!(!out.stdout.is_empty());
    }
    let refreshes = idp.stats().token_requests.refresh_token;

    // What it cannot answer alike is answered by the keychain, word for word.
    same_either_way(&home, &agent, &["token", "nobody@example.test"], false);
    same_either_way(&home, &agent, &["token", id, "--min-ttl", "abc"], false);

    // A refresh the agent does is one refresh at the provider, stored for everyone.
    let before = agent.answered();
    let fresh = home.ok(&["token", id, "--min-ttl", "999999"]);
    assert_eq!(agent.answered() - before, 1);
    assert_eq!(idp.stats().token_requests.refresh_token, refreshes + 1);
    let stored = home.keychain_entry(id).unwrap();
    assert_eq!(stored["access_token"].as_str().unwrap(), fresh.trim());

    // A second agent is refused while the first serves.
    let second = home.run(&["agent"]);
    assert_eq!(second.status.code(), Some(1), "{}", stderr(&second));
    assert!(
        stderr(&second).contains("another Keylink agent already serves"),
        "{}",
        stderr(&second)
    );
}

#[test]
fn the_agent_sees_what_other_processes_change_at_once() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let agent = Agent::start(&home);
    let first = home.ok(&["token", &id]);
    assert_eq!(agent.answered(), 1);

    // Another process refreshes (and rotates the refresh token): the agent answers with the
    // new access token, not the one it held.
    let rotated = without_agent(&home, &["token", &id, "--min-ttl", "999999"]);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let rotated = String::from_utf8(rotated.stdout).unwrap();
    assert_ne!(rotated, first);
    assert_eq!(home.ok(&["token", &id]), rotated);
    assert_eq!(agent.answered(), 2);

    // Another process finds the grant revoked (a replayed refresh token revokes it at the
    // provider) and marks the account: the agent no longer hands out the token it holds.
    let before_rotation = home.keychain_entry(&id).unwrap();
    let again = without_agent(&home, &["token", &id, "--min-ttl", "999999"]);
    assert!(again.status.success(), "{}", stderr(&again));
    let mut replayed = before_rotation;
    replayed["expires_at"] = serde_json::json!(0);
    home.set_keychain_entry(&id, &replayed);
    let refused = without_agent(&home, &["token", &id]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert_eq!(home.list()[0]["status"], "needs_relink");
    let out = same_either_way(&home, &agent, &["token", &id], false);
    assert_eq!(out.status.code(), Some(3));

    // Linked again: the new grant's token at once.
    home.link("demo");
    let relinked = home.ok(&["token", &id]);
    assert_eq!(agent.answered(), 3);
    assert_eq!(
        home.keychain_entry(&id).unwrap()["access_token"].as_str(),
        Some(relinked.trim())
    );

    // Unlinked in another process: the agent answers nothing, and the keychain says why.
    home.ok(&["unlink", &id]);
    let out = same_either_way(&home, &agent, &["token", &id], false);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    // The configuration changed: the provider names another issuer now, so the tokens the
    // agent holds must not be handed out for it (SECURITY 52).
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    home.ok(&["token", &id]);
    let config = std::fs::read_to_string(&home.config).unwrap();
    std::fs::write(
        &home.config,
        config.replace(&idp.issuer, "https://login.example.test"),
    )
    .unwrap();
    let out = same_either_way(&home, &agent, &["token", &id], false);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("issuer"), "{}", stderr(&out));
}

#[test]
fn another_user_gets_nothing_from_the_agent() {
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() != 0) {
        eprintln!("skipped: running as another user needs root (the CI runs as root)");
        return;
    }
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let agent = Agent::start(&home);
    home.ok(&["token", &id]);
    assert_eq!(agent.answered(), 1);
    let as_other_user = |cmd: &Command| {
        let mut setpriv = Command::new("setpriv");
        setpriv.args([
            format!("--reuid={OTHER_USER}"),
            format!("--regid={OTHER_USER}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
        ]);
        let child = wrapping(setpriv, cmd)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_output(child, Duration::from_secs(60))
    };

    // The directories keep the other user out: `keylink token` as that user, with this
    // user's environment, prints no token.
    let mut token = home.keylink();
    token.args(["token", &id]);
    let out = as_other_user(&token);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "another user got a token");
    assert!(!stderr(&out).contains("setpriv:"), "{}", stderr(&out));

    // Even with the directory and the socket opened to everyone, the agent refuses the other
    // user's connection (SO_PEERCRED) without a byte.
    let dir = agent.socket.parent().unwrap().to_owned();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    // The runtime directory and the home around it too.
    for open in [home.dir.path().to_owned(), home.runtime_dir()] {
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    let request = serde_json::json!({
        "version": 1,
        "account": id,
        "min_ttl_secs": 60,
        "data_dir": home.data,
        "config": [keylink::provider::SYSTEM_POLICY_FILE, home.dir.path().join("policy.toml"), home.config],
    });
    // A client of its own, which checks nothing before it sends.
    let mut probe = Command::new("/usr/bin/python3");
    probe.args([
        "-c",
        "import socket, sys\n\
         s = socket.socket(socket.AF_UNIX)\n\
         s.connect(sys.argv[1])\n\
         print('connected', flush=True)\n\
         try:\n    s.sendall(sys.argv[2].encode() + b'\\n')\n\
         except OSError as e:\n    print('send failed:', e)\n\
         data = b''\n\
         try:\n    data = s.recv(65536)\n\
         except OSError as e:\n    print('receive failed:', e)\n\
         print('answer:', len(data), data.decode(errors='replace'))\n",
    ]);
    probe.arg(&agent.socket).arg(request.to_string());
    let out = as_other_user(&probe);
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        said.contains("connected"),
        "the other user could not even connect: {said} {}",
        stderr(&out)
    );
    assert!(
        said.contains("answer: 0 "),
        "the agent answered another user: {said}"
    );
    wait_for(
        "the agent's refusal in its log",
        Duration::from_secs(10),
        || agent.log().contains(&format!("uid={OTHER_USER}")),
    );
    assert!(
        agent
            .log()
            .contains("the agent refused a connection from another user")
    );
    assert_eq!(
        agent.answered(),
        1,
        "nothing was answered to the other user"
    );

    // The same request from this user is answered: the refusal was about who asked.
    let mut own = probe;
    let out = wait_output(
        own.stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(60),
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("access_token"),
        "{}",
        stderr(&out)
    );
}
