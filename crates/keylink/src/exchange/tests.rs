use super::*;

fn wire(json: &str) -> WireTokenResponse {
    serde_json::from_str(json).unwrap()
}

#[test]
fn quirky_token_responses_are_understood() {
    let t = wire(
        r#"{"access_token":"a","token_type":"bearer","expires_in":"3599","scope":"repo,user"}"#,
    )
    .into_token_set(1000);
    assert_eq!(t.expires_at, Some(4599));
    assert_eq!(
        t.scopes.as_deref(),
        Some(&["repo".to_owned(), "user".to_owned()][..])
    );
    let no_expiry = wire(r#"{"access_token":"a","token_type":"Bearer"}"#).into_token_set(1000);
    assert_eq!(no_expiry.expires_at, None);
    assert!(no_expiry.refresh_token.is_none());
}

#[test]
fn debug_of_a_token_response_shows_no_token() {
    let w = wire(
        r#"{"access_token":"canary-at","token_type":"Bearer","refresh_token":"canary-rt","id_token":"canary-id"}"#,
    );
    let first = format!("{w:?}");
    let shown = format!("{first} {:?}", w.into_token_set(0));
    assert!(!shown.contains("canary"), "{shown}");
}

/// serde fills a struct from a JSON array by position; a token answer is an object
/// (found by hand for the token_answer fuzz target's check).
#[test]
fn an_array_is_no_token_answer() {
    let array = br#"["a","bearer",3600,"r",null,null]"#;
    assert!(matches!(
        read_token_answer(200, None, array, 0),
        Err(ExchangeError::Malformed(_))
    ));
    let error_array = br#"["invalid_grant","gone"]"#;
    assert!(matches!(
        read_token_answer(400, None, error_array, 0),
        Err(ExchangeError::Malformed(_))
    ));
}

/// Token answers are untrusted input: no mutation of a real one may panic, and an
/// accepted one never expires beyond the cap (SECURITY 40).
#[test]
fn fuzz_the_token_answer_parser() {
    let seeds = [
        r#"{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r","id_token":"x.y.z","scope":"openid email"}"#,
        r#"{"access_token":"a","token_type":"bearer","expires_in":"3599","scope":"repo,user"}"#,
        r#"{"error":"invalid_grant","error_description":"gone"}"#,
    ];
    crate::mutate::mutations(&seeds, crate::mutate::JSON_ALPHABET, 30_000, |body| {
        for status in [200, 400, 503] {
            if let Ok(tokens) = read_token_answer(status, Some(u64::MAX), body, 1_000) {
                assert!(
                    tokens
                        .expires_at
                        .is_none_or(|t| t <= 1_000 + MAX_EXPIRES_IN as i64)
                );
            }
        }
    });
}

#[test]
fn retry_after_in_seconds_or_as_a_date_is_clamped() {
    use crate::http::retry_after;
    assert_eq!(retry_after(Some("7"), 0), Some(7));
    assert_eq!(retry_after(Some("18446744073709551615"), 0), Some(86_400));
    // An HTTP date 30 s after `now`.
    assert_eq!(
        retry_after(Some("Wed, 21 Oct 2015 07:28:30 GMT"), 1_445_412_480),
        Some(30)
    );
    // A date in the past: no wait.
    assert_eq!(
        retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT"), 1_445_412_500),
        Some(0)
    );
    assert_eq!(
        retry_after(Some("Fri, 31 Dec 9999 23:59:59 GMT"), 0),
        Some(86_400)
    );
    assert_eq!(retry_after(Some("soon"), 0), None);
}

#[test]
fn an_oauth_error_is_an_error_whatever_the_status() {
    for status in [200, 400, 401] {
        let answer = read_token_answer(
            status,
            None,
            br#"{"error":"authorization_pending","error_description":"wait"}"#,
            0,
        );
        assert!(
            matches!(&answer, Err(ExchangeError::Rejected { error, description })
                if error == "authorization_pending" && description.as_deref() == Some("wait")),
            "{status}: {answer:?}"
        );
    }
}

#[test]
fn unavailable_wins_over_the_body_and_keeps_retry_after() {
    let answer = read_token_answer(503, Some(7), br#"{"error":"slow_down"}"#, 0);
    assert!(matches!(
        answer,
        Err(ExchangeError::Unavailable {
            status: 503,
            retry_after: Some(7)
        })
    ));
    assert!(matches!(
        read_token_answer(429, None, b"busy", 0),
        Err(ExchangeError::Unavailable { status: 429, .. })
    ));
}

#[test]
fn tokens_are_read_leniently_and_garbage_is_malformed() {
    let tokens = read_token_answer(
        200,
        None,
        br#"{"access_token":"a","token_type":"bearer","expires_in":"60","refresh_token":"r"}"#,
        100,
    )
    .unwrap();
    assert_eq!(tokens.expires_at, Some(160));
    assert!(tokens.refresh_token.is_some());
    let garbage = read_token_answer(200, None, b"<html>canary-secret</html>", 0);
    assert!(matches!(&garbage, Err(ExchangeError::Malformed(m)) if m.is_empty()));
    assert!(!format!("{garbage:?}").contains("canary"));
    assert!(matches!(
        read_token_answer(404, None, b"", 0),
        Err(ExchangeError::Malformed(m)) if m.contains("404")
    ));
}
