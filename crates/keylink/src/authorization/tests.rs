//! The authorization request as the provider receives it (PKCE S256, state, nonce,
//! `login_hint`, the provider's own redirect URI) and the redirect that completes it, refused
//! when it is not exactly the flow's. Against the test provider on 127.0.0.1 with an
//! in-memory keychain and a clock the test sets.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::flow::PENDING_FLOW_LIFETIME;
use crate::ids::{AccountId, ProviderId};
use crate::secret::PkceCodeVerifier;

use crate::test_harness::{Fixture, Reply, query, redirect_for};

fn begin(f: &Fixture, provider: &str, reconnect: Option<ReconnectTarget>) -> Started {
    let provider = f.ctx.provider(&ProviderId::new(provider)).unwrap();
    start(&f.ctx, provider, reconnect, provider.scopes.clone()).unwrap()
}

fn complete(f: &Fixture, url: &str) -> Result<Account, Error> {
    let hooks = Hooks {
        claimed: &mut |_| {},
        may_store: &|_| true,
    };
    complete_redirect(&f.ctx, url, hooks).1
}

/// The provider answers a code with tokens and says the person is alice.
fn signs_in(f: &Fixture) {
    f.server.answer(|request, _| match request.path.as_str() {
        "/token" => Reply::tokens("at-1", Some("rt-1"), 3600),
        "/userinfo" => Reply::json(
            200,
            json!({ "sub": "alice", "email": "alice@example.test" }),
        ),
        _ => Reply::json(404, json!({})),
    });
}

/// How often each query parameter appears.
fn counts(url: &Url) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for (name, _) in url.query_pairs() {
        *counts.entry(name.into_owned()).or_default() += 1;
    }
    counts
}

fn is_redirect_error(result: &Result<Account, Error>, expected: &RedirectError) -> bool {
    matches!(result, Err(Error::Redirect(e)) if std::mem::discriminant(e) == std::mem::discriminant(expected))
}

/// The opener gets the discovered authorization endpoint with our parameters, each once
/// (SECURITY 1, 10); PKCE is S256 with the stored verifier, and state and nonce carry 256
/// random bits each, fresh for every request (SECURITY 3, 5).
#[test]
fn the_request_carries_pkce_s256_a_fresh_state_and_nonce_and_the_providers_parameters() {
    let f = Fixture::new();
    let started = begin(&f, "oidc", None);
    let url = &started.authorization_url;
    assert_eq!(
        url.as_str().split('?').next(),
        Some("https://idp.example/authorize")
    );
    let once: HashMap<String, usize> = [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "nonce",
    ]
    .into_iter()
    .map(|name| (name.to_owned(), 1))
    .collect();
    assert_eq!(counts(url), once);
    assert_eq!(query(url, "response_type").as_deref(), Some("code"));
    assert_eq!(query(url, "client_id").as_deref(), Some("oidc-client"));
    assert_eq!(
        query(url, "scope").as_deref(),
        Some("openid profile email offline_access")
    );
    assert_eq!(query(url, "code_challenge_method").as_deref(), Some("S256"));
    let state = query(url, "state").unwrap();
    let nonce = query(url, "nonce").unwrap();
    assert_eq!(state.len(), 43);
    assert_eq!(nonce.len(), 43);
    assert_ne!(state, nonce);
    // The challenge is S256 of the verifier the flow keeps for the exchange.
    let pending = f.ctx.pending().unwrap();
    let crate::flow::Claim::Claimed(flow) = pending.claim(&state, f.ctx.now(), |_| true) else {
        panic!("the flow was saved under its state");
    };
    assert_eq!(
        query(url, "code_challenge").unwrap(),
        flow.verifier.s256_challenge()
    );
    assert!(flow.nonce.ct_eq(&nonce));
    // Another request has its own.
    let again = begin(&f, "oidc", None).authorization_url;
    for name in ["state", "nonce", "code_challenge"] {
        assert_ne!(query(&again, name), query(url, name), "{name} was reused");
    }
}

