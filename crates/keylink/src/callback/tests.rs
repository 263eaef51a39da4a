use super::*;

const REDIRECT: &str = "dev.keylink:/callback";

fn parse(url: &str) -> Result<AuthorizationResponse, RedirectError> {
    parse_redirect(url)
}

#[test]
fn a_genuine_redirect_parses() {
    let r =
        parse("dev.keylink:/callback?code=abc&state=xyz&iss=https%3A%2F%2Fidp.example").unwrap();
    assert!(r.state.ct_eq("xyz"));
    assert_eq!(r.code.as_ref().map(|c| c.secret()), Some("abc"));
    assert_eq!(r.iss.as_deref(), Some("https://idp.example"));
    assert!(redirect_matches(&r.base, &Url::parse(REDIRECT).unwrap()));
}

#[test]
fn malformed_and_hostile_redirects_are_refused() {
    let huge = format!(
        "dev.keylink:/callback?code=a&state=b&pad={}",
        "x".repeat(1 << 20)
    );
    let cases: Vec<(&str, String)> = vec![
        (
            "duplicate state",
            "dev.keylink:/callback?code=a&state=a&state=b".into(),
        ),
        (
            "duplicate code",
            "dev.keylink:/callback?code=a&code=b&state=s".into(),
        ),
        ("fragment", "dev.keylink:/callback#code=a&state=b".into()),
        (
            "fragment after query",
            "dev.keylink:/callback?code=a&state=b#x".into(),
        ),
        ("1 MiB", huge),
        ("NUL", "dev.keylink:/callback?code=a%00&state=b".into()),
        ("raw NUL", "dev.keylink:/callback?code=a\0&state=b".into()),
        ("newline", "dev.keylink:/callback?code=a&state=b\n".into()),
        ("no state", "dev.keylink:/callback?code=a".into()),
        ("no code", "dev.keylink:/callback?state=a".into()),
        (
            "userinfo",
            "http://user:pw@127.0.0.1:5000/callback?code=a&state=b".into(),
        ),
        ("not a URL", "callback?code=a&state=b".into()),
    ];
    for (name, url) in cases {
        assert!(parse(&url).is_err(), "{name} was accepted");
    }
}

#[test]
fn redirect_matching_is_exact() {
    let deep = Url::parse(REDIRECT).unwrap();
    let loopback = Url::parse("http://127.0.0.1:5000/callback").unwrap();
    let table = [
        ("dev.keylink:/callback?code=a&state=b", &deep, true),
        ("DEV.KEYLINK:/callback?code=a&state=b", &deep, true),
        ("dev.keylink:/callback/?code=a&state=b", &deep, false),
        ("dev.keylink:/Callback?code=a&state=b", &deep, false),
        ("dev.keylink:/settings?code=a&state=b", &deep, false),
        ("dev.keylink://callback?code=a&state=b", &deep, false),
        ("other.app:/callback?code=a&state=b", &deep, false),
        (
            "http://127.0.0.1:5000/callback?code=a&state=b",
            &loopback,
            true,
        ),
        (
            "http://127.0.0.1:5001/callback?code=a&state=b",
            &loopback,
            false,
        ),
        (
            "http://localhost:5000/callback?code=a&state=b",
            &loopback,
            false,
        ),
        (
            "https://127.0.0.1:5000/callback?code=a&state=b",
            &loopback,
            false,
        ),
        (
            "http://127.0.0.1:5000/callback/x?code=a&state=b",
            &loopback,
            false,
        ),
    ];
    for (url, expected, matches) in table {
        let r = parse(url).unwrap();
        assert_eq!(redirect_matches(&r.base, expected), matches, "{url}");
    }
}

#[test]
fn issuer_is_compared_byte_for_byte() {
    let idp = Some("https://idp.example");
    assert!(check_issuer(Some("https://idp.example"), idp, true).is_ok());
    assert!(check_issuer(Some("https://idp.example/"), idp, true).is_err());
    assert!(check_issuer(Some("https://evil.example"), idp, false).is_err());
    assert!(check_issuer(None, idp, true).is_err());
    assert!(check_issuer(None, idp, false).is_ok());
}

/// Mutation fuzzing of the redirect parser: a seeded generator mutates genuine redirects
/// (bytes flipped, inserted, deleted, parameters duplicated, encodings broken). The parser must
/// never panic, and whatever it accepts must obey the structural rules.
#[test]
fn fuzz_the_redirect_parser() {
    let seeds = [
        "dev.keylink:/callback/demo?code=abc&state=xyz&iss=https%3A%2F%2Fidp.example",
        "http://127.0.0.1:5000/callback/demo?state=s&error=access_denied&error_description=no",
        "dev.keylink:/callback/demo?code=%F0%9F%94%91&state=%00&iss=",
    ];
    let alphabet: &[u8] = b"?&=#%:/@\\\0\n \x7f\xff0aZ.-_~[]";
    crate::mutate::mutations(&seeds, alphabet, 100_000, |bytes| {
        let text = String::from_utf8_lossy(bytes);
        if let Ok(r) = parse_redirect(&text) {
            assert!(!text.contains('#'));
            assert!(!text.chars().any(char::is_control));
            assert!(r.code.is_some() || r.error.is_some());
            let names: Vec<_> = Url::parse(&text)
                .unwrap()
                .query_pairs()
                .map(|(k, _)| k.into_owned())
                .collect();
            let unique: std::collections::HashSet<_> = names.iter().collect();
            assert_eq!(
                names.len(),
                unique.len(),
                "a repeated parameter was accepted"
            );
        }
    });
}

#[test]
fn the_loopback_redirect_uri_carries_the_providers_path() {
    let listener = LoopbackListener::bind().unwrap();
    let uri = listener.redirect_uri("/callback/github");
    assert_eq!(uri.host_str(), Some("127.0.0.1"));
    assert_eq!(uri.path(), "/callback/github");
    assert!(uri.port().is_some());
}
