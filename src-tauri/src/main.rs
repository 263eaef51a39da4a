//! Keylink desktop app: a Tauri 2 shell over the `keylink` core. Deep links reach the core
//! however they arrive (a cold start's argument, a second instance forwarding its arguments,
//! `on_open_url`); the UI pulls state; no token ever crosses IPC.

// No console window on Windows release builds.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

#[cfg(test)]
mod command_names;
mod commands;
mod dto;
mod error;
mod state;

use std::time::Duration;

use tauri::{AppHandle, Manager};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::state::{DEFAULT_LINK_TIMEOUT, Shell};

/// True for arguments that are redirects to our scheme (`dev.keylink:/callback/...`).
fn is_redirect(arg: &str) -> bool {
    keylink::AppIdentity::keylink().is_redirect(arg)
}

fn show_main_window(app: &AppHandle) {
    if let Some(window) = app.get_webview_window("main") {
        let _ = window.unminimize();
        let _ = window.show();
        let _ = window.set_focus();
    }
}

/// `KEYLINK_LINK_TIMEOUT` (seconds) overrides how long a link waits, for tests and slow
/// sign-ins.
fn link_timeout() -> Duration {
    std::env::var("KEYLINK_LINK_TIMEOUT")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
        .filter(|&s| s > 0)
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_LINK_TIMEOUT)
}

/// True for a program installed by a package (under `/usr` or `/opt`): its package ships the
/// system-wide handler entry, and a per-user one would shadow it. `/usr/local` is for what the
/// administrator copied there by hand, which no package entry covers.
#[cfg(any(target_os = "linux", test))]
fn is_packaged(program: &std::path::Path) -> bool {
    (program.starts_with("/usr/") && !program.starts_with("/usr/local/"))
        || program.starts_with("/opt/")
}

/// Writes the handler entry for our scheme and makes it the default. Not the deep-link plugin's
/// `register_all()`: it quotes the program path, which `xdg-open` outside GNOME and KDE
/// (xdg-utils 1.1) does not undo, so Chromium's hand-off there went nowhere. The file name is
/// the plugin's, `<binary>-handler.desktop`, so an entry it wrote is replaced.
#[cfg(target_os = "linux")]
fn register_url_scheme(
    app: &tauri::App,
    identity: &keylink::AppIdentity,
) -> Result<keylink::InstalledHandler, Box<dyn std::error::Error>> {
    let bin = tauri::utils::platform::current_exe()?;
    // An AppImage runs from a temporary mount: the handler starts the image itself.
    let program = app
        .env()
        .appimage
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| bin.clone());
    let bin_name = bin
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let id = keylink::DesktopFileId::new(&format!("{bin_name}-handler.desktop"))
        .or_else(|_| keylink::DesktopFileId::new("keylink-app-handler.desktop"))?;
    let name = app
        .config()
        .product_name
        .clone()
        .unwrap_or_else(|| "Keylink".to_owned());
    let handler = keylink::UrlHandler::new(identity.scheme(), id, program)?.named(&name);
    let env = keylink::XdgEnvironment::from_vars(|name| std::env::var_os(name))
        .ok_or("neither HOME nor XDG_DATA_HOME is an absolute directory")?;
    Ok(handler.install(&env)?)
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "keylink=info,keylink_app=info".into()),
        )
        .with_writer(std::io::stderr)
        .init();

    let keylink = keylink::Keylink::builder()
        .identity(keylink::AppIdentity::keylink())
        .environment(keylink::Environment::capture(std::env::var_os))
        .build();
    let shell = Shell::new(keylink, link_timeout());
    let forwarded = shell.clone();
    let opened = shell.clone();
    let cold = shell.clone();
    let discovery = shell.clone();

    let result = tauri::Builder::default()
        // First, so a second instance forwards its arguments and exits before anything else
        // starts. With the `deep-link` feature it also fires `on_open_url` for them.
        .plugin(tauri_plugin_single_instance::init(
            move |app, argv, _cwd| {
                for url in argv.into_iter().skip(1).filter(|a| is_redirect(a)) {
                    forwarded.deliver_redirect(url);
                }
                show_main_window(app);
            },
        ))
        .plugin(tauri_plugin_deep_link::init())
        .manage(shell)
        .invoke_handler(tauri::generate_handler![
            commands::app_state,
            commands::start_link,
            commands::start_device_link,
            commands::cancel_link,
            commands::check_connection,
            commands::unlink,
        ])
        .setup(move |app| {
            // Here, not before the builder: a second instance has forwarded its arguments and
            // exited by now, and exiting while a request of its own was in flight crashed it.
            // Discovery in the background tells which providers offer device sign-in, and the
            // first Link click then finds the metadata cached.
            discovery.discover_providers();
            let deep_link = app.deep_link();
            // Linux and Windows debug builds have no installer to register the scheme.
            #[cfg(all(windows, debug_assertions))]
            if let Err(e) = deep_link.register_all() {
                tracing::warn!(error = %e, "could not register the dev.keylink URL scheme");
            }
            // A packaged app leaves the handler to its package's system-wide entry: a
            // per-user one would shadow it.
            #[cfg(target_os = "linux")]
            if tauri::utils::platform::current_exe().is_ok_and(|bin| is_packaged(&bin)) {
                tracing::info!("installed by a package: its desktop entry handles dev.keylink");
            } else {
                match register_url_scheme(app, &keylink::AppIdentity::keylink()) {
                    Ok(installed) if !installed.xdg_open_can_start => tracing::warn!(
                        file = %installed.desktop_file.display(),
                        exec = %installed.exec.display(),
                        "registered the dev.keylink URL scheme, but xdg-open outside GNOME and KDE \
                         cannot start it: the path it runs has spaces or shell characters even in \
                         the data directory, so browsers there cannot hand sign-ins back"
                    ),
                    Ok(installed) => tracing::info!(
                        file = %installed.desktop_file.display(),
                        exec = %installed.exec.display(),
                        "registered the dev.keylink URL scheme"
                    ),
                    Err(e) => {
                        tracing::warn!(error = %e, "could not register the dev.keylink URL scheme")
                    }
                }
            }
            deep_link.on_open_url(move |event| {
                for url in event.urls() {
                    opened.deliver_redirect(url.to_string());
                }
            });
            // A cold start by the OS: the URL is our argument. Events emitted now would be
            // lost (the page is not loaded), so the result is queued and the UI pulls it.
            if let Ok(Some(urls)) = deep_link.get_current() {
                for url in urls {
                    cold.deliver_redirect(url.to_string());
                }
            }
            // `get_current` takes the URL only when it is the sole argument; a launcher that
            // adds arguments of its own must not lose it (duplicates are dropped).
            for arg in std::env::args().skip(1).filter(|a| is_redirect(a)) {
                cold.deliver_redirect(arg);
            }
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
