//! The IPC commands: each takes the shell state, makes one call into the core (on a blocking
//! worker thread, as the core does blocking I/O), and returns a DTO or `{code, message}`. No
//! command returns a token.

use tauri::State;

use crate::dto::{AccountDto, AppStateDto, ConnectionDto, LinkDto, UnlinkDto, time};
use crate::error::{ErrorCode, ErrorDto};
use crate::state::Shell;

/// Runs `f` on a blocking worker thread.
async fn blocking<T: Send + 'static>(
    shell: &Shell,
    f: impl FnOnce(&Shell) -> Result<T, ErrorDto> + Send + 'static,
) -> Result<T, ErrorDto> {
    let shell = shell.clone();
    tauri::async_runtime::spawn_blocking(move || f(&shell))
        .await
        .map_err(|_| {
            ErrorDto::new(
                ErrorCode::Internal,
                "the request was interrupted; try again",
            )
        })?
}

/// Providers, accounts, the link in progress and queued notices.
#[tauri::command]
pub async fn app_state(shell: State<'_, Shell>) -> Result<AppStateDto, ErrorDto> {
    blocking(&shell, |s| Ok(s.app_state())).await
}

/// Starts linking an account at `provider` and opens the system browser; with `account`,
/// signs in again as that account (Reconnect).
#[tauri::command]
pub async fn start_link(
    shell: State<'_, Shell>,
    provider: String,
    account: Option<String>,
) -> Result<LinkDto, ErrorDto> {
    blocking(&shell, move |s| s.start_link(&provider, account.as_deref())).await
}

/// Starts linking at `provider` with a code entered on another device (RFC 8628).
#[tauri::command]
pub async fn start_device_link(
    shell: State<'_, Shell>,
    provider: String,
) -> Result<LinkDto, ErrorDto> {
    blocking(&shell, move |s| s.start_device_link(&provider)).await
}

/// Cancels the link in progress.
#[tauri::command]
pub async fn cancel_link(shell: State<'_, Shell>) -> Result<LinkDto, ErrorDto> {
    blocking(&shell, |s| Ok(s.cancel_link())).await
}

/// Asks the provider who the stored tokens belong to.
#[tauri::command]
pub async fn check_connection(
    shell: State<'_, Shell>,
    account: String,
) -> Result<ConnectionDto, ErrorDto> {
    blocking(&shell, move |s| {
        let keylink = s.keylink()?;
        let c = keylink.check_connection(&account)?;
        Ok(ConnectionDto {
            account: AccountDto::new(&c.account, Some(keylink)),
            answered_by: c.answered_by,
            subject: c.subject,
            name: c.name,
            email: c.email,
            expires_at: time(c.expires_at),
            checked_at: keylink::rfc3339(c.checked_at),
        })
    })
    .await
}

/// Revokes the account's grant at the provider and removes it here.
#[tauri::command]
pub async fn unlink(shell: State<'_, Shell>, account: String) -> Result<UnlinkDto, ErrorDto> {
    blocking(&shell, move |s| {
        let keylink = s.keylink()?;
        let report = keylink.unlink(&account)?;
        Ok(UnlinkDto::new(&report, Some(keylink)))
    })
    .await
}
