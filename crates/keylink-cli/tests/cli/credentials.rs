//! `keylink git-credential` driven by the real git against a git server (the real
//! `git http-backend`) that accepts only access tokens the test provider accepts: clone and
//! push with a linked account, no answer for a server nobody mapped, a refused token replaced.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::git_server::GitServer;
use crate::support::{Home, Idp, keylink_bin, run_with_input, stderr, wait_output};

const EMAIL: &str = "alice@example.test";

/// Maps `origin` to the account linked as `account` in the home's configuration.
fn map_credentials(home: &Home, origin: &str, account: &str, username: Option<&str>) {
    let mut entry = format!("\n[credentials.\"{origin}\"]\naccount = \"{account}\"\n");
    if let Some(username) = username {
        entry.push_str(&format!("username = \"{username}\"\n"));
    }
    let mut config = std::fs::OpenOptions::new()
        .append(true)
        .open(&home.config)
        .unwrap();
    config.write_all(entry.as_bytes()).unwrap();
}

/// The helper setting as a person writes it: a shell command running the keylink binary.
fn keylink_helper() -> String {
    let bin = keylink_bin().display().to_string();
    assert!(!bin.contains('\''), "{bin}");
    format!("!'{bin}' git-credential")
}

/// A helper (an absolute path, git's other form) that writes each action git asks for
/// (`get`, `store`, `erase`) to `log`, then runs `keylink git-credential` with it.
fn recording_helper(home: &Home, log: &Path) -> PathBuf {
    let script = home.dir.path().join("git-credential-recorded");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$1\" >> '{}'\nexec '{}' git-credential \"$@\"\n",
            log.display(),
            keylink_bin().display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    script
}

