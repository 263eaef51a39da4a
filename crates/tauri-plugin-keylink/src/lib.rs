//! Account linking for Tauri 2 apps, in one line: OAuth 2.0 with PKCE in the system browser,
//! the redirect through your app's deep link (cold start, running app and forwarded second
//! instances alike), the ID token validated, tokens in the OS keychain, and a JS API
//! (`tauri-plugin-keylink-api`, or `window.__TAURI__.keylink`) that never holds a token.
//!
//! ```no_run
//! // In the host app (its Cargo.toml has tauri, tauri-plugin-single-instance with the
//! // "deep-link" feature, tauri-plugin-deep-link and tauri-plugin-keylink):
//! # fn main() {}
//! # fn run(context: tauri::Context) {
//! tauri::Builder::default()
//!     // First, so a second instance hands its URL over and exits before anything starts.
//!     .plugin(tauri_plugin_single_instance::init(|_, _, _| {})) // feature "deep-link"
//!     .plugin(tauri_plugin_deep_link::init())
//!     .plugin(tauri_plugin_keylink::init())
//!     .run(context) // tauri::generate_context!() in your app
//!     .expect("the app could not start");
//! # }
//! ```
//!
//! Without deep-link, or on Linux without single-instance registered before it, the app does
//! not start, and the error says what to add.
//!
//! Providers come from `plugins.keylink` in `tauri.conf.json` (see [`Config`]); accounts are
//! kept under the app's identifier, apart from every other app. The plugin makes the app the
//! handler of its URL schemes where no installer does ([`Builder::register_scheme`]), and, if
//! the host asks, serves tokens to the `keylink` CLI while it runs ([`Builder::token_agent`]).
//! The host's Rust code reaches the core's async API through [`KeylinkExt`]:
//! `app.keylink()?.access_token(&account, Duration::from_secs(60)).await`.
//!
//! Permissions: `keylink:default` allows every command except `fetch` (a call of the
//! provider's API with the account's token, to the provider's `api_origins` only), which a
//! host grants with `keylink:allow-fetch`, optionally scoped to URL patterns ([`scope`]).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tauri::plugin::{Builder as PluginBuilder, TauriPlugin};
use tauri::{Manager, Runtime};

mod commands;
mod config;
pub mod dto;
mod error;
mod redirects;
mod scheme;
pub mod scope;
mod token_agent;

/// The core library, for the types the plugin's Rust API hands out (`keylink::Account`,
/// `keylink::AccessToken`, ...): a host needs no dependency of its own on it.
pub use keylink;

pub use config::{Config, ConfigError};
pub use error::{Error, Result};

use dto::{Account, AccountsChanged};
pub use redirects::deliver_arguments;

/// How long a sign-in may take unless `plugins.keylink.linkTimeoutSecs` says otherwise.
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(300);

/// The plugin with its configuration from `plugins.keylink`.
pub fn init<R: Runtime>() -> TauriPlugin<R, Option<Config>> {
    Builder::new().build()
}

/// A host's change to the core's builder ([`Builder::keylink`]).
type Customize = Box<dyn FnOnce(keylink::KeylinkBuilder) -> keylink::KeylinkBuilder + Send>;

/// The plugin, with what a host may set in Rust rather than in `tauri.conf.json`.
pub struct Builder {
    customize: Option<Customize>,
    link_timeout: Option<Duration>,
    register_scheme: bool,
    token_agent: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Self {
            customize: None,
            link_timeout: None,
            register_scheme: true,
            token_agent: false,
        }
    }
}

impl std::fmt::Debug for Builder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Builder").finish_non_exhaustive()
    }
}

impl Builder {
    /// A plugin builder with nothing changed.
    pub fn new() -> Self {
        Self::default()
    }

    /// Changes the core's builder after the plugin set it up from the configuration (a
    /// clock, a secret store, a browser opener, network settings).
    pub fn keylink(
        mut self,
        customize: impl FnOnce(keylink::KeylinkBuilder) -> keylink::KeylinkBuilder + Send + 'static,
    ) -> Self {
        self.customize = Some(Box::new(customize));
        self
    }

    /// How long a sign-in may take, instead of `plugins.keylink.linkTimeoutSecs`.
    pub fn link_timeout(mut self, timeout: Duration) -> Self {
        self.link_timeout = Some(timeout);
        self
    }

    /// Whether the plugin makes the app the handler of its URL schemes where no installer
    /// does (on by default): on Linux a per-user desktop entry
    /// (`~/.local/share/applications/<binary>-handler.desktop`, made the default with
    /// `xdg-mime`) unless the app runs from `/usr` or `/opt`, where its package's entry does
    /// it; on Windows the per-user registry entry of a debug build. Turn it off when your
    /// installer registers the schemes for every way the app is run.
    pub fn register_scheme(mut self, register: bool) -> Self {
        self.register_scheme = register;
        self
    }

