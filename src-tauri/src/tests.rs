//! Shell unit tests: DTO mapping, errors as they cross IPC, queued notices, and the security
//! settings (capability generated from the command list, CSP).

use std::path::{Path, PathBuf};
use std::time::Duration;

use keylink::{Account, AccountStatus, Config, Error, Index, Keylink, RedirectError};
use serde_json::{Value, json};

use crate::dto::{AccountDto, LinkDto, NoticeDto, ProviderDto};
use crate::error::{ErrorCode, ErrorDto, sentence};
use crate::state::Shell;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "keylink-app-test-{name}-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn keylink(dir: &Path) -> Keylink {
    let mut config = Config::default();
    config
        .layer(
            &dir.join("keylink.toml"),
            r#"
            [providers.demo]
            name = "Demo provider"
            issuer = "https://127.0.0.1:4433"
            client_id = "keylink-demo"
            "#,
        )
        .expect("config");
    Keylink::new(config, dir.join("data")).expect("keylink")
}

fn account(status: AccountStatus) -> Account {
    Account {
        id: "demo-3f2a9c1b07".into(),
        provider: "demo".into(),
        issuer: "https://127.0.0.1:4433".into(),
        subject: "alice".into(),
        email: Some("alice@example.test".into()),
        name: Some("Alice".into()),
        scopes: vec!["openid".into(), "profile".into(), "email".into()],
        linked_at: 1_795_770_600,
        expires_at: Some(1_795_774_200),
        status,
    }
}

#[test]
fn account_dto_has_the_summary_and_nothing_else() {
    let dir = temp_dir("account-dto");
    let k = keylink(&dir);
    let dto = AccountDto::new(&account(AccountStatus::Ok), Some(&k));
    assert_eq!(
        serde_json::to_value(&dto).expect("json"),
        json!({
            "id": "demo-3f2a9c1b07",
            "provider": "demo",
            "provider_name": "Demo provider",
            "name": "Alice",
            "email": "alice@example.test",
            "scopes": ["openid", "profile", "email"],
            "linked_at": "2026-11-27T09:10:00Z",
            "expires_at": "2026-11-27T10:10:00Z",
            "status": "ok"
        })
    );
}

#[test]
fn account_dto_of_an_unconfigured_provider_and_needs_relink() {
    let mut a = account(AccountStatus::NeedsRelink);
    a.expires_at = None;
    a.email = None;
    let dto = AccountDto::new(&a, None);
    assert_eq!(dto.provider_name, "demo");
    assert_eq!(dto.status, "needs_relink");
    assert_eq!(dto.expires_at, None);
    assert_eq!(dto.email, None);
}

#[test]
fn provider_dto_shows_where_people_sign_in() {
    let dir = temp_dir("provider-dto");
    let k = keylink(&dir);
    let dto = ProviderDto::from(k.provider("demo").expect("provider"));
    assert_eq!(
        serde_json::to_value(&dto).expect("json"),
        json!({"id": "demo", "name": "Demo provider", "host": "127.0.0.1", "redirect": "deep-link", "device": false, "from_policy": false})
    );
    // Device sign-in is offered only once discovery found the endpoint.
    let with_device = ProviderDto::with_device(k.provider("demo").expect("provider"), true);
    assert!(with_device.device);
}

#[test]
fn errors_cross_ipc_as_code_and_message() {
    let dto = ErrorDto::from(Error::Redirect(RedirectError::Unsolicited));
    let value = serde_json::to_value(&dto).expect("json");
    assert_eq!(value["code"], "redirect_rejected");
    assert_eq!(value.as_object().map(|o| o.len()), Some(2), "{value}");
    let message = value["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with("This redirect does not belong"),
        "{message}"
    );
    assert!(message.ends_with('.'), "{message}");
}

