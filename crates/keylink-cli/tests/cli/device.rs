use std::time::Duration;

use crate::support::{Home, Idp, stderr, wait_for};

const FINISH: Duration = Duration::from_secs(40);

#[test]
fn linking_on_another_device_then_token_and_refresh() {
    // The provider enforces the interval it advertises: any early poll would be a slow_down.
    let idp = Idp::start_with(&["--device-interval", "1", "--device-poll-interval", "1"]);
    let home = Home::for_idp(&idp);
    let link = home.start_device_link_with(
        home.keylink()
            .args(["link", "demo", "--device", "--json", "--timeout", "60"])
            .env("RUST_LOG", "trace"),
    );
    assert_eq!(link.verification_uri, format!("{}/device", idp.issuer));
    assert!(
        link.user_code.len() == 9 && link.user_code.as_bytes()[4] == b'-',
        "{}",
        link.user_code
    );
    let complete = link.verification_uri_complete.clone().unwrap();
    assert_eq!(
        crate::support::param(&complete, "user_code").as_deref(),
        Some(link.user_code.as_str())
    );
    // The person types the code in at the plain verification URI.
    let person = home.device_person("confirm", &[&link.verification_uri, &link.user_code]);
    assert!(person.status.success(), "{}", stderr(&person));
    let out = link.finish(FINISH);
    assert!(out.status.success(), "{}", out.stderr);

    let account: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(account["provider"], "demo");
    assert_eq!(account["issuer"], idp.issuer.as_str());
    assert_eq!(account["subject"], "alice");
    assert_eq!(account["email"], "alice@example.test");
    assert_eq!(account["status"], "ok");
    let id = account["id"].as_str().unwrap().to_owned();
    let list = home.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());

    let stats = idp.device_stats();
    assert_eq!(stats.authorizations, 1);
    assert!(stats.polls >= 1, "{stats:?}");
    assert_eq!(stats.slow_downs, 0, "Keylink kept the provider's pace");
    assert_eq!(stats.code_exchanges, 0);

    // The token works at the provider, and the device grant gave a refresh token that works.
    let token = home.ok(&["token", &id]).trim().to_owned();
    let userinfo: serde_json::Value = idp
        .http()
        .get(format!("{}/me", idp.issuer))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(userinfo["sub"], "alice");
    let entry = home.keychain_entry(&id).unwrap();
    let refreshed = home.ok(&["token", &id, "--min-ttl", "999999"]);
    assert_ne!(refreshed.trim(), token);
    assert_eq!(idp.stats().token_requests.refresh_token, 1);

    // Even traced, the link printed no token.
    assert!(out.stderr.contains("TRACE"), "tracing was not on");
    for key in ["access_token", "refresh_token", "id_token"] {
        let secret = entry[key].as_str().unwrap();
        assert!(!out.stderr.contains(secret), "the {key} was printed");
    }
}

#[test]
fn the_complete_uri_needs_no_typing_and_links_whoever_signed_in() {
    let idp = Idp::start_with(&["--device-interval", "1"]);
    let mut home = Home::for_idp(&idp);
    home.login = "bob".into();
    let link = home.start_device_link("demo", &["--json", "--timeout", "60"]);
    let complete = link.verification_uri_complete.clone().unwrap();
    let person = home.device_person("confirm", &[&complete]);
    assert!(person.status.success(), "{}", stderr(&person));
    let out = link.finish(FINISH);
    assert!(out.status.success(), "{}", out.stderr);
    let account: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(account["subject"], "bob");
    assert_eq!(account["email"], "bob@example.test");
}

