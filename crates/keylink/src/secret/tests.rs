use super::*;

#[test]
fn debug_never_shows_the_value() {
    let canary = "canary-9f1c2e";
    let all: Vec<String> = vec![
        format!("{:?}", AccessToken::new(canary)),
        format!("{:?}", RefreshToken::new(canary)),
        format!("{:?}", IdToken::new(canary)),
        format!("{:?}", PkceCodeVerifier::new(canary)),
        format!("{:?}", CsrfState::new(canary)),
        format!("{:?}", Nonce::new(canary)),
        format!("{:?}", AuthorizationCode::new(canary)),
        format!("{:?}", ClientSecret::new(canary)),
        format!("{:?}", SecretString::new(canary)),
    ];
    for shown in &all {
        assert!(!shown.contains(canary), "{shown}");
        assert!(shown.ends_with("([redacted])"), "{shown}");
    }
    assert_eq!(all[0], "AccessToken([redacted])");
}

#[test]
fn constant_time_comparison_matches_equality() {
    let state = CsrfState::new("abc");
    assert!(state.ct_eq("abc"));
    assert!(!state.ct_eq("abd"));
    assert!(!state.ct_eq("ab"));
    // `==` between two secrets is the same constant-time comparison.
    assert_eq!(AccessToken::new("abc"), AccessToken::new("abc"));
    assert_ne!(AccessToken::new("abc"), AccessToken::new("abd"));
    assert_ne!(AccessToken::new("abc"), AccessToken::new("ab"));
}
