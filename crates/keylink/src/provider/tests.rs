use std::path::Path;
use std::time::Duration;

use super::discovery::{RawMetadata, metadata_from_document};
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
    let demo = config.provider(&crate::ProviderId::new("demo")).unwrap();
    assert_eq!(demo.name, "Demo");
    assert_eq!(demo.issuer.as_deref(), Some("https://127.0.0.1:4433"));
    assert_eq!(
        demo.scopes,
        ["openid", "profile", "email", "offline_access"]
    );
    assert_eq!(demo.redirect, RedirectKind::DeepLink);
    // Each provider its own redirect URI (RFC 9700 §4.4.2).
    let app = crate::app::AppIdentity::keylink();
    assert_eq!(demo.redirect_uri, None);
    assert_eq!(
        demo.deep_link_redirect(&app).as_str(),
        "dev.keylink:/callback/demo"
    );
    assert_eq!(
        demo.registered_redirect_uri(&app),
        "dev.keylink:/callback/demo"
    );
    let other = crate::app::AppIdentity::new("com.example.notes").unwrap();
    assert_eq!(
        demo.registered_redirect_uri(&other),
        "com.example.notes:/callback/demo"
    );
    assert_eq!(demo.loopback_path(), "/callback/demo");
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
fn optional_scopes_are_kept_once_each_and_none_by_default() {
    let config = load(&format!(
        "{DEMO}optional_scopes = [\"calendar\", \"https://api.example.com/files.read\", \"calendar\"]\n"
    ))
    .unwrap();
    let demo = config.provider(&crate::ProviderId::new("demo")).unwrap();
    assert_eq!(
        demo.optional_scopes,
        ["calendar", "https://api.example.com/files.read"]
    );
    // Asking for them is up to the app: the scopes of a first sign-in are unchanged.
    assert_eq!(
        demo.scopes,
        ["openid", "profile", "email", "offline_access"]
    );
    let plain = load(DEMO).unwrap();
    assert!(
        plain
            .provider(&crate::ProviderId::new("demo"))
            .unwrap()
            .optional_scopes
            .is_empty()
    );
}

#[test]
fn an_optional_scope_that_could_never_be_asked_for_is_refused() {
    for bad in ["", "two words", "quo\\\"te", "back\\\\slash", "tab\\there"] {
        let message = error(&format!("{DEMO}optional_scopes = [\"{bad}\"]\n"));
        assert!(message.starts_with("/etc/test.toml: "), "{bad}: {message}");
        assert!(
            message.contains("`providers.demo.optional_scopes` contains the invalid scope"),
            "{bad}: {message}"
        );
        assert!(message.contains("one word of printable ASCII"), "{message}");
    }
    let message = error(&format!("{DEMO}optional_scopes = \"calendar\"\n"));
    assert!(message.starts_with("/etc/test.toml:6:"), "{message}");
    assert!(message.contains("expected a sequence"), "{message}");
}

#[test]
fn each_api_origin_gets_its_resource_and_scopes() {
    let config = load(&format!(
        "{DEMO}[providers.demo.apis.\"https://api.example.com\"]\nresource = \"https://api.example.com\"\nscopes = [\"files.read\", \"files.read\"]\n[providers.demo.apis.\"https://calendar.example.com:443\"]\nscopes = [\"calendar\"]\n"
    ))
    .unwrap();
    let demo = config.provider(&crate::ProviderId::new("demo")).unwrap();
    let url = |u: &str| Url::parse(u).unwrap();
    let api = demo
        .api_for(&url("https://api.example.com/v1/items?x=1"))
        .unwrap();
    assert_eq!(api.resource.as_deref(), Some("https://api.example.com"));
    assert_eq!(api.scopes, ["files.read"]);
    let request = api.token_request();
    assert_eq!(request.resource_uri(), Some("https://api.example.com"));
    assert_eq!(request.scopes().collect::<Vec<_>>(), ["files.read"]);
    // The default port is the same origin; another port, scheme or host is not.
    let calendar = demo.api_for(&url("https://calendar.example.com/")).unwrap();
    assert_eq!(
        (calendar.resource.as_deref(), calendar.scopes.as_slice()),
        (None, &["calendar".to_owned()][..])
    );
    assert!(
        demo.api_for(&url("https://api.example.com:8443/"))
            .is_none()
    );
    assert!(demo.api_for(&url("http://api.example.com/")).is_none());
    assert!(demo.api_for(&url("https://other.example.com/")).is_none());
    assert!(load(DEMO).unwrap().providers["demo"].apis.is_empty());
}

