//! Keylink desktop app: the Keylink UI over `tauri-plugin-keylink`, which does the linking
//! (deep links however they arrive, the app's URL-scheme registration, link sessions, the
//! keychain). The app adds only what is its own: it reads the `keylink` CLI's configuration
//! files (`userConfig` in tauri.conf.json), serves the CLI's tokens while it runs (the token
//! agent, so `keylink token` needs no `keylink agent` then), closes as its window does on
//! SIGTERM, and honours `KEYLINK_LINK_TIMEOUT`.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::time::Duration;

use tauri::{AppHandle, Manager};

fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// `KEYLINK_LINK_TIMEOUT` (seconds) overrides how long a link waits, for tests and slow
/// sign-ins.
fn link_timeout() -> Option<Duration> {
    std::env::var("KEYLINK_LINK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
}

/// SIGTERM (`kill`, the session ending, a service manager) closes the app the way its window's
/// close button does, so the plugin's exit work runs and the token agent removes its socket;
/// without this the process would end on the spot.
#[cfg(unix)]
fn exit_on_sigterm(app: AppHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    tauri::async_runtime::spawn(async move {
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                if terminate.recv().await.is_some() {
                    app.exit(0);
                }
            }
            Err(e) => eprintln!("keylink-app: SIGTERM will end the app without its exit work: {e}"),
        }
    });
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "keylink=info,keylink_app=info,tauri_plugin_keylink=info".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut keylink = tauri_plugin_keylink::Builder::new().token_agent(true);
    if let Some(timeout) = link_timeout() {
        keylink = keylink.link_timeout(timeout);
    }
    let result = tauri::Builder::default()
        // First, so a second instance forwards its arguments and exits before anything else
        // starts; with the `deep-link` feature a lone URL reaches the plugin, and one among
        // a launcher's own arguments is handed over here (a URL given twice counts once).
        .plugin(tauri_plugin_single_instance::init(|app, argv, _cwd| {
            tauri_plugin_keylink::deliver_arguments(app, argv.into_iter().skip(1));
            show_main_window(app);
        }))
        .plugin(tauri_plugin_deep_link::init())
        .plugin(keylink.build())
        .setup(|app| {
            #[cfg(unix)]
            exit_on_sigterm(app.handle().clone());
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("keylink-app: the app could not start: {e}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests;
