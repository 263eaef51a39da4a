//! The smallest app embedding tauri-plugin-keylink. Everything about linking is the plugin's:
//! the three plugin lines below (single-instance and deep-link, which it needs, then the one
//! line of Keylink), `plugins.keylink` in tauri.conf.json and a capability. The command is the
//! app's own Rust code using a linked account, as an app's API client would.

#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::Duration;

use tauri_plugin_keylink::KeylinkExt;

/// A token for `account` in the app's Rust code, refreshed first when it expires within
/// `min_ttl_secs`. The page learns only that it worked, never the token.
#[tauri::command]
async fn token_in_rust(
    app: tauri::AppHandle,
    account: tauri_plugin_keylink::keylink::AccountId,
    min_ttl_secs: u64,
) -> Result<String, String> {
    let keylink = app.keylink().map_err(|e| e.to_string())?;
    let token = keylink
        .access_token(&account, Duration::from_secs(min_ttl_secs))
        .await
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "The app's Rust code has a fresh token ({} characters).",
        token.secret().len()
    ))
}

fn main() {
    tauri::Builder::default()
        .plugin(tauri_plugin_single_instance::init(|_, _, _| {}))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(tauri_plugin_keylink::init())
        .invoke_handler(tauri::generate_handler![token_in_rust])
        .run(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("keylink-example-host: the app could not start: {e}");
            std::process::exit(1);
        });
}
