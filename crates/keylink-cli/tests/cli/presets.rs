//! Each preset's declared behaviour against a test provider made to behave like the real one.
//! Nothing here contacts a real provider: the presets' endpoints are replaced by the fake's.

use std::time::Duration;

use serde_json::json;

use crate::support::fake_idp::{self, FakeIdp};
use crate::support::{Home, param, stderr, wait_output};

const TENANT: &str = "9188040d-6c67-4c5b-b112-36a304b66dad";

/// Completes a started link through the loopback listener the way the browser would.
fn deliver_to_loopback(auth_url: &str, iss: Option<&str>) -> reqwest::blocking::Response {
    let redirect = param(auth_url, "redirect_uri").unwrap();
    assert!(redirect.starts_with("http://127.0.0.1:"), "{redirect}");
    let state = param(auth_url, "state").unwrap();
    let mut url = url::Url::parse(&redirect).unwrap();
    url.query_pairs_mut()
        .append_pair("code", "the-code")
        .append_pair("state", &state);
    if let Some(iss) = iss {
        url.query_pairs_mut().append_pair("iss", iss);
    }
    reqwest::blocking::get(url).unwrap()
}

fn linked(link: std::process::Child) -> serde_json::Value {
    let out = wait_output(link, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn google_uses_loopback_sends_the_client_secret_and_asks_for_offline_access() {
    let idp = FakeIdp::start();
    let home = Home::with_config(
        &format!(
            "[providers.google]\npreset = \"google\"\nissuer = \"{}\"\nclient_id = \"{}\"\nclient_secret = \"desktop-secret\"\n",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
        None,
    );
    let (link, auth_url) = home.start_recorded_link("google");
    assert_eq!(param(&auth_url, "access_type").as_deref(), Some("offline"));
    assert_eq!(param(&auth_url, "prompt").as_deref(), Some("consent"));
    assert_eq!(
        param(&auth_url, "scope").as_deref(),
        Some("openid email profile")
    );
    let nonce = param(&auth_url, "nonce").unwrap();
    idp.set_token_response(
        200,
        FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
    );
    assert!(
        deliver_to_loopback(&auth_url, Some(&idp.issuer))
            .status()
            .is_success()
    );
    let account = linked(link);
    assert_eq!(account["subject"], "fake-user");
    // The secret travels in HTTP Basic authentication (RFC 6749 §2.3.1), never in the URL.
    let (headers, body) = idp.last_token_request();
    let authorization = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:desktop-secret", fake_idp::CLIENT_ID));
    assert!(
        authorization == format!("Basic {basic}") || body.contains("client_secret=desktop-secret"),
        "the client secret was not sent"
    );
    assert!(!auth_url.contains("desktop-secret"));
}

/// A Microsoft-like provider: multi-tenant discovery under /common/v2.0 whose issuer is the
/// `{tenantid}` template, no `iss` in authorization responses, `expires_in` as a string.
fn microsoft_like() -> (FakeIdp, Home) {
    let idp = FakeIdp::start();
    idp.set_discovery(json!({
        "issuer": format!("{}/{{tenantid}}/v2.0", idp.issuer),
        "authorization_response_iss_parameter_supported": null
    }));
    let home = Home::with_config(
        &format!(
            "[providers.ms]\npreset = \"microsoft\"\nissuer = \"{}/common/v2.0\"\nclient_id = \"{}\"\n",
            idp.issuer,
            fake_idp::CLIENT_ID
        ),
        None,
    );
    (idp, home)
}

fn microsoft_token(idp: &FakeIdp, nonce: &str, iss_tenant: &str, tid: &str) -> serde_json::Value {
    let mut claims = idp.claims(nonce);
    claims["iss"] = json!(format!("{}/{iss_tenant}/v2.0", idp.issuer));
    claims["tid"] = json!(tid);
    let mut body = FakeIdp::token_body(&fake_idp::sign_rs256(&claims));
    body["expires_in"] = json!("3599");
    body
}

#[test]
fn microsoft_multi_tenant_issuer_is_completed_by_the_tokens_tid() {
    let (idp, home) = microsoft_like();
    let (link, auth_url) = home.start_recorded_link("ms");
    let (state, nonce) = (
        param(&auth_url, "state").unwrap(),
        param(&auth_url, "nonce").unwrap(),
    );
    idp.set_token_response(200, microsoft_token(&idp, &nonce, TENANT, TENANT));
    let out = home.open_url(&format!("dev.keylink:/callback/ms?code=c&state={state}"));
    assert!(out.status.success(), "{}", stderr(&out));
    let account = linked(link);
    assert_eq!(account["issuer"], format!("{}/{TENANT}/v2.0", idp.issuer));
    assert!(
        account["expires_at"].is_string(),
        "expires_in as a string is understood"
    );
}

#[test]
fn microsoft_token_whose_tid_does_not_match_its_issuer_is_refused() {
    let (idp, home) = microsoft_like();
    let (link, auth_url) = home.start_recorded_link("ms");
    let (state, nonce) = (
        param(&auth_url, "state").unwrap(),
        param(&auth_url, "nonce").unwrap(),
    );
    let other_tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    idp.set_token_response(200, microsoft_token(&idp, &nonce, TENANT, other_tenant));
    let out = home.open_url(&format!("dev.keylink:/callback/ms?code=c&state={state}"));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("different issuer"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        wait_output(link, Duration::from_secs(30)).status.code(),
        Some(1)
    );
    assert!(home.list().is_empty());
}

fn github_like() -> (FakeIdp, Home) {
    let idp = FakeIdp::start();
    idp.form_unless_json();
    let home = Home::with_config(
        &format!(
            "[providers.gh]\npreset = \"github\"\nclient_id = \"{id}\"\nclient_secret = \"gh-secret\"\n\
             authorization_endpoint = \"{base}/login/oauth/authorize\"\n\
             token_endpoint = \"{base}/token\"\nuserinfo_endpoint = \"{base}/user\"\n",
            id = fake_idp::CLIENT_ID,
            base = idp.issuer
        ),
        None,
    );
    (idp, home)
}

#[test]
fn github_links_without_an_id_token_and_tokens_that_never_expire() {
    let (idp, home) = github_like();
    let (link, auth_url) = home.start_recorded_link("gh");
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(
        param(&auth_url, "nonce").is_none(),
        "no OpenID Connect, no nonce"
    );
    // No expiry, no refresh token, scopes comma-separated.
    idp.set_token_response(
        200,
        json!({"access_token": "gho_canary", "token_type": "bearer", "scope": "read:user,user:email"}),
    );
    assert!(deliver_to_loopback(&auth_url, None).status().is_success());
    let account = linked(link);
    assert_eq!(account["subject"], "4242");
    assert_eq!(account["name"], "octocat");
    assert_eq!(account["email"], "octo@example.test");
    assert_eq!(account["scopes"], json!(["read:user", "user:email"]));
    assert!(account["expires_at"].is_null());
    let id = account["id"].as_str().unwrap();
    // A token that never expires is served as it is, for any margin, with no refresh.
    assert_eq!(
        home.ok(&["token", id, "--min-ttl", "999999"]).trim(),
        "gho_canary"
    );
    assert_eq!(idp.token_requests(), 1);
}

#[test]
fn github_errors_sent_with_http_200_are_errors() {
    let (idp, home) = github_like();
    let (link, auth_url) = home.start_recorded_link("gh");
    idp.set_token_response(
        200,
        json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."}),
    );
    let page = deliver_to_loopback(&auth_url, None);
    assert!(page.text().unwrap().contains("bad_verification_code"));
    let out = wait_output(link, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("bad_verification_code"),
        "{}",
        stderr(&out)
    );
    assert!(home.list().is_empty());
}

#[test]
fn dropbox_asks_for_offline_access_and_identifies_through_its_rpc_endpoint() {
    let idp = FakeIdp::start();
    let home = Home::with_config(
        &format!(
            "[providers.dropbox]\npreset = \"dropbox\"\nclient_id = \"{id}\"\n\
             authorization_endpoint = \"{base}/oauth2/authorize\"\ntoken_endpoint = \"{base}/token\"\n\
             userinfo_endpoint = \"{base}/2/users/get_current_account\"\n",
            id = fake_idp::CLIENT_ID,
            base = idp.issuer
        ),
        None,
    );
    let (link, auth_url) = home.start_recorded_link("dropbox");
    assert_eq!(
        param(&auth_url, "token_access_type").as_deref(),
        Some("offline")
    );
    idp.set_token_response(
        200,
        json!({"access_token": "sl.canary", "token_type": "bearer", "expires_in": 14400,
               "refresh_token": "rt-canary", "scope": "account_info.read"}),
    );
    assert!(deliver_to_loopback(&auth_url, None).status().is_success());
    let account = linked(link);
    assert_eq!(account["subject"], "dbid:AAH4f99");
    assert_eq!(account["name"], "Drop Box");
    assert_eq!(account["email"], "drop@example.test");
    // A public client: no secret anywhere in the token request.
    let (headers, body) = idp.last_token_request();
    assert!(
        !headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case("authorization"))
    );
    assert!(body.contains("code_verifier=") && !body.contains("client_secret"));
}
