use super::*;

const T0: UnixTime = 1_800_000_000;

fn rejected(code: &str) -> Result<TokenSet, ExchangeError> {
    Err(ExchangeError::Rejected {
        error: code.into(),
        description: None,
    })
}

fn tokens() -> TokenSet {
    TokenSet {
        access_token: crate::secret::AccessToken::new("at"),
        refresh_token: None,
        id_token: None,
        expires_at: None,
        scopes: None,
    }
}

fn wait(step: Step) -> Duration {
    match step {
        Step::Wait(d) => d,
        other => panic!("expected to wait, got {other:?}"),
    }
}

fn failure(step: Step) -> Stop {
    match step {
        Step::Fail(e) => e,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[test]
fn the_interval_defaults_to_five_seconds_and_is_never_below_one() {
    assert_eq!(
        Polling::new(None, Duration::from_secs(600), T0).interval,
        Duration::from_secs(5)
    );
    assert_eq!(
        Polling::new(Some(0), Duration::from_secs(600), T0).interval,
        Duration::from_secs(1)
    );
    assert_eq!(
        Polling::new(Some(12), Duration::from_secs(600), T0).interval,
        Duration::from_secs(12)
    );
}

#[test]
fn the_code_expires_expires_in_after_receipt_by_the_injected_clock() {
    let polling = Polling::new(Some(5), Duration::from_secs(600), T0);
    assert!(!polling.is_expired(T0));
    assert!(!polling.is_expired(T0 + 599));
    assert!(polling.is_expired(T0 + 600));
    let already = Polling::new(Some(5), Duration::ZERO, T0);
    assert!(already.is_expired(T0));
}

#[test]
fn pending_keeps_the_pace_and_slow_down_adds_five_seconds_each_time() {
    let mut polling = Polling::new(Some(2), Duration::from_secs(600), T0);
    assert_eq!(
        wait(polling.step(rejected("authorization_pending"))),
        Duration::from_secs(2)
    );
    assert_eq!(
        wait(polling.step(rejected("slow_down"))),
        Duration::from_secs(7)
    );
    // The slower pace holds for every later poll (RFC 8628 §3.5).
    assert_eq!(
        wait(polling.step(rejected("authorization_pending"))),
        Duration::from_secs(7)
    );
    assert_eq!(
        wait(polling.step(rejected("slow_down"))),
        Duration::from_secs(12)
    );
}

#[test]
fn approval_denial_expiry_and_other_errors_end_polling() {
    let mut polling = Polling::new(Some(1), Duration::from_secs(600), T0);
    assert!(matches!(polling.step(Ok(tokens())), Step::Done(_)));
    assert!(matches!(
        failure(polling.step(rejected("access_denied"))),
        Stop::Device(DeviceError::Denied)
    ));
    assert!(matches!(
        failure(polling.step(rejected("expired_token"))),
        Stop::Device(DeviceError::Expired)
    ));
    assert!(matches!(
        failure(polling.step(rejected("invalid_grant"))),
        Stop::Exchange(ExchangeError::Rejected { error, .. }) if error == "invalid_grant"
    ));
    assert!(matches!(
        failure(polling.step(Err(ExchangeError::Malformed(String::new())))),
        Stop::Exchange(ExchangeError::Malformed(_))
    ));
}

#[test]
fn an_unreachable_provider_is_polled_until_the_code_expires_then_reported() {
    let mut polling = Polling::new(Some(3), Duration::from_secs(10), T0);
    let transport = ExchangeError::Transport {
        reason: "connection failed".into(),
        unsent: true,
    };
    assert_eq!(wait(polling.step(Err(transport))), Duration::from_secs(3));
    let busy = ExchangeError::Unavailable {
        status: 503,
        retry_after: Some(8),
    };
    // Retry-After longer than the interval is honoured.
    assert_eq!(wait(polling.step(Err(busy))), Duration::from_secs(8));
    assert!(polling.is_expired(T0 + 10));
    assert!(matches!(
        polling.expired(),
        Stop::Exchange(ExchangeError::Unavailable { status: 503, .. })
    ));
    // Once the provider answers again, an expiry is just an expiry.
    let mut polling = Polling::new(Some(3), Duration::from_secs(10), T0);
    let _ = polling.step(Err(ExchangeError::Unavailable {
        status: 502,
        retry_after: None,
    }));
    let _ = polling.step(rejected("authorization_pending"));
    assert!(matches!(
        polling.expired(),
        Stop::Device(DeviceError::Expired)
    ));
}

fn answer(json: &str) -> Result<(DeviceCode, DeviceAuthorization, Option<u64>), DeviceError> {
    read_device_authorization(200, json.as_bytes())
}

#[test]
fn a_standard_device_authorization_response_is_read() {
    let (code, auth, interval) = answer(
        r#"{"device_code":"canary-dc","user_code":"WDJB-MJHT","verification_uri":"https://example.com/device",
            "verification_uri_complete":"https://example.com/device?user_code=WDJB-MJHT","expires_in":1800,"interval":5}"#,
    )
    .unwrap();
    assert_eq!(code.secret(), "canary-dc");
    assert_eq!(auth.user_code, "WDJB-MJHT");
    assert_eq!(auth.verification_uri.as_str(), "https://example.com/device");
    assert_eq!(
        auth.verification_uri_complete.as_ref().map(Url::as_str),
        Some("https://example.com/device?user_code=WDJB-MJHT")
    );
    assert_eq!(auth.expires_in, Duration::from_secs(1800));
    assert_eq!(interval, Some(5));
    let shown = format!("{code:?} {auth:?}");
    assert!(!shown.contains("canary"), "{shown}");
}

#[test]
fn provider_quirks_in_device_authorization_responses_are_tolerated() {
    // Google's older spelling, numbers as strings, no interval.
    let (_, auth, interval) = answer(
        r#"{"device_code":"d","user_code":"ABC-DEF","verification_url":"https://www.google.com/device","expires_in":"1800"}"#,
    )
    .unwrap();
    assert_eq!(
        auth.verification_uri.as_str(),
        "https://www.google.com/device"
    );
    assert_eq!(auth.expires_in, Duration::from_secs(1800));
    assert_eq!(interval, None);
    // An OAuth error is a refusal whatever the status.
    for status in [200, 400] {
        let refused = read_device_authorization(
            status,
            br#"{"error":"unauthorized_client","error_description":"no device grant"}"#,
        );
        assert!(
            matches!(&refused, Err(DeviceError::Refused { error, .. }) if error == "unauthorized_client"),
            "{refused:?}"
        );
    }
    assert!(matches!(
        read_device_authorization(503, b"<html>down</html>"),
        Err(DeviceError::Unreachable(_))
    ));
}

#[test]
fn unsafe_or_unusable_device_authorization_responses_are_refused() {
    let unsafe_uri = answer(
        r#"{"device_code":"d","user_code":"A","verification_uri":"http://evil.example/device","expires_in":600}"#,
    );
    assert!(matches!(
        unsafe_uri,
        Err(DeviceError::UnsafeVerificationUri(_))
    ));
    let file = answer(
        r#"{"device_code":"d","user_code":"A","verification_uri":"file:///etc/passwd","expires_in":600}"#,
    );
    assert!(matches!(file, Err(DeviceError::UnsafeVerificationUri(_))));
    // A complete URI that is not safe is dropped; the plain one is still shown.
    let (_, auth, _) = answer(
        r#"{"device_code":"d","user_code":"A","verification_uri":"https://ok.example/device",
            "verification_uri_complete":"javascript:alert(1)","expires_in":600}"#,
    )
    .unwrap();
    assert_eq!(auth.verification_uri_complete, None);
    // A user code with terminal escapes is never printed.
    let escape = answer(
        r#"{"device_code":"d","user_code":"A\u001b[2J","verification_uri":"https://ok.example/device","expires_in":600}"#,
    );
    assert!(matches!(escape, Err(DeviceError::Malformed(_))));
    for missing in [
        r#"{"user_code":"A","verification_uri":"https://ok.example/d","expires_in":600}"#,
        r#"{"device_code":"d","verification_uri":"https://ok.example/d","expires_in":600}"#,
        r#"{"device_code":"d","user_code":"A","expires_in":600}"#,
        r#"{"device_code":"d","user_code":"A","verification_uri":"https://ok.example/d"}"#,
    ] {
        assert!(
            matches!(answer(missing), Err(DeviceError::Malformed(_))),
            "{missing}"
        );
    }
    assert!(matches!(
        read_device_authorization(200, b"not json"),
        Err(DeviceError::Malformed(_))
    ));
}