#[test]
fn a_plain_oauth_request_has_no_nonce() {
    let f = Fixture::new();
    let url = begin(&f, "plain", None).authorization_url;
    assert_eq!(query(&url, "nonce"), None);
    assert_eq!(
        query(&url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query(&url, "scope").as_deref(), Some("read"));
}

/// Each provider redirects to a URI of its own, so a redirect cannot be replayed at another
/// provider's flow (SECURITY 37); a loopback provider's is the literal 127.0.0.1 with the
/// port of a listener already bound (SECURITY 6).
#[test]
fn each_provider_has_its_own_redirect_uri() {
    let f = Fixture::new();
    for provider in ["plain", "other", "oidc"] {
        let started = begin(&f, provider, None);
        assert_eq!(
            query(&started.authorization_url, "redirect_uri"),
            Some(format!("com.example.tests:/callback/{provider}"))
        );
        assert!(started.loopback.is_none());
    }
    let started = begin(&f, "loop", None);
    let uri = Url::parse(&query(&started.authorization_url, "redirect_uri").unwrap()).unwrap();
    assert_eq!(uri.scheme(), "http");
    assert_eq!(uri.host_str(), Some("127.0.0.1"));
    assert_eq!(uri.path(), "/callback/loop");
    let port = uri.port().unwrap();
    assert_ne!(port, 0);
    assert!(started.loopback.is_some());
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

/// A reconnect asks the provider for the same person and a fresh sign-in (SECURITY 45); a
/// new link asks for nobody in particular.
#[test]
fn a_reconnect_sends_login_hint_and_prompt_login() {
    let f = Fixture::new();
    let account = f.seed(
        "alice",
        &crate::test_harness::token_set("at-1", Some("rt-1"), None),
    );
    let (provider, target) = reconnect_target(&f.ctx, &account.id).unwrap();
    assert_eq!(provider, account.provider);
    assert_eq!(target.subject, "alice");
    assert_eq!(target.shown, "alice@example.test");
    let plain = begin(&f, "plain", Some(target.clone())).authorization_url;
    assert_eq!(
        query(&plain, "login_hint").as_deref(),
        Some("alice@example.test")
    );
    // `prompt` is OpenID Connect's.
    assert_eq!(query(&plain, "prompt"), None);
    let oidc = begin(&f, "oidc", Some(target)).authorization_url;
    assert_eq!(
        query(&oidc, "login_hint").as_deref(),
        Some("alice@example.test")
    );
    assert_eq!(query(&oidc, "prompt").as_deref(), Some("login"));
    let new = begin(&f, "oidc", None).authorization_url;
    assert_eq!(query(&new, "login_hint"), None);
    assert_eq!(query(&new, "prompt"), None);
    assert!(matches!(
        reconnect_target(&f.ctx, &AccountId::new("demo-0000000000")),
        Err(Error::UnknownAccount(_))
    ));
}

/// Only an https authorization endpoint (http on loopback) reaches the browser; anything
/// else is refused before a flow is saved (SECURITY 2).
#[test]
fn an_authorization_endpoint_that_is_not_https_is_refused_and_nothing_is_saved() {
    let f = Fixture::new();
    let provider = f.ctx.provider(&crate::ProviderId::new("oidc")).unwrap();
    let with_endpoint = |endpoint: &str| {
        let mut metadata = (*f.ctx.metadata(provider).unwrap()).clone();
        metadata.authorization_endpoint = Url::parse(endpoint).unwrap();
        f.ctx
            .metadata
            .lock()
            .unwrap()
            .insert(provider.id.clone(), Arc::new(metadata));
    };
    for endpoint in [
        "file:///etc/passwd",
        "smb://idp.example/share",
        "http://idp.example/authorize",
        "javascript:alert(1)",
    ] {
        with_endpoint(endpoint);
        let e = start(&f.ctx, provider, None, Vec::new()).err().unwrap();
        assert!(
            matches!(e, Error::UnsafeAuthorizationUrl(_)),
            "{endpoint}: {e:?}"
        );
        assert!(f.pending_flows().is_empty(), "{endpoint}");
    }
    with_endpoint("http://127.0.0.1:1/authorize");
    assert!(start(&f.ctx, provider, None, Vec::new()).is_ok());
}

/// Without a working keychain the tokens could not be kept, so no sign-in starts.
#[test]
fn without_a_working_keychain_no_sign_in_starts() {
    let f = Fixture::new();
    f.store
        .broken
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let e = start(
        &f.ctx,
        f.ctx.provider(&crate::ProviderId::new("plain")).unwrap(),
        None,
        Vec::new(),
    )
    .err()
    .unwrap();
    assert!(matches!(e, Error::Store(_)), "{e:?}");
    assert!(f.pending_flows().is_empty());
}

/// A redirect with a state the flow did not issue is refused before any token request and
/// leaves the flow waiting for its own; the genuine one completes it, once (SECURITY 7, 8).
#[test]
fn a_redirect_with_another_state_is_refused_and_stores_nothing() {
    let f = Fixture::new();
    signs_in(&f);
    let url = begin(&f, "plain", None).authorization_url;
    let forged = "com.example.tests:/callback/plain?code=c-evil&state=another-state";
    assert!(is_redirect_error(
        &complete(&f, forged),
        &RedirectError::Unsolicited
    ));
    assert_eq!(f.server.token_requests(), 0);
    assert!(f.accounts().is_empty());
    assert!(f.store.snapshot().is_empty());
    assert_eq!(f.pending_flows().len(), 1, "the flow still waits");

    let genuine = redirect_for(&url, "code=c-1");
    let account = complete(&f, &genuine).unwrap();
    assert_eq!(f.accounts(), vec![account]);
    let sent = f.server.requests("/token");
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0].form("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(sent[0].form("code").as_deref(), Some("c-1"));
    assert_eq!(sent[0].form("redirect_uri"), query(&url, "redirect_uri"));
    let verifier = PkceCodeVerifier::new(sent[0].form("code_verifier").unwrap());
    assert_eq!(
        Some(verifier.s256_challenge()),
        query(&url, "code_challenge")
    );
    assert!(is_redirect_error(
        &complete(&f, &genuine),
        &RedirectError::Unsolicited
    ));
    assert_eq!(f.server.token_requests(), 1, "the code was sent once");
}

/// A redirect for one provider's flow arriving on another provider's redirect URI is
/// refused, and the flow stays (SECURITY 37).
#[test]
fn a_redirect_on_another_providers_redirect_uri_is_refused() {
    let f = Fixture::new();
    signs_in(&f);
    let url = begin(&f, "plain", None).authorization_url;
    let state = query(&url, "state").unwrap();
    let elsewhere = format!("com.example.tests:/callback/other?code=c-1&state={state}");
    assert!(is_redirect_error(
        &complete(&f, &elsewhere),
        &RedirectError::Unsolicited
    ));
    assert_eq!(f.server.token_requests(), 0);
    assert_eq!(f.pending_flows().len(), 1);
}

/// A new sign-in at a provider replaces the one it had pending: one flow per provider
/// (SECURITY 5).
#[test]
fn a_new_sign_in_replaces_the_providers_pending_one() {
    let f = Fixture::new();
    signs_in(&f);
    let first = begin(&f, "plain", None).authorization_url;
    let _other = begin(&f, "other", None);
    let second = begin(&f, "plain", None).authorization_url;
    assert_eq!(f.pending_flows().len(), 2, "one for each provider");
    assert!(is_redirect_error(
        &complete(&f, &redirect_for(&first, "code=c-1")),
        &RedirectError::Unsolicited
    ));
    assert_eq!(f.server.token_requests(), 0);
    assert!(complete(&f, &redirect_for(&second, "code=c-2")).is_ok());
}

/// `iss` must be the flow's issuer byte for byte, and present when the provider promised it
/// (RFC 9207, SECURITY 9); a wrong one is refused before the code is exchanged.
#[test]
fn a_redirect_naming_another_issuer_is_refused_before_the_exchange() {
    let f = Fixture::new();
    let cases = [
        (
            "code=c-1&iss=https%3A%2F%2Fevil.example",
            RedirectError::IssuerMismatch,
        ),
        (
            "code=c-1&iss=https%3A%2F%2Fidp.example%2F",
            RedirectError::IssuerMismatch,
        ),
        ("code=c-1", RedirectError::MissingIssuer),
    ];
    for (params, expected) in cases {
        let url = begin(&f, "oidc", None).authorization_url;
        let result = complete(&f, &redirect_for(&url, params));
        assert!(
            is_redirect_error(&result, &expected),
            "{params}: {result:?}"
        );
    }
    assert!(f.server.requests("/oidc/token").is_empty());
    assert!(f.accounts().is_empty());
}

/// A flow waits at most [`PENDING_FLOW_LIFETIME`] by the injected clock (SECURITY 5).
#[test]
fn a_redirect_after_the_flows_lifetime_is_refused() {
    let f = Fixture::new();
    signs_in(&f);
    let url = begin(&f, "plain", None).authorization_url;
    f.clock.advance(PENDING_FLOW_LIFETIME.as_secs() as i64 + 1);
    assert!(is_redirect_error(
        &complete(&f, &redirect_for(&url, "code=c-1")),
        &RedirectError::Expired
    ));
    assert_eq!(f.server.token_requests(), 0);
    let url = begin(&f, "plain", None).authorization_url;
    f.clock.advance(PENDING_FLOW_LIFETIME.as_secs() as i64);
    assert!(complete(&f, &redirect_for(&url, "code=c-1")).is_ok());
}

/// A cancelled sign-in's redirect is refused.
#[test]
fn a_cancelled_sign_in_refuses_its_redirect() {
    let f = Fixture::new();
    signs_in(&f);
    let started = begin(&f, "plain", None);
    cancel(&f.ctx, &started.flow_id);
    assert!(is_redirect_error(
        &complete(&f, &redirect_for(&started.authorization_url, "code=c-1")),
        &RedirectError::Unsolicited
    ));
    assert_eq!(f.server.token_requests(), 0);
}

/// The person saying no is reported as their choice; a provider's error text reaches the
/// person only as plain text, and only once the state matched (SECURITY 10, 39).
#[test]
fn errors_in_the_redirect_are_reported_and_nothing_is_stored() {
    let f = Fixture::new();
    let url = begin(&f, "plain", None).authorization_url;
    let declined = complete(&f, &redirect_for(&url, "error=access_denied"));
    assert!(
        matches!(&declined, Err(Error::SignInDeclined(name)) if name == "Plain Example"),
        "{declined:?}"
    );
    let url = begin(&f, "plain", None).authorization_url;
    // A terminal escape makes the whole redirect malformed: nothing of it is shown.
    let escape = "error=server_error&error_description=%1B%5B2Jbusy";
    assert!(is_redirect_error(
        &complete(&f, &redirect_for(&url, escape)),
        &RedirectError::Malformed
    ));
    let hostile = "error=server_error&error_description=%3Cb%3Ebusy%3C%2Fb%3E%E2%80%AEevil";
    let e = complete(&f, &redirect_for(&url, hostile)).unwrap_err();
    let shown = e.to_string();
    assert!(
        matches!(e, Error::Redirect(RedirectError::Provider { .. })),
        "{e:?}"
    );
    assert!(shown.contains("server_error"), "{shown}");
    assert!(
        !shown.contains('\u{1b}') && !shown.contains('\u{202e}'),
        "{shown:?}"
    );
    let unsolicited = format!("com.example.tests:/callback/plain?state=made-up&{hostile}");
    let e = complete(&f, &unsolicited).unwrap_err();
    assert!(!e.to_string().contains("server_error"), "{e}");
    assert_eq!(f.server.token_requests(), 0);
    assert!(f.accounts().is_empty());
}
