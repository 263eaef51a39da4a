//! Entry points for the cargo-fuzz targets in `crates/keylink/fuzz/` (SECURITY 56). Each one
//! hands untrusted bytes to a parser the way Keylink itself does. A panic here is the failure
//! the fuzzer reports: a crash in the parser, or a broken promise about what it accepts.
//! This module is built only with the `fuzzing` feature and is not part of the API.

// A fuzz target reports a failure by panicking, so asserting and unwrapping are its job.
#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use url::Url;

use crate::clock::UnixTime;
use crate::device::{DeviceError, MAX_POLL_INTERVAL};
use crate::exchange::ExchangeError;
use crate::http::is_allowed_endpoint;
use crate::id_token::{Expected, Jwks};
use crate::ids::ProviderId;
use crate::provider::{Config, ProviderConfig};
use crate::secret::{IdToken, Nonce};

/// The time every target runs at.
const NOW: UnixTime = 1_800_000_000;
const ISSUER: &str = "https://login.example.com";
const TENANT_ISSUER: &str = "https://login.microsoftonline.com/{tenantid}/v2.0";
const CLIENT: &str = "keylink-fuzz";
const NONCE: &str = "n-0S6_WzA2Mj";

/// Splits off a leading byte that chooses the HTTP status the body came with.
fn status_and_body<'a>(data: &'a [u8], statuses: &[u16]) -> (u16, &'a [u8]) {
    match data.split_first() {
        Some((first, body)) => (statuses[usize::from(*first) % statuses.len()], body),
        None => (statuses[0], data),
    }
}

/// Provider-supplied text reaches terminals and the webview only as plain text (SECURITY 39).
fn assert_plain(message: &str) {
    assert!(
        !message.chars().any(char::is_control),
        "a control character in {message:?}"
    );
}

/// The answers and documents Keylink reads are JSON objects whose members are named
/// parameters (RFC 6749 §5.1, RFC 8414 §3.2, RFC 7519 §7.2); `None` when the text is not JSON
/// that `serde_json::Value` reads (a lone surrogate escape in a member Keylink skips).
fn is_json_object(data: &[u8]) -> Option<bool> {
    serde_json::from_slice::<serde_json::Value>(data)
        .ok()
        .map(|v| v.is_object())
}

/// What [`crate::text::printable`] promises for an error code or description.
fn assert_printable(text: &str, max: usize) {
    assert!(text.chars().count() <= max, "longer than {max}: {text:?}");
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || matches!(c, '<' | '>' | '"' | '`')),
        "not printable: {text:?}"
    );
}

/// The redirect back from the provider: as the OS hands it over (deep link, `open-url`), and
/// as the loopback listener builds it from a request target.
pub fn redirect(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_redirect(text);
    if text.starts_with('/') {
        check_redirect(&format!("http://127.0.0.1:49152{text}"));
    }
}

fn check_redirect(raw: &str) {
    use crate::callback::{MAX_REDIRECT_LEN, check_issuer, parse_redirect, redirect_matches};
    match parse_redirect(raw) {
        Ok(response) => {
            assert!(raw.len() <= MAX_REDIRECT_LEN);
            assert!(response.code.is_some() || response.error.is_some());
            let base = &response.base;
            assert!(base.query().is_none() && base.fragment().is_none());
            assert!(base.username().is_empty() && base.password().is_none());
            let expected = Url::parse("http://127.0.0.1:49152/callback/work").unwrap();
            if redirect_matches(base, &expected) {
                assert_eq!(base.path(), expected.path());
            }
            let _ = check_issuer(response.iss.as_deref(), Some(ISSUER), true);
        }
        Err(e) => assert_plain(&e.to_string()),
    }
}

/// A token endpoint's answer (RFC 6749 §5.1, §5.2), with the status it came with.
pub fn token_answer(data: &[u8]) {
    let (status, body) = status_and_body(data, &[200, 201, 400, 401, 404, 429, 500, 503]);
    match crate::exchange::read_token_answer(status, Some(u64::MAX), body, NOW) {
        Ok(tokens) => {
            assert!((200..300).contains(&status), "tokens from HTTP {status}");
            assert_ne!(
                is_json_object(body),
                Some(false),
                "tokens from a non-object"
            );
            // A decade at most (SECURITY 40).
            let cap = NOW + 10 * 365 * 24 * 60 * 60;
            assert!(tokens.expires_at.is_none_or(|t| (NOW..=cap).contains(&t)));
        }
        Err(e) => check_exchange_error(&e),
    }
}

