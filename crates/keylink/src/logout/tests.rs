use std::sync::Arc;

use url::Url;

use super::*;
use crate::error::Error;
use crate::ids::IssuerUrl;
use crate::provider::{DiscoveryError, Metadata};
use crate::secret::IdToken;
use crate::session::{Delivery, LinkSessions};
use crate::store::{AccountStatus, SecretStore, encode_tokens};
use crate::test_harness::{Fixture, Reply, T0, TestBrowser, query, token_set};
use crate::tokens::TokenSource;

const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLW9mLWFsaWNl";
const END_SESSION: &str = "https://idp.example/session/end";

/// The `oidc` provider of the fixture, its metadata with this `end_session_endpoint`.
fn fixture(end_session: Option<&str>) -> Fixture {
    let f = Fixture::new();
    let id = ProviderId::new("oidc");
    let mut metadata: Metadata = (*f.ctx.metadata(f.ctx.provider(&id).unwrap()).unwrap()).clone();
    metadata.end_session_endpoint = end_session.map(|u| Url::parse(u).unwrap());
    f.ctx
        .metadata
        .lock()
        .unwrap()
        .insert(id, Arc::new(metadata));
    f
}

/// An account of the `oidc` provider, stored as a link would, with or without an ID token.
fn link_oidc(f: &Fixture, id_token: Option<&str>) -> Account {
    let provider = ProviderId::new("oidc");
    let issuer = IssuerUrl::new("https://idp.example").unwrap();
    let account = Account {
        id: crate::identity::account_id(&provider, &issuer, "alice"),
        provider,
        issuer,
        subject: "alice".into(),
        email: Some("alice@example.test".into()),
        name: None,
        scopes: vec!["openid".into()],
        linked_at: T0,
        expires_at: Some(T0 + 3600),
        status: AccountStatus::Ok,
    };
    let mut tokens = token_set("at-1", Some("rt-1"), Some(T0 + 3600));
    tokens.id_token = id_token.map(IdToken::new);
    f.store
        .set(&f.token_key(&account.id), &encode_tokens(&tokens))
        .unwrap();
    let stored = account.clone();
    f.ctx
        .index()
        .unwrap()
        .update(move |accounts| accounts.push(stored))
        .unwrap();
    account
}

fn unlink_signing_out(f: &Fixture, account: &Account, browser: &dyn BrowserOpener) -> SignOut {
    let report = TokenSource::default()
        .unlink(&f.ctx, &account.id, Some(browser))
        .unwrap();
    assert!(
        f.accounts().is_empty(),
        "the account is unlinked in every case"
    );
    assert!(f.stored_tokens(&account.id).is_none());
    report.sign_out.unwrap()
}

#[test]
fn discovery_reads_the_end_session_endpoint_and_refuses_a_hostile_one() {
    let f = Fixture::with_config("[providers.disc]\nissuer = \"{server}\"\nclient_id = \"c\"\n");
    let base = f.server.base();
    let discover = |end_session: &str| {
        let (base, end_session) = (base.clone(), end_session.to_owned());
        f.server.answer(move |_, _| {
            Reply::json(
                200,
                serde_json::json!({
                    "issuer": base,
                    "authorization_endpoint": format!("{base}/auth"),
                    "token_endpoint": format!("{base}/token"),
                    "end_session_endpoint": end_session,
                }),
            )
        });
        let provider = f.ctx.provider(&ProviderId::new("disc")).unwrap();
        crate::provider::discover(&f.ctx.http, provider)
    };
    let found = discover(&format!("{base}/session/end")).unwrap();
    assert_eq!(
        found.end_session_endpoint.unwrap().as_str(),
        format!("{base}/session/end")
    );
    for hostile in [
        "file:///etc/passwd",
        "http://idp.example/session/end",
        "javascript:alert(1)",
    ] {
        let refused = discover(hostile);
        assert!(
            matches!(
                refused,
                Err(DiscoveryError::InsecureEndpoint {
                    name: "end_session_endpoint",
                    ..
                })
            ),
            "{hostile}: {refused:?}"
        );
    }
}

#[test]
fn unlink_and_sign_out_opens_the_end_session_endpoint_with_the_id_token_as_hint() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, Some(ID_TOKEN));
    let (browser, opened) = TestBrowser::new();
    assert_eq!(
        unlink_signing_out(&f, &account, browser.as_ref()),
        SignOut::Opened
    );
    let url = opened.try_recv().unwrap();
    assert_eq!(
        format!("{}{}", url.origin().ascii_serialization(), url.path()),
        END_SESSION
    );
    assert_eq!(query(&url, "id_token_hint").as_deref(), Some(ID_TOKEN));
    assert_eq!(query(&url, "client_id").as_deref(), Some("oidc-client"));
    assert_eq!(
        query(&url, "post_logout_redirect_uri").as_deref(),
        Some("com.example.tests:/signed-out/oidc")
    );
    let state = query(&url, "state").unwrap();
    assert!(state.len() >= 43, "{} characters", state.len());
    // A fresh state each time.
    let account = link_oidc(&f, Some(ID_TOKEN));
    unlink_signing_out(&f, &account, browser.as_ref());
    assert_ne!(query(&opened.try_recv().unwrap(), "state").unwrap(), state);
}

