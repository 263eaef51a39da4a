//! The commands: each runs on a blocking worker thread (the core does blocking I/O and
//! keychain calls, never on the main thread) and forwards to one core call. None returns a
//! token.

use std::sync::Arc;

use base64::Engine;
use tauri::ipc::Channel;
use tauri::{Runtime, State as Managed};

use crate::dto::{
    Account, AccountsChanged, Connection, FetchInit, FetchResponse, Progress, Provider, Unlinked,
};
use crate::scope::FetchScopeEntry;
use crate::{Error, Result, State};

type PluginState<'a> = Managed<'a, Arc<State>>;

async fn blocking<T: Send + 'static>(
    state: &PluginState<'_>,
    f: impl FnOnce(&State) -> Result<T> + Send + 'static,
) -> Result<T> {
    let state = state.inner().clone();
    tauri::async_runtime::spawn_blocking(move || f(&state))
        .await
        .map_err(|_| {
            Error::new(
                keylink::ErrorCode::Internal,
                "the request was interrupted; try again",
            )
        })?
}

/// The configured providers.
#[tauri::command]
pub(crate) async fn providers<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
) -> Result<Vec<Provider>> {
    blocking(&state, |s| {
        let keylink = s.keylink()?;
        Ok(keylink
            .config()
            .providers
            .values()
            .map(|p| Provider::new(keylink, p, s.offers_device_sign_in(&p.id)))
            .collect())
    })
    .await
}

/// The linked accounts.
#[tauri::command]
pub(crate) async fn accounts<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
) -> Result<Vec<Account>> {
    blocking(&state, |s| {
        Ok(s.keylink()?.accounts()?.iter().map(Account::from).collect())
    })
    .await
}

/// Runs a link session for `start`, reporting each step on `progress`; `reconnecting` is the
/// account a reconnect signs in as, whose decline is said as such.
fn run_session(
    state: &State,
    start: keylink::LinkStart,
    progress: &Channel<Progress>,
    reconnecting: Option<&keylink::AccountId>,
) -> Result<Account> {
    let session = state.keylink()?.link(start)?;
    let id = session.id().to_string();
    state
        .cancellers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((id.clone(), session.canceller()));
    let _ = progress.send(Progress::Starting {
        session: id.clone(),
    });
    let result = session.run(state.timeout, |step| {
        if let Some(step) = Progress::from_core(step) {
            let _ = progress.send(step);
        }
    });
    state
        .cancellers
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|(s, _)| *s != id);
    let account = match (result, reconnecting) {
        (Ok(account), _) => account,
        (Err(e), Some(before)) if is_declined(&e) => return Err(declined_reconnect(state, before)),
        (Err(e), _) => return Err(e.into()),
    };
    state.accounts_changed();
    Ok(Account::from(&account))
}

/// A link command: `start`'s session on a worker thread.
async fn session(
    state: &PluginState<'_>,
    start: keylink::LinkStart,
    progress: Channel<Progress>,
) -> Result<Account> {
    blocking(state, move |s| run_session(s, start, &progress, None)).await
}

/// Links an account at `provider` in the system browser, asking for `scopes` besides the
/// provider's configured ones.
#[tauri::command]
pub(crate) async fn link<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    provider: String,
    scopes: Option<Vec<String>>,
    on_progress: Channel<Progress>,
) -> Result<Account> {
    session(
        &state,
        keylink::LinkStart::browser(keylink::ProviderId::new(provider))
            .scopes(scopes.unwrap_or_default()),
        on_progress,
    )
    .await
}

/// Links an account at `provider` with a code entered on another device.
#[tauri::command]
pub(crate) async fn link_with_device<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    provider: String,
    on_progress: Channel<Progress>,
) -> Result<Account> {
    session(
        &state,
        keylink::LinkStart::device(keylink::ProviderId::new(provider)),
        on_progress,
    )
    .await
}

/// Signs in again as `account`, asking for `scopes` besides those it has (incremental
/// consent); signing in as anyone else, or declining, changes nothing.
#[tauri::command]
pub(crate) async fn reconnect<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    account: keylink::AccountId,
    scopes: Option<Vec<String>>,
    on_progress: Channel<Progress>,
) -> Result<Account> {
    blocking(&state, move |s| {
        let start =
            keylink::LinkStart::reconnect(account.clone()).scopes(scopes.unwrap_or_default());
        run_session(s, start, &on_progress, Some(&account))
    })
    .await
}

/// Declined at the provider's consent page, whether this session or the process that received
/// the redirect saw it.
fn is_declined(e: &keylink::Error) -> bool {
    matches!(
        e,
        keylink::Error::SignInDeclined(_)
            | keylink::Error::LinkFailed {
                code: keylink::ErrorCode::Cancelled,
                ..
            }
    )
}

