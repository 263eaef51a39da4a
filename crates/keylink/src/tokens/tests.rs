//! Fresh access tokens as an app sees them: served from what is stored while they last,
//! refreshed when they expire within the minimum lifetime asked for, refresh failures
//! classified (a dead grant, a busy provider, an answer that may have been lost), one refresh
//! for many callers, and unlinking. Against the test provider on 127.0.0.1 with an in-memory
//! keychain and a clock the test sets.
//!
//! The retry decision lives inside `refresh_with_retries`, which also sends the request and
//! sleeps; it is tested through the token endpoint, with `Retry-After: 0` so no test waits.

use std::sync::{Arc, Barrier};

use super::*;
use crate::ids::IssuerUrl;

use crate::test_harness::{Fixture, Reply, T0, token_set};

const MIN_TTL: u64 = 60;

/// A linked account whose access token `at-1` (refresh token `rt-1`) expires at `expires_at`.
fn linked(expires_at: UnixTime) -> (Fixture, Account) {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(expires_at)));
    (f, account)
}

fn token(source: &TokenSource, f: &Fixture, account: &Account) -> Result<String, Error> {
    source
        .access_token(&f.ctx, &account.id, MIN_TTL)
        .map(|t| t.secret().to_owned())
}

fn status(f: &Fixture) -> AccountStatus {
    f.accounts()[0].status
}

/// What is stored for the account: access token, refresh token, expiry.
fn stored(f: &Fixture, account: &Account) -> (String, Option<String>, Option<UnixTime>) {
    let t = f.stored_tokens(&account.id).unwrap();
    (
        t.access_token.secret().to_owned(),
        t.refresh_token.map(|r| r.secret().to_owned()),
        t.expires_at,
    )
}

fn unchanged(expires_at: UnixTime) -> (String, Option<String>, Option<UnixTime>) {
    ("at-1".into(), Some("rt-1".into()), Some(expires_at))
}

#[test]
fn a_token_with_more_than_min_ttl_left_is_served_without_a_refresh() {
    let (f, account) = linked(T0 + 61);
    let source = TokenSource::default();
    assert_eq!(token(&source, &f, &account).unwrap(), "at-1");
    // Again, now from memory.
    assert_eq!(token(&source, &f, &account).unwrap(), "at-1");
    assert_eq!(f.server.token_requests(), 0);
}

/// Refreshed early, by the minimum lifetime asked for (SECURITY 28); the rotated refresh
/// token is stored with the new access token (SECURITY 26).
#[test]
fn a_token_with_min_ttl_or_less_left_is_refreshed_and_the_rotated_tokens_stored() {
    let (f, account) = linked(T0 + 60);
    f.server
        .answer(|_, _| Reply::tokens("at-2", Some("rt-2"), 3600));
    let source = TokenSource::default();
    assert_eq!(token(&source, &f, &account).unwrap(), "at-2");
    let sent = f.server.requests("/token");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].form("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(sent[0].form("refresh_token").as_deref(), Some("rt-1"));
    assert_eq!(
        stored(&f, &account),
        ("at-2".into(), Some("rt-2".into()), Some(T0 + 3600))
    );
    assert_eq!(f.accounts()[0].expires_at, Some(T0 + 3600));
    // The new token lasts: no second refresh.
    assert_eq!(token(&source, &f, &account).unwrap(), "at-2");
    assert_eq!(f.server.token_requests(), 1);
}

/// The token held in memory is judged by the injected clock too.
#[test]
fn a_token_held_in_memory_is_refreshed_once_the_clock_brings_it_within_min_ttl() {
    let (f, account) = linked(T0 + 3600);
    f.server
        .answer(|_, _| Reply::tokens("at-2", Some("rt-2"), 3600));
    let source = TokenSource::default();
    assert_eq!(token(&source, &f, &account).unwrap(), "at-1");
    f.clock.advance(3600 - 60);
    assert!(source.cached(&f.ctx, &account.id, 60).is_none());
    assert_eq!(token(&source, &f, &account).unwrap(), "at-2");
    assert_eq!(f.server.token_requests(), 1);
}

