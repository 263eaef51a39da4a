//! SECURITY 47 as a user on a managed machine would try it: the real `keylink` run as a user
//! made for the test (uid 54321, through `setpriv`), against a system policy at
//! `/etc/keylink/keylink.toml` that only a private mount namespace sees (an overlay on /etc).
//! Root-owned files can only be made by root: run as another user, each test says it is
//! skipped and why.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tempfile::TempDir;

use crate::support::http_server::{Reply, Server};
use crate::support::{Home, stderr, wait_output, wrapping};

/// The user the tests run `keylink` as; it needs no passwd entry.
const USER: u32 = 54321;

/// The admin's policy: one locked company provider, and no providers from users.
const LOCKED: &str = "[policy]\nallow_user_providers = false\n\n\
    [providers.corp]\nname = \"Corp\"\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\nlocked = true\n";

/// What the user would like instead: their own `corp`, and a provider of their own.
const USERS_WISH: &str = "[providers.corp]\nissuer = \"https://evil.example\"\nclient_id = \"mine\"\n\n\
    [providers.mine]\nissuer = \"https://login.example.com\"\nclient_id = \"x\"\n";

/// True when the test can make root-owned files; otherwise says why it checks nothing.
fn as_root_or_skip(test: &str) -> bool {
    let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
    if !root {
        eprintln!(
            "skipped {test}: it needs root to make root-owned policy files (the CI runs as root)"
        );
    }
    root
}

/// A machine with a user (uid 54321) whose home is `home` (owned by them), and possibly a
/// system policy seen only by the `keylink` processes started here.
struct Machine {
    home: Home,
    /// Root-owned: the overlay's upper and work directories, policy files the user reads.
    root_dir: TempDir,
    system_policy: Option<PathBuf>,
}

impl Machine {
    fn new(user_config: &str) -> Machine {
        let home = Home::with_config(user_config, None);
        // The user owns their home, as on a real machine; the test's root-owned files live
        // elsewhere.
        for path in [home.dir.path(), home.config.as_path()] {
            std::os::unix::fs::chown(path, Some(USER), Some(USER)).unwrap();
        }
        let root_dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(root_dir.path(), PermissionsExt::from_mode(0o755)).unwrap();
        Machine {
            home,
            root_dir,
            system_policy: None,
        }
    }

    /// A file with `text`, owned by `uid`, with `mode`, in a directory the user can read but
    /// not change.
    fn file(&self, name: &str, text: &str, uid: u32, mode: u32) -> PathBuf {
        let path = self.root_dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        std::os::unix::fs::chown(&path, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&path, PermissionsExt::from_mode(mode)).unwrap();
        path
    }

    /// Deploys `/etc/keylink/keylink.toml` (for this machine's processes only).
    fn deploy_system_policy(&mut self, text: &str, uid: u32, mode: u32) {
        let upper = self.root_dir.path().join("etc-upper");
        let keylink_dir = upper.join("keylink");
        std::fs::create_dir_all(&keylink_dir).unwrap();
        std::fs::create_dir_all(self.root_dir.path().join("etc-work")).unwrap();
        let policy = keylink_dir.join("keylink.toml");
        std::fs::write(&policy, text).unwrap();
        std::os::unix::fs::chown(&policy, Some(uid), Some(uid)).unwrap();
        std::fs::set_permissions(&policy, PermissionsExt::from_mode(mode)).unwrap();
        self.system_policy = Some(upper);
    }

