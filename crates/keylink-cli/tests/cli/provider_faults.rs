use std::process::Child;
use std::time::Duration;

use serde_json::json;

use crate::support::fake_idp::{self, FakeIdp};
use crate::support::{Home, param, stderr, wait_output};

/// A home for the fake provider whose browser only records the URL it was asked to open.
fn home_for(idp: &FakeIdp) -> Home {
    Home::with_config(&idp.config("fake"), None)
}

fn opened(home: &Home) -> std::path::PathBuf {
    home.opened_url_file()
}

fn start_link(home: &Home) -> (Child, String) {
    home.start_recorded_link("fake")
}

/// Starts a link, answers the token request with an ID token made from the flow's nonce, and
/// delivers the redirect. Returns the `open-url` output and the `link` output.
fn link_with_id_token(
    idp: &FakeIdp,
    home: &Home,
    forge: impl Fn(&str) -> String,
) -> (std::process::Output, std::process::Output) {
    let (link, auth_url) = start_link(home);
    let state = param(&auth_url, "state").unwrap();
    let nonce = param(&auth_url, "nonce").unwrap();
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    idp.set_token_response(200, FakeIdp::token_body(&forge(&nonce)));
    let redirect = format!(
        "dev.keylink:/callback/fake?code=the-code&state={state}&iss={}",
        idp.issuer
    );
    let delivered = home.open_url(&redirect);
    (delivered, wait_output(link, Duration::from_secs(30)))
}

#[test]
fn a_genuine_id_token_from_the_fake_provider_links() {
    // The control for the forgeries below: the same harness with a correct token succeeds.
    let idp = FakeIdp::start();
    let home = home_for(&idp);
    let (delivered, linked) = link_with_id_token(&idp, &home, |nonce| {
        fake_idp::sign_rs256(&idp.claims(nonce))
    });
    assert!(delivered.status.success(), "{}", stderr(&delivered));
    assert!(linked.status.success(), "{}", stderr(&linked));
    assert_eq!(home.list()[0]["subject"], "fake-user");
}