/// A provider may keep the refresh token (RFC 6749 §6): the stored one stays.
#[test]
fn a_refresh_answer_without_a_refresh_token_keeps_the_stored_one() {
    let (f, account) = linked(T0);
    f.server.answer(|_, _| Reply::tokens("at-2", None, 3600));
    assert_eq!(
        token(&TokenSource::default(), &f, &account).unwrap(),
        "at-2"
    );
    assert_eq!(stored(&f, &account).1.as_deref(), Some("rt-1"));
}

#[test]
fn an_expiring_token_without_a_refresh_token_is_reported_and_nothing_is_sent() {
    let f = Fixture::new();
    let account = f.seed("alice", &token_set("at-1", None, Some(T0 + 30)));
    let e = token(&TokenSource::default(), &f, &account).unwrap_err();
    assert!(
        matches!(&e, Error::NoRefreshToken(id) if *id == account.id),
        "{e:?}"
    );
    assert_eq!(f.server.token_requests(), 0);
    assert_eq!(status(&f), AccountStatus::Ok);
}

/// A dead grant is not retried and marks the account `needs_relink`; from then on no
/// refresh is tried (SECURITY 27).
#[test]
fn a_dead_grant_marks_the_account_needs_relink_without_retrying() {
    for error in ["invalid_grant", "invalid_client", "unauthorized_client"] {
        let (f, account) = linked(T0);
        f.server.answer(move |_, _| Reply::oauth_error(error));
        let source = TokenSource::default();
        let e = token(&source, &f, &account).unwrap_err();
        assert!(
            matches!(&e, Error::NeedsRelink(id) if *id == account.id),
            "{error}: {e:?}"
        );
        assert_eq!(f.server.token_requests(), 1, "{error}");
        assert_eq!(status(&f), AccountStatus::NeedsRelink, "{error}");
        let again = token(&source, &f, &account).unwrap_err();
        assert!(matches!(again, Error::NeedsRelink(_)), "{again:?}");
        assert_eq!(f.server.token_requests(), 1, "{error}: no second refresh");
    }
}

/// Another error code is a failure of this refresh, not of the grant.
#[test]
fn another_oauth_error_fails_the_refresh_and_leaves_the_account_linked() {
    let (f, account) = linked(T0);
    f.server.answer(|_, _| Reply::oauth_error("invalid_scope"));
    let e = token(&TokenSource::default(), &f, &account).unwrap_err();
    assert!(
        matches!(&e, Error::Exchange(exchange::ExchangeError::Rejected { error, .. }) if error == "invalid_scope"),
        "{e:?}"
    );
    assert_eq!(f.server.token_requests(), 1);
    assert_eq!(status(&f), AccountStatus::Ok);
    assert_eq!(stored(&f, &account), unchanged(T0));
}

/// A busy provider is asked [`REFRESH_ATTEMPTS`] times in all, and the stored tokens and
/// the account's status stay as they were (SECURITY 27).
#[test]
fn an_unavailable_provider_is_tried_refresh_attempts_times_and_nothing_changes() {
    for status_code in [503, 500, 429] {
        let (f, account) = linked(T0);
        f.server.answer(move |_, _| {
            Reply::json(status_code, serde_json::json!({})).with_header("Retry-After", "0")
        });
        let e = token(&TokenSource::default(), &f, &account).unwrap_err();
        assert!(
            matches!(&e, Error::Exchange(exchange::ExchangeError::Unavailable { status, .. }) if *status == status_code),
            "{e:?}"
        );
        let attempts = usize::try_from(REFRESH_ATTEMPTS).unwrap();
        assert_eq!(f.server.token_requests(), attempts, "HTTP {status_code}");
        assert_eq!(stored(&f, &account), unchanged(T0));
        assert_eq!(status(&f), AccountStatus::Ok);
    }
}