#[test]
fn error_codes_the_ui_switches_on() {
    let cases: Vec<(Error, ErrorCode, &str)> = vec![
        (
            Error::LinkTimedOut(300),
            ErrorCode::Timeout,
            "within 5 minutes",
        ),
        (
            Error::LinkTimedOut(90),
            ErrorCode::Timeout,
            "within 90 seconds",
        ),
        (
            Error::NeedsRelink("demo-1".into()),
            ErrorCode::NeedsRelink,
            "Reconnect",
        ),
        (
            Error::NoRefreshToken("demo-1".into()),
            ErrorCode::NeedsRelink,
            "Reconnect",
        ),
        (
            Error::Browser("no such file".into()),
            ErrorCode::Browser,
            "no such file",
        ),
        (
            Error::Loopback(keylink::LoopbackError::Cancelled),
            ErrorCode::Cancelled,
            "cancelled",
        ),
        (
            Error::UnknownProvider("nope".into()),
            ErrorCode::NotFound,
            "\"nope\"",
        ),
        (
            Error::UnknownAccount("x".into()),
            ErrorCode::NotFound,
            "no longer linked",
        ),
        (
            Error::Redirect(RedirectError::Expired),
            ErrorCode::RedirectRejected,
            "expired",
        ),
        (
            Error::Redirect(RedirectError::IssuerMismatch),
            ErrorCode::RedirectRejected,
            "mix-up",
        ),
        (
            Error::LinkFailed {
                code: ErrorCode::LinkFailed,
                message: "the code was refused".into(),
            },
            ErrorCode::LinkFailed,
            "refused",
        ),
        (
            Error::NoIdentity("x".into()),
            ErrorCode::Provider,
            "did not say",
        ),
    ];
    for (error, code, needle) in cases {
        let shown = error.to_string();
        let dto = ErrorDto::from(error);
        assert_eq!(dto.code, code, "{shown}");
        assert!(
            dto.message.contains(needle),
            "{:?} lacks {needle:?}",
            dto.message
        );
        assert!(
            !dto.message.contains("keylink "),
            "a CLI command in {:?}",
            dto.message
        );
    }
}

#[test]
fn messages_are_sentences() {
    assert_eq!(sentence("nothing was linked"), "Nothing was linked.");
    assert_eq!(sentence("Done!"), "Done!");
    assert_eq!(sentence("  "), "Something went wrong.");
    assert_eq!(sentence("ähm"), "Ähm.");
}

#[test]
fn link_states_are_tagged() {
    let value = serde_json::to_value(LinkDto::Idle).expect("json");
    assert_eq!(value, json!({"state": "idle"}));
    let failed = LinkDto::Failed {
        provider: "demo".into(),
        provider_name: "Demo".into(),
        error: ErrorDto::from(Error::LinkTimedOut(300)),
    };
    let value = serde_json::to_value(failed).expect("json");
    assert_eq!(value["state"], "failed");
    assert_eq!(value["error"]["code"], "timeout");
}

#[test]
fn redirects_nobody_waits_for_become_notices_once() {
    let dir = temp_dir("notices");
    let shell = Shell::new(Ok(keylink(&dir)), Duration::from_secs(300));
    shell.redirect_finished(Err(Error::Redirect(RedirectError::Unsolicited)));
    shell.redirect_finished(Ok(account(AccountStatus::Ok)));
    let state = shell.app_state();
    assert_eq!(state.notices.len(), 2);
    match &state.notices[0] {
        NoticeDto::Error { error } => assert_eq!(error.code, ErrorCode::RedirectRejected),
        other => panic!("{other:?}"),
    }
    match &state.notices[1] {
        NoticeDto::Linked { account } => assert_eq!(account.provider_name, "Demo provider"),
        other => panic!("{other:?}"),
    }
    assert_eq!(state.link, LinkDto::Idle);
    assert!(
        shell.app_state().notices.is_empty(),
        "notices are returned once"
    );
}

#[test]
fn app_state_lists_providers_and_accounts_from_the_index() {
    let dir = temp_dir("state");
    let k = keylink(&dir);
    Index::new(&dir.join("data"))
        .update(|accounts| accounts.push(account(AccountStatus::Ok)))
        .expect("index");
    let shell = Shell::new(Ok(k), Duration::from_secs(300));
    let state = shell.app_state();
    assert_eq!(state.error, None);
    assert_eq!(state.providers.len(), 1);
    assert_eq!(state.accounts.len(), 1);
    assert_eq!(state.accounts[0].name.as_deref(), Some("Alice"));
    assert!(!state.completing);
}

