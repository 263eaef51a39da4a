//! Redirects from the OS: the URL an app was cold-started with, `on_open_url` while it runs,
//! and (through the single-instance plugin's `deep-link` feature) the URL a second instance
//! forwarded. Each goes to the core once, on the plugin's one redirect worker; a result no
//! link session here reports, and a provider's sign-out confirmation, reach the webview through
//! `onAccountsChanged`. Whoever can run
//! the app can send it URLs: a flood costs one thread and a bounded queue (SECURITY 54).

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};

use tauri::{AppHandle, Manager, Runtime};
use tauri_plugin_deep_link::DeepLinkExt;

use crate::State;

/// Fails, saying what to add, when the deep-link plugin is not registered before this one.
pub(crate) fn require_deep_link<R: Runtime>(
    app: &AppHandle<R>,
) -> Result<(), Box<dyn std::error::Error>> {
    if app
        .try_state::<tauri_plugin_deep_link::DeepLink<R>>()
        .is_none()
    {
        return Err("tauri-plugin-keylink needs tauri-plugin-deep-link: register \
                    .plugin(tauri_plugin_deep_link::init()) before .plugin(tauri_plugin_keylink::init())"
            .into());
    }
    Ok(())
}

/// Connects the deep-link plugin to the core; fails when the single-instance plugin is
/// missing.
pub(crate) fn wire<R: Runtime>(app: &AppHandle<R>) -> Result<(), Box<dyn std::error::Error>> {
    check_single_instance(app)?;
    let state = app.state::<Arc<State>>().inner().clone();
    let opened = state.clone();
    app.deep_link().on_open_url(move |event| {
        for url in event.urls() {
            deliver(&opened, url.to_string());
        }
    });
    if let Ok(Some(urls)) = app.deep_link().get_current() {
        for url in urls {
            deliver(&state, url.to_string());
        }
    }
    // `get_current` takes the URL only when it is the sole argument; a launcher that adds
    // arguments of its own must not lose it (a second delivery is dropped by the core). An
    // argument that is not UTF-8 is no URL of ours (`std::env::args` would panic on it).
    for arg in text_arguments(std::env::args_os().skip(1)) {
        deliver(&state, arg);
    }
    Ok(())
}

/// The arguments that are text; the others (not UTF-8) are no URL of ours.
pub(crate) fn text_arguments(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> impl Iterator<Item = String> {
    args.filter_map(|arg| arg.into_string().ok())
}

/// Hands the redirects among `args` (a second instance's command line, say) to the plugin.
/// The single-instance plugin's `deep-link` feature forwards a command line that is exactly
/// the program and one URL; call this from its callback when a launcher may add arguments of
/// its own. A URL delivered twice is completed once.
pub fn deliver_arguments<R: Runtime>(app: &AppHandle<R>, args: impl IntoIterator<Item = String>) {
    let Some(state) = app.try_state::<Arc<State>>() else {
        return;
    };
    for arg in args {
        deliver(state.inner(), arg);
    }
}

fn deliver(state: &Arc<State>, url: String) {
    let keylink = match state.keylink() {
        Ok(keylink) => keylink.clone(),
        Err(e) => {
            if url.contains(":/") {
                tracing::warn!(error = %e, "a redirect arrived, but the configuration cannot be used");
            }
            return;
        }
    };
    if !keylink.identity().is_redirect(&url) {
        return;
    }
    let Some(worker) = state
        .redirect_worker
        .get_or_init(|| start_worker(state.clone()))
    else {
        tracing::warn!("a redirect arrived, but there is no thread to handle it");
        return;
    };
    match worker.try_send(url) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => tracing::warn!(
            "more redirects arrived at once than any sign-in sends; this one was dropped"
        ),
        Err(TrySendError::Disconnected(_)) => {
            tracing::warn!("a redirect arrived while the app is stopping; it was dropped")
        }
    }
}

/// How many redirects may wait for the worker: a person's sign-in sends one.
pub(crate) const REDIRECT_QUEUE: usize = 16;

/// Starts the one thread that hands redirects to the core, one after the other.
fn start_worker(state: Arc<State>) -> Option<SyncSender<String>> {
    let (sender, receiver) = std::sync::mpsc::sync_channel(REDIRECT_QUEUE);
    let started = std::thread::Builder::new()
        .name("keylink-redirects".into())
        .spawn(move || work(&state, receiver));
    match started {
        Ok(_) => Some(sender),
        Err(e) => {
            tracing::warn!(error = %e, "could not start the thread that handles redirects");
            None
        }
    }
}

fn work(state: &State, redirects: Receiver<String>) {
    for url in redirects {
        let Ok(keylink) = state.keylink() else {
            continue;
        };
        match keylink.deliver_redirect(&url) {
            keylink::link::Delivery::Completed(result) => state.redirect_finished(result),
            keylink::link::Delivery::SignedOut(provider) => state.signed_out(&provider),
            _ => {}
        }
    }
}

/// Fails, saying what to add, when the single-instance plugin is not registered before this
/// one. Without it a redirect starts a second copy of the app, which would complete the
/// sign-in in a second window. On Linux the plugin holds a D-Bus name ending in
/// `.SingleInstance` (whatever its `dbus_id` or `semver` feature make of the rest) from its
/// setup on; without a session bus there is nothing to ask, and nothing for it to hold either.
fn check_single_instance<R: Runtime>(app: &AppHandle<R>) -> Result<(), Box<dyn std::error::Error>> {
    #[cfg(target_os = "linux")]
    {
        // The name under the app's identifier (what it is unless `dbus_id` changes it; the
        // `semver` feature only adds a suffix), or any `.SingleInstance` name this process
        // holds (a custom `dbus_id`; in a sandbox with its own process ids the bus reports
        // other ones, but there the app may only own names under its identifier anyway).
        let default_name = format!("{}.SingleInstance", app.config().identifier);
        let held = zbus::blocking::Connection::session().and_then(|bus| {
            let dbus = zbus::blocking::fdo::DBusProxy::new(&bus)?;
            let me = std::process::id();
            for name in dbus.list_names()? {
                if name.starts_with(&default_name) {
                    return Ok(true);
                }
                if name.contains(".SingleInstance")
                    && dbus
                        .get_connection_unix_process_id(name.inner().clone())
                        .is_ok_and(|pid| pid == me)
                {
                    return Ok(true);
                }
            }
            Ok(false)
        });
        match held {
            Ok(true) => {}
            Ok(false) => {
                return Err(
                    "tauri-plugin-keylink needs tauri-plugin-single-instance with its \
                            \"deep-link\" feature, registered first: \
                            .plugin(tauri_plugin_single_instance::init(|_, _, _| {})) before \
                            .plugin(tauri_plugin_deep_link::init()); without it every sign-in \
                            opens a second copy of the app"
                        .into(),
                );
            }
            Err(e) => {
                tracing::debug!(error = %e, "could not ask the session bus about the single-instance plugin")
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = app;
    Ok(())
}