#[test]
fn a_provider_back_on_the_next_attempt_refreshes() {
    let (f, account) = linked(T0);
    f.server.answer(|_, earlier| match earlier {
        0 => Reply::json(429, serde_json::json!({})).with_header("Retry-After", "0"),
        _ => Reply::tokens("at-2", Some("rt-2"), 3600),
    });
    assert_eq!(
        token(&TokenSource::default(), &f, &account).unwrap(),
        "at-2"
    );
    assert_eq!(f.server.token_requests(), 2);
    assert_eq!(stored(&f, &account).1.as_deref(), Some("rt-2"));
}

/// A `Retry-After` beyond [`MAX_RETRY_WAIT`], in seconds or as an HTTP date (read against the
/// injected clock), ends the refresh at once; an absurd one neither panics nor waits
/// (SECURITY 40). A date already past is no wait at all.
#[test]
fn retry_after_beyond_max_retry_wait_ends_the_refresh_at_once() {
    let http_date = |at: UnixTime| {
        let at = std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(at).unwrap());
        httpdate::fmt_http_date(at)
    };
    let too_long = i64::try_from(MAX_RETRY_WAIT.as_secs()).unwrap() + 1;
    let cases = [
        (too_long.to_string(), 1),
        ("18446744073709551615".to_owned(), 1),
        (http_date(T0 + too_long), 1),
        (http_date(T0 - 3600), REFRESH_ATTEMPTS),
    ];
    for (retry_after, requests) in cases {
        let (f, account) = linked(T0);
        let header = retry_after.clone();
        f.server.answer(move |_, _| {
            Reply::json(503, serde_json::json!({})).with_header("Retry-After", &header)
        });
        let e = token(&TokenSource::default(), &f, &account).unwrap_err();
        assert!(
            matches!(
                e,
                Error::Exchange(exchange::ExchangeError::Unavailable { .. })
            ),
            "{e:?}"
        );
        assert_eq!(
            f.server.token_requests(),
            usize::try_from(requests).unwrap(),
            "Retry-After: {retry_after}"
        );
        assert_eq!(stored(&f, &account), unchanged(T0));
    }
}

/// A refresh request that may have reached the provider is never sent again: the provider
/// may have rotated the refresh token already, and replaying it would revoke the grant
/// (RFC 9700 §4.14.2).
#[test]
fn a_refresh_whose_answer_was_lost_is_not_sent_again() {
    let (f, account) = linked(T0);
    f.server.answer(|_, _| Reply::hang_up());
    let e = token(&TokenSource::default(), &f, &account).unwrap_err();
    assert!(
        matches!(
            e,
            Error::Exchange(exchange::ExchangeError::Transport { unsent: false, .. })
        ),
        "{e:?}"
    );
    assert_eq!(f.server.token_requests(), 1);
    assert_eq!(stored(&f, &account), unchanged(T0));
    assert_eq!(status(&f), AccountStatus::Ok);
}