#[test]
fn an_api_table_that_is_wrong_names_the_file_the_key_and_the_problem() {
    let table = |origin: &str, body: &str| {
        error(&format!(
            "{DEMO}[providers.demo.apis.\"{origin}\"]\n{body}\n"
        ))
    };
    let cases = [
        (
            table("https://api.example.com/v1", "scopes = [\"a\"]"),
            "`providers.demo.apis.\"https://api.example.com/v1\"` must be an origin only",
        ),
        (
            table("http://api.example.com", "scopes = [\"a\"]"),
            "must be an https URL",
        ),
        (
            table(
                "https://api.example.com",
                "resource = \"https://api.example.com#x\"",
            ),
            "`providers.demo.apis.\"https://api.example.com\".resource` is \"https://api.example.com#x\", which is not an absolute URI",
        ),
        (
            table("https://api.example.com", "resource = \"/relative\""),
            "not an absolute URI",
        ),
        (
            table("https://api.example.com", "scopes = [\"two words\"]"),
            "`providers.demo.apis.\"https://api.example.com\".scopes` contains the invalid scope",
        ),
        (
            table("https://api.example.com", ""),
            "names neither `resource` nor `scopes`",
        ),
    ];
    for (message, expected) in cases {
        assert!(message.starts_with("/etc/test.toml: "), "{message}");
        assert!(message.contains(expected), "{message}");
    }
    let unknown = table("https://api.example.com", "audience = \"x\"");
    assert!(unknown.contains("audience"), "{unknown}");
    let twice = error(&format!(
        "{DEMO}[providers.demo.apis.\"https://api.example.com\"]\nscopes = [\"a\"]\n[providers.demo.apis.\"https://api.example.com:443\"]\nscopes = [\"b\"]\n"
    ));
    assert!(twice.contains("a second time"), "{twice}");
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
        .layer_policy(Path::new("/etc/keylink/keylink.toml"), policy)
        .unwrap();
    let user = "[providers.corp]\nissuer = \"https://evil.example\"\nclient_id = \"corp\"\n";
    config
        .layer(Path::new("/home/u/.config/keylink/keylink.toml"), user)
        .unwrap();
    assert_eq!(
        config
            .provider(&crate::ProviderId::new("corp"))
            .unwrap()
            .issuer
            .as_deref(),
        Some("https://sso.corp.example")
    );
    assert!(
        config
            .provider(&crate::ProviderId::new("corp"))
            .unwrap()
            .from_policy
    );
    assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
    assert!(
        config.warnings[0].contains("locks it"),
        "{:?}",
        config.warnings
    );
}

