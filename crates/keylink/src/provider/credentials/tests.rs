use std::path::Path;

use super::*;
use crate::provider::{Config, ConfigError};

#[test]
fn a_server_is_an_origin_with_default_ports_left_out() {
    let git = ServerOrigin::parse("https://git.example.com").unwrap();
    assert_eq!(git.as_str(), "https://git.example.com");
    assert_eq!(
        ServerOrigin::parse("https://git.example.com:443").unwrap(),
        git
    );
    assert_eq!(
        ServerOrigin::parse("https://git.example.com/").unwrap(),
        git
    );
    assert_eq!(
        ServerOrigin::from_request("https", "git.example.com").unwrap(),
        git
    );
    assert_eq!(
        ServerOrigin::from_request("http", "127.0.0.1:8080")
            .unwrap()
            .as_str(),
        "http://127.0.0.1:8080"
    );
    assert_ne!(
        ServerOrigin::parse("https://git.example.com:8443").unwrap(),
        git
    );
}

#[test]
fn anything_but_an_https_origin_is_refused_with_the_reason() {
    for (text, reason) in [
        ("http://git.example.com", "https"),
        ("https://git.example.com/org/repo", "no path"),
        ("https://alice:pw@git.example.com", "user name"),
        ("https://git.example.com/?x=1", "no path"),
        ("git.example.com", "not a URL"),
        ("file:///etc/passwd", "https"),
    ] {
        let problem = ServerOrigin::parse(text).unwrap_err();
        assert!(problem.contains(reason), "{text}: {problem}");
    }
}

fn layered(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    config.layer(Path::new("/home/alice/keylink.toml"), text)?;
    Ok(config)
}

#[test]
fn credentials_name_an_account_and_a_user_name_per_server() {
    let config = layered(
        r#"
        [credentials."https://git.example.com:443"]
        account = "alice@example.test"
        [credentials."https://registry.example.com"]
        account = "work-3f2a9c1b07"
        username = "alice"
        "#,
    )
    .unwrap();
    let git = &config.credentials[&ServerOrigin::parse("https://git.example.com").unwrap()];
    assert_eq!(git.account, "alice@example.test");
    assert_eq!(git.username, "oauth2", "the default user name");
    let registry =
        &config.credentials[&ServerOrigin::parse("https://registry.example.com").unwrap()];
    assert_eq!(registry.username, "alice");
}

#[test]
fn a_bad_credentials_entry_names_the_file_the_key_and_the_problem() {
    for (text, key) in [
        (
            "[credentials.\"https://git.example.com/org\"]\naccount = \"a\"",
            "credentials.\"https://git.example.com/org\"",
        ),
        (
            "[credentials.\"https://git.example.com\"]\naccount = \" \"",
            ".account",
        ),
        (
            "[credentials.\"https://git.example.com\"]\naccount = \"a\"\nusername = \"a:b\"",
            ".username",
        ),
    ] {
        let message = layered(text).unwrap_err().to_string();
        assert!(message.contains("/home/alice/keylink.toml"), "{message}");
        assert!(message.contains(key), "{message}");
    }
    let unknown =
        layered("[credentials.\"https://git.example.com\"]\naccount = \"a\"\npassword = \"x\"");
    assert!(
        unknown.is_err(),
        "unknown keys are refused: a password is never configured"
    );
}
