use crate::support::{Home, Idp, stderr};

#[test]
fn link_through_the_deep_link_then_list_token_and_unlink() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    assert_eq!(account["provider"], "demo");
    assert_eq!(account["issuer"], idp.issuer.as_str());
    assert_eq!(account["subject"], "alice");
    assert_eq!(account["email"], "alice@example.test");
    assert_eq!(account["name"], "Alice");
    assert_eq!(account["status"], "ok");
    let id = account["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("demo-"), "{id}");
    assert!(account["linked_at"].as_str().unwrap().ends_with('Z'));
    // The scopes the provider granted (it grants offline_access only with prompt=consent).
    let scopes = account["scopes"].as_array().unwrap();
    assert!(
        scopes.iter().any(|s| s == "openid") && scopes.iter().any(|s| s == "email"),
        "{scopes:?}"
    );
    assert_eq!(idp.stats().token_requests.authorization_code, 1);

    let list = home.list();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["id"], id.as_str());

    // The stored token is returned as it is, without asking the provider.
    let token = home.ok(&["token", &id]).trim().to_owned();
    assert!(!token.is_empty());
    let by_email = home.ok(&["token", "alice@example.test"]).trim().to_owned();
    assert_eq!(token, by_email);
    assert_eq!(idp.stats().token_requests.refresh_token, 0);
    // The provider accepts it.
    let userinfo: serde_json::Value = idp
        .http()
        .get(format!("{}/me", idp.issuer))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(userinfo["sub"], "alice");

    let entry = home
        .keychain_entry(&id)
        .expect("tokens are in the keychain");
    let old_refresh = entry["refresh_token"].as_str().unwrap().to_owned();

    // Forcing a refresh: exactly one refresh request, a new token, the rotated refresh token
    // stored, and the old one dead at the provider.
    let refreshed = home
        .ok(&["token", &id, "--min-ttl", "999999"])
        .trim()
        .to_owned();
    assert_ne!(refreshed, token);
    assert_eq!(idp.stats().token_requests.refresh_token, 1);
    let entry = home.keychain_entry(&id).unwrap();
    let new_refresh = entry["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(
        new_refresh, old_refresh,
        "the rotated refresh token was stored"
    );
    assert_eq!(home.ok(&["token", &id]).trim(), refreshed);

    let out = home.run(&["unlink", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Revoked"), "{}", stderr(&out));
    assert_eq!(idp.stats().revocations, 1);
    assert!(home.list().is_empty());
    assert!(
        home.keychain_entry(&id).is_none(),
        "nothing remains in the keychain"
    );
    assert!(
        !idp.refresh_accepted(&new_refresh),
        "the provider no longer accepts the refresh token"
    );
    let gone = home.run(&["token", &id]);
    assert_eq!(gone.status.code(), Some(2), "{}", stderr(&gone));
}

#[test]
fn link_through_the_loopback_listener() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo-loopback");
    assert_eq!(account["provider"], "demo-loopback");
    assert_eq!(account["subject"], "alice");
    let list = home.list();
    assert_eq!(list.len(), 1);
    let token = home.ok(&["token", account["id"].as_str().unwrap()]);
    assert!(!token.trim().is_empty());
    assert_eq!(idp.stats().token_requests.authorization_code, 1);
}

#[test]
fn two_accounts_are_kept_apart() {
    let idp = Idp::start();
    let mut home = Home::for_idp(&idp);
    let alice = home.link("demo");
    home.login = "bob".into();
    let bob = home.link("demo");
    assert_ne!(alice["id"], bob["id"]);
    assert_eq!(bob["email"], "bob@example.test");
    let list = home.list();
    assert_eq!(list.len(), 2);
    let alice_token = home.ok(&["token", "alice@example.test"]);
    let bob_token = home.ok(&["token", "bob@example.test"]);
    assert_ne!(alice_token, bob_token);
    // Linking the same person again replaces the account rather than adding one.
    home.login = "alice".into();
    let again = home.link("demo");
    assert_eq!(again["id"], alice["id"]);
    assert_eq!(home.list().len(), 2);
    // Unlinking one leaves the other working.
    home.ok(&["unlink", alice["id"].as_str().unwrap()]);
    assert_eq!(home.list().len(), 1);
    assert_eq!(home.ok(&["token", "bob@example.test"]), bob_token);
}

#[test]
fn no_secret_reaches_any_output_even_at_trace_level() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let mut outputs = Vec::new();
    let (link, url) = home.link_captured("demo");
    let code = crate::support::param(&url, "code").unwrap();
    let state = crate::support::param(&url, "state").unwrap();
    let delivered = home
        .keylink()
        .args(["open-url", &url])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(delivered.status.success(), "{}", stderr(&delivered));
    outputs.push(delivered);
    let linked = crate::support::wait_output(link, std::time::Duration::from_secs(30));
    assert!(linked.status.success(), "{}", stderr(&linked));
    let account: serde_json::Value = serde_json::from_slice(&linked.stdout).unwrap();
    let id = account["id"].as_str().unwrap();
    outputs.push(linked);
    let before = home.keychain_entry(id).unwrap();
    // A refresh and a listing, traced.
    let refresh = home
        .keylink()
        .args(["token", id, "--min-ttl", "999999"])
        .env("RUST_LOG", "trace")
        .output()
        .unwrap();
    assert!(refresh.status.success());
    let new_access = String::from_utf8(refresh.stdout.clone())
        .unwrap()
        .trim()
        .to_owned();
    let after = home.keychain_entry(id).unwrap();
    let mut only_stderr = vec![refresh];
    for args in [&["list", "--json"][..], &["list"][..], &["providers"][..]] {
        outputs.push(
            home.keylink()
                .args(args)
                .env("RUST_LOG", "trace")
                .output()
                .unwrap(),
        );
    }
    let mut secrets = vec![code, state, new_access];
    for entry in [&before, &after] {
        for key in ["access_token", "refresh_token", "id_token"] {
            secrets.push(entry[key].as_str().unwrap().to_owned());
        }
    }
    let mut text = String::new();
    for out in &outputs {
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    for out in only_stderr.drain(..) {
        text.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    assert!(
        text.contains("TRACE") || text.contains("DEBUG"),
        "tracing was not on"
    );
    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "a secret appeared in the output"
        );
    }
}
