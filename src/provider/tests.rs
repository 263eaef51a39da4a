use super::*;

fn load(text: &str) -> Result<Config, ConfigError> {
    let mut config = Config::default();
    config.layer(Path::new("/etc/test.toml"), text)?;
    Ok(config)
}

fn error(text: &str) -> String {
    load(text)
        .expect_err("the configuration should be refused")
        .to_string()
}

const DEMO: &str = r#"
[providers.demo]
name = "Demo"
issuer = "https://127.0.0.1:4433"
client_id = "keylink-demo"
"#;

#[test]
fn a_minimal_provider_gets_the_documented_defaults() {
    let config = load(DEMO).unwrap();
    let demo = config.provider("demo").unwrap();
    assert_eq!(demo.name, "Demo");
    assert_eq!(demo.issuer.as_deref(), Some("https://127.0.0.1:4433"));
    assert_eq!(
        demo.scopes,
        ["openid", "profile", "email", "offline_access"]
    );
    assert_eq!(demo.redirect, RedirectKind::DeepLink);
    assert_eq!(demo.redirect_uri.as_str(), "dev.keylink:/callback");
    assert!(demo.is_oidc());
}

#[test]
fn errors_name_the_file_the_key_and_the_problem() {
    let cases: &[(&str, &str)] = &[
        (
            "[providers.demo]\nissuer = \"http://login.example.com\"\nclient_id = \"x\"\n",
            "providers.demo.issuer",
        ),
        (
            "[providers.demo]\nissuer = \"https://a.example\"\n",
            "providers.demo.client_id",
        ),
        ("[providers.demo]\nclient_id = \"x\"\n", "providers.demo"),
        (
            "[providers.demo]\nissuer = \"https://a.example\"\nclient_id = \"x\"\nredirect_uri = \"keylink:/cb\"\n",
            "providers.demo.redirect_uri",
        ),
        (
            "[providers.demo]\nissuer = \"https://a.example\"\nclient_id = \"x\"\n[providers.demo.authorize_params]\nstate = \"fixed\"\n",
            "providers.demo.authorize_params.state",
        ),
        (
            "[providers.demo]\nissuer = \"https://a.example\"\nclient_id = \"x\"\ntoken_endpoint = \"file:///etc/passwd\"\n",
            "providers.demo.token_endpoint",
        ),
        ("[network]\ntimeout_secs = 0\n", "network.timeout_secs"),
    ];
    for (text, key) in cases {
        let message = error(text);
        assert!(message.contains("/etc/test.toml"), "{message}");
        assert!(message.contains(key), "{key}: {message}");
    }
}

#[test]
fn syntax_errors_give_the_line_and_never_echo_the_file() {
    let text =
        "[providers.demo]\nclient_secret = \"s3cret-value\"\nredirect = \"carrier-pigeon\"\n";
    let message = error(text);
    assert!(message.starts_with("/etc/test.toml:3:"), "{message}");
    assert!(!message.contains("s3cret-value"), "{message}");
    let unknown = error("[providers.demo]\nclient_idd = \"x\"\n");
    assert!(unknown.contains("client_idd"), "{unknown}");
}

#[test]
fn a_locked_policy_provider_cannot_be_replaced_by_the_user_file() {
    let mut config = Config::default();
    let policy = "[providers.corp]\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\nlocked = true\n";
    config
        .layer(Path::new("/etc/keylink/keylink.toml"), policy)
        .unwrap();
    let user = "[providers.corp]\nissuer = \"https://evil.example\"\nclient_id = \"corp\"\n";
    config
        .layer(Path::new("/home/u/.config/keylink/keylink.toml"), user)
        .unwrap();
    assert_eq!(
        config.provider("corp").unwrap().issuer.as_deref(),
        Some("https://sso.corp.example")
    );
}

fn raw_metadata(issuer: &str, methods: Option<Vec<&str>>, auth: &str) -> RawMetadata {
    RawMetadata {
        issuer: issuer.into(),
        authorization_endpoint: Some(auth.into()),
        token_endpoint: Some(format!("{issuer}/token")),
        jwks_uri: Some(format!("{issuer}/jwks")),
        userinfo_endpoint: None,
        revocation_endpoint: None,
        device_authorization_endpoint: None,
        code_challenge_methods_supported: methods
            .map(|m| m.into_iter().map(String::from).collect()),
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        authorization_response_iss_parameter_supported: true,
    }
}

#[test]
fn discovery_requires_the_exact_issuer_and_s256() {
    let config = load(DEMO).unwrap();
    let demo = config.provider("demo").unwrap();
    let issuer = "https://127.0.0.1:4433";
    let ok = metadata_from_document(
        demo,
        issuer,
        raw_metadata(issuer, Some(vec!["S256"]), "https://127.0.0.1:4433/auth"),
    );
    assert!(ok.is_ok());
    let slash = metadata_from_document(
        demo,
        issuer,
        raw_metadata(
            "https://127.0.0.1:4433/",
            Some(vec!["S256"]),
            "https://127.0.0.1:4433/auth",
        ),
    );
    assert!(matches!(slash, Err(DiscoveryError::IssuerMismatch { .. })));
    let plain_only = metadata_from_document(
        demo,
        issuer,
        raw_metadata(issuer, Some(vec!["plain"]), "https://127.0.0.1:4433/auth"),
    );
    assert!(matches!(plain_only, Err(DiscoveryError::NoS256 { .. })));
    let file = metadata_from_document(
        demo,
        issuer,
        raw_metadata(issuer, Some(vec!["S256"]), "file:///etc/passwd"),
    );
    assert!(matches!(file, Err(DiscoveryError::InsecureEndpoint { .. })));
}
