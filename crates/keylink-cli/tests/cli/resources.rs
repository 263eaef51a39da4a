//! Tokens per API: `keylink token --resource/--scope` against the real test provider started
//! with its two test APIs (RFC 8707), each played by a local server that accepts only tokens
//! whose `aud` names it.

use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine;

use crate::support::http_server::{Reply, Server};
use crate::support::{Home, Idp, stderr, wait_output};

const API_A: &str = "https://api-a.example.test";
const API_B: &str = "https://api-b.example.test";

/// A home whose `demo` provider names the two APIs (`[providers.demo.apis]`).
fn home_with_apis(idp: &Idp) -> Home {
    let home = Home::for_idp(idp);
    let mut config = std::fs::read_to_string(&home.config).unwrap();
    for api in [API_A, API_B] {
        config.push_str(&format!(
            "\n[providers.demo.apis.\"{api}\"]\nresource = \"{api}\"\n"
        ));
    }
    std::fs::write(&home.config, config).unwrap();
    home
}

/// The test provider with its two APIs, and an account linked with their scopes.
fn linked() -> (Idp, Home, String) {
    let idp = Idp::start_with(&["--api-resources"]);
    let home = home_with_apis(&idp);
    let out = home.run(&[
        "link", "demo", "--scope", "calendar", "--scope", "files", "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let account: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let scopes = account["scopes"].to_string();
    assert!(
        scopes.contains("\"calendar\"") && scopes.contains("\"files\""),
        "{scopes}"
    );
    (idp, home, account["id"].as_str().unwrap().to_owned())
}

/// The claims of a JWT access token (the API below checks its audience; the signature is
/// the provider's, not what these tests are about).
fn claims(token: &str) -> serde_json::Value {
    let payload = token.split('.').nth(1).expect("a JWT access token");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// A local API that plays `resource`: 200 for a bearer token whose `aud` is `resource`,
/// else 401.
fn api(resource: &'static str) -> Server {
    Server::start(move |request, _| {
        let accepted = request
            .header("authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .filter(|t| t.split('.').count() == 3)
            .map(claims)
            .is_some_and(|c| c["aud"] == resource || c["aud"][0] == resource);
        if accepted {
            Reply::json(200, &serde_json::json!({ "ok": true }))
        } else {
            Reply::json(401, &serde_json::json!({ "error": "invalid_token" }))
        }
    })
}

fn call(api: &Server, token: &str) -> u16 {
    reqwest::blocking::Client::new()
        .get(format!("{}/items", api.url))
        .bearer_auth(token)
        .send()
        .unwrap()
        .status()
        .as_u16()
}

#[test]
fn each_api_accepts_only_its_own_token() {
    let (idp, home, id) = linked();
    let (a, b) = (api(API_A), api(API_B));
    let token_a = home.ok(&["token", &id, "--resource", API_A]);
    let token_b = home.ok(&["token", &id, "--resource", API_B]);
    let (token_a, token_b) = (token_a.trim(), token_b.trim());
    assert_eq!(claims(token_a)["aud"], API_A);
    assert_eq!(claims(token_a)["scope"], "calendar");
    assert_eq!(claims(token_b)["aud"], API_B);
    assert_eq!(call(&a, token_a), 200);
    assert_eq!(call(&b, token_b), 200);
    // A's token never works at B, nor B's at A.
    assert_eq!(call(&b, token_a), 401);
    assert_eq!(call(&a, token_b), 401);
    // The account's own token is for neither.
    let own = home.ok(&["token", &id]);
    assert_eq!(call(&a, own.trim()), 401);
    // Each is cached apart: asking again sends nothing to the provider.
    let refreshes = idp.stats().token_requests.refresh_token;
    assert_eq!(refreshes, 2);
    assert_eq!(
        home.ok(&["token", &id, "--resource", API_A]).trim(),
        token_a
    );
    assert_eq!(
        home.ok(&["token", &id, "--resource", API_B]).trim(),
        token_b
    );
    assert_eq!(idp.stats().token_requests.refresh_token, refreshes);
}

#[test]
fn a_scope_never_granted_is_exit_3_naming_reconnect_and_sends_nothing() {
    let idp = Idp::start_with(&["--api-resources"]);
    let home = home_with_apis(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let before = idp.stats();
    let out = home.run(&["token", &id, "--scope", "files", "--resource", API_B]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    let message = stderr(&out);
    assert!(message.contains("was not granted files"), "{message}");
    assert!(
        message.contains(&format!("`keylink reconnect {id} --scope files`")),
        "{message}"
    );
    assert_eq!(
        idp.stats(),
        before,
        "nothing was requested from the provider"
    );
}

#[test]
fn concurrent_token_resource_callers_cause_one_refresh() {
    let (idp, home, id) = linked();
    let before = idp.stats().token_requests.refresh_token;
    let spawn = || {
        let mut cmd = home.keylink();
        cmd.args(["token", &id, "--resource", API_A])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd.spawn().unwrap()
    };
    // Two waves of four processes at once.
    let children: Vec<std::process::Child> = (0..8).map(|_| spawn()).collect();
    let outputs: Vec<_> = children
        .into_iter()
        .map(|c| wait_output(c, Duration::from_secs(60)))
        .collect();
    let mut tokens: Vec<String> = outputs
        .iter()
        .map(|o| {
            assert!(o.status.success(), "{}", stderr(o));
            String::from_utf8(o.stdout.clone()).unwrap()
        })
        .collect();
    tokens.dedup();
    assert_eq!(tokens.len(), 1, "every caller got the one token");
    assert_eq!(claims(tokens[0].trim())["aud"], API_A);
    assert_eq!(idp.stats().token_requests.refresh_token - before, 1);
    // The grant still works: the rotated refresh token was kept as the account's.
    home.expire_access_token(&id);
    let own = home.run(&["token", &id]);
    assert!(own.status.success(), "{}", stderr(&own));
}

#[test]
fn unlink_deletes_the_tokens_per_api_from_the_keychain() {
    use keylink::store::SecretStore;
    let (_idp, home, id) = linked();
    home.ok(&["token", &id, "--resource", API_A]);
    home.ok(&["token", &id, "--scope", "files", "--resource", API_B]);
    let store = keylink::store::Chunked::new(
        keylink::store::Keychain::open(keylink::store::KEYCHAIN_SERVICE).unwrap(),
    );
    let key = home.token_key(&id);
    let list = store.get(&format!("{key}/apis")).unwrap().expect("a list");
    let digests: Vec<String> = serde_json::from_str(list.secret()).unwrap();
    assert_eq!(digests.len(), 2);
    for digest in &digests {
        assert!(store.get(&format!("{key}/api/{digest}")).unwrap().is_some());
    }
    home.ok(&["unlink", &id]);
    assert!(home.keychain_entry(&id).is_none());
    assert!(store.get(&format!("{key}/apis")).unwrap().is_none());
    for digest in &digests {
        assert!(
            store.get(&format!("{key}/api/{digest}")).unwrap().is_none(),
            "the token for one API outlived the account"
        );
    }
}

#[test]
fn json_output_has_the_token_for_the_api_and_its_expiry() {
    let (_idp, home, id) = linked();
    let out = home.ok(&["token", &id, "--resource", API_A, "--json"]);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["account"], id.as_str());
    let token = json["access_token"].as_str().unwrap();
    assert_eq!(claims(token)["aud"], API_A);
    let exp = claims(token)["exp"].as_i64().unwrap();
    let expires_at = json["expires_at"].as_str().unwrap();
    let keys: Vec<&String> = json.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["access_token", "account", "expires_at"]);
    // The API token's expiry, not the account's (within the second the response took).
    let printed = time_of(expires_at);
    assert!((printed - exp).abs() <= 2, "{expires_at} vs exp {exp}");
}

/// Seconds since the epoch of an RFC 3339 UTC time as the CLI prints it.
fn time_of(rfc3339: &str) -> i64 {
    let out = Command::new("date")
        .args(["-u", "-d", rfc3339, "+%s"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn an_api_the_configuration_does_not_name_gets_no_token_and_the_grant_stays() {
    let (idp, home, id) = linked();
    let before = idp.stats();
    let out = home.run(&["token", &id, "--resource", "https://api-c.example.test"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(out.stdout.is_empty());
    assert!(
        stderr(&out).contains(
            "https://api-c.example.test is not one of the APIs configured for demo, so no token was asked for it"
        ),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        idp.stats(),
        before,
        "nothing was requested from the provider"
    );
    // The grant is intact: the account's refresh token still works.
    home.ok(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(
        idp.stats().token_requests.refresh_token,
        before.token_requests.refresh_token + 1
    );
}
