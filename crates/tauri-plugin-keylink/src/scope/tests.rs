use super::glob_matches;

#[test]
fn stars_match_any_run_and_the_rest_matches_exactly() {
    let m = |p: &str, t: &str| glob_matches(p.as_bytes(), t.as_bytes());
    assert!(m(
        "https://api.example.com/v1/files/*",
        "https://api.example.com/v1/files/a/b?x=1"
    ));
    assert!(m(
        "https://api.example.com/v1/files/*",
        "https://api.example.com/v1/files/"
    ));
    assert!(!m(
        "https://api.example.com/v1/files/*",
        "https://api.example.com/v1/users/1"
    ));
    assert!(!m(
        "https://api.example.com/v1/files/*",
        "https://api.example.com/v1/files"
    ));
    assert!(m("https://127.0.0.1:*/me", "https://127.0.0.1:4433/me"));
    assert!(!m("https://127.0.0.1:*/me", "https://127.0.0.1:4433/me/x"));
    assert!(m("*", "https://anything/"));
    assert!(m("https://a/*/c*", "https://a/b/c"));
    assert!(!m("https://a/b", "https://a/bc"));
    // Many stars against a long text stay quick.
    let long = format!("https://a/{}", "a".repeat(5000));
    assert!(!m(&format!("https://a/{}b", "*a".repeat(50)), &long));
}
