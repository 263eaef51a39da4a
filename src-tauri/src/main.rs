//! Keylink desktop app: the Keylink UI over `tauri-plugin-keylink`, which does the linking
//! (deep links however they arrive, link sessions, the keychain). The app adds only what is
//! its own: it reads the `keylink` CLI's configuration files (`userConfig`), honours
//! `KEYLINK_LINK_TIMEOUT`, and registers itself for `dev.keylink:` URLs when no package did.

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
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                "keylink=info,keylink_app=info,tauri_plugin_keylink=info".into()
            }),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut keylink = tauri_plugin_keylink::Builder::new();
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
            register_scheme(app);
            Ok(())
        })
        .run(tauri::generate_context!());
    if let Err(e) = result {
        eprintln!("keylink-app: the app could not start: {e}");
        std::process::exit(1);
    }
}

/// Makes this program the handler of `dev.keylink:` URLs where nothing else does: Linux and
/// Windows debug builds have no installer to register the scheme, and a packaged app leaves
/// it to its package's system-wide entry (a per-user one would shadow it).
fn register_scheme(app: &tauri::App) {
    #[cfg(all(windows, debug_assertions))]
    {
        use tauri_plugin_deep_link::DeepLinkExt;
        if let Err(e) = app.deep_link().register_all() {
            tracing::warn!(error = %e, "could not register the dev.keylink URL scheme");
        }
    }
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
    #[cfg(not(any(target_os = "linux", all(windows, debug_assertions))))]
    let _ = app;
}

#[cfg(test)]
mod tests;
