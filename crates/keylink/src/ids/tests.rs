use super::*;

#[test]
fn ids_are_stored_and_shown_as_plain_strings() {
    let id = AccountId::new("demo-3f2a9c1b07");
    assert_eq!(
        serde_json::to_string(&id).unwrap_or_default(),
        "\"demo-3f2a9c1b07\""
    );
    let back: AccountId =
        serde_json::from_str("\"demo-3f2a9c1b07\"").unwrap_or_else(|_| AccountId::new(""));
    assert_eq!(back, id);
    assert_eq!(id.to_string(), "demo-3f2a9c1b07");
    assert_eq!(id, "demo-3f2a9c1b07");
    assert!(id.as_str().starts_with("demo-"), "reads as text");
}