fn check_exchange_error(e: &ExchangeError) {
    if let ExchangeError::Rejected { error, description } = e {
        assert_printable(error, 64);
        if let Some(description) = description {
            assert_printable(description, 300);
        }
    }
    assert_plain(&e.to_string());
}

/// A device authorization answer (RFC 8628 §3.2), with the status it came with.
pub fn device_answer(data: &[u8]) {
    let (status, body) = status_and_body(data, &[200, 400, 401, 429, 503]);
    match crate::device::read_device_authorization(status, body) {
        Ok((code, authorization, interval)) => {
            assert!(
                (200..300).contains(&status),
                "a device code from HTTP {status}"
            );
            assert!(!code.secret().is_empty());
            assert!(is_allowed_endpoint(&authorization.verification_uri));
            assert!(
                authorization
                    .verification_uri_complete
                    .as_ref()
                    .is_none_or(is_allowed_endpoint)
            );
            let user_code = &authorization.user_code;
            assert!(!user_code.trim().is_empty() && user_code.chars().count() <= 64);
            assert!(!user_code.chars().any(char::is_control));
            assert!(authorization.expires_in.as_secs() <= 24 * 60 * 60);
            assert!(interval.is_none_or(|s| s <= MAX_POLL_INTERVAL.as_secs()));
        }
        Err(e) => check_device_error(&e),
    }
}

fn check_device_error(e: &DeviceError) {
    if let DeviceError::Refused { error, description } = e {
        assert_printable(error, 64);
        if let Some(description) = description {
            assert_printable(description, 300);
        }
    }
    assert_plain(&e.to_string());
}

/// An error answer (RFC 6749 §5.2) from the token or the device authorization endpoint, and
/// a `Retry-After` header (RFC 9110 §10.2.3): never tokens, never an unbounded wait.
pub fn error_answer(data: &[u8]) {
    let (status, body) = status_and_body(data, &[400, 401, 403, 429, 500, 502, 503]);
    let answer = crate::exchange::read_token_answer(status, None, body, NOW);
    assert!(answer.is_err(), "tokens from HTTP {status}");
    if let Err(e) = answer {
        check_exchange_error(&e);
    }
    let answer = crate::device::read_device_authorization(status, body);
    assert!(answer.is_err(), "a device code from HTTP {status}");
    if let Err(e) = answer {
        check_device_error(&e);
    }
    if let Ok(header) = std::str::from_utf8(body) {
        for now in [0, NOW, UnixTime::MAX, UnixTime::MIN] {
            let wait = crate::http::retry_after(Some(header), now);
            assert!(wait.is_none_or(|s| s <= 24 * 60 * 60));
        }
    }
}

/// The providers discovery documents are checked against: a plain one, and a multi-tenant
/// one whose issuer is a template (`Quirks::tenant_issuer`).
fn discovery_providers() -> &'static [ProviderConfig; 2] {
    static PROVIDERS: OnceLock<[ProviderConfig; 2]> = OnceLock::new();
    PROVIDERS.get_or_init(|| {
        let config = Config::parse(&format!(
            "[providers.work]\nissuer = \"{ISSUER}\"\nclient_id = \"{CLIENT}\"\n\
             [providers.entra]\npreset = \"microsoft\"\nclient_id = \"{CLIENT}\"\n"
        ))
        .unwrap();
        ["work", "entra"].map(|id| config.provider(&ProviderId::new(id)).unwrap().clone())
    })
}