#[test]
fn a_policy_can_refuse_user_providers_and_fix_network_settings() {
    let mut config = Config::default();
    let policy = "[policy]\nallow_user_providers = false\n[providers.corp]\nissuer = \"https://sso.corp.example\"\nclient_id = \"corp\"\n[network]\nca_file = \"/etc/keylink/corp-ca.pem\"\nhttps_proxy = \"http://proxy.corp.example:3128\"\n";
    config
        .layer_policy(Path::new("/etc/keylink/keylink.toml"), policy)
        .unwrap();
    let user = "[providers.mine]\nissuer = \"https://login.example.com\"\nclient_id = \"x\"\n[network]\nca_file = \"/tmp/evil.pem\"\nhttps_proxy = \"http://evil.example\"\ntimeout_secs = 5\n";
    config
        .layer(Path::new("/home/u/.config/keylink/keylink.toml"), user)
        .unwrap();
    assert!(config.provider(&crate::ProviderId::new("mine")).is_none());
    assert_eq!(
        config.network.ca_file.as_deref(),
        Some(Path::new("/etc/keylink/corp-ca.pem"))
    );
    assert_eq!(
        config.network.https_proxy.as_deref(),
        Some("http://proxy.corp.example:3128")
    );
    // What the policy does not set, the user may.
    assert_eq!(config.network.timeout, Some(Duration::from_secs(5)));
    assert_eq!(config.warnings.len(), 2, "{:?}", config.warnings);
    // A user file may not claim policy powers.
    let mut plain = Config::default();
    assert!(
        plain
            .layer(
                Path::new("/u.toml"),
                "[policy]\nallow_user_providers = true\n"
            )
            .is_err()
    );
    assert!(
        plain
            .layer(
                Path::new("/u.toml"),
                "[providers.a]\nissuer = \"https://a.example\"\nclient_id = \"x\"\nlocked = true\n"
            )
            .is_err()
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
        end_session_endpoint: None,
        code_challenge_methods_supported: methods
            .map(|m| m.into_iter().map(String::from).collect()),
        id_token_signing_alg_values_supported: vec!["RS256".into()],
        authorization_response_iss_parameter_supported: true,
    }
}