    /// Whether the app serves its accounts' access tokens to `keylink --app <identity> token`
    /// (and the credential helpers) while it runs (off by default; Unix only). The token
    /// agent listens on `$XDG_RUNTIME_DIR/keylink/<identity>.sock`, in a directory only this
    /// user may enter, and answers only this user's processes; where `keylink agent` serves
    /// already, the app leaves it to that one. The socket is removed when the app exits
    /// (`RunEvent::Exit`); a process ended by a signal leaves it behind, answering nothing,
    /// until the next agent replaces it, so a host that should exit cleanly on SIGTERM calls
    /// `AppHandle::exit` itself, as the Keylink app does. Turn it on only
    /// if your users run the CLI: it is one more way to ask for a token. It answers as the
    /// CLI would in the app's environment (the configuration files, data directory and OS
    /// keychain the CLI uses, not what [`Builder::keylink`] changes), and a caller that would
    /// use others is not served.
    pub fn token_agent(mut self, serve: bool) -> Self {
        self.token_agent = serve;
        self
    }

    /// Builds the plugin.
    pub fn build<R: Runtime>(self) -> TauriPlugin<R, Option<Config>> {
        let customize = Mutex::new(self.customize);
        let link_timeout = self.link_timeout;
        let register_scheme = self.register_scheme;
        let token_agent = self.token_agent.then(token_agent::TokenAgent::default);
        let agent_at_exit = token_agent.clone();
        PluginBuilder::<R, Option<Config>>::new("keylink")
            .invoke_handler(tauri::generate_handler![
                commands::providers,
                commands::accounts,
                commands::link,
                commands::link_with_device,
                commands::reconnect,
                commands::cancel_link,
                commands::check_connection,
                commands::unlink,
                commands::watch_accounts,
                commands::unwatch_accounts,
                commands::fetch,
            ])
            .setup(move |app, api| {
                redirects::require_deep_link(app)?;
                let config = api.config().clone().unwrap_or_default();
                let customize = customize.lock().ok().and_then(|mut c| c.take());
                let keylink = match build_keylink(app, &config, customize) {
                    Ok(keylink) => Ok(keylink),
                    // Files a person or an installer edits: the app starts and says, at each
                    // call, what is wrong with them (a missing configFile, say).
                    Err(e) if config.user_config || config.config_file.is_some() => {
                        tracing::warn!(error = %e, "the configuration cannot be used");
                        Err(Error::new(keylink::ErrorCode::Config, e.to_string()))
                    }
                    Err(e) => return Err(e),
                };
                let timeout = link_timeout.unwrap_or_else(|| {
                    config
                        .link_timeout_secs
                        .map_or(DEFAULT_LINK_TIMEOUT, Duration::from_secs)
                });
                let app_identity = match &keylink {
                    Ok(k) => Some(k.identity().clone()),
                    Err(_) => identity(app, &config).ok(),
                };
                if let Some(app_identity) = app_identity.as_ref().filter(|_| register_scheme) {
                    scheme::register(app, &scheme::schemes(app, app_identity.scheme()));
                }
                #[cfg(unix)]
                if let (Some(agent), Some(app_identity)) = (&token_agent, app_identity) {
                    agent.start(app_identity);
                }
                #[cfg(not(unix))]
                let _ = (&token_agent, app_identity);
                let state = State::new(keylink, timeout);
                app.manage(state.clone());
                redirects::wire(app)?;
                state.discover();
                Ok(())
            })
            .on_event(move |_app, event| {
                if let (tauri::RunEvent::Exit, Some(agent)) = (event, &agent_at_exit) {
                    agent.stop();
                }
            })
            .build()
    }
}

fn build_keylink<R: Runtime>(
    app: &tauri::AppHandle<R>,
    config: &Config,
    customize: Option<Customize>,
) -> std::result::Result<keylink::Keylink, Box<dyn std::error::Error>> {
    let identity = identity(app, config)?;
    // The KEYLINK_* variables (configuration file, data directory, policy) are the Keylink
    // app's and CLI's: an app with providers of its own keeps its accounts where its identity
    // says, whatever they point at.
    let user_config = config.user_config;
    let environment = keylink::Environment::capture(|name| {
        if !user_config && name.starts_with("KEYLINK_") {
            None
        } else {
            std::env::var_os(name)
        }
    });
    let mut builder = keylink::Keylink::builder(identity).environment(environment);
    let app_config_dir = app.path().app_config_dir().ok();
    builder = match config.source(app_config_dir.as_deref())? {
        config::Source::Inline(c) | config::Source::File(c) => builder.config(c),
        config::Source::UserFiles => builder,
    };
    if let Some(customize) = customize {
        builder = customize(builder);
    }
    Ok(builder.build()?)
}