/// A discovery document (RFC 8414 §3.2, OIDC Discovery §4.2) for a configured provider.
pub fn discovery(data: &[u8]) {
    let (which, body) = status_and_body(data, &[0, 1]);
    let provider = &discovery_providers()[usize::from(which)];
    let Some(issuer) = provider.issuer.as_deref() else {
        unreachable!("both providers have an issuer");
    };
    match crate::provider::read_metadata(provider, issuer, body) {
        Ok(metadata) => {
            assert_ne!(
                is_json_object(body),
                Some(false),
                "metadata from a non-object"
            );
            let found = metadata.issuer.as_deref().unwrap();
            assert!(
                found == issuer || (provider.quirks.tenant_issuer && is_tenant_of(issuer, found)),
                "issuer {found:?} accepted for {issuer:?}"
            );
            let endpoints = [
                Some(&metadata.authorization_endpoint),
                Some(&metadata.token_endpoint),
                metadata.jwks_uri.as_ref(),
                metadata.userinfo_endpoint.as_ref(),
                metadata.revocation_endpoint.as_ref(),
                metadata.device_authorization_endpoint.as_ref(),
                metadata.end_session_endpoint.as_ref(),
            ];
            assert!(endpoints.into_iter().flatten().all(is_allowed_endpoint));
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}

/// True when `found` is `configured` with one path segment (the tenant) replaced by
/// `{tenantid}`: same scheme, same host, same number of segments.
fn is_tenant_of(configured: &str, found: &str) -> bool {
    fn split(url: &str) -> Option<(&str, Vec<&str>)> {
        let (host, path) = url.strip_prefix("https://")?.split_once('/')?;
        Some((host, path.split('/').collect()))
    }
    let (Some((host_a, path_a)), Some((host_b, path_b))) = (split(configured), split(found)) else {
        return false;
    };
    host_a == host_b
        && path_a.len() == path_b.len()
        && path_a
            .iter()
            .zip(&path_b)
            .filter(|(a, b)| a != b)
            .map(|(_, b)| *b)
            .eq(["{tenantid}"])
}

/// A JWK Set (RFC 7517 §5) and the key lookup for each algorithm Keylink allows.
pub fn jwks(data: &[u8]) {
    use jsonwebtoken::jwk::{AlgorithmParameters, PublicKeyUse};
    let Ok(set) = crate::id_token::parse_jwks(data) else {
        return;
    };
    let algorithms = crate::id_token::allowed_algorithms(
        &["RS256", "PS384", "ES256", "ES384", "EdDSA"].map(String::from),
    );
    let kids: Vec<Option<&str>> = std::iter::once(None)
        .chain(set.keys.iter().map(|k| k.common.key_id.as_deref()))
        .collect();
    for alg in algorithms {
        for kid in &kids {
            let Some(key) = crate::id_token::find_key(&set, *kid, alg) else {
                continue;
            };
            // Never a symmetric key, never an encryption key (SECURITY 19).
            assert!(!matches!(key.algorithm, AlgorithmParameters::OctetKey(_)));
            assert!(!matches!(
                key.common.public_key_use,
                Some(PublicKeyUse::Encryption)
            ));
            if kid.is_some() {
                assert_eq!(key.common.key_id.as_deref(), *kid);
            }
            let _ = jsonwebtoken::DecodingKey::from_jwk(&key);
        }
    }
}

/// An Ed25519 key made for these targets, and its public half in the JWKS beside the RSA key
/// of the tests.
const SIGNING_KEY: &[u8] = b"-----BEGIN PRIVATE KEY-----
MC4CAQAwBQYDK2VwBCIEIE2RaeNw6CGjQGTPPLY3aOmxOCCD5o37Vt0bHpjrYaoB
-----END PRIVATE KEY-----
";
const SIGNING_KID: &str = "fuzz-ed25519";
const SIGNING_X: &str = "ky0mGfOlWZglXWWQ_7wCTuAxh_YIuk1aE7n2F3droNI";
const TEST_JWKS: &str = include_str!("../tests/fixtures/test-rsa.jwks.json");

struct Signer {
    key: EncodingKey,
    jwks: Jwks,
    http: crate::http::Http,
    nonce: Nonce,
    algorithms: Vec<Algorithm>,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let mut set = crate::id_token::parse_jwks(TEST_JWKS.as_bytes()).unwrap();
        let ed = serde_json::json!({
            "kty": "OKP", "crv": "Ed25519", "use": "sig", "kid": SIGNING_KID, "x": SIGNING_X,
        });
        set.keys.push(serde_json::from_value(ed).unwrap());
        Signer {
            key: EncodingKey::from_ed_pem(SIGNING_KEY).unwrap(),
            jwks: Jwks::preloaded(Url::parse(ISSUER).unwrap(), set, NOW),
            http: crate::http::Http::new(&Default::default()).unwrap(),
            nonce: Nonce::new(NONCE),
            algorithms: crate::id_token::allowed_algorithms(&[
                "RS256".into(),
                "EdDSA".into(),
                "HS256".into(),
                "none".into(),
            ]),
        }
    })
}

