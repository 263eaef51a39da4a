//! Incremental consent: `keylink link --scope` and `keylink reconnect --scope` against the real
//! test provider, whose `calendar` scope the scripted person grants or declines.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Home, Idp, repo, stderr, wait_for, wait_output};

/// The scopes of an account's JSON.
fn scopes(account: &serde_json::Value) -> Vec<String> {
    account["scopes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect()
}

/// The scope the provider itself records for `access_token` (none when it does not know it).
fn scope_at_provider(idp: &Idp, access_token: &str) -> Option<String> {
    let answer: serde_json::Value = idp
        .http()
        .post(format!("{}/__test/introspect", idp.issuer))
        .form(&[("token", access_token)])
        .send()
        .unwrap()
        .json()
        .unwrap();
    (answer["active"] == true).then(|| answer["scope"].as_str().unwrap().to_owned())
}

fn has(scopes: &str, scope: &str) -> bool {
    scopes.split(' ').any(|s| s == scope)
}

/// Runs `keylink ARGS`, whose sign-in a person completes in the scripted browser with
/// `person` (`KEYLINK_UA_*` settings). The test runs that browser itself: the scripted one
/// exits with its URL handler's status, which a real browser does not, and a sign-in that
/// fails quickly would otherwise read as a browser that failed to start.
fn run_as(home: &Home, person: &[(&str, &str)], args: &[&str]) -> Output {
    let opened = home.opened_url_file();
    let _ = std::fs::remove_file(&opened);
    let child = home
        .keylink()
        .args(args)
        .env("BROWSER", home.recording_browser())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    wait_for("the browser to be opened", Duration::from_secs(30), || {
        opened.exists()
    });
    let url = std::fs::read_to_string(&opened).unwrap();
    let mut browser = Command::new(repo().join("tests/idp/user-agent.js"));
    for (name, value) in home.keylink().get_envs() {
        match value {
            Some(value) => browser.env(name, value),
            None => browser.env_remove(name),
        };
    }
    let browser = browser
        .envs(person.iter().copied())
        .arg(url)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_output(browser, Duration::from_secs(60));
    wait_output(child, Duration::from_secs(60))
}

/// The error, said in one line on stderr (after any progress lines).
fn one_line(out: &Output) -> String {
    let text = stderr(out);
    let said: Vec<&str> = text.lines().filter(|l| l.starts_with("keylink:")).collect();
    assert_eq!(said.len(), 1, "{text}");
    said[0].to_owned()
}

#[test]
fn reconnect_with_a_scope_adds_it_keeps_the_rest_and_the_refresh_token_keeps_working() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let linked = home.link("demo");
    let id = linked["id"].as_str().unwrap().to_owned();
    let before = scopes(&linked);
    assert!(!before.contains(&"calendar".to_owned()), "{before:?}");
    let old_token = home.ok(&["token", &id]).trim().to_owned();
    assert!(!has(
        &scope_at_provider(&idp, &old_token).unwrap(),
        "calendar"
    ));

    let out = home.ok(&[
        "reconnect",
        &id,
        "--scope",
        "calendar",
        "--json",
        "--timeout",
        "30",
    ]);
    let reconnected: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(reconnected["id"], id.as_str());
    let after = scopes(&reconnected);
    assert!(after.contains(&"calendar".to_owned()), "{after:?}");
    for scope in &before {
        assert!(after.contains(scope), "{scope} was dropped: {after:?}");
    }
    assert_eq!(idp.stats().token_requests.authorization_code, 2);
    let list = home.list();
    assert_eq!(list.len(), 1);
    assert_eq!(scopes(&list[0]), after);
    // The provider itself says the new access token carries the calendar scope.
    let token = home.ok(&["token", &id]).trim().to_owned();
    assert_ne!(token, old_token);
    assert!(has(&scope_at_provider(&idp, &token).unwrap(), "calendar"));

    // The refresh token from the reconnect works, and its tokens keep the calendar scope.
    let refreshed = home
        .ok(&["token", &id, "--min-ttl", "999999"])
        .trim()
        .to_owned();
    assert_ne!(refreshed, token);
    let stats = idp.stats();
    assert_eq!(stats.token_requests.refresh_token, 1);
    assert_eq!(stats.token_errors, 0);
    assert!(has(
        &scope_at_provider(&idp, &refreshed).unwrap(),
        "calendar"
    ));
    assert!(scopes(&home.list()[0]).contains(&"calendar".to_owned()));
}