/// The identity accounts are kept under: `plugins.keylink.app` or the app's identifier, with
/// `plugins.keylink.scheme`, else the first desktop scheme of `plugins.deep-link`.
fn identity<R: Runtime>(
    app: &tauri::AppHandle<R>,
    config: &Config,
) -> std::result::Result<keylink::AppIdentity, keylink::Error> {
    let identifier = config
        .app
        .clone()
        .unwrap_or_else(|| app.config().identifier.clone());
    let identity = keylink::AppIdentity::new(&identifier)?;
    match config.scheme.clone().or_else(|| deep_link_scheme(app)) {
        Some(scheme) => Ok(identity.with_scheme(&scheme)?),
        None => Ok(identity),
    }
}

/// The first desktop scheme of `plugins.deep-link`.
fn deep_link_scheme<R: Runtime>(app: &tauri::AppHandle<R>) -> Option<String> {
    let deep_link = app.config().plugins.0.get("deep-link")?;
    let schemes = deep_link.get("desktop")?.get("schemes")?;
    schemes.get(0)?.as_str().map(str::to_owned)
}

/// The plugin's state: the core (or, for `userConfig`, why the person's configuration cannot
/// be used), the link sessions the webview may cancel, who listens for account changes, and
/// which providers offer device sign-in.
pub(crate) struct State {
    keylink: std::result::Result<keylink::AsyncKeylink, Error>,
    pub(crate) timeout: Duration,
    pub(crate) cancellers: Mutex<Vec<(String, keylink::link::LinkCanceller)>>,
    watchers: Mutex<Watchers>,
    device_sign_in: Mutex<HashSet<keylink::ProviderId>>,
    /// The queue of the thread that hands the OS's redirects to the core, made with the first.
    redirect_worker: std::sync::OnceLock<Option<std::sync::mpsc::SyncSender<String>>>,
}

/// How many redirect outcomes are kept for a listener that has not come yet: a cold start
/// brings one; a flood of unsolicited redirects must not grow memory without bound.
pub(crate) const MAX_PENDING_OUTCOMES: usize = 8;

/// The listeners for account changes, and the redirect outcomes that came while there was
/// none (a cold start delivers its URL before the page has loaded).
#[derive(Default)]
struct Watchers {
    channels: Vec<tauri::ipc::Channel<AccountsChanged>>,
    pending: Vec<AccountsChanged>,
    /// How many kept outcomes made way for newer ones.
    discarded: usize,
}

impl State {
    fn new(keylink: std::result::Result<keylink::Keylink, Error>, timeout: Duration) -> Arc<Self> {
        Arc::new(State {
            keylink: keylink.map(keylink::AsyncKeylink::from),
            timeout,
            cancellers: Mutex::default(),
            watchers: Mutex::default(),
            device_sign_in: Mutex::default(),
            redirect_worker: std::sync::OnceLock::new(),
        })
    }

    /// The core, or why it could not be set up.
    pub(crate) fn keylink(&self) -> Result<&keylink::Keylink> {
        self.async_keylink().map(keylink::AsyncKeylink::blocking)
    }

    /// The core's async API, or why it could not be set up.
    fn async_keylink(&self) -> Result<&keylink::AsyncKeylink> {
        self.keylink.as_ref().map_err(Clone::clone)
    }

    /// Whether discovery found that `provider` offers device sign-in.
    pub(crate) fn offers_device_sign_in(&self, provider: &keylink::ProviderId) -> bool {
        self.device_sign_in
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(provider)
    }

    /// Discovers every provider in the background: it tells which offer device sign-in, and
    /// the first link then finds the metadata cached.
    fn discover(self: &Arc<Self>) {
        let Ok(keylink) = self.keylink().cloned() else {
            return;
        };
        let state = self.clone();
        std::thread::spawn(move || {
            for provider in keylink.config().providers.values() {
                match keylink.supports_device_sign_in(provider) {
                    Ok(true) => {
                        state
                            .device_sign_in
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .insert(provider.id.clone());
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(provider = %provider.id, error = %e, "discovery failed")
                    }
                }
            }
        });
    }

    /// Tells every listener the accounts as they are now.
    pub(crate) fn accounts_changed(&self) {
        self.send_change(None, None);
    }