/// Ten callers at expiry, in two token sources (as two processes of an app have), cause
/// one refresh, and all get its token (SECURITY 25).
#[test]
fn ten_callers_at_expiry_cause_one_refresh() {
    let (f, account) = linked(T0);
    f.server
        .answer(|_, earlier| Reply::tokens(&format!("at-{}", earlier + 2), Some("rt-2"), 3600));
    let sources = [
        Arc::new(TokenSource::default()),
        Arc::new(TokenSource::default()),
    ];
    let start = Arc::new(Barrier::new(10));
    let ctx = f.ctx.clone();
    let callers: Vec<_> = (0..10)
        .map(|i| {
            let (source, start, ctx) = (sources[i % 2].clone(), start.clone(), ctx.clone());
            let id = account.id.clone();
            std::thread::spawn(move || {
                start.wait();
                source
                    .access_token(&ctx, &id, MIN_TTL)
                    .map(|t| t.secret().to_owned())
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.join().unwrap().unwrap(), "at-2");
    }
    assert_eq!(f.server.token_requests(), 1);
}

/// A token the provider refused although it had not expired is replaced by one refresh,
/// and a provider that refuses the new one too sets off no second refresh within
/// [`REJECTED_TOKEN_REFRESH_INTERVAL`] (SECURITY 44, 49).
#[test]
fn a_refused_token_is_replaced_at_most_once_a_minute() {
    let (f, account) = linked(T0 + 3600);
    f.server
        .answer(|_, earlier| Reply::tokens(&format!("at-{}", earlier + 2), None, 3600));
    let source = TokenSource::default();
    let replace = |rejected: &str| {
        source
            .replace_rejected_token(&f.ctx, &account.id, &AccessToken::new(rejected))
            .map(|t| t.secret().to_owned())
    };
    assert_eq!(replace("at-1").unwrap(), "at-2");
    assert_eq!(f.server.token_requests(), 1);
    // A caller still holding the old token gets the one that replaced it.
    assert_eq!(replace("at-1").unwrap(), "at-2");
    assert_eq!(f.server.token_requests(), 1);
    let e = replace("at-2").unwrap_err();
    assert!(
        matches!(&e, Error::TokenRejectedAgain(id) if *id == account.id),
        "{e:?}"
    );
    assert_eq!(f.server.token_requests(), 1);
    f.clock
        .advance(i64::try_from(REJECTED_TOKEN_REFRESH_INTERVAL.as_secs()).unwrap());
    assert_eq!(replace("at-2").unwrap(), "at-3");
    assert_eq!(f.server.token_requests(), 2);
}

/// Tokens go only to the issuer they came from: when the provider's configuration now
/// points elsewhere, nothing is sent and the account must be linked again (SECURITY 52).
#[test]
fn tokens_of_an_account_whose_issuer_changed_are_sent_nowhere() {
    let f = Fixture::new();
    let mut account = f.seed("alice", &token_set("at-1", Some("rt-1"), Some(T0)));
    f.ctx
        .index()
        .unwrap()
        .update(|accounts| accounts[0].issuer = IssuerUrl::new("https://old-idp.example").unwrap())
        .unwrap();
    account.issuer = IssuerUrl::new("https://old-idp.example").unwrap();
    let e = token(&TokenSource::default(), &f, &account).unwrap_err();
    assert!(matches!(e, Error::IssuerChanged { .. }), "{e:?}");
    assert_eq!(f.server.token_requests(), 0);
    assert_eq!(status(&f), AccountStatus::NeedsRelink);
}

/// Unlinking revokes the refresh token (RFC 7009) and deletes the account and its tokens
/// here; a failed revocation is reported and the account is deleted all the same
/// (SECURITY 29).
#[test]
fn unlink_revokes_the_refresh_token_and_always_deletes_the_account() {
    for (answer, revocation) in [
        (200, Revocation::Revoked),
        (
            503,
            Revocation::Failed("the provider answered HTTP 503".into()),
        ),
    ] {
        let (f, account) = linked(T0 + 3600);
        f.server
            .answer(move |_, _| Reply::json(answer, serde_json::json!({})));
        let source = TokenSource::default();
        assert_eq!(token(&source, &f, &account).unwrap(), "at-1");
        let report = source.unlink(&f.ctx, &account.id, None).unwrap();
        assert_eq!(report.revocation, revocation);
        assert_eq!(report.account.id, account.id);
        let sent = f.server.requests("/revoke");
        assert_eq!(sent.len(), 1);
        assert_eq!(sent[0].form("token").as_deref(), Some("rt-1"));
        assert_eq!(
            sent[0].form("token_type_hint").as_deref(),
            Some("refresh_token")
        );
        assert!(f.accounts().is_empty());
        assert!(f.stored_tokens(&account.id).is_none());
        // The token held in memory went with it.
        let e = token(&source, &f, &account).unwrap_err();
        assert!(matches!(e, Error::UnknownAccount(_)), "{e:?}");
    }
}