#[test]
fn a_refused_extra_scope_changes_nothing() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let linked = home.link("demo");
    let id = linked["id"].as_str().unwrap().to_owned();
    let tokens = home.keychain_entry(&id).unwrap();
    let list = home.list();

    let out = run_as(
        &home,
        &[("KEYLINK_UA_REFUSE_SCOPES", "calendar")],
        &["reconnect", &id, "--scope", "calendar", "--timeout", "30"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = one_line(&out);
    assert!(
        said.contains("was declined, so nothing was changed")
            && said.contains(&format!("keylink reconnect {id}")),
        "{said}"
    );
    assert!(out.stdout.is_empty());
    assert_eq!(home.list(), list);
    assert_eq!(home.keychain_entry(&id).unwrap(), tokens);
    // Declined before any code was issued: nothing was exchanged.
    assert_eq!(idp.stats().token_requests.authorization_code, 1);
    // The stored tokens still work as they did.
    let token = home.ok(&["token", &id]).trim().to_owned();
    assert_eq!(token, tokens["access_token"].as_str().unwrap());
}

#[test]
fn reconnect_with_a_scope_as_another_person_is_refused_and_changes_nothing() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let linked = home.link("demo");
    let id = linked["id"].as_str().unwrap().to_owned();
    let tokens = home.keychain_entry(&id).unwrap();
    let list = home.list();

    let out = run_as(
        &home,
        &[("KEYLINK_UA_LOGIN", "bob")],
        &["reconnect", &id, "--scope", "calendar", "--timeout", "30"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let said = one_line(&out);
    assert!(
        said.contains(
            "you signed in as bob@example.test, not alice@example.test, so nothing was changed"
        ),
        "{said}\n{}",
        std::fs::read_to_string(home.dir.path().join("user-agent.log")).unwrap_or_default()
    );
    assert_eq!(home.list(), list);
    assert_eq!(home.keychain_entry(&id).unwrap(), tokens);
}

#[test]
fn link_with_a_scope_grants_it_to_a_new_account() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let out = home.ok(&[
        "link",
        "demo",
        "--scope",
        "calendar",
        "--json",
        "--timeout",
        "30",
    ]);
    let account: serde_json::Value = serde_json::from_str(&out).unwrap();
    let granted = scopes(&account);
    assert!(
        granted.contains(&"calendar".to_owned()) && granted.contains(&"openid".to_owned()),
        "{granted:?}"
    );
    let token = home
        .ok(&["token", account["id"].as_str().unwrap()])
        .trim()
        .to_owned();
    assert!(has(&scope_at_provider(&idp, &token).unwrap(), "calendar"));
}

#[test]
fn an_invalid_scope_is_a_usage_error_and_nothing_reaches_the_provider() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let browser_log = home.dir.path().join("user-agent.log");
    for bad in ["a b", "a\"b", ""] {
        let out = home.run(&["link", "demo", "--scope", "calendar", "--scope", bad]);
        assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", stderr(&out));
        let said = one_line(&out);
        assert!(said.contains("is not a valid scope"), "{said}");
        assert!(!browser_log.exists(), "{bad:?}: a browser was opened");
    }
    assert!(home.list().is_empty());

    let linked = home.link("demo");
    let id = linked["id"].as_str().unwrap().to_owned();
    let tokens = home.keychain_entry(&id).unwrap();
    let stats = idp.stats();
    let browsed = std::fs::read_to_string(&browser_log).unwrap();
    let out = home.run(&["reconnect", &id, "--scope", "a b"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(one_line(&out).contains("\"a b\" is not a valid scope"));
    assert_eq!(idp.stats(), stats);
    assert_eq!(std::fs::read_to_string(&browser_log).unwrap(), browsed);
    assert_eq!(home.keychain_entry(&id).unwrap(), tokens);
}