#[test]
fn without_an_end_session_endpoint_nothing_is_opened_and_the_account_is_unlinked() {
    let f = fixture(None);
    let account = link_oidc(&f, Some(ID_TOKEN));
    let (browser, opened) = TestBrowser::new();
    assert_eq!(
        unlink_signing_out(&f, &account, browser.as_ref()),
        SignOut::NotSupported
    );
    assert!(opened.try_recv().is_err());
}

#[test]
fn without_a_stored_id_token_nothing_is_opened_and_the_account_is_unlinked() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, None);
    let (browser, opened) = TestBrowser::new();
    assert_eq!(
        unlink_signing_out(&f, &account, browser.as_ref()),
        SignOut::NoIdToken
    );
    assert!(opened.try_recv().is_err());
}

#[test]
fn unlink_without_sign_out_opens_nothing() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, Some(ID_TOKEN));
    let report = TokenSource::default()
        .unlink(&f.ctx, &account.id, None)
        .unwrap();
    assert_eq!(report.sign_out, None);
    assert!(f.accounts().is_empty());
}

/// An opener that fails naming the URL, as `xdg-open` and others do (SECURITY 50).
#[derive(Debug)]
struct Failing;

impl BrowserOpener for Failing {
    fn open(&self, url: &Url) -> Result<(), Error> {
        Err(Error::Browser(format!("could not open {url}")))
    }
}

#[test]
fn a_failing_opener_is_reported_without_the_url_and_the_account_is_unlinked_all_the_same() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, Some(ID_TOKEN));
    let outcome = unlink_signing_out(&f, &account, &Failing);
    let SignOut::Failed(reason) = &outcome else {
        panic!("{outcome:?}");
    };
    assert!(reason.contains(END_SESSION), "{reason}");
    for shown in [reason.clone(), format!("{outcome:?}")] {
        assert!(!shown.contains(ID_TOKEN), "{shown}");
        assert!(!shown.contains("signature-of-alice"), "{shown}");
        assert!(!shown.contains("state="), "{shown}");
    }
}

#[test]
fn the_unlink_report_never_shows_the_id_token() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, Some(ID_TOKEN));
    let (browser, _opened) = TestBrowser::new();
    let report = TokenSource::default()
        .unlink(&f.ctx, &account.id, Some(browser.as_ref()))
        .unwrap();
    let shown = format!("{report:?}");
    assert!(shown.contains("Opened"), "{shown}");
    assert!(!shown.contains(ID_TOKEN), "{shown}");
}

#[test]
fn a_sign_out_confirmation_is_recognised_only_exactly_and_for_a_configured_provider() {
    let f = Fixture::new();
    for url in [
        "com.example.tests:/signed-out/oidc",
        "com.example.tests:/signed-out/oidc?state=abc",
        "COM.EXAMPLE.TESTS:/signed-out/oidc?state=abc",
    ] {
        assert_eq!(
            signed_out_provider(&f.ctx, url),
            Some(ProviderId::new("oidc")),
            "{url}"
        );
    }
    for url in [
        "com.example.tests:/signed-out/nobody?state=abc",
        "com.example.tests:/signed-out/oidc?state=a&state=b",
        "com.example.tests:/signed-out/oidc?state=abc&code=c-1",
        "com.example.tests:/signed-out/oidc#state=abc",
        "com.example.tests:/signed-out/oidc/more",
        "com.example.tests:/signed-out/",
        "com.example.tests:/callback/oidc?state=abc",
        "com.example.tests://signed-out/oidc",
        "com.example.tests://user@host/signed-out/oidc",
        "other.app:/signed-out/oidc",
        "http://127.0.0.1:1234/signed-out/oidc",
        "com.example.tests:/signed-out/oidc?state=a\nb",
    ] {
        assert_eq!(signed_out_provider(&f.ctx, url), None, "{url}");
    }
    let long = format!(
        "com.example.tests:/signed-out/oidc?state={}",
        "a".repeat(9000)
    );
    assert_eq!(signed_out_provider(&f.ctx, &long), None);
}

#[test]
fn a_delivered_sign_out_confirmation_is_not_a_sign_in_and_changes_nothing() {
    let f = fixture(Some(END_SESSION));
    let account = link_oidc(&f, Some(ID_TOKEN));
    let before = f.store.snapshot();
    let sessions = LinkSessions::default();
    let delivery = sessions.deliver(&f.ctx, "com.example.tests:/signed-out/oidc?state=abc");
    assert!(
        matches!(&delivery, Delivery::SignedOut(p) if p.as_str() == "oidc"),
        "{delivery:?}"
    );
    assert_eq!(f.server.token_requests(), 0);
    assert_eq!(f.store.snapshot(), before);
    assert_eq!(f.accounts(), vec![account]);
    // An unknown provider's is no confirmation: it is refused as a sign-in redirect.
    let delivery = sessions.deliver(&f.ctx, "com.example.tests:/signed-out/nobody?state=abc");
    assert!(
        matches!(delivery, Delivery::Completed(Err(Error::Redirect(_)))),
        "{delivery:?}"
    );
}
