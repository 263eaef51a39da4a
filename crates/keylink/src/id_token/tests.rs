use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{EncodingKey, Header};
use serde_json::json;

use super::*;

const NOW: UnixTime = 1_800_000_000;
const ISSUER: &str = "https://idp.example";
const CLIENT: &str = "keylink-demo";
const PRIVATE_KEY: &[u8] = include_bytes!("../../tests/fixtures/test-rsa.pem");
const PUBLIC_KEY: &[u8] = include_bytes!("../../tests/fixtures/test-rsa.pub.pem");
const JWKS: &str = include_str!("../../tests/fixtures/test-rsa.jwks.json");

/// A JWKS endpoint on 127.0.0.1 that counts how often it is fetched.
fn jwks_server(body: &'static str) -> (Url, Arc<AtomicUsize>) {
    rotating_jwks_server(body.to_owned(), body.to_owned())
}

fn claims() -> serde_json::Value {
    json!({
        "iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": NOW + 300, "iat": NOW,
        "nonce": "n-123", "email": "alice@example.test", "name": "Alice"
    })
}

fn sign(claims: &serde_json::Value, kid: &str) -> IdToken {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY).unwrap();
    IdToken::new(jsonwebtoken::encode(&header, claims, &key).unwrap())
}

struct Setup {
    jwks: Jwks,
    hits: Arc<AtomicUsize>,
    http: crate::http::Http,
    nonce: Nonce,
    algorithms: Vec<Algorithm>,
}

fn setup() -> Setup {
    let (url, hits) = jwks_server(JWKS);
    Setup {
        jwks: Jwks::new(url),
        hits,
        http: crate::http::Http::new(&Default::default()).unwrap(),
        nonce: Nonce::new("n-123"),
        algorithms: allowed_algorithms(&["RS256".into(), "HS256".into(), "none".into()]),
    }
}

impl Setup {
    fn check(&self, token: &IdToken) -> Result<IdClaims, IdTokenError> {
        self.check_at(token, NOW)
    }

    fn check_at(&self, token: &IdToken, now: UnixTime) -> Result<IdClaims, IdTokenError> {
        let expected = Expected {
            issuer: ISSUER,
            client_id: CLIENT,
            nonce: Some(&self.nonce),
            algorithms: &self.algorithms,
        };
        validate(token, &expected, &self.jwks, &self.http, now)
    }
}

#[test]
fn a_valid_token_yields_the_identity() {
    let s = setup();
    let claims = s.check(&sign(&claims(), "test-key-1")).unwrap();
    assert_eq!(claims.subject, "alice");
    assert_eq!(claims.email.as_deref(), Some("alice@example.test"));
}

#[test]
fn the_allow_list_never_contains_symmetric_or_none() {
    let allowed = allowed_algorithms(&["HS256".into(), "none".into()]);
    assert_eq!(allowed, vec![Algorithm::RS256]);
}

#[test]
fn alg_none_is_refused() {
    let s = setup();
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","kid":"test-key-1"}"#);
    let body = URL_SAFE_NO_PAD.encode(claims().to_string());
    let token = IdToken::new(format!("{header}.{body}."));
    assert!(s.check(&token).is_err());
}

#[test]
fn hs256_signed_with_the_public_key_is_refused() {
    let s = setup();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("test-key-1".into());
    let forged =
        jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(PUBLIC_KEY)).unwrap();
    let err = s.check(&IdToken::new(forged)).unwrap_err();
    assert!(
        matches!(err, IdTokenError::DisallowedAlgorithm(_)),
        "{err:?}"
    );
}

#[test]
fn a_tampered_signature_is_refused() {
    let s = setup();
    let token = sign(&claims(), "test-key-1");
    let mut parts: Vec<String> = token.secret().split('.').map(String::from).collect();
    let mut forged = claims();
    forged["sub"] = json!("mallory");
    parts[1] = URL_SAFE_NO_PAD.encode(forged.to_string());
    let err = s.check(&IdToken::new(parts.join("."))).unwrap_err();
    assert!(matches!(err, IdTokenError::BadSignature), "{err:?}");
}

#[test]
fn header_supplied_keys_are_ignored() {
    let s = setup();
    // A token naming its own key URL and an unknown kid: the header URL is never fetched.
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("attacker-key".into());
    header.jku = Some("https://attacker.example/jwks".into());
    let key = EncodingKey::from_rsa_pem(PRIVATE_KEY).unwrap();
    let token = IdToken::new(jsonwebtoken::encode(&header, &claims(), &key).unwrap());
    assert!(matches!(s.check(&token), Err(IdTokenError::UnknownKey)));
}

