//! Who an account is: its stable id, linking the same person again, a reconnect that comes
//! back as someone else, the issuer its tokens belong to, and "Check connection". Against the
//! test provider on 127.0.0.1 (a plain OAuth provider: the person is whoever its user endpoint
//! names) with an in-memory keychain and a clock the test sets.

use serde_json::json;

use super::*;

use crate::test_harness::{Fixture, Reply, T0, token_set};

/// The user endpoint names `subject` with `email`; the token endpoint hands out `at-2`.
fn user_endpoint_names(f: &Fixture, subject: &'static str, email: &'static str) {
    f.server
        .answer(move |request, _| match request.path.as_str() {
            "/userinfo" => Reply::json(200, json!({ "sub": subject, "email": email })),
            "/token" => Reply::tokens("at-2", Some("rt-2"), 3600),
            _ => Reply::json(404, json!({})),
        });
}

/// Links the `plain` provider's account behind `access` (reconnecting `reconnect`).
fn link(f: &Fixture, access: &str, reconnect: Option<&ReconnectTarget>) -> Result<Account, Error> {
    let provider = f.ctx.provider(&crate::ProviderId::new("plain")).unwrap();
    let metadata = f.ctx.metadata(provider).unwrap();
    let tokens = token_set(access, Some("rt-1"), Some(f.ctx.now() + 3600));
    store_link(
        &f.ctx,
        provider,
        &metadata,
        tokens,
        None,
        reconnect,
        &provider.scopes,
        f.ctx.now(),
    )
}

fn target(account: &Account) -> ReconnectTarget {
    ReconnectTarget {
        account: account.id.clone(),
        subject: account.subject.clone(),
        shown: account.label(),
    }
}

fn stored_access_token(f: &Fixture, account: &Account) -> String {
    let tokens = f.stored_tokens(&account.id).unwrap();
    tokens.access_token.secret().to_owned()
}

/// An account's id is its provider and a hash of (issuer, subject), never the email
/// (SECURITY 20). It names the keychain entry of the account's tokens, so it must not change
/// between versions: the value is pinned.
#[test]
fn the_account_id_is_the_provider_and_a_hash_of_issuer_and_subject() {
    let plain = ProviderId::new("plain");
    let issuer = IssuerUrl::new("https://idp.example").unwrap();
    let id = account_id(&plain, &issuer, "alice");
    assert_eq!(id.as_str(), "plain-9ac2edb5a8");
    assert_eq!(account_id(&plain, &issuer, "alice"), id);
    let others = [
        account_id(&plain, &issuer, "bob"),
        account_id(
            &plain,
            &IssuerUrl::new("https://idp.example/").unwrap(),
            "alice",
        ),
        account_id(
            &plain,
            &IssuerUrl::new("https://other.example").unwrap(),
            "alice",
        ),
        account_id(&ProviderId::new("other"), &issuer, "alice"),
    ];
    for other in others {
        assert_ne!(other, id);
    }
}

#[test]
fn a_plain_oauth_account_is_whoever_the_user_endpoint_names_at_the_token_endpoints_origin() {
    let f = Fixture::new();
    user_endpoint_names(&f, "alice", "alice@example.test");
    let account = link(&f, "at-1", None).unwrap();
    assert_eq!(account.subject, "alice");
    assert_eq!(account.issuer, f.plain_issuer());
    assert_eq!(account.email.as_deref(), Some("alice@example.test"));
    assert_eq!(account.status, AccountStatus::Ok);
    assert_eq!(account.linked_at, T0);
    assert_eq!(
        account.id,
        account_id(&ProviderId::new("plain"), &f.plain_issuer(), "alice")
    );
    let asked = f.server.requests("/userinfo");
    assert_eq!(asked.len(), 1);
    assert_eq!(asked[0].header("authorization"), Some("Bearer at-1"));
    assert_eq!(f.accounts(), vec![account.clone()]);
    assert_eq!(stored_access_token(&f, &account), "at-1");
}

#[test]
fn a_user_endpoint_that_names_nobody_links_nothing() {
    let f = Fixture::new();
    f.server
        .answer(|_, _| Reply::json(200, json!({ "email": "alice@example.test" })));
    let e = link(&f, "at-1", None).unwrap_err();
    assert!(matches!(e, Error::NoIdentity(_)), "{e:?}");
    assert!(f.accounts().is_empty());
    assert!(f.store.snapshot().is_empty());
}