impl Signer {
    /// A compact JWS with exactly these header and claims bytes, signed with the Ed25519 key
    /// whatever the header says, so a hostile header meets a valid signature.
    fn sign(&self, header: &[u8], claims: &[u8]) -> IdToken {
        let message = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header),
            URL_SAFE_NO_PAD.encode(claims)
        );
        let signature =
            jsonwebtoken::crypto::sign(message.as_bytes(), &self.key, Algorithm::EdDSA).unwrap();
        IdToken::new(format!("{message}.{signature}"))
    }

    fn validate(
        &self,
        token: &IdToken,
        issuer: &str,
    ) -> Result<crate::id_token::IdClaims, crate::id_token::IdTokenError> {
        let expected = Expected {
            issuer,
            client_id: CLIENT,
            nonce: Some(&self.nonce),
            algorithms: &self.algorithms,
        };
        crate::id_token::validate(token, &expected, &self.jwks, &self.http, NOW)
    }
}

/// An ID token's JOSE header (RFC 7515 §4), signed; or, after a leading 0 byte, a whole
/// compact token as it comes from the token endpoint.
pub fn id_token_header(data: &[u8]) {
    let signer = signer();
    if let Some((0, raw)) = data.split_first() {
        if let Ok(raw) = std::str::from_utf8(raw) {
            let _ = signer.validate(&IdToken::new(raw), ISSUER);
        }
        return;
    }
    let claims = serde_json::json!({
        "iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": NOW + 300, "iat": NOW,
        "nonce": NONCE,
    });
    let token = signer.sign(data, claims.to_string().as_bytes());
    match signer.validate(&token, ISSUER) {
        Ok(_) => {
            // Only the algorithm of the key that signed it, from the allow-list (SECURITY 19).
            if let Ok(header) = serde_json::from_slice::<serde_json::Value>(data) {
                assert_eq!(header["alg"], "EdDSA", "accepted header {header}");
            }
        }
        Err(e) => assert_plain(&e.to_string()),
    }
}