#[test]
fn discovery_requires_the_exact_issuer_and_s256() {
    let config = load(DEMO).unwrap();
    let demo = config.provider(&crate::ProviderId::new("demo")).unwrap();
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

#[test]
fn presets_fill_what_the_configuration_leaves_unset() {
    let config = load(
        r#"
[providers.g]
preset = "google"
client_id = "123.apps.googleusercontent.com"
client_secret = "desktop-secret"

[providers.ms]
preset = "microsoft"
tenant = "organizations"
client_id = "abc"

[providers.gh]
preset = "github"
client_id = "Iv1.x"
scopes = ["repo"]

[providers.db]
preset = "dropbox"
client_id = "key"

[providers.any]
preset = "generic"
issuer = "https://sso.example.com"
client_id = "x"
"#,
    )
    .unwrap();
    let g = config.provider(&crate::ProviderId::new("g")).unwrap();
    assert_eq!(g.issuer.as_deref(), Some("https://accounts.google.com"));
    assert_eq!(g.redirect, RedirectKind::Loopback);
    assert_eq!(
        g.authorize_params.get("access_type").map(String::as_str),
        Some("offline")
    );
    assert_eq!(
        g.authorize_params.get("prompt").map(String::as_str),
        Some("consent")
    );
    assert!(!g.scopes.iter().any(|s| s == "offline_access"));
    assert!(g.client_secret.is_some());
    let ms = config.provider(&crate::ProviderId::new("ms")).unwrap();
    assert_eq!(
        ms.issuer.as_deref(),
        Some("https://login.microsoftonline.com/organizations/v2.0")
    );
    assert!(ms.quirks.tenant_issuer);
    let gh = config.provider(&crate::ProviderId::new("gh")).unwrap();
    assert!(!gh.is_oidc());
    assert_eq!(gh.scopes, ["repo"], "explicit settings win");
    assert_eq!(gh.quirks.user_endpoint.subject, ["/id"]);
    let db = config.provider(&crate::ProviderId::new("db")).unwrap();
    assert_eq!(
        db.authorize_params
            .get("token_access_type")
            .map(String::as_str),
        Some("offline")
    );
    assert!(db.quirks.user_endpoint.post);
    let any = config.provider(&crate::ProviderId::new("any")).unwrap();
    assert!(any.is_oidc() && !any.quirks.tenant_issuer);
}

#[test]
fn preset_endpoints_are_well_formed_https_urls() {
    for preset in presets::PRESETS {
        let endpoints = [
            preset.issuer,
            preset.authorization_endpoint,
            preset.token_endpoint,
            preset.revocation_endpoint,
            preset.userinfo_endpoint,
            preset.device_authorization_endpoint,
        ];
        for endpoint in endpoints.into_iter().flatten() {
            let url = Url::parse(&endpoint.replace("{tenant}", "common")).unwrap();
            assert_eq!(url.scheme(), "https", "{}: {endpoint}", preset.id);
            assert!(
                url.host_str().is_some_and(|h| h.contains('.')),
                "{}: {endpoint}",
                preset.id
            );
        }
        // `generic` takes its issuer from the configuration; every other preset is complete.
        let complete = preset.issuer.is_some()
            || (preset.authorization_endpoint.is_some() && preset.token_endpoint.is_some());
        assert!(complete || preset.id == "generic", "{}", preset.id);
    }
}

#[test]
fn preset_mistakes_are_named() {
    assert!(
        error("[providers.x]\npreset = \"myspace\"\nclient_id = \"x\"\n")
            .contains("google, microsoft, github, dropbox, generic")
    );
    assert!(
        error("[providers.x]\npreset = \"github\"\ntenant = \"common\"\nclient_id = \"x\"\n")
            .contains("providers.x.tenant")
    );
    assert!(
        error("[providers.x]\npreset = \"microsoft\"\ntenant = \"a/b\"\nclient_id = \"x\"\n")
            .contains("providers.x.tenant")
    );
    assert!(error("[providers.x]\npreset = \"generic\"\nclient_id = \"x\"\n").contains("issuer"));
}

#[test]
fn only_a_tenant_segment_may_be_templated() {
    let common = "https://login.microsoftonline.com/common/v2.0";
    assert!(presets::is_tenant_template(
        common,
        "https://login.microsoftonline.com/{tenantid}/v2.0"
    ));
    assert!(!presets::is_tenant_template(
        common,
        "https://evil.example/{tenantid}/v2.0"
    ));
    assert!(!presets::is_tenant_template(
        common,
        "https://login.microsoftonline.com/{tenantid}/v2.0/"
    ));
    assert!(!presets::is_tenant_template(
        common,
        "https://login.microsoftonline.com/other/v2.0"
    ));
    assert!(!presets::is_tenant_template(common, common));
    // Only the tenant's segment, never the scheme, the host or another segment (found by
    // hand for the discovery fuzz target's check).
    for not_the_tenant in [
        "https://{tenantid}/common/v2.0",
        "{tenantid}//login.microsoftonline.com/common/v2.0",
        "https://login.microsoftonline.com/common/{tenantid}",
    ] {
        assert!(
            !presets::is_tenant_template(common, not_the_tenant),
            "{not_the_tenant}"
        );
    }
}

#[test]
fn multi_tenant_discovery_is_accepted_only_with_the_preset_quirk() {
    let config = load("[providers.ms]\npreset = \"microsoft\"\nclient_id = \"abc\"\n[providers.plain]\nissuer = \"https://login.microsoftonline.com/common/v2.0\"\nclient_id = \"abc\"\n").unwrap();
    let issuer = "https://login.microsoftonline.com/common/v2.0";
    let template = "https://login.microsoftonline.com/{tenantid}/v2.0";
    let doc = || {
        raw_metadata(
            template,
            Some(vec!["S256"]),
            "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
        )
    };
    let ms = metadata_from_document(
        config.provider(&crate::ProviderId::new("ms")).unwrap(),
        issuer,
        doc(),
    )
    .unwrap();
    assert_eq!(ms.issuer.as_deref(), Some(template));
    let plain = metadata_from_document(
        config.provider(&crate::ProviderId::new("plain")).unwrap(),
        issuer,
        doc(),
    );
    assert!(matches!(plain, Err(DiscoveryError::IssuerMismatch { .. })));
}

/// Discovery documents are untrusted input: no mutation of a real one may panic, and what is
/// accepted still names the configured issuer and only allowed endpoints.
/// A discovery document and a key set are JSON objects; serde would fill a struct from an array
/// by position (found by hand for the discovery fuzz target's check).
#[test]
fn an_array_is_no_discovery_document_and_no_key_set() {
    let config = load(DEMO).unwrap();
    let provider = config.provider(&crate::ProviderId::new("demo")).unwrap();
    let issuer = "https://127.0.0.1:4433";
    let array = br#"["https://127.0.0.1:4433","https://127.0.0.1:4433/auth","https://127.0.0.1:4433/token"]"#;
    assert!(matches!(
        crate::provider::discovery::read_metadata(provider, issuer, array),
        Err(DiscoveryError::Malformed { .. })
    ));
    assert!(crate::id_token::parse_jwks(br#"[[]]"#).is_err());
    assert!(crate::id_token::parse_jwks(br#"{"keys":[]}"#).is_ok());
}

#[test]
fn fuzz_the_discovery_document_parser() {
    let config = load(DEMO).unwrap();
    let provider = config.provider(&crate::ProviderId::new("demo")).unwrap();
    let issuer = "https://127.0.0.1:4433";
    let seeds = [
        r#"{"issuer":"https://127.0.0.1:4433","authorization_endpoint":"https://127.0.0.1:4433/auth","token_endpoint":"https://127.0.0.1:4433/token","jwks_uri":"https://127.0.0.1:4433/jwks","userinfo_endpoint":"https://127.0.0.1:4433/me","code_challenge_methods_supported":["S256"],"id_token_signing_alg_values_supported":["RS256","ES256"],"authorization_response_iss_parameter_supported":true}"#,
        r#"{"issuer":"https://127.0.0.1:4433","authorization_endpoint":"file:///etc/passwd","token_endpoint":"https://127.0.0.1:4433/token"}"#,
    ];
    crate::mutate::mutations(&seeds, crate::mutate::JSON_ALPHABET, 30_000, |body| {
        let Ok(raw) = serde_json::from_slice::<RawMetadata>(body) else {
            return;
        };
        if let Ok(metadata) = metadata_from_document(provider, issuer, raw) {
            assert_eq!(metadata.issuer.as_deref(), Some(issuer));
            assert!(crate::http::is_allowed_endpoint(
                &metadata.authorization_endpoint
            ));
            assert!(crate::http::is_allowed_endpoint(&metadata.token_endpoint));
        }
    });
}

/// SECURITY 53: a redirect meant for one provider must not be able to complete another's
/// sign-in, so no two providers may share a redirect URI, explicit or default.
#[test]
fn two_providers_cannot_share_a_redirect_uri() {
    let app = crate::app::AppIdentity::keylink();
    let provider = |id: &str, extra: &str| {
        format!("[providers.{id}]\nissuer = \"https://{id}.example\"\nclient_id = \"x\"\n{extra}")
    };
    let shared = |text: &str| -> Option<String> {
        load(text)
            .unwrap()
            .check_redirect_uris(&app)
            .err()
            .map(|e| e.to_string())
    };
    // The same explicit URI twice.
    let same = "redirect_uri = \"dev.keylink:/callback/corp\"\n";
    let message = shared(&(provider("a", same) + &provider("b", same))).unwrap();
    assert!(
        message.contains("\"a\"")
            && message.contains("\"b\"")
            && message.contains("dev.keylink:/callback/corp"),
        "{message}"
    );
    // An explicit URI that is another provider's default.
    let message = shared(&(provider("corp", "") + &provider("evil", same))).unwrap();
    assert!(
        message.contains("\"corp\"") && message.contains("\"evil\""),
        "{message}"
    );
    // Compared as redirects are matched: the scheme case-insensitively.
    let upper = "redirect_uri = \"DEV.Keylink:/callback/corp\"\n";
    assert!(shared(&(provider("corp", "") + &provider("evil", upper))).is_some());
    // Each its own: the defaults, a loopback beside a deep link, distinct explicit URIs.
    let own = provider("a", "")
        + &provider("b", "redirect = \"loopback\"\n")
        + &provider("c", "redirect_uri = \"dev.keylink:/callback/c-own\"\n")
        + &provider("d", "redirect_uri = \"dev.keylink:/callback/corp\"\n");
    assert_eq!(shared(&own), None);
    // The default depends on the app: another app's scheme does not collide.
    let other = crate::app::AppIdentity::new("com.example.notes").unwrap();
    let config = load(&(provider("corp", "") + &provider("evil", same))).unwrap();
    assert!(config.check_redirect_uris(&other).is_ok());
}

/// SECURITY 47: which policy file applies. Root-owned files can only be made by root; as
/// another user this test says so and checks nothing.
#[cfg(unix)]
#[test]
fn a_policy_file_applies_only_when_root_owns_it_and_nobody_else_can_write_it() {
    use std::os::unix::fs::PermissionsExt;
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: only root can make the root-owned policy files this test needs");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let policy = "[policy]\nallow_user_providers = false\n";
    let write = |name: &str, mode: u32, uid: Option<u32>| {
        let path = dir.path().join(name);
        std::fs::write(&path, policy).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        std::os::unix::fs::chown(&path, uid, None).unwrap();
        path
    };
    let trusted = write("trusted.toml", 0o644, None);
    let group_writable = write("group.toml", 0o664, None);
    let world_writable = write("world.toml", 0o646, None);
    let users = write("users.toml", 0o644, Some(54321));
    let missing = dir.path().join("missing.toml");
    let no_system = dir.path().join("not-deployed.toml");
    let named = |path: &Path| {
        let path = path.to_owned();
        crate::app::Environment::capture(move |name| {
            (name == "KEYLINK_POLICY").then(|| path.clone().into_os_string())
        })
    };
    let load =
        |env: &crate::app::Environment, system: &Path| Config::load_with_system_policy(env, system);

    // No system policy deployed: a trusted KEYLINK_POLICY file applies.
    let config = load(&named(&trusted), &no_system).unwrap();
    assert_eq!(config.policy.as_deref(), Some(trusted.as_path()));
    assert!(!config.allow_user_providers);
    assert_eq!(config.ignored_policy, None);
    assert!(config.warnings.is_empty(), "{:?}", config.warnings);

    // Untrusted ones are not read, and that is said.
    let cases = [
        (Path::new("/dev/null"), Untrusted::NotRegularFile),
        (dir.path(), Untrusted::NotRegularFile),
        (users.as_path(), Untrusted::NotOwnedByRoot { uid: 54321 }),
        (
            group_writable.as_path(),
            Untrusted::WritableByOthers { mode: 0o664 },
        ),
        (
            world_writable.as_path(),
            Untrusted::WritableByOthers { mode: 0o646 },
        ),
    ];
    for (file, why) in &cases {
        let config = load(&named(file), &no_system).unwrap();
        assert_eq!(config.policy, None, "{file:?}");
        assert!(config.allow_user_providers);
        let ignored = config.ignored_policy.clone().unwrap();
        assert_eq!(ignored.reason, IgnoredReason::Untrusted(why.clone()));
        assert_eq!(config.warnings.len(), 1, "{:?}", config.warnings);
        assert!(
            config.warnings[0].contains(&file.display().to_string())
                && config.warnings[0].contains("no system policy applies"),
            "{:?}",
            config.warnings
        );
    }
    // A missing file changes nothing when no policy is deployed: only `doctor` says it.
    let config = load(&named(&missing), &no_system).unwrap();
    assert_eq!(
        config.ignored_policy.unwrap().reason,
        IgnoredReason::Missing
    );
    assert!(config.warnings.is_empty());

    // A deployed system policy applies whatever KEYLINK_POLICY names, trusted or not.
    let system = write("system.toml", 0o644, None);
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "# nothing\n").unwrap();
    for file in [
        empty.as_path(),
        users.as_path(),
        Path::new("/dev/null"),
        missing.as_path(),
    ] {
        let config = load(&named(file), &system).unwrap();
        assert_eq!(config.policy.as_deref(), Some(system.as_path()), "{file:?}");
        assert!(!config.allow_user_providers, "{file:?}");
        assert!(config.warnings[0].contains("the system policy"));
    }
    assert_eq!(
        load(&named(&empty), &system)
            .unwrap()
            .ignored_policy
            .unwrap()
            .reason,
        IgnoredReason::SystemPolicyDeployed
    );

    // An untrusted system policy is neither used nor ignored: nothing runs.
    for system in [&users, &group_writable, &world_writable] {
        for env in [named(&trusted), crate::app::Environment::default()] {
            let error = load(&env, system).unwrap_err();
            assert!(
                matches!(error, ConfigError::UntrustedPolicy { .. }),
                "{error}"
            );
            assert!(error.to_string().contains(&system.display().to_string()));
        }
    }
}
