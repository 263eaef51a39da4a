//! `keylink unlink --sign-out` against the real test provider's end_session_endpoint
//! (RP-Initiated Logout 1.0), with a scripted browser whose cookies outlive one run, as a
//! person's browser session does.

use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::fake_idp::{self, FakeIdp};
use crate::support::{Home, Idp, keylink_bin, param, repo, stderr, wait_for, wait_output};

/// A browser for `home`: the scripted user agent with a cookie jar kept in the home, its
/// settings written into the script so that a browser still running after `keylink`
/// exited (as it does after `unlink --sign-out`) needs nothing from its parent. Each run's
/// exit code is appended to `ua-exits` (the handler's, `keylink open-url`, once it
/// delivered the provider's redirect).
fn browser(home: &Home) -> PathBuf {
    let dir = home.dir.path();
    let script = dir.join("browser.sh");
    if !script.exists() {
        let set = |name: &str, value: &dyn std::fmt::Display| format!("export {name}='{value}'\n");
        let mut text = String::from("#!/bin/sh\n");
        text += &set("KEYLINK_CONFIG", &home.config.display());
        text += &set("KEYLINK_POLICY", &dir.join("policy.toml").display());
        text += &set("KEYLINK_DATA_DIR", &home.data.display());
        text += &set(
            "KEYLINK_UA_HANDLER",
            &format!("{} open-url", keylink_bin().display()),
        );
        text += &set("KEYLINK_UA_LOG", &ua_log(home).display());
        text += &set("KEYLINK_UA_COOKIES", &dir.join("cookies.json").display());
        text += &format!(
            "node '{}' \"$@\"\necho \"$?\" >> '{}'\n",
            repo().join("tests/idp/user-agent.js").display(),
            dir.join("ua-exits").display()
        );
        std::fs::write(&script, text).unwrap();
        std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    script
}

fn ua_log(home: &Home) -> PathBuf {
    home.dir.path().join("user-agent.log")
}

/// The exit codes of the browser runs that have ended, in order.
fn browser_exits(home: &Home) -> Vec<String> {
    std::fs::read_to_string(home.dir.path().join("ua-exits"))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Waits until `n` browser runs have ended and checks that each succeeded.
fn wait_for_browser_runs(home: &Home, n: usize) {
    wait_for("the browser to finish", Duration::from_secs(30), || {
        browser_exits(home).len() >= n
    });
    assert_eq!(browser_exits(home), vec!["0"; n], "{}", log_text(home));
}

fn log_text(home: &Home) -> String {
    std::fs::read_to_string(ua_log(home)).unwrap_or_default()
}

/// `keylink ARGS` with the persistent browser.
fn run(home: &Home, args: &[&str]) -> Output {
    let child = home
        .keylink()
        .args(args)
        .env("BROWSER", browser(home))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_output(child, Duration::from_secs(60))
}

fn ok(home: &Home, args: &[&str]) -> Output {
    let out = run(home, args);
    assert!(
        out.status.success(),
        "keylink {args:?} failed ({:?}):\n{}",
        out.status.code(),
        stderr(&out)
    );
    out
}

/// Links at `demo` through the persistent browser; returns the account id.
fn link(home: &Home) -> String {
    let out = ok(home, &["link", "demo", "--json", "--timeout", "30"]);
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    account["id"].as_str().unwrap().to_owned()
}

/// The provider's counters: how many login pages it showed and sessions it ended.
fn counters(idp: &Idp) -> (u64, u64) {
    let stats: serde_json::Value = idp
        .http()
        .get(format!("{}/__test/stats", idp.issuer))
        .send()
        .unwrap()
        .json()
        .unwrap();
    (
        stats["logins"].as_u64().unwrap(),
        stats["sign_outs"].as_u64().unwrap(),
    )
}

#[test]
fn unlink_with_sign_out_ends_the_provider_session_so_the_next_link_asks_to_sign_in_again() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link(&home);
    wait_for_browser_runs(&home, 1);
    assert_eq!(
        counters(&idp),
        (1, 0),
        "the first link shows the login page"
    );

    // Unlinking alone forgets the tokens but leaves the browser signed in at the provider:
    // the next link goes through without a login page.
    let out = ok(&home, &["unlink", &id]);
    assert!(!stderr(&out).contains("sign-out"), "{}", stderr(&out));
    assert!(home.list().is_empty());
    let id = link(&home);
    wait_for_browser_runs(&home, 2);
    assert_eq!(counters(&idp), (1, 0), "the provider session was kept");

    // With --sign-out the browser goes to the provider's sign-out page, which ends the
    // session and sends the browser back to the app.
    let out = ok(&home, &["unlink", &id, "--sign-out"]);
    let said = stderr(&out);
    assert!(
        said.contains("Opened Demo's sign-out page in your browser"),
        "{said}"
    );
    assert!(said.contains(&format!("Unlinked {id}.")), "{said}");
    assert!(home.list().is_empty());
    assert!(home.keychain_entry(&id).is_none());
    wait_for_browser_runs(&home, 3);
    assert_eq!(counters(&idp), (1, 1), "the provider ended the session");
    let log = log_text(&home);
    assert!(log.contains("GET 200 "), "{log}");
    assert!(log.contains("/session/end/confirm"), "{log}");

    // The next link has to sign in again.
    link(&home);
    wait_for_browser_runs(&home, 4);
    assert_eq!(
        counters(&idp),
        (2, 1),
        "the next link showed the login page again"
    );
}

#[test]
fn the_sign_out_confirmation_through_open_url_says_so_and_changes_nothing() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link(&home);
    let list = home.list();
    let entry = home.keychain_entry(&id).unwrap();
    let before = idp.stats();

    let out = home.open_url("dev.keylink:/signed-out/demo?state=Zm9yLXRoZS1hcHAtb25seQ");
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out).trim(), "You are signed out of Demo.");
    assert!(out.stdout.is_empty());
    assert_eq!(home.list(), list);
    assert_eq!(home.keychain_entry(&id).unwrap(), entry);
    assert_eq!(idp.stats(), before, "nothing was asked of the provider");

    // Not a provider configured here: refused as a redirect, and still nothing changed.
    let out = home.open_url("dev.keylink:/signed-out/nobody?state=x");
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(!stderr(&out).contains("signed out"), "{}", stderr(&out));
    assert_eq!(home.list(), list);
    assert_eq!(idp.stats(), before);
}