#[test]
fn the_person_declining_links_nothing() {
    let idp = Idp::start_with(&["--device-interval", "1"]);
    let home = Home::for_idp(&idp);
    let link = home.start_device_link("demo", &["--timeout", "60"]);
    let complete = link.verification_uri_complete.clone().unwrap();
    let person = home.device_person("abort", &[&complete]);
    assert!(person.status.success(), "{}", stderr(&person));
    let out = link.finish(FINISH);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("declined"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    assert!(home.list().is_empty());
}

#[test]
fn an_expired_code_ends_polling_and_links_nothing() {
    let idp = Idp::start_with(&["--device-ttl", "3", "--device-interval", "1"]);
    let home = Home::for_idp(&idp);
    // Nobody confirms. The code's own lifetime, not --timeout, ends the wait.
    let link = home.start_device_link("demo", &["--timeout", "60"]);
    let out = link.finish(FINISH);
    assert_eq!(out.status.code(), Some(1), "{}", out.stderr);
    assert!(out.stderr.contains("expired"), "{}", out.stderr);
    assert!(out.stderr.contains("run the link again"), "{}", out.stderr);
    assert!(home.list().is_empty());
    // At most one poll per second of the code's 3-second life, and one at its end.
    let stats = idp.device_stats();
    assert!((1..=4).contains(&stats.polls), "{stats:?}");
    assert_eq!(stats.polls, stats.token_errors, "every poll was pending");
}

#[test]
fn slow_down_makes_keylink_poll_five_seconds_slower() {
    // Advertises 1 s but answers slow_down to polls less than 6 s apart: a client that adds
    // the 5 s RFC 8628 §3.5 asks for gets exactly one slow_down.
    let idp = Idp::start_with(&["--device-interval", "1", "--device-poll-interval", "6"]);
    let home = Home::for_idp(&idp);
    let link = home.start_device_link("demo", &["--json", "--timeout", "60"]);
    wait_for("the first slow_down", Duration::from_secs(20), || {
        idp.device_stats().slow_downs >= 1
    });
    let complete = link.verification_uri_complete.clone().unwrap();
    let person = home.device_person("confirm", &[&complete]);
    assert!(person.status.success(), "{}", stderr(&person));
    let out = link.finish(FINISH);
    assert!(out.status.success(), "{}", out.stderr);
    let account: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(account["subject"], "alice");
    let stats = idp.device_stats();
    assert_eq!(
        stats.slow_downs, 1,
        "no poll came early after the slow_down: {stats:?}"
    );
    assert!(stats.polls >= 2, "{stats:?}");
}

#[test]
fn a_configured_device_endpoint_works_without_discovery() {
    let idp = Idp::start_with(&["--device-interval", "1"]);
    let config = format!(
        r#"
[providers.manual]
name = "Manual"
client_id = "keylink-demo"
authorization_endpoint = "{issuer}/auth"
token_endpoint = "{issuer}/token"
userinfo_endpoint = "{issuer}/me"
device_authorization_endpoint = "{issuer}/device/auth"
scopes = ["openid", "profile", "email"]

[network]
ca_file = "{ca}"
"#,
        issuer = idp.issuer,
        ca = idp.ca.ca_pem.display()
    );
    let home = Home::with_config(&config, Some(idp.ca.ca_pem.clone()));
    let link = home.start_device_link("manual", &["--json", "--timeout", "60"]);
    let person = home.device_person("confirm", &[&link.verification_uri, &link.user_code]);
    assert!(person.status.success(), "{}", stderr(&person));
    let out = link.finish(FINISH);
    assert!(out.status.success(), "{}", out.stderr);
    // A plain OAuth provider: the account comes from the userinfo endpoint.
    let account: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(account["provider"], "manual");
    assert_eq!(account["subject"], "alice");
}

#[test]
fn a_provider_without_device_sign_in_says_to_use_the_browser() {
    let home = Home::with_config(
        r#"
[providers.plain]
name = "Plain"
client_id = "x"
authorization_endpoint = "https://127.0.0.1:9/auth"
token_endpoint = "https://127.0.0.1:9/token"
"#,
        None,
    );
    let out = home.run(&["link", "plain", "--device"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(
        message.contains("does not support device sign-in"),
        "{message}"
    );
    assert!(message.contains("`keylink link plain`"), "{message}");
    assert!(!message.contains("To link your"), "{message}");
}

#[test]
fn device_and_no_browser_cannot_be_combined() {
    let home = Home::with_config("", None);
    let out = home.run(&["link", "demo", "--device", "--no-browser"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
}