#[test]
fn the_browser_gets_exactly_the_discovered_endpoint_with_pkce_state_and_nonce() {
    let idp = FakeIdp::start();
    let home = home_for(&idp);
    let (mut link, url) = start_link(&home);
    // The discovered authorization_endpoint is `<issuer>/auth`.
    assert!(url.starts_with(&format!("{}/auth?", idp.issuer)), "{url}");
    let expect = [
        ("response_type", "code"),
        ("client_id", fake_idp::CLIENT_ID),
        ("redirect_uri", "dev.keylink:/callback/fake"),
        ("scope", "openid email profile"),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in expect {
        assert_eq!(param(&url, k).as_deref(), Some(v), "{k}");
    }
    for k in ["state", "nonce", "code_challenge"] {
        assert_eq!(param(&url, k).map(|v| v.len()), Some(43), "{k}");
    }
    let _ = link.kill();
    let _ = link.wait();
}

#[test]
fn redirects_from_provider_endpoints_are_not_followed() {
    let idp = FakeIdp::start();
    let target = FakeIdp::start();
    idp.redirect_discovery_to(&format!(
        "{}/.well-known/openid-configuration",
        target.issuer
    ));
    let home = home_for(&idp);
    let out = home.run(&["link", "fake", "--timeout", "5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("HTTP 302"), "{}", stderr(&out));
    assert_eq!(target.request_count(), 0, "the redirect was followed");
}

#[test]
fn forged_and_invalid_id_tokens_are_refused_and_nothing_is_stored() {
    let fake = FakeIdp::start();
    let idp = &fake;
    let home = home_for(idp);
    type Forge<'a> = Box<dyn Fn(&str) -> String + 'a>;
    let with = |change: serde_json::Value| -> Forge<'_> {
        Box::new(move |nonce: &str| {
            let mut claims = idp.claims(nonce);
            for (k, v) in change.as_object().unwrap() {
                claims[k] = v.clone();
            }
            fake_idp::sign_rs256(&claims)
        })
    };
    let cases: Vec<(&str, Forge<'_>, &str)> = vec![
        (
            "alg none",
            Box::new(|n: &str| fake_idp::unsigned(&idp.claims(n))),
            "malformed",
        ),
        (
            "HS256 with the RSA public key",
            Box::new(|n: &str| fake_idp::sign_hs256_with_public_key(&idp.claims(n))),
            "signed with HS256",
        ),
        (
            "wrong audience",
            with(json!({"aud": "another-client"})),
            "different client",
        ),
        (
            "wrong nonce",
            with(json!({"nonce": "not-the-flows-nonce"})),
            "nonce mismatch",
        ),
        ("expired", with(json!({"exp": 1_000_000_000})), "expired"),
        (
            "string exp",
            with(json!({"exp": "99999999999"})),
            "malformed",
        ),
        (
            "wrong issuer",
            with(json!({"iss": "https://evil.example"})),
            "different issuer",
        ),
        (
            "unknown key",
            Box::new(|n: &str| {
                let token = fake_idp::sign_rs256(&idp.claims(n));
                // Re-sign under a kid the provider does not publish.
                let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
                header.kid = Some("rotated-away".into());
                let claims: serde_json::Value =
                    jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(&token)
                        .unwrap()
                        .claims;
                jsonwebtoken::encode(
                    &header,
                    &claims,
                    &jsonwebtoken::EncodingKey::from_rsa_pem(fake_idp::PRIVATE_KEY).unwrap(),
                )
                .unwrap()
            }),
            "does not publish",
        ),
    ];
    for (name, forge, expected) in cases {
        let (delivered, linked) = link_with_id_token(idp, &home, forge);
        assert_eq!(
            delivered.status.code(),
            Some(1),
            "{name}: {}",
            stderr(&delivered)
        );
        assert!(
            stderr(&delivered).contains(expected),
            "{name}: {}",
            stderr(&delivered)
        );
        assert!(
            !stderr(&delivered).contains("canary"),
            "{name}: a token was echoed"
        );
        assert_eq!(linked.status.code(), Some(1), "{name}");
        assert!(home.list().is_empty(), "{name}: an account was stored");
    }
}

#[test]
fn unsafe_discovery_documents_stop_the_flow_before_the_browser() {
    let cases = [
        (
            "file: authorization endpoint",
            json!({"authorization_endpoint": "file:///etc/passwd"}),
            "not an https URL",
        ),
        (
            "smb: authorization endpoint",
            json!({"authorization_endpoint": "smb://attacker/share"}),
            "not an https URL",
        ),
        (
            "no S256",
            json!({"code_challenge_methods_supported": ["plain"]}),
            "S256",
        ),
        (
            "trailing-slash issuer",
            json!({"issuer": "TRAILING"}),
            "must match exactly",
        ),
    ];
    for (name, change, expected) in cases {
        let idp = FakeIdp::start();
        let mut change = change;
        if change["issuer"] == "TRAILING" {
            change["issuer"] = json!(format!("{}/", idp.issuer));
        }
        idp.set_discovery(change);
        let home = home_for(&idp);
        let out = home
            .keylink()
            .args(["link", "fake", "--timeout", "5"])
            .env("BROWSER", home.recording_browser())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{name}");
        assert!(stderr(&out).contains(expected), "{name}: {}", stderr(&out));
        assert!(!opened(&home).exists(), "{name}: the browser was opened");
        assert!(
            !home.data.join("pending").exists()
                || std::fs::read_dir(home.data.join("pending"))
                    .unwrap()
                    .next()
                    .is_none(),
            "{name}: a flow was started"
        );
        assert_eq!(idp.token_requests(), 0);
    }
}

#[test]
fn an_oauth_error_sent_with_http_200_is_reported_as_an_error() {
    let idp = FakeIdp::start();
    let home = home_for(&idp);
    let (link, auth_url) = start_link(&home);
    let state = param(&auth_url, "state").unwrap();
    idp.set_token_response(200, json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}));
    let out = home.open_url(&format!(
        "dev.keylink:/callback/fake?code=c&state={state}&iss={}",
        idp.issuer
    ));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad_verification_code"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        idp.token_requests(),
        1,
        "the code is sent once, never retried"
    );
    assert_eq!(
        wait_output(link, Duration::from_secs(30)).status.code(),
        Some(1)
    );
    assert!(home.list().is_empty());
}

#[test]
fn a_string_expires_in_and_different_granted_scopes_are_understood() {
    let idp = FakeIdp::start();
    let home = home_for(&idp);
    let (delivered, linked) = link_with_id_token(&idp, &home, |nonce| {
        fake_idp::sign_rs256(&idp.claims(nonce))
    });
    assert!(delivered.status.success() && linked.status.success());
    let _ = linked;
    // Second link with quirks: expires_in as a string, fewer scopes granted than requested.
    let (link, auth_url) = start_link(&home);
    let state = param(&auth_url, "state").unwrap();
    let nonce = param(&auth_url, "nonce").unwrap();
    let mut body = FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce)));
    body["expires_in"] = json!("3600");
    body["scope"] = json!("openid email");
    idp.set_token_response(200, body);
    let out = home.open_url(&format!(
        "dev.keylink:/callback/fake?code=c&state={state}&iss={}",
        idp.issuer
    ));
    assert!(out.status.success(), "{}", stderr(&out));
    let linked = wait_output(link, Duration::from_secs(30));
    let account: serde_json::Value = serde_json::from_slice(&linked.stdout).unwrap();
    assert_eq!(account["scopes"], json!(["openid", "email"]));
    assert!(account["expires_at"].is_string());
}