/// Linking the same person again updates their account (new tokens, new email, linked
/// again) instead of adding a second one, and heals `needs_relink`.
#[test]
fn linking_the_same_subject_again_updates_the_account_instead_of_adding_one() {
    let f = Fixture::new();
    user_endpoint_names(&f, "alice", "alice@example.test");
    let first = link(&f, "at-1", None).unwrap();
    f.ctx
        .index()
        .unwrap()
        .update(|accounts| accounts[0].status = AccountStatus::NeedsRelink)
        .unwrap();
    f.clock.advance(86_400);
    user_endpoint_names(&f, "alice", "alice@new.example");
    let second = link(&f, "at-9", None).unwrap();
    assert_eq!(second.id, first.id);
    let accounts = f.accounts();
    assert_eq!(accounts, vec![second.clone()]);
    assert_eq!(accounts[0].email.as_deref(), Some("alice@new.example"));
    assert_eq!(accounts[0].linked_at, T0 + 86_400);
    assert_eq!(accounts[0].status, AccountStatus::Ok);
    assert_eq!(stored_access_token(&f, &second), "at-9");
}

/// A reconnect that comes back as another person changes nothing, adds nobody, and says
/// who signed in (SECURITY 45).
#[test]
fn a_reconnect_that_signs_in_as_someone_else_is_refused_and_changes_nothing() {
    let f = Fixture::new();
    user_endpoint_names(&f, "alice", "alice@example.test");
    let alice = link(&f, "at-1", None).unwrap();
    let (index, keychain) = (f.accounts(), f.store.snapshot());
    user_endpoint_names(&f, "bob", "bob@example.test");
    let e = link(&f, "at-bob", Some(&target(&alice))).unwrap_err();
    assert!(
        matches!(&e, Error::WrongAccount { signed_in_as, expected }
            if signed_in_as == "bob@example.test" && expected == "alice@example.test"),
        "{e:?}"
    );
    assert_eq!(e.code(), crate::error::ErrorCode::WrongAccount);
    assert_eq!(
        f.accounts(),
        index,
        "alice is as she was and bob was not added"
    );
    assert_eq!(
        f.store.snapshot(),
        keychain,
        "no token was stored or replaced"
    );
}

#[test]
fn a_reconnect_as_the_same_person_renews_the_account() {
    let f = Fixture::new();
    user_endpoint_names(&f, "alice", "alice@example.test");
    let alice = link(&f, "at-1", None).unwrap();
    f.ctx
        .index()
        .unwrap()
        .update(|accounts| accounts[0].status = AccountStatus::NeedsRelink)
        .unwrap();
    let again = link(&f, "at-9", Some(&target(&alice))).unwrap();
    assert_eq!(again.id, alice.id);
    assert_eq!(f.accounts().len(), 1);
    assert_eq!(f.accounts()[0].status, AccountStatus::Ok);
    assert_eq!(stored_access_token(&f, &again), "at-9");
}

/// What the provider says about the person is stripped of control, escape and bidi
/// characters before it is stored (SECURITY 39).
#[test]
fn provider_text_is_cleaned_before_it_is_stored() {
    let f = Fixture::new();
    f.server.answer(|_, _| {
        Reply::json(
            200,
            json!({
                "sub": "alice",
                "email": "alice\u{1b}]52;c;aGk=\u{7}@example.test",
                "name": "\u{1b}[2JAlice \u{202e}evil",
            }),
        )
    });
    let account = link(&f, "at-1", None).unwrap();
    let stored = &f.accounts()[0];
    for text in [&stored.email, &stored.name, &account.email, &account.name] {
        let text = text.as_deref().unwrap();
        assert!(!text.contains(['\u{1b}', '\u{7}', '\u{202e}']), "{text:?}");
    }
}

/// The issuer an account's tokens belong to, compared with the configuration without a
/// request (SECURITY 52): a plain OAuth provider's is its token endpoint's origin.
#[test]
fn a_changed_issuer_is_noticed_from_the_configuration() {
    let f = Fixture::new();
    let plain = f.ctx.provider(&crate::ProviderId::new("plain")).unwrap();
    let mut account = f.seed("alice", &token_set("at-1", None, None));
    assert_eq!(changed_issuer(&f.ctx, plain, &account).unwrap(), None);
    account.issuer = IssuerUrl::new("https://old.example").unwrap();
    assert_eq!(
        changed_issuer(&f.ctx, plain, &account).unwrap(),
        Some(f.server.base())
    );
    let oidc = f.ctx.provider(&crate::ProviderId::new("oidc")).unwrap();
    account.issuer = IssuerUrl::new("https://idp.example").unwrap();
    assert_eq!(changed_issuer(&f.ctx, oidc, &account).unwrap(), None);
    account.issuer = IssuerUrl::new("https://idp.example/").unwrap();
    assert_eq!(
        changed_issuer(&f.ctx, oidc, &account).unwrap().as_deref(),
        Some("https://idp.example")
    );
    assert!(f.server.requests("/token").is_empty());
}