#[test]
fn claims_are_checked_against_the_clock_and_the_flow() {
    let s = setup();
    type Case = (&'static str, serde_json::Value, fn(&IdTokenError) -> bool);
    let cases: Vec<Case> = vec![
        (
            "wrong issuer",
            json!({"iss": "https://evil.example"}),
            |e| matches!(e, IdTokenError::IssuerMismatch),
        ),
        (
            "trailing slash issuer",
            json!({"iss": "https://idp.example/"}),
            |e| matches!(e, IdTokenError::IssuerMismatch),
        ),
        ("wrong audience", json!({"aud": "someone-else"}), |e| {
            matches!(e, IdTokenError::AudienceMismatch)
        }),
        (
            "extra audience without azp",
            json!({"aud": [CLIENT, "other"]}),
            |e| matches!(e, IdTokenError::AudienceMismatch),
        ),
        (
            "azp of another client",
            json!({"aud": [CLIENT, "other"], "azp": "other"}),
            |e| matches!(e, IdTokenError::AudienceMismatch),
        ),
        ("wrong nonce", json!({"nonce": "n-456"}), |e| {
            matches!(e, IdTokenError::NonceMismatch)
        }),
        ("missing nonce", json!({"nonce": null}), |e| {
            matches!(e, IdTokenError::NonceMismatch)
        }),
        ("expired beyond leeway", json!({"exp": NOW - 61}), |e| {
            matches!(e, IdTokenError::Expired)
        }),
        ("issued in the future", json!({"iat": NOW + 120}), |e| {
            matches!(e, IdTokenError::BadIssueTime)
        }),
        ("issued too long ago", json!({"iat": NOW - 601}), |e| {
            matches!(e, IdTokenError::BadIssueTime)
        }),
        ("not yet valid", json!({"nbf": NOW + 120}), |e| {
            matches!(e, IdTokenError::BadIssueTime)
        }),
        (
            "string exp (CVE-2026-25537)",
            json!({"exp": "99999999999"}),
            |e| matches!(e, IdTokenError::Malformed(_)),
        ),
        ("missing exp", json!({"exp": null}), |e| {
            matches!(e, IdTokenError::Malformed(_))
        }),
        ("missing sub", json!({"sub": null}), |e| {
            matches!(e, IdTokenError::Malformed(_))
        }),
    ];
    for (name, change, expected) in cases {
        let mut c = claims();
        for (k, v) in change.as_object().unwrap() {
            if v.is_null() {
                c.as_object_mut().unwrap().remove(k);
            } else {
                c[k] = v.clone();
            }
        }
        let err = s.check(&sign(&c, "test-key-1")).expect_err(name);
        assert!(expected(&err), "{name}: {err:?}");
    }
    // Within the leeway is fine; several audiences with our azp are fine.
    let mut c = claims();
    c["exp"] = json!(NOW - 59);
    assert!(s.check(&sign(&c, "test-key-1")).is_ok());
    let mut c = claims();
    c["aud"] = json!([CLIENT, "other"]);
    c["azp"] = json!(CLIENT);
    assert!(s.check(&sign(&c, "test-key-1")).is_ok());
}

#[test]
fn a_hundred_unknown_kids_cause_at_most_one_refetch() {
    let s = setup();
    // The keys were fetched two minutes ago, so an unknown kid now may trigger a refetch.
    let mut earlier = claims();
    earlier["iat"] = json!(NOW - 120);
    s.check_at(&sign(&earlier, "test-key-1"), NOW - 120)
        .unwrap();
    assert_eq!(s.hits.load(Ordering::SeqCst), 1);
    std::thread::scope(|scope| {
        for i in 0..100 {
            let s = &s;
            scope.spawn(move || {
                let token = sign(&claims(), &format!("unknown-{i}"));
                assert!(matches!(s.check(&token), Err(IdTokenError::UnknownKey)));
            });
        }
    });
    assert_eq!(
        s.hits.load(Ordering::SeqCst),
        2,
        "exactly one shared refetch"
    );
    // The known key still works from the cache.
    s.check(&sign(&claims(), "test-key-1")).unwrap();
    assert_eq!(s.hits.load(Ordering::SeqCst), 2);
}

#[test]
fn symmetric_and_encryption_keys_are_never_used() {
    let jwks: JwkSet = serde_json::from_value(json!({"keys": [
        {"kty": "oct", "kid": "k", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "enc", "use": "enc", "n": "AQAB", "e": "AQAB"}
    ]}))
    .unwrap();
    assert!(find_key(&jwks, Some("k"), Algorithm::RS256).is_none());
    assert!(find_key(&jwks, Some("enc"), Algorithm::RS256).is_none());
    assert!(find_key(&jwks, None, Algorithm::RS256).is_none());
}

#[test]
fn when_the_jwks_endpoint_goes_down_the_last_good_set_is_used() {
    let (url, _hits) = jwks_server(JWKS);
    let http = crate::http::Http::new(&Default::default()).unwrap();
    let jwks = Jwks::new(url);
    assert!(
        jwks.key_for(&http, Some("test-key-1"), Algorithm::RS256, NOW)
            .is_ok()
    );
    // Point the cache at a dead endpoint: an unknown kid triggers a refetch, which fails.
    let dead = TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_url = Url::parse(&format!("http://{}/jwks", dead.local_addr().unwrap())).unwrap();
    drop(dead);
    let down = Jwks {
        uri: dead_url,
        state: Mutex::new(JwksState {
            keys: jwks.lock().keys.clone(),
            last_fetch: Some(NOW - 3600),
            last_refetch: None,
            fetches: 1,
        }),
    };
    assert!(matches!(
        down.key_for(&http, Some("rotated"), Algorithm::RS256, NOW),
        Err(IdTokenError::UnknownKey)
    ));
    assert_eq!(down.fetch_count(), 2, "the refetch was attempted");
    assert!(
        down.key_for(&http, Some("test-key-1"), Algorithm::RS256, NOW)
            .is_ok()
    );
}

#[test]
fn a_tenant_issuer_template_is_completed_only_by_the_tokens_own_tid() {
    let s = setup();
    let template = "https://idp.example/{tenantid}/v2.0";
    let tenant_a = "9188040d-6c67-4c5b-b112-36a304b66dad";
    let tenant_b = "72f988bf-86f1-41af-91ab-2d7cd011db47";
    let check = |claims: &serde_json::Value| {
        let expected = Expected {
            issuer: template,
            client_id: CLIENT,
            nonce: Some(&s.nonce),
            algorithms: &s.algorithms,
        };
        validate(
            &sign(claims, "test-key-1"),
            &expected,
            &s.jwks,
            &s.http,
            NOW,
        )
    };
    let mut c = claims();
    c["iss"] = json!(format!("https://idp.example/{tenant_a}/v2.0"));
    c["tid"] = json!(tenant_a);
    let ok = check(&c).unwrap();
    assert_eq!(ok.issuer, format!("https://idp.example/{tenant_a}/v2.0"));
    c["tid"] = json!(tenant_b);
    assert!(
        matches!(check(&c), Err(IdTokenError::IssuerMismatch)),
        "tid of another tenant"
    );
    c.as_object_mut().unwrap().remove("tid");
    assert!(
        matches!(check(&c), Err(IdTokenError::IssuerMismatch)),
        "no tid"
    );
    c["tid"] = json!("../evil");
    assert!(
        matches!(check(&c), Err(IdTokenError::IssuerMismatch)),
        "not a tenant id"
    );
    // A template never matches literally.
    let mut literal = claims();
    literal["iss"] = json!(template);
    literal["tid"] = json!("{tenantid}");
    assert!(check(&literal).is_err());
}

/// A JWKS endpoint that serves `first` once and `then` afterwards: a provider rotating its
/// signing key between two sign-ins.
fn rotating_jwks_server(first: String, then: String) -> (Url, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = Url::parse(&format!("http://{}/jwks", listener.local_addr().unwrap())).unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(&stream);
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let body = if n == 0 { &first } else { &then };
            let _ = write!(
                &stream,
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    (url, hits)
}

#[test]
fn a_key_rotated_right_after_the_last_fetch_is_found() {
    // rp-key-rotation-op-sign-key: the first sign-in caches the set, the provider rotates
    // to a new key id, and a sign-in seconds later must still be accepted.
    let rotated = JWKS.replace("test-key-1", "test-key-2");
    let (url, hits) = rotating_jwks_server(JWKS.to_owned(), rotated);
    let http = crate::http::Http::new(&Default::default()).unwrap();
    let jwks = Jwks::new(url);
    assert!(
        jwks.key_for(&http, Some("test-key-1"), Algorithm::RS256, NOW)
            .is_ok()
    );
    assert!(
        jwks.key_for(&http, Some("test-key-2"), Algorithm::RS256, NOW + 5)
            .is_ok(),
        "the rotated key was fetched although the last fetch was 5 s ago"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    // A flood of made-up ids right after that costs nothing more.
    for i in 0..50 {
        let kid = format!("made-up-{i}");
        assert!(matches!(
            jwks.key_for(&http, Some(&kid), Algorithm::RS256, NOW + 6),
            Err(IdTokenError::UnknownKey)
        ));
    }
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "bounded: no refetch per made-up id"
    );
}
