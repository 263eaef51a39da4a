use super::TokenRequest;

#[test]
fn a_resource_is_kept_exactly_and_must_be_an_absolute_uri_without_fragment() {
    let request = TokenRequest::new()
        .resource("https://api.example.com")
        .unwrap();
    // Providers compare resource indicators as strings: no trailing slash is added.
    assert_eq!(request.resource_uri(), Some("https://api.example.com"));
    for bad in [
        "/relative",
        "api.example.com",
        "https://api.example.com/#top",
        "",
    ] {
        let e = TokenRequest::new().resource(bad).unwrap_err();
        assert!(e.to_string().contains("not a valid resource"), "{bad}: {e}");
        assert_eq!(e.code(), crate::ErrorCode::Config);
    }
}

#[test]
fn the_same_scopes_in_any_order_are_one_token_and_another_resource_is_another() {
    let a = TokenRequest::new().scope("b").unwrap().scope("a").unwrap();
    let b = TokenRequest::new()
        .scope("a")
        .unwrap()
        .scope("b")
        .unwrap()
        .scope("a")
        .unwrap();
    assert_eq!(a.digest(), b.digest());
    assert_eq!(a.scopes().collect::<Vec<_>>(), ["a", "b"]);
    let api = |uri: &str| a.clone().resource(uri).unwrap().digest();
    assert_ne!(
        api("https://api-a.example.test"),
        api("https://api-b.example.test")
    );
    assert_ne!(api("https://api-a.example.test"), a.digest());
    assert!(TokenRequest::new().is_empty());
    assert!(TokenRequest::new().scope("two words").is_err());
}