/// An ID token's claims (OIDC Core §2, §3.1.3.7), signed with a key from the issuer's set,
/// against a plain issuer and a multi-tenant template.
pub fn id_token_claims(data: &[u8]) {
    let signer = signer();
    let header = format!(r#"{{"alg":"EdDSA","typ":"JWT","kid":"{SIGNING_KID}"}}"#);
    let token = signer.sign(header.as_bytes(), data);
    for issuer in [ISSUER, TENANT_ISSUER] {
        match signer.validate(&token, issuer) {
            Ok(claims) => check_accepted_claims(data, issuer, &claims),
            Err(e) => assert_plain(&e.to_string()),
        }
    }
}

/// What an accepted ID token's claims must say, read independently of the validator.
fn check_accepted_claims(data: &[u8], issuer: &str, claims: &crate::id_token::IdClaims) {
    let Ok(c) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let text = |name: &str| c[name].as_str();
    let expected_issuer = match text("tid") {
        Some(tid) if issuer.contains("{tenantid}") => issuer.replace("{tenantid}", tid),
        _ => issuer.to_owned(),
    };
    assert_eq!(text("iss"), Some(expected_issuer.as_str()), "claims {c}");
    assert_eq!(claims.issuer, expected_issuer);
    assert_eq!(text("sub"), Some(claims.subject.as_str()));
    assert!(!claims.subject.is_empty());
    let audiences: Vec<&str> = match &c["aud"] {
        serde_json::Value::String(a) => vec![a.as_str()],
        serde_json::Value::Array(a) => a.iter().filter_map(|v| v.as_str()).collect(),
        other => panic!("accepted aud {other}"),
    };
    assert!(audiences.contains(&CLIENT), "claims {c}");
    match text("azp") {
        Some(azp) => assert_eq!(azp, CLIENT),
        None => assert_eq!(audiences.len(), 1, "claims {c}"),
    }
    assert_eq!(text("nonce"), Some(NONCE), "claims {c}");
    let exp = c["exp"].as_i64().unwrap();
    let iat = c["iat"].as_i64().unwrap();
    assert!(NOW <= exp.saturating_add(60), "expired: {c}");
    assert!(
        (NOW - 600..=NOW + 60).contains(&iat),
        "issued at {iat}: {c}"
    );
    if let Some(nbf) = c["nbf"].as_i64() {
        assert!(nbf <= NOW + 60, "not before {nbf}: {c}");
    }
}

/// A desktop entry as `keylink doctor` reads it, an `Exec` value alone, and an entry Keylink
/// writes for a program named by the input, which must read back as that very program.
#[cfg(unix)]
pub fn desktop_entry(data: &[u8]) {
    use crate::desktop_entry::{DesktopFileId, UrlHandler, entry_exec, needs_quoting, parse_exec};
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(word) = entry_exec(text)
        && !word.quoted
    {
        // An unquoted program is what xdg-utils' `xdg-open` runs as written.
        assert!(
            !word.text.contains([' ', '\t', '\n', '"', '\\']),
            "unquoted {:?}",
            word.text
        );
    }
    let _ = parse_exec(text);
    let program = format!("/{text}");
    let id = DesktopFileId::new("fuzz-handler.desktop").unwrap();
    let handler = UrlHandler::new("com.example.fuzz", id, &program)
        .unwrap()
        .named(text);
    if let Ok(entry) = handler.desktop_entry() {
        let word = entry_exec(&entry).unwrap_or_else(|e| panic!("{entry:?}: {e}"));
        assert_eq!(word.text, program, "{entry:?}");
        assert_eq!(
            word.quoted,
            needs_quoting(&program) || program.contains('%'),
            "{entry:?}"
        );
    }
}

/// Configuration text (TOML): a user file alone, or after a leading 0 byte a system policy
/// and a user file (split at the next 0 byte) layered as `Config::load` layers them. A user
/// file never changes what the policy fixed (SECURITY 47).
pub fn config(data: &[u8]) {
    let Some((0, rest)) = data.split_first() else {
        if let Ok(text) = std::str::from_utf8(data)
            && let Ok(config) = Config::parse(text)
        {
            check_config(&config);
        }
        return;
    };
    let mut parts = rest.splitn(2, |b| *b == 0);
    let (Some(Ok(policy)), Some(Ok(user))) = (
        parts.next().map(std::str::from_utf8),
        parts.next().map(std::str::from_utf8),
    ) else {
        return;
    };
    let mut config = Config::default();
    if config
        .layer_policy(std::path::Path::new("/etc/keylink/keylink.toml"), policy)
        .is_err()
    {
        return;
    }
    let before = config.clone();
    if config
        .layer(std::path::Path::new("/home/user/keylink.toml"), user)
        .is_err()
    {
        return;
    }
    check_config(&config);
    for (id, fixed) in &before.providers {
        if fixed.locked || !before.allow_user_providers {
            let now = config.provider(&ProviderId::new(id.as_str())).unwrap();
            assert_eq!(format!("{fixed:?}"), format!("{now:?}"), "{id} replaced");
        }
    }
    if !before.allow_user_providers {
        assert_eq!(
            before.providers.keys().collect::<Vec<_>>(),
            config.providers.keys().collect::<Vec<_>>()
        );
    }
    assert_eq!(before.allow_user_providers, config.allow_user_providers);
    if before.network.https_proxy.is_some() || before.network.no_proxy.is_some() {
        assert_eq!(before.network.https_proxy, config.network.https_proxy);
        assert_eq!(before.network.no_proxy, config.network.no_proxy);
    }
    if before.network.ca_file.is_some() {
        assert_eq!(before.network.ca_file, config.network.ca_file);
    }
    if before.network.timeout.is_some() {
        assert_eq!(before.network.timeout, config.network.timeout);
    }
}

/// What a configuration that loaded promises about each provider.
fn check_config(config: &Config) {
    for provider in config.providers.values() {
        assert!(!provider.client_id.trim().is_empty());
        if let Some(issuer) = &provider.issuer {
            let url = Url::parse(issuer).unwrap();
            assert!(is_allowed_endpoint(&url) && url.query().is_none());
        }
        let o = &provider.endpoints;
        assert!(
            [
                &o.authorization_endpoint,
                &o.token_endpoint,
                &o.revocation_endpoint,
                &o.userinfo_endpoint,
                &o.jwks_uri,
                &o.device_authorization_endpoint,
            ]
            .into_iter()
            .flatten()
            .all(is_allowed_endpoint)
        );
        assert!(
            provider.issuer.is_some()
                || (o.authorization_endpoint.is_some() && o.token_endpoint.is_some())
        );
        assert!(!provider.authorize_params.contains_key("state"));
        assert!(!provider.authorize_params.contains_key("code_challenge"));
    }
    if let Ok(app) = crate::app::AppIdentity::new("com.example.fuzz") {
        let _ = config.check_redirect_uris(&app);
    }
}
