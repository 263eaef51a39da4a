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

#[test]
fn an_access_token_about_to_expire_is_refreshed_by_a_plain_token_call() {
    // Access tokens live 30 s; `keylink token` refreshes anything expiring within 60 s.
    let idp = Idp::start_with(&["--access-ttl", "30"]);
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap();
    let first = home.ok(&["token", id]);
    assert_eq!(idp.stats().token_requests.refresh_token, 1);
    let second = home.ok(&["token", id]);
    assert_eq!(idp.stats().token_requests.refresh_token, 2);
    assert_ne!(first, second);
    // With a smaller margin the stored token is good enough and the provider is not asked.
    assert_eq!(home.ok(&["token", id, "--min-ttl", "5"]), second);
    assert_eq!(idp.stats().token_requests.refresh_token, 2);
    assert_eq!(home.list()[0]["status"], "ok");
}

#[test]
fn the_loopback_listener_answers_strangers_with_400_and_keeps_waiting() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo-loopback");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.contains("localhost"));
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let wrong_state = crate::support::with_param(&url, "state", Some("not-the-state"));
    let stranger = http.get(&wrong_state).send().unwrap();
    assert_eq!(stranger.status().as_u16(), 400);
    let wrong_path = url.replacen("/callback", "/elsewhere", 1);
    assert_eq!(http.get(&wrong_path).send().unwrap().status().as_u16(), 400);
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    // Still listening: the genuine redirect completes the link, and the page says so.
    let genuine = http.get(&url).send().unwrap();
    assert_eq!(genuine.status().as_u16(), 200);
    assert!(genuine.text().unwrap().contains("You can close this tab"));
    let linked = crate::support::wait_output(link, std::time::Duration::from_secs(30));
    assert!(linked.status.success(), "{}", stderr(&linked));
    // And then it is closed.
    assert!(
        http.get(&url).send().is_err(),
        "the listener stays closed after the first valid request"
    );
}

#[test]
fn starting_a_new_link_abandons_the_previous_one_for_that_provider() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (first_link, first_url) = home.link_captured("demo");
    let (second_link, second_url) = home.link_captured("demo");
    let stale = home.open_url(&first_url);
    assert_eq!(stale.status.code(), Some(1), "the first flow was replaced");
    let fresh = home.open_url(&second_url);
    assert!(fresh.status.success(), "{}", stderr(&fresh));
    assert!(
        crate::support::wait_output(second_link, std::time::Duration::from_secs(30))
            .status
            .success()
    );
    let mut first_link = first_link;
    let _ = first_link.kill();
    let _ = first_link.wait();
    assert_eq!(idp.stats().token_requests.authorization_code, 1);
}

#[test]
fn no_browser_prints_the_url_for_the_person_to_open() {
    use std::io::{BufRead, BufReader};
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let mut link = home
        .keylink()
        .args(["link", "demo", "--no-browser", "--json", "--timeout", "30"])
        .env_remove("BROWSER")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr_pipe = link.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr_pipe).lines().map_while(Result::ok);
    let url = lines
        .find(|l| l.starts_with("https://"))
        .expect("the authorization URL is printed");
    // Keep reading so the process never writes into a closed pipe.
    let drain = std::thread::spawn(move || lines.count());
    assert!(url.starts_with(&format!("{}/auth?", idp.issuer)), "{url}");
    // The person opens it in a browser of their choice.
    let status = std::process::Command::new(crate::support::repo().join("tests/idp/user-agent.js"))
        .arg(&url)
        .envs(
            home.keylink()
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .status()
        .unwrap();
    assert!(status.success());
    let out = crate::support::wait_output(link, std::time::Duration::from_secs(30));
    assert!(out.status.success());
    drain.join().unwrap();
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(account["subject"], "alice");
}