fn actions(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// `git` with `helper` as the only credential helper, for `origin` only, and no way to ask a
/// person: git must get its password from the helper or fail. The environment is the one
/// `keylink` runs in (configuration, data directory, the session's keyring), which git hands
/// on to its helper.
fn git(home: &Home, origin: &str, helper: &str) -> Command {
    let keylink = home.keylink();
    let mut cmd = Command::new("git");
    for (name, value) in keylink.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    for inherited in [
        "GIT_ASKPASS",
        "SSH_ASKPASS",
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_CONFIG_PARAMETERS",
        "GIT_CONFIG_COUNT",
        "GIT_CONFIG_GLOBAL",
    ] {
        cmd.env_remove(inherited);
    }
    cmd.env("GIT_TERMINAL_PROMPT", "0")
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_AUTHOR_NAME", "Alice")
        .env("GIT_AUTHOR_EMAIL", EMAIL)
        .env("GIT_COMMITTER_NAME", "Alice")
        .env("GIT_COMMITTER_EMAIL", EMAIL)
        // An empty value first: no helper from anywhere else answers.
        .args(["-c", "credential.helper="])
        .arg("-c")
        .arg(format!("credential.{origin}.helper={helper}"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

fn run(cmd: &mut Command) -> Output {
    wait_output(cmd.spawn().unwrap(), Duration::from_secs(60))
}

/// `len` bytes that do not compress (xorshift).
fn noise(len: usize) -> Vec<u8> {
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state.to_le_bytes()[0]
        })
        .collect()
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn git_clones_and_pushes_with_the_linked_accounts_token() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    home.link("demo");
    let server = GitServer::start(&idp);
    server.create_repo("project.git", &[("README", "hello from the server\n")]);
    map_credentials(&home, &server.url, EMAIL, Some("alice-git"));
    let helper = keylink_helper();
    let work = home.dir.path().join("project");

    let clone = run(git(&home, &server.url, &helper)
        .arg("clone")
        .arg(server.repo_url("project.git"))
        .arg(&work));
    assert!(clone.status.success(), "git clone: {}", stderr(&clone));
    assert_eq!(
        std::fs::read_to_string(work.join("README")).unwrap(),
        "hello from the server\n"
    );

    std::fs::write(work.join("NOTES"), "pushed with a linked account\n").unwrap();
    // Larger than git's smallest post buffer, and incompressible: git sends the pack
    // chunked, after a probe to check that its credentials are good.
    std::fs::write(work.join("photo.bin"), noise(256 * 1024)).unwrap();
    let add = run(git(&home, &server.url, &helper).current_dir(&work).args([
        "add",
        "NOTES",
        "photo.bin",
    ]));
    assert!(add.status.success(), "git add: {}", stderr(&add));
    let commit = run(git(&home, &server.url, &helper).current_dir(&work).args([
        "commit",
        "-q",
        "-m",
        "Notes from Alice",
    ]));
    assert!(commit.status.success(), "git commit: {}", stderr(&commit));
    let push = run(git(&home, &server.url, &helper).current_dir(&work).args([
        "-c",
        "http.postBuffer=65536",
        "push",
        "origin",
        "main",
    ]));
    assert!(push.status.success(), "git push: {}", stderr(&push));
    assert_eq!(
        server.log("project.git"),
        ["Notes from Alice", "Initial commit"],
        "the push landed in the server's repository"
    );

    // Every credential git presented was the account's access token, under the configured
    // user name, and the server took each one.
    let token = home.ok(&["token", EMAIL]).trim().to_owned();
    let seen = server.seen();
    assert!(seen.backend_errors.is_empty(), "{:?}", seen.backend_errors);
    assert!(!seen.presented.is_empty(), "{:?}", seen.requests);
    for presented in &seen.presented {
        assert_eq!(presented.username, "alice-git");
        assert!(
            presented.password == token,
            "git presented a password other than the account's access token"
        );
        assert!(presented.accepted);
    }
    // The clone and the push each began without credentials and were asked once; no token
    // was refused, so none was replaced.
    assert_eq!(seen.unauthorized, 2, "{:?}", seen.requests);
    assert_eq!(seen.chunked_bodies, 1, "the large push came chunked");
    assert_eq!(idp.stats().token_requests.refresh_token, 0);
}

#[test]
fn git_gets_no_credentials_for_a_server_nobody_mapped() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    home.link("demo");
    let server = GitServer::start(&idp);
    server.create_repo("project.git", &[("README", "hello\n")]);
    // The account answers for another server only.
    map_credentials(&home, "http://127.0.0.1:9", EMAIL, None);
    let log = home.dir.path().join("helper.log");
    let helper = recording_helper(&home, &log);

    let clone = run(git(&home, &server.url, helper.to_str().unwrap())
        .arg("clone")
        .arg(server.repo_url("project.git"))
        .arg(home.dir.path().join("project")));
    assert!(!clone.status.success());
    let err = stderr(&clone);
    assert!(
        err.contains("could not read Username") && err.contains(&server.url),
        "{err}"
    );
    assert!(!home.dir.path().join("project/README").exists());
    assert_eq!(
        actions(&log),
        ["get"],
        "git asked keylink, which said nothing"
    );
    let seen = server.seen();
    assert!(seen.presented.is_empty(), "the server saw no credentials");
    assert_eq!(seen.unauthorized, 1);
}

#[test]
fn a_token_the_git_server_refuses_is_replaced_and_the_account_stays_linked() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let server = GitServer::start(&idp);
    server.create_repo("project.git", &[("README", "hello\n")]);
    map_credentials(&home, &server.url, EMAIL, None);
    let log = home.dir.path().join("helper.log");
    let helper = recording_helper(&home, &log);
    let refused = home.ok(&["token", EMAIL]).trim().to_owned();
    server.revoke_next_token();

    let clone = |dir: &str| {
        run(git(&home, &server.url, helper.to_str().unwrap())
            .arg("clone")
            .arg(server.repo_url("project.git"))
            .arg(home.dir.path().join(dir)))
    };
    let first = clone("first");
    let seen = server.seen();
    let presented = seen.presented.first().expect("git presented a token");
    assert!(
        presented.password == refused && !presented.accepted,
        "the server refused the account's token first"
    );
    // Git hands a refused password back to its helper (`erase`); Keylink replaces the token at
    // once with one refresh, so the next `get` has a new one. Git 2.47 does not retry within
    // the command: the first clone fails and the next one works.
    let cloned = if first.status.success() {
        assert_eq!(actions(&log), ["get", "erase", "get", "store"]);
        "first"
    } else {
        let err = stderr(&first);
        assert!(err.contains("Authentication failed"), "{err}");
        assert_eq!(actions(&log), ["get", "erase"]);
        let replaced = home.keychain_entry(&id).unwrap();
        assert!(
            replaced["access_token"]
                .as_str()
                .is_some_and(|t| t != refused),
            "erase replaced the refused token"
        );
        let second = clone("second");
        assert!(second.status.success(), "git clone: {}", stderr(&second));
        assert_eq!(actions(&log), ["get", "erase", "get", "store"]);
        "second"
    };
    assert!(home.dir.path().join(cloned).join("README").exists());
    assert_eq!(idp.stats().token_requests.refresh_token, 1);

    let list = home.list();
    assert_eq!(list.len(), 1, "the account is still linked");
    assert_eq!(list[0]["status"], "ok");
    let current = home.ok(&["token", EMAIL]).trim().to_owned();
    assert!(current != refused, "a new token");
    let seen = server.seen();
    let last = seen.presented.last().unwrap();
    assert!(
        last.password == current && last.accepted,
        "the clone that worked presented the new token"
    );
    assert_eq!(
        seen.presented
            .iter()
            .filter(|p| p.password == refused)
            .count(),
        1,
        "the refused token was presented once"
    );
}

