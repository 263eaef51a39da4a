use super::*;

#[test]
fn debug_of_network_settings_hides_a_proxy_password() {
    let settings = NetworkSettings {
        https_proxy: Some("http://ann:canary-password@proxy.example:3128".into()),
        ..NetworkSettings::default()
    };
    let shown = format!("{settings:?}");
    assert!(!shown.contains("canary"), "{shown}");
    assert!(shown.contains("[redacted]"), "{shown}");
}

/// SECURITY 47: a policy's proxy used to get the user's `NO_PROXY=*` added, which
/// turned the proxy off for every host.
#[test]
fn the_environment_adds_nothing_to_proxy_settings_the_configuration_makes() {
    let env = crate::app::Environment::capture(|name| match name {
        "HTTPS_PROXY" => Some("http://user-proxy.example:8080".into()),
        "NO_PROXY" => Some("*".into()),
        _ => None,
    });
    let policy_proxy = NetworkSettings {
        https_proxy: Some("http://proxy.corp.example:3128".into()),
        ..NetworkSettings::default()
    };
    let mut settings = policy_proxy.clone();
    settings.apply_environment(&env);
    assert_eq!(settings, policy_proxy);
    let policy_no_proxy = NetworkSettings {
        no_proxy: Some("intranet.corp.example".into()),
        ..NetworkSettings::default()
    };
    let mut settings = policy_no_proxy.clone();
    settings.apply_environment(&env);
    assert_eq!(settings, policy_no_proxy);
    // Nothing configured: both come from the environment.
    let mut settings = NetworkSettings::default();
    settings.apply_environment(&env);
    assert_eq!(
        settings.https_proxy.as_deref(),
        Some("http://user-proxy.example:8080")
    );
    assert_eq!(settings.no_proxy.as_deref(), Some("*"));
}

#[test]
fn only_https_or_loopback_http_is_allowed() {
    let cases = [
        ("https://login.example.com/authorize", true),
        ("http://127.0.0.1:4433/auth", true),
        ("http://[::1]:4433/auth", true),
        ("http://localhost/auth", true),
        ("http://login.example.com/authorize", false),
        ("file:///etc/passwd", false),
        ("smb://host/share", false),
        ("javascript:alert(1)", false),
        ("https://user:pw@login.example.com/", false),
    ];
    for (url, allowed) in cases {
        let parsed = Url::parse(url).unwrap();
        assert_eq!(is_allowed_endpoint(&parsed), allowed, "{url}");
    }
}
