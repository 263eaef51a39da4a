use super::*;

#[test]
fn every_keylink_variable_is_kept_from_the_browser() {
    for name in [
        "KEYLINK_CONFIG",
        "KEYLINK_DATA_DIR",
        "KEYLINK_UA_LOGIN",
        "keylink_app",
    ] {
        assert!(is_keylink_variable(OsStr::new(name)), "{name}");
    }
    for name in [
        "KEYLINK",
        "PATH",
        "HOME",
        "DISPLAY",
        "BROWSER",
        "XKEYLINK_CONFIG",
    ] {
        assert!(!is_keylink_variable(OsStr::new(name)), "{name}");
    }
}

#[test]
fn an_authorization_url_is_named_without_its_query() {
    let url = Url::parse(
        "https://login.example.com/authorize?state=s3cr3t&nonce=n0nce&code_challenge=c#frag",
    )
    .unwrap();
    assert_eq!(
        shown_without_query(&url),
        "https://login.example.com/authorize"
    );
}