#[test]
fn a_provider_without_end_session_endpoint_says_so_and_unlinks_anyway() {
    let idp = FakeIdp::start();
    let home = Home::with_config(&format!("{}name = \"Fake\"\n", idp.config("fake")), None);
    // Link through the fake provider, whose discovery document has no end_session_endpoint.
    let (link, auth_url) = home.start_recorded_link("fake");
    let nonce = param(&auth_url, "nonce").unwrap();
    idp.set_token_response(
        200,
        FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
    );
    let redirect = format!(
        "dev.keylink:/callback/fake?code=the-code&state={}&iss={}",
        param(&auth_url, "state").unwrap(),
        idp.issuer
    );
    assert!(home.open_url(&redirect).status.success());
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    let id = home.list()[0]["id"].as_str().unwrap().to_owned();

    let out = home
        .keylink()
        .args(["unlink", &id, "--sign-out"])
        .env("BROWSER", home.recording_browser())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(
            "Fake offers no way to end its sign-in from here; you are still signed in there in your browser."
        ),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains(&format!("Unlinked {id}.")));
    assert!(home.list().is_empty());
    assert!(
        !home.opened_url_file().exists(),
        "no browser was opened for a sign-out the provider does not offer"
    );
}

#[test]
fn the_id_token_never_reaches_the_output_or_the_logs_of_a_sign_out() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = link(&home);
    let id_token = home.keychain_entry(&id).unwrap()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let signature = id_token.rsplit('.').next().unwrap().to_owned();

    let child = home
        .keylink()
        .args(["unlink", &id, "--sign-out"])
        .env("BROWSER", browser(&home))
        .env("RUST_LOG", "keylink=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_output(child, Duration::from_secs(60));
    assert!(out.status.success(), "{}", stderr(&out));
    wait_for_browser_runs(&home, 2);
    assert_eq!(counters(&idp).1, 1, "the sign-out happened");
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
    assert!(
        said.contains("opening the provider's sign-out page"),
        "the log is on: {said}"
    );
    for text in [said, log_text(&home)] {
        assert!(!text.contains(&id_token), "{text}");
        assert!(!text.contains(&signature), "{text}");
        assert!(!text.contains("id_token_hint"), "{text}");
    }
}
