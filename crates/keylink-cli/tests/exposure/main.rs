//! What the real `keylink` binary gives away, and to whom: the browser it starts gets none of
//! its `KEYLINK_*` variables (SECURITY 51); a browser that cannot start puts no URL, state,
//! nonce or PKCE value into the error or the log (SECURITY 50); stored tokens go only to the
//! issuer they came from (SECURITY 52). Against the real test identity provider and the
//! private keyring of `scripts/with-keyring.sh`.
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::http_server::{Reply, Server};
use support::{Home, Idp, param, stderr, wait_for, wait_output};

/// Writes an executable shell script `name` into `dir`.
fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    path
}

/// A program that writes its environment to `out`, then exits.
fn environment_recorder(dir: &Path, name: &str, out: &Path) -> PathBuf {
    script(
        dir,
        name,
        &format!("env > '{0}.tmp' && mv '{0}.tmp' '{0}'", out.display()),
    )
}

/// Runs `keylink link demo` with `setup` applied, until `recorded` exists; then stops it (by
/// its PID) and returns the recorded environment, one `NAME=value` a line.
fn environment_of_the_browser(
    home: &Home,
    recorded: &Path,
    setup: impl Fn(&mut Command),
) -> String {
    let mut cmd = home.keylink();
    cmd.args(["link", "demo", "--timeout", "30"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    setup(&mut cmd);
    let mut child = cmd.spawn().unwrap();
    wait_for("the browser to start", Duration::from_secs(30), || {
        recorded.exists()
    });
    let _ = child.kill();
    let _ = child.wait();
    std::fs::read_to_string(recorded).unwrap()
}

fn keylink_variables(environment: &str) -> Vec<&str> {
    environment
        .lines()
        .filter(|line| line.starts_with("KEYLINK_"))
        .collect()
}

#[test]
fn the_browser_keylink_starts_gets_none_of_its_variables() {
    // It used to get KEYLINK_CONFIG and KEYLINK_DATA_DIR, so the app it started read the
    // demo's configuration and refused the person's real sign-in.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);

    // $BROWSER.
    let recorded = home.dir.path().join("browser.env");
    let browser = environment_recorder(home.dir.path(), "browser.sh", &recorded);
    let environment = environment_of_the_browser(&home, &recorded, |cmd| {
        cmd.env("BROWSER", &browser);
    });
    assert!(
        environment.contains(&format!("HOME={}", home.dir.path().display())),
        "the recorder saw the environment:\n{environment}"
    );
    assert_eq!(keylink_variables(&environment), Vec::<&str>::new());

    // The system opener (xdg-open, found on PATH), when BROWSER is not set.
    let bin = home.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let recorded = home.dir.path().join("xdg-open.env");
    environment_recorder(&bin, "xdg-open", &recorded);
    let environment = environment_of_the_browser(&home, &recorded, |cmd| {
        cmd.env_remove("BROWSER")
            .env("DISPLAY", ":99")
            .env("PATH", format!("{}:/usr/bin:/bin", bin.display()));
    });
    assert!(environment.contains("DISPLAY=:99"), "{environment}");
    assert_eq!(keylink_variables(&environment), Vec::<&str>::new());
}

/// `keylink link demo` with `setup` applied and full logging, to completion.
fn failing_link(home: &Home, setup: impl Fn(&mut Command)) -> Output {
    let mut cmd = home.keylink();
    cmd.args(["link", "demo", "--timeout", "10"])
        .env("RUST_LOG", "trace")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    setup(&mut cmd);
    wait_output(cmd.spawn().unwrap(), Duration::from_secs(60))
}

/// Asserts that nothing `keylink` printed holds the authorization URL in `opened` or any of
/// its secret parameters, and that no pending flow is left.
fn assert_nothing_secret_in(out: &Output, opened: &Path, home: &Home) {
    let url = std::fs::read_to_string(opened).unwrap();
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !printed.contains(url.as_str()),
        "the URL was printed:\n{printed}"
    );
    for name in ["state", "nonce", "code_challenge"] {
        let value = param(&url, name).unwrap();
        assert!(
            !printed.contains(&value),
            "the {name} was printed:\n{printed}"
        );
    }
    assert!(!printed.contains("state="), "{printed}");
    let pending = std::fs::read_dir(home.data.join("pending")).map_or(0, |d| d.count());
    assert_eq!(pending, 0, "the abandoned sign-in is not kept");
}

#[test]
fn a_browser_that_fails_puts_no_secret_into_the_error_or_the_log() {
    // The system opener's own error named the whole authorization URL, and it went to
    // stderr and to the app's webview.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let opened = home.dir.path().join("opened");
    // Each failing opener records the URL it was given, says it on stderr as xdg-open
    // does, and fails.
    let failing = format!(
        "printf '%s' \"$1\" > '{}'\necho \"xdg-open: no method available for opening '$1'\" >&2\nexit 4",
        opened.display()
    );

    // The system opener.
    let bin = home.dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    script(&bin, "xdg-open", &failing);
    let out = failing_link(&home, |cmd| {
        cmd.env_remove("BROWSER")
            .env("DISPLAY", ":99")
            .env("PATH", &bin);
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not open a web browser (xdg-open failed (exit status: 4))"),
        "{}",
        stderr(&out)
    );
    assert_nothing_secret_in(&out, &opened, &home);

    // $BROWSER, failing the same way: said at once, without waiting for the timeout.
    std::fs::remove_file(&opened).unwrap();
    let browser = script(home.dir.path(), "browser.sh", &failing);
    let out = failing_link(&home, |cmd| {
        cmd.env("BROWSER", &browser);
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "the program in BROWSER ({}) failed (exit status: 4)",
            browser.display()
        )),
        "{}",
        stderr(&out)
    );
    assert_nothing_secret_in(&out, &opened, &home);

    // No opener at all on PATH, and a BROWSER that does not exist.
    let empty = home.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = failing_link(&home, |cmd| {
        cmd.env_remove("BROWSER")
            .env("DISPLAY", ":99")
            .env("PATH", &empty);
    });
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no program to open it is installed (looked for xdg-open"),
        "{}",
        stderr(&out)
    );
    let out = failing_link(&home, |cmd| {
        cmd.env("BROWSER", "/nonexistent/browser");
    });
    assert!(
        stderr(&out).contains(
            "the program in BROWSER (/nonexistent/browser) could not be started: No such file or directory"
        ),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("state="), "{}", stderr(&out));
}

#[test]
fn stored_tokens_go_only_to_the_issuer_they_came_from() {
    // They used to go to whatever issuer the configuration named after linking.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap().to_owned();
    let before = idp.stats();

    let elsewhere = Server::start(|_, _| Reply::Respond(500, Vec::new(), Vec::new()));
    let config = std::fs::read_to_string(&home.config).unwrap();
    let moved = config.replacen(
        &format!("issuer = \"{}\"", idp.issuer),
        &format!("issuer = \"{}\"", elsewhere.url),
        1,
    );
    assert_ne!(moved, config);
    std::fs::write(&home.config, moved).unwrap();

    let out = home.run(&["token", &id]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty(), "no token printed");
    assert!(
        stderr(&out).contains(&format!(
            "was linked at {}, but its provider demo is now configured with the issuer {}",
            idp.issuer, elsewhere.url
        )),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.list()[0]["status"], "needs_relink");
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    // Unlinking removes it here and sends its tokens nowhere to be revoked.
    home.ok(&["unlink", &id]);
    assert!(home.list().is_empty());
    assert_eq!(
        elsewhere.request_count(),
        0,
        "nothing went to the new issuer"
    );
    assert_eq!(idp.stats(), before, "nor to the old one");
}