    /// `keylink ARGS` as the user, with the home's environment changed by `env`
    /// (`None` removes a variable).
    fn run(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> Output {
        let mut cmd = self.home.keylink();
        cmd.args(args)
            // The session's keyring belongs to root: fail at once instead of asking it.
            .env("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent")
            .env_remove("HTTPS_PROXY")
            .env_remove("https_proxy")
            .env_remove("ALL_PROXY")
            .env_remove("all_proxy")
            .env_remove("NO_PROXY")
            .env_remove("no_proxy");
        for (name, value) in env {
            match value {
                Some(value) => cmd.env(name, value),
                None => cmd.env_remove(name),
            };
        }
        let mut outer = match &self.system_policy {
            Some(upper) => {
                let mut unshare = Command::new("unshare");
                unshare.args([
                    "--mount",
                    "--propagation",
                    "private",
                    "sh",
                    "-c",
                    r#"mount -t overlay overlay -o "lowerdir=/etc,upperdir=$1,workdir=$2" /etc && shift 2 && exec "$@""#,
                    "sh",
                ]);
                unshare
                    .arg(upper)
                    .arg(self.root_dir.path().join("etc-work"))
                    .arg("setpriv");
                unshare
            }
            None => {
                assert!(
                    !Path::new(keylink::provider::SYSTEM_POLICY_FILE).exists(),
                    "this machine has a system policy, which these tests would read"
                );
                Command::new("setpriv")
            }
        };
        outer.args([
            format!("--reuid={USER}"),
            format!("--regid={USER}"),
            "--clear-groups".to_owned(),
            "--".to_owned(),
        ]);
        let child = wrapping(outer, &cmd).spawn().unwrap();
        let out = wait_output(child, Duration::from_secs(60));
        let err = stderr(&out);
        assert!(
            !err.contains("unshare:") && !err.contains("mount:") && !err.contains("setpriv:"),
            "the test could not run keylink as uid {USER} with its own /etc/keylink: {err}"
        );
        out
    }

    /// `keylink providers --json` as the user: the providers by id, and stderr.
    fn providers(&self, args: &[&str], env: &[(&str, Option<&str>)]) -> (Vec<Provider>, String) {
        let mut all = args.to_vec();
        all.extend(["providers", "--json"]);
        let out = self.run(&all, env);
        assert!(out.status.success(), "{}", stderr(&out));
        let list: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
        let providers = list
            .iter()
            .map(|p| Provider {
                id: p["id"].as_str().unwrap().to_owned(),
                issuer: p["issuer"].as_str().unwrap_or_default().to_owned(),
                source: p["source"].as_str().unwrap().to_owned(),
                locked: p["locked"].as_bool().unwrap(),
            })
            .collect();
        (providers, stderr(&out))
    }

    /// The `policy` check of `keylink doctor --json` as the user.
    fn policy_check(&self, env: &[(&str, Option<&str>)]) -> serde_json::Value {
        let out = self.run(&["doctor", "--json"], env);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|_| panic!("doctor --json printed no report: {}", stderr(&out)));
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == "policy")
            .cloned()
            .unwrap_or_else(|| panic!("no policy check in {report}"))
    }
}

#[derive(Debug, PartialEq)]
struct Provider {
    id: String,
    issuer: String,
    source: String,
    locked: bool,
}

/// `doctor`'s policy check failed, saying `why` and giving `fix`.
fn assert_policy_check_fails(check: &serde_json::Value, why: &str, fix: &str) {
    assert_eq!(check["status"], "fail", "{check}");
    assert!(check["message"].as_str().unwrap().contains(why), "{check}");
    assert!(check["fix"].as_str().unwrap().contains(fix), "{check}");
}

/// The admin's providers exactly: their locked `corp`, nothing of the user's.
fn assert_locked_policy_holds(providers: &[Provider], context: &str) {
    assert_eq!(
        providers,
        [Provider {
            id: "corp".into(),
            issuer: "https://sso.corp.example".into(),
            source: "policy".into(),
            locked: true,
        }],
        "{context}"
    );
}

/// The reproduction from the review: `KEYLINK_POLICY=/dev/null` switched the policy off, and the
/// user's `corp` with another issuer replaced the locked one.
#[test]
fn keylink_policy_naming_dev_null_leaves_the_system_policy_in_force() {
    if !as_root_or_skip("keylink_policy_naming_dev_null_leaves_the_system_policy_in_force") {
        return;
    }
    let mut machine = Machine::new(USERS_WISH);
    machine.deploy_system_policy(LOCKED, 0, 0o644);
    let env = [("KEYLINK_POLICY", Some("/dev/null"))];
    let (providers, err) = machine.providers(&[], &env);
    assert_locked_policy_holds(&providers, &err);
    assert!(
        err.contains(
            "keylink: warning: KEYLINK_POLICY names /dev/null, which is not a regular file"
        ) && err.contains("the system policy /etc/keylink/keylink.toml applies"),
        "{err}"
    );
    let check = machine.policy_check(&env);
    assert_eq!(check["status"], "fail", "{check}");
    let message = check["message"].as_str().unwrap();
    assert!(
        message.contains("/dev/null")
            && message.contains("not a regular file")
            && message.contains("/etc/keylink/keylink.toml applies"),
        "{check}"
    );
    assert!(
        check["fix"].as_str().unwrap().contains("KEYLINK_POLICY"),
        "{check}"
    );
}