/// A multi-tenant issuer matches only itself with a tenant id (a GUID) in the tenant's
/// segment, nothing else in the URL changed.
#[test]
fn a_tenant_issuer_differs_from_the_configured_one_only_in_a_tenant_id() {
    let common = "https://login.microsoftonline.com/common/v2.0";
    let tenant = "9188040d-6c67-4c5b-b112-36a304b66dad";
    assert!(is_tenant_issuer_of(
        common,
        &format!("https://login.microsoftonline.com/{tenant}/v2.0")
    ));
    for other in [
        "https://login.microsoftonline.com/contoso/v2.0".to_owned(),
        format!("https://evil.example/{tenant}/v2.0"),
        format!("https://login.microsoftonline.com/{tenant}/v2.0/extra"),
        format!("https://login.microsoftonline.com/{tenant}/v1.0"),
        common.to_owned(),
    ] {
        assert!(!is_tenant_issuer_of(common, &other), "{other}");
    }
}

fn check(f: &Fixture, account: &Account) -> Result<ConnectionCheck, Error> {
    check_connection(&f.ctx, &TokenSource::default(), &account.id)
}

#[test]
fn check_connection_shows_who_the_provider_says_the_tokens_belong_to() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0 + 3600)));
    user_endpoint_names(&f, "alice", "alice@example.test");
    let checked = check(&f, &account).unwrap();
    assert_eq!(checked.subject, "alice");
    assert_eq!(checked.email.as_deref(), Some("alice@example.test"));
    assert_eq!(checked.answered_by, "127.0.0.1");
    assert_eq!(checked.checked_at, T0);
    assert_eq!(checked.expires_at, Some(T0 + 3600));
    assert_eq!(checked.account.id, account.id);
    let asked = f.server.requests("/userinfo");
    assert_eq!(asked[0].header("authorization"), Some("Bearer at-1"));
    assert_eq!(
        f.server.token_requests(),
        0,
        "a token that lasts is not refreshed"
    );
    // The check's Debug output, which an app may log, holds no token.
    assert!(!format!("{checked:?}").contains("at-1"));
}

#[test]
fn check_connection_refuses_an_answer_about_someone_else() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0 + 3600)));
    user_endpoint_names(&f, "mallory", "mallory@example.test");
    let e = check(&f, &account).unwrap_err();
    assert!(matches!(e, Error::ConnectionCheck(_)), "{e:?}");
    assert!(e.to_string().contains("different account"), "{e}");
    assert_eq!(f.accounts()[0].status, AccountStatus::Ok);
}

#[test]
fn check_connection_reports_a_failing_user_endpoint_and_leaves_the_account_linked() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0 + 3600)));
    f.server
        .answer(|_, _| Reply::json(503, json!({ "error": "busy" })));
    let e = check(&f, &account).unwrap_err();
    assert!(
        matches!(&e, Error::ConnectionCheck(reason) if reason.contains("HTTP 503")),
        "{e:?}"
    );
    assert_eq!(f.accounts()[0].status, AccountStatus::Ok);
    assert_eq!(f.server.token_requests(), 0);
}

/// A provider that refuses a token Keylink believed valid gets one refresh, and the check
/// is asked again with the new token (SECURITY 44).
#[test]
fn check_connection_refreshes_once_when_the_provider_refuses_the_token() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0 + 3600)));
    f.server.answer(|request, _| match request.path.as_str() {
        "/token" => Reply::tokens("at-2", Some("rt-2"), 7200),
        "/userinfo" if request.header("authorization") == Some("Bearer at-2") => {
            Reply::json(200, json!({ "sub": "alice" }))
        }
        _ => Reply::json(401, json!({ "error": "invalid_token" })),
    });
    let checked = check(&f, &account).unwrap();
    assert_eq!(checked.subject, "alice");
    assert_eq!(checked.expires_at, Some(T0 + 7200), "the refreshed expiry");
    assert_eq!(f.server.token_requests(), 1);
    assert_eq!(f.server.requests("/userinfo").len(), 2);
}

/// A refused token whose refresh is refused too marks the account `needs_relink`: it is
/// never shown as connected (SECURITY 44).
#[test]
fn check_connection_marks_the_account_needs_relink_when_the_refresh_is_refused_too() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0 + 3600)));
    f.server.answer(|request, _| match request.path.as_str() {
        "/token" => Reply::oauth_error("invalid_grant"),
        _ => Reply::json(401, json!({ "error": "invalid_token" })),
    });
    let e = check(&f, &account).unwrap_err();
    assert!(matches!(e, Error::NeedsRelink(_)), "{e:?}");
    assert_eq!(f.accounts()[0].status, AccountStatus::NeedsRelink);
    assert_eq!(f.server.token_requests(), 1);
}
