use super::*;

#[test]
fn every_code_reads_back_from_its_text() {
    for code in ErrorCode::ALL {
        assert_eq!(ErrorCode::parse(code.as_str()), Some(*code));
    }
    assert_eq!(ErrorCode::parse("no_such_code"), None);
}

#[test]
fn a_reconnect_as_someone_else_has_its_own_code_and_says_only_what_happened() {
    // The app added "check your network connection" to it, as to every provider error.
    let e = Error::WrongAccount {
        signed_in_as: "carol@example.test".into(),
        expected: "bob@example.test".into(),
    };
    assert_eq!(e.code(), ErrorCode::WrongAccount);
    assert_eq!(e.code().as_str(), "wrong_account");
    assert_eq!(
        e.to_string(),
        "you signed in as carol@example.test, not bob@example.test, so nothing was changed: \
         bob@example.test is as it was and carol@example.test was not added"
    );
    assert_eq!(
        e.remedy().as_deref(),
        Some("reconnect again and sign in as bob@example.test")
    );
}

#[test]
fn codes_serialise_as_their_text_and_cover_cancel_and_browser() {
    for code in [
        ErrorCode::Cancelled,
        ErrorCode::Browser,
        ErrorCode::NeedsRelink,
    ] {
        let json = serde_json::to_string(&code).unwrap_or_default();
        assert_eq!(json, format!("\"{}\"", code.as_str()));
    }
    assert_eq!(
        Error::Loopback(LoopbackError::Cancelled).code(),
        ErrorCode::Cancelled
    );
    assert_eq!(Error::Browser("x".into()).code(), ErrorCode::Browser);
    assert_eq!(
        Error::LinkTimedOut(std::time::Duration::from_secs(5)).code(),
        ErrorCode::Timeout
    );
    assert_eq!(
        Error::NeedsRelink(crate::AccountId::new("a")).code(),
        ErrorCode::NeedsRelink
    );
}

/// Extra scopes are RFC 6749 §3.3 scope-tokens; anything else is named in the error.
#[test]
fn an_extra_scope_must_be_one_printable_ascii_word() {
    for good in [
        "calendar",
        "https://www.googleapis.com/auth/calendar.readonly",
        "read:user",
        "!#[]~",
    ] {
        assert!(super::check_scope(good).is_ok(), "{good}");
    }
    let long = "a".repeat(crate::text::MAX_SCOPE_LEN + 1);
    for bad in [
        "",
        "a b",
        "a\"b",
        "a\\b",
        "a\tb",
        "caf\u{e9}",
        "a\nb",
        &long,
    ] {
        let e = super::check_scope(bad).unwrap_err();
        assert!(matches!(e, crate::Error::InvalidScope(_)), "{bad:?}: {e:?}");
        assert_eq!(e.code(), crate::ErrorCode::Config, "{bad:?}");
    }
    assert_eq!(
        super::check_scope("a b").unwrap_err().to_string(),
        "\"a b\" is not a valid scope: a scope is one word of printable ASCII characters without quotes or backslashes"
    );
}
