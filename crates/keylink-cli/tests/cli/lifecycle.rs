use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::fault_proxy::{Fault, FaultProxy};
use crate::support::{Home, Idp, stderr, wait_for, wait_output};

/// The example program with many in-process callers (built by `cargo test`).
fn token_callers() -> std::path::PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    dir.join("examples").join("token_callers")
}

/// A home whose `demo` provider reaches the token endpoint through `proxy`.
fn home_via(idp: &Idp, token_endpoint: &str) -> Home {
    let config = format!(
        r#"
[providers.demo]
name = "Demo"
issuer = "{issuer}"
client_id = "keylink-demo"
token_endpoint = "{token_endpoint}"

[network]
ca_file = "{ca}"
timeout_secs = 3
"#,
        issuer = idp.issuer,
        ca = idp.ca.ca_pem.display()
    );
    Home::with_config(&config, Some(idp.ca.ca_pem.clone()))
}

fn point_token_endpoint_at(home: &Home, idp: &Idp, token_endpoint: &str) {
    let fresh = home_via(idp, token_endpoint);
    std::fs::copy(&fresh.config, &home.config).unwrap();
}

#[test]
fn two_processes_of_ten_callers_refresh_exactly_once() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let account = home.link("demo");
    let id = account["id"].as_str().unwrap();
    assert!(token_callers().exists(), "examples are built by cargo test");
    // The stored access token expired a minute ago, so every caller needs a fresh one; the
    // provider's new one lasts an hour, so whoever comes after the refresh just uses it.
    home.expire_access_token(id);
    let spawn = || {
        let mut cmd = Command::new(token_callers());
        cmd.envs(
            home.keylink()
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .args([id, "10"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        wait_output(a, Duration::from_secs(60)),
        wait_output(b, Duration::from_secs(60)),
    );
    assert!(
        a.status.success() && b.status.success(),
        "{}\n{}",
        stderr(&a),
        stderr(&b)
    );
    let tokens: Vec<String> = [a, b]
        .iter()
        .flat_map(|o| {
            String::from_utf8(o.stdout.clone())
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(tokens.len(), 20);
    assert!(
        tokens.iter().all(|t| t == &tokens[0]),
        "every caller got the same token"
    );
    assert_eq!(
        idp.stats().token_requests.refresh_token,
        1,
        "exactly one refresh at the provider"
    );
    // The grant survived: no replayed refresh token revoked the family.
    home.ok(&["token", id, "--min-ttl", "999999"]);
    assert_eq!(idp.stats().token_requests.refresh_token, 2);
    assert_eq!(idp.stats().token_errors, 0);
    assert_eq!(home.list()[0]["status"], "ok");
}

#[test]
fn provider_faults_never_change_the_stored_tokens() {
    let idp = Idp::start();
    let proxy = FaultProxy::start(&idp.issuer, idp.http().clone());
    let home = home_via(&idp, &proxy.token_endpoint);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let stored = home.keychain_entry(&id).unwrap();
    let canary = "canary-refresh-token-7f3a";
    let json = || vec![("content-type", "application/json".to_owned())];
    let cases: Vec<(&str, Vec<Fault>, usize)> = vec![
        (
            "500",
            (0..3)
                .map(|_| Fault::Answer(500, vec![], "oops".into()))
                .collect(),
            3,
        ),
        (
            "503 with Retry-After",
            (0..3)
                .map(|_| Fault::Answer(503, vec![("retry-after", "1".into())], String::new()))
                .collect(),
            3,
        ),
        (
            "429",
            (0..3)
                .map(|_| Fault::Answer(429, json(), "{}".into()))
                .collect(),
            3,
        ),
        ("an answer that never comes", vec![Fault::Hang], 1),
        (
            "malformed JSON with a canary",
            vec![Fault::Answer(
                200,
                json(),
                format!(r#"{{"access_token":"{canary}","refresh_token":"{canary}","#),
            )],
            1,
        ),
    ];
    for (name, faults, attempts) in cases {
        let before = proxy.requests();
        proxy.inject(faults);
        let out = home.run(&["token", &id, "--min-ttl", "999999"]);
        assert_eq!(out.status.code(), Some(1), "{name}: {}", stderr(&out));
        assert_eq!(proxy.requests() - before, attempts, "{name}: attempts");
        let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), stderr(&out));
        assert!(!text.contains(canary), "{name}: the canary leaked");
        assert_eq!(
            home.keychain_entry(&id).unwrap(),
            stored,
            "{name}: stored tokens changed"
        );
        assert_eq!(home.list()[0]["status"], "ok", "{name}");
    }
    assert_eq!(
        idp.stats().token_requests.refresh_token,
        0,
        "no fault reached the provider"
    );

    // Connection refused: retried (nothing was sent), then reported; tokens untouched.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let refused = format!("http://{}/token", closed.local_addr().unwrap());
    drop(closed);
    point_token_endpoint_at(&home, &idp, &refused);
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("could not be reached"),
        "{}",
        stderr(&out)
    );
    assert_eq!(home.keychain_entry(&id).unwrap(), stored);
    point_token_endpoint_at(&home, &idp, &proxy.token_endpoint);

    // A transient 503 followed by success: the retry refreshes and the rotation is stored.
    proxy.inject([Fault::Answer(503, vec![], String::new())]);
    home.ok(&["token", &id, "--min-ttl", "999999"]);
    let rotated = home.keychain_entry(&id).unwrap();
    assert_ne!(rotated["refresh_token"], stored["refresh_token"]);
    assert_eq!(idp.stats().token_requests.refresh_token, 1);

    // invalid_grant: needs_relink (exit 3), tokens untouched, and no retry loop afterwards.
    proxy.inject([Fault::Answer(
        400,
        json(),
        r#"{"error":"invalid_grant"}"#.into(),
    )]);
    let before = proxy.requests();
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("must be linked again"),
        "{}",
        stderr(&out)
    );
    assert_eq!(proxy.requests() - before, 1, "invalid_grant is not retried");
    assert_eq!(home.keychain_entry(&id).unwrap(), rotated);
    assert_eq!(home.list()[0]["status"], "needs_relink");
    let again = home.run(&["token", &id]);
    assert_eq!(again.status.code(), Some(3));
    assert_eq!(
        proxy.requests() - before,
        1,
        "a needs_relink account asks the provider nothing"
    );
    // Linking again restores it.
    home.link("demo");
    assert_eq!(home.list()[0]["status"], "ok");
    home.ok(&["token", &id]);
}

#[test]
fn a_refresh_killed_midway_leaves_a_working_or_clearly_broken_account() {
    let idp = Idp::start();
    let proxy = FaultProxy::start(&idp.issuer, idp.http().clone());
    let home = home_via(&idp, &proxy.token_endpoint);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let spawn_refresh = || {
        home.keylink()
            .args(["token", &id, "--min-ttl", "999999"])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    // Starts a forced refresh and kills it (SIGKILL) as soon as `reached` holds.
    let kill_refresh_when = |what: &str, reached: &dyn Fn() -> bool| {
        let mut child = spawn_refresh();
        wait_for(what, Duration::from_secs(10), reached);
        child.kill().unwrap();
        child.wait().unwrap();
    };

    // Killed while the request is in flight, before the provider saw it: the account works,
    // and the killed process's lock does not block anyone.
    proxy.inject([Fault::Hang]);
    let before = proxy.requests();
    kill_refresh_when("the refresh request", &|| proxy.requests() > before);
    home.ok(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(idp.stats().token_requests.refresh_token, 1);
    assert_eq!(home.list()[0]["status"], "ok");

    // Killed after the provider rotated the refresh token but before Keylink stored it: the
    // old token is now a replay, the provider refuses it, and the account says clearly that it
    // must be linked again, once, without looping.
    proxy.inject([Fault::ForwardThenHang]);
    let answers = proxy.provider_answers();
    kill_refresh_when("the provider's answer", &|| {
        proxy.provider_answers() > answers
    });
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert_eq!(home.list()[0]["status"], "needs_relink");
    let requests = proxy.requests();
    assert_eq!(home.run(&["token", &id]).status.code(), Some(3));
    assert_eq!(proxy.requests(), requests, "no retry loop");
    home.link("demo");
    home.ok(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(home.list()[0]["status"], "ok");

    // Killed just as the provider's answer comes back, i.e. while the new tokens are being
    // stored: the chunked keychain write is atomic, so the account either works (the new
    // tokens landed) or says clearly that it needs linking again (the old ones remained).
    let answers = proxy.provider_answers();
    kill_refresh_when("the provider's answer", &|| {
        proxy.provider_answers() > answers
    });
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    match out.status.code() {
        Some(0) => assert_eq!(home.list()[0]["status"], "ok"),
        Some(3) => assert_eq!(home.list()[0]["status"], "needs_relink"),
        other => panic!(
            "neither working nor clearly broken ({other:?}): {}",
            stderr(&out)
        ),
    }
    let again = home.run(&["token", &id]);
    assert_eq!(
        again.status.code(),
        out.status.code(),
        "the outcome is stable"
    );
}

#[test]
fn doctor_reports_each_check_and_fails_only_on_failures() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let doctor = home
        .keylink()
        .arg("doctor")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its probe entry is named after its process; other tests' doctors run at the same time.
    let probe = format!("keylink-probe-{}-", doctor.id());
    let out = doctor.wait_with_output().unwrap();
    let report = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{report}{}", stderr(&out));
    assert!(
        report.contains("ok    keychain: reachable and writable"),
        "{report}"
    );
    assert!(
        report.contains("ok    provider demo: reachable"),
        "{report}"
    );
    assert!(report.contains("clock: within"), "{report}");
    assert!(report.contains("URL scheme"), "{report}");
    // The probe entry was removed again.
    let leftovers = Command::new("secret-tool")
        .args(["search", "--all", "service", "dev.keylink"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&leftovers.stdout).contains(&probe));
    assert!(!String::from_utf8_lossy(&leftovers.stderr).contains(&probe));

    let broken = Home::with_config(
        "[providers.gone]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    let out = broken.run(&["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("fail  provider gone"), "{report}");
    assert!(
        stderr(&out).contains("1 check(s) failed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn doctor_json_lists_every_check_with_id_status_message_and_fix() {
    // For fleet tooling: the same checks as the text report, machine-readable.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let out = home.run(&["doctor", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["app"], "dev.keylink");
    assert_eq!(report["failed"], 0);
    let checks = report["checks"].as_array().unwrap();
    let by_id = |id: &str| checks.iter().find(|c| c["id"] == id).cloned();
    for id in [
        "config",
        "keychain",
        "provider.demo",
        "provider.demo-loopback",
        "url_scheme",
    ] {
        let check = by_id(id).unwrap_or_else(|| panic!("no {id} check in {report}"));
        assert!(check["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert!(["ok", "warn", "fail"].contains(&check["status"].as_str().unwrap()));
    }
    assert_eq!(by_id("keychain").unwrap()["status"], "ok");
    assert_eq!(
        by_id("provider.demo").unwrap()["fix"],
        serde_json::Value::Null
    );

    let broken = Home::with_config(
        "[providers.gone]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    let out = broken.run(&["doctor", "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["failed"], 1);
    let gone = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "provider.gone")
        .cloned()
        .unwrap();
    assert_eq!(gone["status"], "fail");
    assert!(
        gone["fix"].as_str().is_some_and(|f| f.contains("check")),
        "{gone}"
    );
}