#[test]
fn a_core_that_could_not_start_is_reported_not_fatal() {
    let shell = Shell::new(
        Err(Error::UnknownProvider("x".into())),
        Duration::from_secs(300),
    );
    let state = shell.app_state();
    assert!(state.error.is_some());
    assert!(state.providers.is_empty());
    shell.deliver_redirect("dev.keylink:/callback?state=a&code=b".into());
    let state = shell.app_state();
    assert_eq!(
        state.notices.len(),
        1,
        "the redirect could not be handled: say so"
    );
}

#[test]
fn cancelling_when_nothing_is_linking_is_harmless() {
    let dir = temp_dir("cancel");
    let shell = Shell::new(Ok(keylink(&dir)), Duration::from_secs(300));
    assert_eq!(shell.cancel_link(), LinkDto::Idle);
}

#[test]
fn only_our_scheme_counts_as_a_redirect() {
    assert!(crate::is_redirect("dev.keylink:/callback?code=1&state=2"));
    assert!(crate::is_redirect("DEV.KEYLINK:/callback"));
    assert!(!crate::is_redirect("--automation"));
    assert!(!crate::is_redirect("dev.keylink:"));
    assert!(!crate::is_redirect("https://example.test/"));
    assert!(!crate::is_redirect("ü"));
}

#[test]
fn the_capability_allows_exactly_the_apps_commands() {
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("capabilities/main.json"),
    )
    .expect("capability");
    let value: Value = serde_json::from_str(&text).expect("json");
    let permissions: Vec<&str> = value["permissions"]
        .as_array()
        .expect("permissions")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let expected: Vec<String> = crate::command_names::COMMANDS
        .iter()
        .map(|c| format!("allow-{}", c.replace('_', "-")))
        .collect();
    assert_eq!(permissions, expected);
    assert_eq!(value["windows"], json!(["main"]));
}

#[test]
fn the_content_security_policy_is_strict() {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tauri.conf.json"))
            .expect("config");
    let value: Value = serde_json::from_str(&text).expect("json");
    let csp = &value["app"]["security"]["csp"];
    assert_eq!(csp["frame-src"], "'none'");
    assert_eq!(csp["script-src"], "'self'");
    assert_eq!(csp["object-src"], "'none'");
    for (directive, sources) in csp.as_object().expect("csp object") {
        let sources = sources.as_str().unwrap_or_default();
        assert!(
            !sources.contains("https:") && !sources.contains("unsafe-"),
            "{directive} allows {sources}"
        );
    }
    assert_eq!(value["app"]["withGlobalTauri"], true);
    assert_eq!(value["identifier"], "dev.keylink.app");
    assert_eq!(
        value["plugins"]["deep-link"]["desktop"]["schemes"],
        json!(["dev.keylink"])
    );
}

#[test]
fn a_packaged_app_leaves_the_handler_to_its_package() {
    assert!(crate::is_packaged(std::path::Path::new(
        "/usr/bin/keylink-app"
    )));
    assert!(crate::is_packaged(std::path::Path::new(
        "/opt/keylink/keylink-app"
    )));
    assert!(!crate::is_packaged(std::path::Path::new(
        "/home/ann/src/keylink/target/debug/keylink-app"
    )));
    assert!(!crate::is_packaged(std::path::Path::new(
        "/usrlocal/keylink-app"
    )));
    // Copied there by hand: no package entry handles the scheme, so the app registers itself.
    assert!(!crate::is_packaged(std::path::Path::new(
        "/usr/local/bin/keylink-app"
    )));
}

#[test]
fn the_device_code_comes_with_a_qr_code_of_the_address_to_open() {
    let code = keylink::DeviceAuthorization::new(
        url::Url::parse("https://idp.example/device").expect("url"),
        "WDJB-MJHT".into(),
        Some(url::Url::parse("https://idp.example/device?user_code=WDJB-MJHT").expect("url")),
        Duration::from_secs(600),
    );
    let dto = crate::dto::DeviceCodeDto::from(&code);
    let svg = dto.qr_svg.expect("a QR code");
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    // The same address encoded again gives the same picture: it is the complete URI's code.
    let again = qrcode::QrCode::new(b"https://idp.example/device?user_code=WDJB-MJHT")
        .expect("qr")
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(180, 180)
        .quiet_zone(true)
        .build();
    assert_eq!(svg, again);
}