#[test]
fn device_errors_never_show_the_device_code() {
    let refused = read_device_authorization(400, br#"{"error":"invalid_scope"}"#).unwrap_err();
    assert!(refused.to_string().contains("invalid_scope"));
    let code = DeviceCode::new("canary-device-code");
    assert_eq!(format!("{code:?}"), "DeviceCode([redacted])");
}

/// A device authorization answer with a hostile interval is refused, not turned into a
/// panic when the wait is added to the clock (SECURITY 40).
#[test]
fn an_absurd_polling_interval_is_refused() {
    let body = br#"{"device_code":"d","user_code":"ABCD","verification_uri":"https://idp.example/device","expires_in":600,"interval":18446744073709551615}"#;
    let e = read_device_authorization(200, body).unwrap_err();
    assert!(e.to_string().contains("polling interval"), "{e}");
    let huge_expiry = br#"{"device_code":"d","user_code":"ABCD","verification_uri":"https://idp.example/device","expires_in":18446744073709551615,"interval":5}"#;
    let (_, authorization, _) = read_device_authorization(200, huge_expiry).unwrap();
    assert!(authorization.expires_in <= MAX_CODE_LIFETIME);
    // Slowing down never overflows either.
    let mut polling = Polling::new(Some(300), Duration::from_secs(600), T0);
    for _ in 0..10 {
        assert!(
            matches!(polling.step(rejected("slow_down")), Step::Wait(w) if w <= MAX_POLL_INTERVAL)
        );
    }
}

#[test]
fn fuzz_the_device_authorization_parser() {
    let seeds = [
        r#"{"device_code":"d","user_code":"ABCD-EFGH","verification_uri":"https://idp.example/device","verification_uri_complete":"https://idp.example/device?c=1","expires_in":600,"interval":5}"#,
        r#"{"device_code":"d","user_code":"A","verification_url":"https://idp.example/d","expires_in":"1800","interval":"5"}"#,
        r#"{"error":"unauthorized_client","error_description":"no"}"#,
    ];
    crate::mutate::mutations(&seeds, crate::mutate::JSON_ALPHABET, 30_000, |body| {
        for status in [200, 400] {
            if let Ok((_, authorization, interval)) = read_device_authorization(status, body) {
                assert!(is_allowed_endpoint(&authorization.verification_uri));
                assert!(interval.is_none_or(|i| i <= MAX_POLL_INTERVAL.as_secs()));
                let mut polling = Polling::new(interval, authorization.expires_in, T0);
                let _ = polling.step(rejected("slow_down"));
            }
        }
    });
}