#[test]
fn a_policy_file_the_user_owns_is_not_trusted() {
    if !as_root_or_skip("a_policy_file_the_user_owns_is_not_trusted") {
        return;
    }
    let mut machine = Machine::new(USERS_WISH);
    let own = machine.file(
        "own-policy.toml",
        "[policy]\nallow_user_providers = true\n",
        USER,
        0o644,
    );
    let env = [("KEYLINK_POLICY", own.to_str())];

    // With the admin's policy deployed, it stays in force.
    machine.deploy_system_policy(LOCKED, 0, 0o644);
    let (providers, err) = machine.providers(&[], &env);
    assert_locked_policy_holds(&providers, &err);
    assert_policy_check_fails(
        &machine.policy_check(&env),
        &format!("belongs to user id {USER}, not root"),
        &format!("sudo chown root:root {}", own.display()),
    );

    // Without one, a user-owned file is no policy either: its providers are not the admin's.
    let machine = Machine::new("");
    let own = machine.file(
        "own-policy.toml",
        "[providers.fake]\nissuer = \"https://fake.example\"\nclient_id = \"x\"\nlocked = true\n",
        USER,
        0o644,
    );
    let (providers, err) = machine.providers(&[], &[("KEYLINK_POLICY", own.to_str())]);
    assert_eq!(providers, [], "{err}");
    assert!(err.contains("no system policy applies"), "{err}");
}

#[test]
fn a_root_owned_policy_others_can_write_is_not_trusted() {
    if !as_root_or_skip("a_root_owned_policy_others_can_write_is_not_trusted") {
        return;
    }
    let mut machine = Machine::new(USERS_WISH);
    machine.deploy_system_policy(LOCKED, 0, 0o644);
    let open = "[policy]\nallow_user_providers = true\n";
    for (name, mode) in [
        ("group-writable.toml", 0o664),
        ("world-writable.toml", 0o646),
    ] {
        let file = machine.file(name, open, 0, mode);
        let env = [("KEYLINK_POLICY", file.to_str())];
        let (providers, err) = machine.providers(&[], &env);
        assert_locked_policy_holds(&providers, &err);
        assert_policy_check_fails(
            &machine.policy_check(&env),
            &format!("can be written by other users (mode {mode:o})"),
            &format!("sudo chmod 644 {}", file.display()),
        );
    }

    // The system policy itself, writable by a group: neither used nor ignored. Nothing runs,
    // and `doctor --json` still gives fleet tooling a report saying why.
    let mut machine = Machine::new(USERS_WISH);
    machine.deploy_system_policy(LOCKED, 0, 0o664);
    let out = machine.run(&["providers", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains(
            "the system policy /etc/keylink/keylink.toml can be written by other users (mode 664)"
        ) && err.contains("owned by root that only root can write"),
        "{err}"
    );
    let out = machine.run(&["doctor", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 1);
    let config = &report["checks"][0];
    assert_eq!(config["id"], "config");
    assert_eq!(config["status"], "fail");
    assert!(
        config["message"]
            .as_str()
            .unwrap()
            .contains("/etc/keylink/keylink.toml can be written by other users"),
        "{config}"
    );
    assert!(
        config["fix"].as_str().unwrap().contains("administrator"),
        "{config}"
    );

    // Owned by a user, the same.
    let mut machine = Machine::new(USERS_WISH);
    machine.deploy_system_policy(LOCKED, USER, 0o644);
    let out = machine.run(&["providers", "--json"], &[]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("belongs to user id {USER}, not root")),
        "{}",
        stderr(&out)
    );
}

/// A proxy that answers every request with 502, recording what was asked of it.
fn recording_proxy() -> (Server, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let server = Server::start(move |request, _| {
        log.lock()
            .unwrap()
            .push(format!("{} {}", request.method, request.path));
        Reply::Respond(502, vec![], Vec::new())
    });
    (server, seen)
}

#[test]
fn proxy_variables_do_not_change_a_proxy_the_policy_sets() {
    if !as_root_or_skip("proxy_variables_do_not_change_a_proxy_the_policy_sets") {
        return;
    }
    let (policy_proxy, policy_seen) = recording_proxy();
    let (users_proxy, users_seen) = recording_proxy();
    let provider =
        "[providers.corp]\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\n";
    let machine = Machine::new("");
    let policy = machine.file(
        "proxy-policy.toml",
        &format!(
            "{provider}[network]\nhttps_proxy = \"{}\"\ntimeout_secs = 5\n",
            policy_proxy.url
        ),
        0,
        0o644,
    );
    // `NO_PROXY=*` used to be added to the policy's proxy, which then applied to no host.
    let out = machine.run(
        &["doctor", "--json"],
        &[
            ("KEYLINK_POLICY", policy.to_str()),
            ("NO_PROXY", Some("*")),
            ("HTTPS_PROXY", Some(&users_proxy.url)),
        ],
    );
    assert!(
        policy_seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == "CONNECT sso.corp.example:443"),
        "discovery went through the policy's proxy: {:?} {}",
        policy_seen.lock().unwrap(),
        stderr(&out)
    );
    assert!(users_seen.lock().unwrap().is_empty());

    // A policy that sets only `no_proxy` means no proxy but for those hosts: the user's
    // HTTPS_PROXY is not added to it.
    policy_seen.lock().unwrap().clear();
    let policy = machine.file(
        "no-proxy-policy.toml",
        &format!("{provider}[network]\nno_proxy = \"intranet.corp.example\"\ntimeout_secs = 5\n"),
        0,
        0o644,
    );
    let out = machine.run(
        &["doctor", "--json"],
        &[
            ("KEYLINK_POLICY", policy.to_str()),
            ("HTTPS_PROXY", Some(&users_proxy.url)),
        ],
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let corp = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "provider.corp")
        .cloned()
        .unwrap();
    assert_eq!(corp["status"], "fail", "sso.corp.example does not exist");
    assert!(users_seen.lock().unwrap().is_empty());

    // The control: with no policy, the environment's proxy is used.
    let machine = Machine::new(provider);
    machine.run(
        &["doctor", "--json"],
        &[("HTTPS_PROXY", Some(&users_proxy.url))],
    );
    assert!(
        users_seen
            .lock()
            .unwrap()
            .iter()
            .any(|r| r == "CONNECT sso.corp.example:443")
    );
}