/// Feeds `input` to `keylink git-credential ACTION` as git would.
fn git_credential(home: &Home, action: &str, input: &str) -> Output {
    run_with_input(home.keylink().args(["git-credential", action]), input)
}

#[test]
fn git_credential_get_prints_the_username_the_token_and_its_expiry() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    home.link("demo");
    map_credentials(&home, "http://127.0.0.1:8123", EMAIL, None);
    let token = home.ok(&["token", EMAIL]).trim().to_owned();

    let out = git_credential(&home, "get", "protocol=http\nhost=127.0.0.1:8123\n\n");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "username, password and expiry lines");
    assert_eq!(lines[0], "username=oauth2");
    assert!(
        lines[1] == format!("password={token}"),
        "the password is the account's access token"
    );
    let expiry: u64 = lines[2]
        .strip_prefix("password_expiry_utc=")
        .expect("an expiry line")
        .parse()
        .expect("unix seconds");
    // The provider's tokens live an hour.
    let now = now();
    assert!(
        expiry > now && expiry <= now + 3600 + 60,
        "{expiry} at {now}"
    );
    assert!(stdout.ends_with('\n'));

    // Another port is another server: nothing, and git asks elsewhere.
    let other = git_credential(&home, "get", "protocol=http\nhost=127.0.0.1:8124\n\n");
    assert!(other.status.success(), "{}", stderr(&other));
    assert!(other.stdout.is_empty());
}

/// `keylink doctor --json`'s check of `[credentials."<server>"]`.
fn credentials_check(home: &Home, server: &str) -> serde_json::Value {
    let out = home.run(&["doctor", "--json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("doctor printed no JSON: {}", stderr(&out)));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == format!("credentials.{server}"))
        .cloned()
        .unwrap_or_else(|| panic!("no credentials check: {report}"))
}

#[test]
fn doctor_says_which_tools_ask_keylink_for_each_server() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let server = "https://git.example.test";
    map_credentials(&home, server, EMAIL, None);

    // No such account yet: the entry cannot answer.
    let missing = credentials_check(&home, server);
    assert_eq!(missing["status"], "fail", "{missing}");
    assert!(
        missing["fix"].as_str().unwrap().contains("[credentials]"),
        "{missing}"
    );

    home.link("demo");
    // Linked, but no tool is set up to ask: a warning with both set-ups in its fix.
    let unused = credentials_check(&home, server);
    assert_eq!(unused["status"], "warn", "{unused}");
    let fix = unused["fix"].as_str().unwrap();
    assert!(
        fix.contains(&format!(
            "git config --global credential.{server}.helper '!keylink git-credential'"
        )),
        "{fix}"
    );
    assert!(fix.contains("\"git.example.test\": \"keylink\""), "{fix}");

    // The person runs the git half of the fix in their home, as doctor says.
    let set = Command::new("git")
        .args([
            "config",
            "--global",
            &format!("credential.{server}.helper"),
            "!keylink git-credential",
        ])
        .env("HOME", home.dir.path())
        .env("XDG_CONFIG_HOME", home.dir.path().join("config"))
        .output()
        .unwrap();
    assert!(
        set.status.success(),
        "{}",
        String::from_utf8_lossy(&set.stderr)
    );
    let git = credentials_check(&home, server);
    assert_eq!(git["status"], "ok", "{git}");
    assert!(
        git["message"]
            .as_str()
            .unwrap()
            .ends_with("; git asks Keylink"),
        "{git}"
    );

    // And docker's.
    std::fs::create_dir_all(home.dir.path().join(".docker")).unwrap();
    std::fs::write(
        home.dir.path().join(".docker/config.json"),
        r#"{"credHelpers": {"git.example.test": "keylink"}}"#,
    )
    .unwrap();
    let both = credentials_check(&home, server);
    assert!(
        both["message"]
            .as_str()
            .unwrap()
            .ends_with("; git and docker ask Keylink"),
        "{both}"
    );
}
