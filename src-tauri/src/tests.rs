//! App unit tests: what the app sets up around the plugin (its window's capability, the
//! content security policy, the plugin's configuration).

use std::path::Path;

use serde_json::{Value, json};

fn read_json(file: &str) -> Value {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .unwrap_or_else(|e| panic!("{file}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"))
}

#[test]
fn the_window_may_use_the_plugin_and_nothing_else() {
    let value = read_json("capabilities/main.json");
    // Not keylink:allow-fetch (the UI calls no provider API) and nothing of core: an event
    // listener in the webview could otherwise hear deep-link://new-url, which carries the
    // authorization code.
    assert_eq!(value["permissions"], json!(["keylink:default"]));
    assert_eq!(value["windows"], json!(["main"]));
}

#[test]
fn the_plugin_links_for_keylink_from_the_cli_s_configuration() {
    let value = read_json("tauri.conf.json");
    // The identity the `keylink` CLI uses, so both see the same accounts.
    assert_eq!(value["identifier"], "dev.keylink.app");
    assert_eq!(
        value["plugins"]["keylink"],
        json!({ "app": "dev.keylink", "userConfig": true })
    );
    assert_eq!(
        value["plugins"]["deep-link"]["desktop"]["schemes"],
        json!(["dev.keylink"])
    );
}

#[test]
fn the_content_security_policy_is_strict() {
    let value = read_json("tauri.conf.json");
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
}