/// A reconnect declined at the provider: the account is as it was, which the core's
/// "nothing was linked" would not say.
fn declined_reconnect(state: &State, account: &keylink::AccountId) -> Error {
    let found = state
        .keylink()
        .ok()
        .and_then(|k| k.account(account.as_str()).ok().map(|a| (k, a)));
    let message = match found {
        Some((keylink, a)) => {
            let provider = keylink
                .config()
                .provider(&a.provider)
                .map_or_else(|| a.provider.to_string(), |p| p.name.clone());
            let label = a.email.clone().or(a.name.clone()).unwrap_or_else(|| a.id.to_string());
            format!(
                "the sign-in at {provider} was declined, so nothing was changed: {label} keeps the permissions it had; allow them when you are ready"
            )
        }
        None => "the sign-in was declined, so nothing was changed: the account keeps the permissions it had; allow them when you are ready".to_owned(),
    };
    Error::new(keylink::ErrorCode::Cancelled, message)
}

/// Cancels the link session `session` (the one in progress when not given).
#[tauri::command]
pub(crate) async fn cancel_link<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    session: Option<String>,
) -> Result<bool> {
    blocking(&state, move |s| {
        let Some(session) = session else {
            return Ok(s.keylink()?.cancel_link());
        };
        let canceller = s
            .cancellers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(id, _)| *id == session)
            .map(|(_, c)| c.clone());
        Ok(canceller.is_some_and(|c| c.cancel()))
    })
    .await
}

/// Asks the provider who the stored tokens belong to.
#[tauri::command]
pub(crate) async fn check_connection<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    account: keylink::AccountId,
) -> Result<Connection> {
    blocking(&state, move |s| {
        let c = s.keylink()?.check_connection(&account)?;
        Ok(Connection {
            account: Account::from(&c.account),
            answered_by: c.answered_by,
            subject: c.subject,
            email: c.email,
            name: c.name,
            expires_at: c.expires_at.map(keylink::clock::rfc3339),
            checked_at: keylink::clock::rfc3339(c.checked_at),
        })
    })
    .await
}

/// Revokes the account's grant at the provider (when it can) and removes it here; with
/// `sign_out`, also opens the provider's sign-out page in the browser (RP-Initiated Logout).
#[tauri::command]
pub(crate) async fn unlink<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    account: keylink::AccountId,
    sign_out: Option<bool>,
) -> Result<Unlinked> {
    blocking(&state, move |s| {
        let keylink = s.keylink()?;
        let report = if sign_out.unwrap_or(false) {
            keylink.unlink_and_sign_out(&account)?
        } else {
            keylink.unlink(&account)?
        };
        let provider = keylink
            .config()
            .provider(&report.account.provider)
            .map_or_else(|| report.account.provider.to_string(), |p| p.name.clone());
        let (sign_out, sign_out_message) = match &report.sign_out {
            Some(outcome) => {
                let (kind, message) = crate::dto::SignOut::from_core(outcome, &provider);
                (Some(kind), Some(message))
            }
            None => (None, None),
        };
        let (revoked, warning) = match report.revocation {
            keylink::token::Revocation::Revoked => (true, None),
            keylink::token::Revocation::NotSupported => (false, None),
            keylink::token::Revocation::Failed(reason) => (
                false,
                Some(crate::error::sentence(&format!(
                    "the provider could not be told to revoke access ({reason}); the account was removed here anyway"
                ))),
            ),
        };
        s.accounts_changed();
        Ok(Unlinked {
            account: Account::from(&report.account),
            revoked,
            warning,
            sign_out,
            sign_out_message,
        })
    })
    .await
}

/// Sends the accounts on `channel` whenever they change.
#[tauri::command]
pub(crate) async fn watch_accounts<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    channel: Channel<AccountsChanged>,
) -> Result<()> {
    state.watch(channel);
    Ok(())
}

/// Stops sending account changes on the channel `channel` (its id).
#[tauri::command]
pub(crate) async fn unwatch_accounts<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    channel: u32,
) -> Result<()> {
    state.unwatch(channel);
    Ok(())
}

/// Calls the provider's API as `account` (see [`keylink::Keylink::api_request`]), when the
/// window's `keylink:allow-fetch` scope allows the URL (see [`crate::scope`]).
#[tauri::command]
pub(crate) async fn fetch<R: Runtime>(
    _app: tauri::AppHandle<R>,
    state: PluginState<'_>,
    command_scope: tauri::ipc::CommandScope<FetchScopeEntry>,
    global_scope: tauri::ipc::GlobalScope<FetchScopeEntry>,
    account: keylink::AccountId,
    url: String,
    init: Option<FetchInit>,
) -> Result<FetchResponse> {
    let url = url::Url::parse(&url).map_err(|e| {
        Error::new(
            keylink::ErrorCode::NotAllowed,
            format!("the URL is not valid ({e}); give an absolute https URL"),
        )
    })?;
    crate::scope::check(&url, &command_scope, &global_scope)?;
    blocking(&state, move |s| {
        let init = init.unwrap_or_default();
        let body = init
            .body
            .map(|b| base64::engine::general_purpose::STANDARD.decode(b))
            .transpose()
            .map_err(|_| {
                Error::new(
                    keylink::ErrorCode::NotAllowed,
                    "the request body is not base64; the JS API encodes it, so call it through fetch()",
                )
            })?;
        let request = keylink::api::ApiRequest {
            method: init.method.unwrap_or_else(|| "GET".into()),
            url,
            headers: init.headers,
            body,
            scopes: init.scopes,
            resource: init.resource,
        };
        Ok(s.keylink()?.api_request(&account, &request)?.into())
    })
    .await
}