    /// Tells the listeners what a redirect no link session here waited for did; kept for the
    /// first listener when there is none yet.
    pub(crate) fn redirect_finished(
        &self,
        result: std::result::Result<keylink::Account, keylink::Error>,
    ) {
        match result {
            Ok(account) => {
                tracing::info!(account = %account.id, "linked through a redirect");
                self.send_change(Some(Account::from(&account)), None);
            }
            Err(e) => {
                tracing::warn!(error = %e, "redirect refused");
                self.send_change(None, Some(e.into()));
            }
        }
    }

    /// Tells the listeners that `provider` confirmed the person signed out there; kept for
    /// the first listener when there is none yet (the confirmation may cold-start the app).
    pub(crate) fn signed_out(&self, provider: &keylink::ProviderId) {
        let name = self
            .keylink()
            .ok()
            .and_then(|k| k.config().provider(provider).map(|p| p.name.clone()))
            .unwrap_or_else(|| provider.to_string());
        tracing::info!(provider = %provider, "signed out at the provider");
        self.send_outcome(
            None,
            None,
            Some(dto::SignedOut {
                provider: provider.to_string(),
                name,
            }),
        );
    }

    fn send_change(&self, linked: Option<Account>, error: Option<Error>) {
        self.send_outcome(linked, error, None);
    }

    fn send_outcome(
        &self,
        linked: Option<Account>,
        error: Option<Error>,
        signed_out: Option<dto::SignedOut>,
    ) {
        let outcome = linked.is_some() || error.is_some() || signed_out.is_some();
        // Nobody to tell and nothing to keep: the accounts need not be read.
        if !outcome
            && self
                .watchers
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .channels
                .is_empty()
        {
            return;
        }
        let accounts = match self.keylink().and_then(|k| Ok(k.accounts()?)) {
            Ok(list) => list.iter().map(Account::from).collect(),
            Err(e) if outcome => {
                tracing::warn!(error = %e, "could not read the accounts");
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not read the accounts");
                return;
            }
        };
        let change = AccountsChanged {
            accounts,
            linked,
            error,
            signed_out,
        };
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        watchers
            .channels
            .retain(|channel| channel.send(change.clone()).is_ok());
        if watchers.channels.is_empty() && outcome {
            // The newest are kept: the sign-in that matters is the one that came last.
            if watchers.pending.len() == MAX_PENDING_OUTCOMES {
                watchers.pending.remove(0);
                watchers.discarded += 1;
            }
            watchers.pending.push(change);
        }
    }

    /// Removes the listener `channel` (a Channel id), so outcomes are kept for the next one.
    pub(crate) fn unwatch(&self, channel: u32) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        watchers.channels.retain(|c| c.id() != channel);
    }

    /// Adds a listener, handing it the outcomes nobody has heard of yet.
    pub(crate) fn watch(&self, channel: tauri::ipc::Channel<AccountsChanged>) {
        let mut watchers = self.watchers.lock().unwrap_or_else(|p| p.into_inner());
        for change in std::mem::take(&mut watchers.pending) {
            let _ = channel.send(change);
        }
        watchers.channels.push(channel);
    }
}

/// The core's async API for the host's Rust code, the way Tauri apps write commands:
///
/// ```no_run
/// use std::time::Duration;
/// use tauri_plugin_keylink::KeylinkExt;
///
/// /// Calls the provider's API as the first linked account.
/// #[tauri::command]
/// async fn first_account_token(app: tauri::AppHandle) -> Result<String, String> {
///     let keylink = app.keylink().map_err(|e| e.to_string())?;
///     let accounts = keylink.accounts().await.map_err(|e| e.to_string())?;
///     let account = accounts.first().ok_or("no account is linked")?;
///     // A token valid for at least a minute, refreshed first if need be.
///     let token = keylink
///         .access_token(&account.id, Duration::from_secs(60))
///         .await
///         .map_err(|e| e.to_string())?;
///     // Use `token.secret()` in your request; never hand it to the webview.
///     # let _ = token;
///     Ok(account.id.to_string())
/// }
/// ```
///
/// Every method is a future that never blocks the async worker polling it (see
/// [`keylink::AsyncKeylink`]); [`keylink::AsyncKeylink::blocking`] gives the blocking API
/// for a thread of your own. An error only with `userConfig`, when the person's
/// configuration files cannot be used (the commands reject with the same error).
pub trait KeylinkExt<R: Runtime> {
    /// The app's Keylink.
    fn keylink(&self) -> Result<&keylink::AsyncKeylink>;
}

impl<R: Runtime, T: Manager<R>> KeylinkExt<R> for T {
    fn keylink(&self) -> Result<&keylink::AsyncKeylink> {
        self.state::<Arc<State>>().inner().async_keylink()
    }
}

#[cfg(test)]
mod tests;
