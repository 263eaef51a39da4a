//! Making the host the handler of its URL schemes where no installer does, so the provider's
//! redirect reaches the app: on Linux a per-user desktop entry for an app not installed by a
//! package, on Windows the per-user registry entry of a debug build. A packaged app, a release
//! build on Windows and every macOS app get theirs from the installer or the bundle's
//! `Info.plist`, which must not be shadowed.

use tauri::{AppHandle, Runtime};

/// The schemes the host's redirects may come back on: `plugins.deep-link`'s desktop schemes
/// and the one Keylink's redirect URIs use, without repeats, Keylink's first.
pub(crate) fn schemes<R: Runtime>(app: &AppHandle<R>, keylink_scheme: &str) -> Vec<String> {
    let mut schemes = vec![keylink_scheme.to_owned()];
    let deep_link = app
        .config()
        .plugins
        .0
        .get("deep-link")
        .and_then(|d| d.get("desktop"))
        .and_then(|d| d.get("schemes"))
        .and_then(|s| s.as_array());
    for scheme in deep_link.into_iter().flatten().filter_map(|s| s.as_str()) {
        if !schemes.iter().any(|s| s == scheme) {
            schemes.push(scheme.to_owned());
        }
    }
    schemes
}

/// Registers the host for `schemes` where nothing else does; says in the log what it did.
/// Never fails the app's start: without a handler, links still work through the loopback
/// redirect and the device sign-in, and `keylink doctor --app <identifier>` says what is wrong.
pub(crate) fn register<R: Runtime>(app: &AppHandle<R>, schemes: &[String]) {
    #[cfg(target_os = "linux")]
    linux::register(app, schemes);
    #[cfg(all(windows, debug_assertions))]
    {
        use tauri_plugin_deep_link::DeepLinkExt;
        match app.deep_link().register_all() {
            Ok(()) => tracing::info!(?schemes, "registered the app's URL schemes"),
            Err(e) => tracing::warn!(error = %e, "could not register the app's URL schemes"),
        }
    }
    #[cfg(not(any(target_os = "linux", all(windows, debug_assertions))))]
    let _ = (app, schemes);
}

/// True for a program installed by a package (under `/usr` or `/opt`): its package ships the
/// system-wide handler entry, which a per-user one would shadow. `/usr/local` is for what an
/// administrator copied there by hand, which no package entry covers.
#[cfg(any(target_os = "linux", test))]
pub(crate) fn is_packaged(program: &std::path::Path) -> bool {
    (program.starts_with("/usr/") && !program.starts_with("/usr/local/"))
        || program.starts_with("/opt/")
}

#[cfg(target_os = "linux")]
mod linux {
    use std::path::PathBuf;

    use tauri::{AppHandle, Manager, Runtime};

    pub(super) fn register<R: Runtime>(app: &AppHandle<R>, schemes: &[String]) {
        let bin = match tauri::utils::platform::current_exe() {
            Ok(bin) => bin,
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell where the app runs from; its URL schemes are not registered");
                return;
            }
        };
        if super::is_packaged(&bin) {
            tracing::info!(
                ?schemes,
                "installed by a package: its desktop entry handles the app's URL schemes"
            );
            return;
        }
        match install(app, bin, schemes) {
            Ok(installed) if !installed.xdg_open_can_start => tracing::warn!(
                file = %installed.desktop_file.display(),
                exec = %installed.exec.display(),
                "registered the app's URL schemes, but xdg-open outside GNOME and KDE cannot \
                 start the app: the path it runs has spaces or shell characters even in the \
                 data directory, so browsers there cannot hand sign-ins back"
            ),
            Ok(installed) => tracing::info!(
                file = %installed.desktop_file.display(),
                exec = %installed.exec.display(),
                ?schemes,
                "registered the app's URL schemes"
            ),
            Err(e) => tracing::warn!(error = %e, "could not register the app's URL schemes"),
        }
    }

    /// Writes `<data home>/applications/<binary>-handler.desktop` (the deep-link plugin's
    /// name for it, so an entry its `register_all()` wrote is replaced) and makes it the
    /// default for every scheme. Not `register_all()` itself: it quotes the program path,
    /// which `xdg-open` outside GNOME and KDE (xdg-utils 1.1) does not undo, so browsers there
    /// hand the redirect to nobody.
    fn install<R: Runtime>(
        app: &AppHandle<R>,
        bin: PathBuf,
        schemes: &[String],
    ) -> Result<keylink::platform::InstalledHandler, Box<dyn std::error::Error>> {
        let stem = bin
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // An AppImage runs from a temporary mount: the handler starts the image itself.
        let program = app.env().appimage.map(PathBuf::from).unwrap_or(bin);
        let id = keylink::platform::DesktopFileId::new(&format!("{stem}-handler.desktop"))
            .or_else(|_| {
                keylink::platform::DesktopFileId::new(&format!(
                    "{}-handler.desktop",
                    app.config().identifier
                ))
            })?;
        let name = app
            .config()
            .product_name
            .clone()
            .unwrap_or_else(|| app.config().identifier.clone());
        let (first, more) = schemes.split_first().ok_or("the app has no URL scheme")?;
        let mut handler = keylink::platform::UrlHandler::new(first, id, program)?.named(&name);
        for scheme in more {
            handler = handler.also_handling(scheme)?;
        }
        let env = keylink::platform::XdgEnvironment::from_vars(|name| std::env::var_os(name))
            .ok_or("neither HOME nor XDG_DATA_HOME is an absolute directory")?;
        Ok(handler.install(&env)?)
    }
}