/// `KEYLINK_CONFIG`, `--app` and `KEYLINK_APP` choose the user's file and the app; none of them
/// (nor a `KEYLINK_POLICY` naming a file that does not exist) gets past the admin's policy.
#[test]
fn keylink_config_and_app_cannot_replace_a_locked_provider_or_add_providers() {
    if !as_root_or_skip("keylink_config_and_app_cannot_replace_a_locked_provider_or_add_providers")
    {
        return;
    }
    let mut machine = Machine::new("");
    machine.deploy_system_policy(LOCKED, 0, 0o644);
    let elsewhere = machine.home.dir.path().join("elsewhere.toml");
    std::fs::write(&elsewhere, USERS_WISH).unwrap();
    std::os::unix::fs::chown(&elsewhere, Some(USER), Some(USER)).unwrap();
    let missing = machine.home.dir.path().join("no-policy-here.toml");
    let config = [
        ("KEYLINK_CONFIG", elsewhere.to_str()),
        ("KEYLINK_POLICY", missing.to_str()),
    ];
    for (args, app) in [
        (&[][..], None),
        (&["--app", "com.example.notes"][..], None),
        (&[][..], Some("com.example.notes")),
    ] {
        let mut env = config.to_vec();
        env.push(("KEYLINK_APP", app));
        let (providers, err) = machine.providers(args, &env);
        assert_locked_policy_holds(&providers, &format!("{args:?} {app:?}: {err}"));
        assert!(
            err.contains("\"corp\" was ignored") || err.contains("\"mine\" was ignored"),
            "{err}"
        );
        let out = machine.run(
            &[args, &["link", "mine", "--no-browser"][..]].concat(),
            &env,
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    }
    // Nor may the user's file claim the policy's powers.
    std::fs::write(&elsewhere, "[policy]\nallow_user_providers = true\n").unwrap();
    let out = machine.run(&["providers"], &config);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("only allowed in the system policy file"),
        "{}",
        stderr(&out)
    );
}
