use std::process::Stdio;
use std::time::Duration;

use crate::support::{Home, Idp, param, stderr, wait_output, with_param};

#[test]
fn an_unsolicited_redirect_is_refused_and_changes_nothing() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let url = format!(
        "dev.keylink:/callback/demo?code=attacker-code&state=made-up-state&iss={}",
        idp.issuer
    );
    let out = home.open_url(&url);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("does not belong to a sign-in started here"),
        "{message}"
    );
    assert!(!message.contains("attacker-code") && !message.contains("made-up-state"));
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    assert!(home.list().is_empty());
}

#[test]
fn a_redirect_delivered_twice_at_once_is_exchanged_once() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo");
    // Two processes handed the same redirect at the same moment.
    let spawn = || {
        home.keylink()
            .args(["open-url", &url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let (a, b) = (
        wait_output(a, Duration::from_secs(30)),
        wait_output(b, Duration::from_secs(30)),
    );
    let successes = [&a, &b].iter().filter(|o| o.status.success()).count();
    assert_eq!(successes, 1, "a: {}\nb: {}", stderr(&a), stderr(&b));
    let loser = if a.status.success() { &b } else { &a };
    assert_eq!(loser.status.code(), Some(1));
    assert_eq!(
        idp.stats().token_requests.authorization_code,
        1,
        "exactly one token request"
    );
    let linked = wait_output(link, Duration::from_secs(30));
    assert!(linked.status.success(), "{}", stderr(&linked));
    // A later replay is refused too.
    let replay = home.open_url(&url);
    assert_eq!(replay.status.code(), Some(1));
    assert_eq!(idp.stats().token_requests.authorization_code, 1);
    assert_eq!(home.list().len(), 1);
}

#[test]
fn a_tampered_state_is_refused_and_the_genuine_redirect_still_works() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo");
    let state = param(&url, "state").unwrap();
    let mut tampered_state = state.clone();
    tampered_state.replace_range(..1, if state.starts_with('A') { "B" } else { "A" });
    let tampered = with_param(&url, "state", Some(&tampered_state));
    let out = home.open_url(&tampered);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    assert!(home.list().is_empty());
    let genuine = home.open_url(&url);
    assert!(genuine.status.success(), "{}", stderr(&genuine));
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    assert_eq!(home.list().len(), 1);
}

#[test]
fn mix_up_defence_checks_iss_exactly() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let trailing_slash = format!("{}/", idp.issuer);
    let cases: [(&str, Option<&str>, &str); 3] = [
        (
            "wrong iss",
            Some("https://evil.example"),
            "different issuer",
        ),
        (
            "trailing-slash iss",
            Some(&trailing_slash),
            "different issuer",
        ),
        ("missing iss", None, "lacks the `iss` parameter"),
    ];
    for (name, iss, expected) in cases {
        let (link, url) = home.link_captured("demo");
        assert_eq!(
            param(&url, "iss").as_deref(),
            Some(idp.issuer.as_str()),
            "the provider sends iss"
        );
        let out = home.open_url(&with_param(&url, "iss", iss));
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        // The waiting link reports the failure too.
        let linked = wait_output(link, Duration::from_secs(30));
        assert_eq!(linked.status.code(), Some(1), "{name}");
        // A refused redirect cannot be retried: its flow is spent.
        assert_eq!(home.open_url(&url).status.code(), Some(1), "{name}");
    }
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    assert!(home.list().is_empty());
}

#[test]
fn declining_at_the_provider_says_the_person_cancelled_and_links_nothing() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo");
    let state = param(&url, "state").unwrap();
    // What the provider sends when the person clicks "Cancel" on its consent page.
    let declined = format!(
        "dev.keylink:/callback/demo?state={state}&error=access_denied&iss={}",
        idp.issuer
    );
    let out = home.open_url(&declined);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("you cancelled the sign-in at Demo, so nothing was linked"),
        "{}",
        stderr(&out)
    );
    let waited = wait_output(link, Duration::from_secs(30));
    assert_eq!(waited.status.code(), Some(1));
    assert!(
        stderr(&waited).contains("you cancelled the sign-in at Demo"),
        "the waiting link says so too: {}",
        stderr(&waited)
    );
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    assert!(home.list().is_empty());
}

#[test]
fn malformed_redirects_are_refused_before_any_token_request() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo");
    let state = param(&url, "state").unwrap();
    let code = param(&url, "code").unwrap();
    let cases = vec![
        ("duplicate state", format!("{url}&state=other")),
        ("duplicate code", format!("{url}&code=other")),
        (
            "fragment",
            format!("dev.keylink:/callback/demo#code={code}&state={state}"),
        ),
        ("oversize", format!("{url}&pad={}", "x".repeat(100 * 1024))),
        ("NUL byte", format!("{url}&x=%00")),
        (
            "other path",
            url.replace("dev.keylink:/callback", "dev.keylink:/settings"),
        ),
        ("other scheme", url.replace("dev.keylink:", "evil.keylink:")),
    ];
    for (name, bad) in cases {
        let out = home.open_url(&bad);
        assert_ne!(out.status.code(), Some(0), "{name} was accepted");
        assert!(!stderr(&out).contains(&code), "{name}: the code was echoed");
    }
    // HTML in error_description is shown as plain text, only after the state matched.
    let error_url = format!(
        "dev.keylink:/callback/demo?state={state}&error=server_error&error_description=%3Cb%3Eno%3C%2Fb%3E&iss={}",
        idp.issuer
    );
    let out = home.open_url(&error_url);
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(message.contains("server_error"), "{message}");
    assert!(!message.contains("<b>"), "{message}");
    assert_eq!(
        wait_output(link, Duration::from_secs(30)).status.code(),
        Some(1)
    );
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    assert!(home.list().is_empty());
}

#[test]
fn arguments_around_the_url_are_ignored() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo");
    let out = home.run(&[
        "open-url",
        "--data-dir=/tmp/evil",
        r"\\host\share",
        &url,
        "--flag",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    assert_eq!(home.list().len(), 1);
    assert!(!std::path::Path::new("/tmp/evil").exists());
}
