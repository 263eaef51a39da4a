//! Keylink in async code. Everything that may wait (the provider, the keychain, another
//! process's refresh lock, the person in the browser) is blocking work underneath; the async
//! API runs it on tokio's blocking pool, so no async worker thread ever waits on it, and the
//! blocking API moves it off a runtime's thread by itself, so it works, slowly, even where it
//! should not be called. Neither ever panics inside a runtime.

use std::time::Duration;

use crate::api::{ApiRequest, ApiResponse};
use crate::client::Keylink;
use crate::error::Error;
use crate::identity::ConnectionCheck;
use crate::ids::AccountId;
use crate::secret::AccessToken;
use crate::session::{Delivery, LinkCanceller, LinkProgress, LinkStart};
use crate::store::Account;
use crate::tokens::UnlinkReport;

/// Runs `work` where blocking is harmless: right here outside a tokio runtime, else on a
/// thread of its own (the blocking HTTP client and the keychain's D-Bus connection each run a
/// runtime of their own, which tokio refuses to start or drop on a runtime's thread).
pub(crate) fn off_runtime<T: Send>(work: impl FnOnce() -> T + Send) -> T {
    if tokio::runtime::Handle::try_current().is_err() {
        return work();
    }
    std::thread::scope(|scope| match scope.spawn(work).join() {
        Ok(value) => value,
        // The work's own panic, on the caller's thread, as if it had run here.
        Err(panic) => std::panic::resume_unwind(panic),
    })
}

/// [`Keylink`] for async code on tokio (Tauri commands, most Rust desktop apps): the same
/// operations, each a future that never blocks the thread polling it. Cheap to clone; made
/// from a [`Keylink`] with [`Keylink::into_async`] or `AsyncKeylink::from`.
///
/// ```no_run
/// # async fn example(keylink: keylink::AsyncKeylink) -> Result<(), keylink::Error> {
/// use std::time::Duration;
/// // In an async Tauri command, a handler, a task: a token valid for at least a minute.
/// let accounts = keylink.accounts().await?;
/// if let Some(account) = accounts.first() {
///     let token = keylink.access_token(&account.id, Duration::from_secs(60)).await?;
///     // Send it with your request: `token.secret()` is the bearer token.
///     # let _ = token;
/// }
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct AsyncKeylink {
    inner: Keylink,
}

impl From<Keylink> for AsyncKeylink {
    fn from(inner: Keylink) -> Self {
        Self { inner }
    }
}

impl Keylink {
    /// The async API of this Keylink (both share everything).
    pub fn into_async(self) -> AsyncKeylink {
        AsyncKeylink::from(self)
    }
}

/// Runs `work` on tokio's blocking pool and waits for it without blocking.
async fn on_blocking_pool<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, Error> + Send + 'static,
) -> Result<T, Error> {
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // The runtime is shutting down: the work did not run to its end.
        Err(_) => Err(Error::Interrupted),
    }
}

impl AsyncKeylink {
    /// The blocking API of the same Keylink (for a thread of your own).
    pub fn blocking(&self) -> &Keylink {
        &self.inner
    }

    /// All linked accounts ([`Keylink::accounts`]).
    pub async fn accounts(&self) -> Result<Vec<Account>, Error> {
        let keylink = self.inner.clone();
        on_blocking_pool(move || keylink.accounts()).await
    }

    /// The account with this id, or the only one with this email ([`Keylink::account`]).
    pub async fn account(&self, query: &str) -> Result<Account, Error> {
        let (keylink, query) = (self.inner.clone(), query.to_owned());
        on_blocking_pool(move || keylink.account(&query)).await
    }

    /// A valid access token for the account, refreshed first when it expires within
    /// `min_ttl` ([`Keylink::access_token`]: single-flight across threads and processes, the
    /// rotated refresh token stored first). A token this process holds comes from memory
    /// without leaving the calling thread.
    pub async fn access_token(
        &self,
        account: &AccountId,
        min_ttl: Duration,
    ) -> Result<AccessToken, Error> {
        if let Some(token) = self.inner.cached_access_token(account, min_ttl) {
            return Ok(token);
        }
        let (keylink, account) = (self.inner.clone(), account.clone());
        on_blocking_pool(move || keylink.access_token(&account, min_ttl)).await
    }

    /// An access token limited to some of the account's granted scopes and to one API
    /// ([`Keylink::access_token_for`]: a scope never granted is refused before anything is
    /// sent; single-flight; cached apart from the account's own token).
    pub async fn access_token_for(
        &self,
        account: &AccountId,
        request: &crate::token::TokenRequest,
        min_ttl: Duration,
    ) -> Result<crate::token::ApiToken, Error> {
        let (keylink, account, request) = (self.inner.clone(), account.clone(), request.clone());
        on_blocking_pool(move || keylink.access_token_for(&account, &request, min_ttl)).await
    }

    /// Links an account: runs the link session for `start` until it is linked, fails, is
    /// cancelled or `timeout` passes, handing each step to `progress`
    /// ([`Keylink::link`], [`LinkSession::run`](crate::LinkSession::run)). Dropping the
    /// future cancels the session.
    pub async fn link(
        &self,
        start: LinkStart,
        timeout: Duration,
        mut progress: impl FnMut(&LinkProgress) + Send + 'static,
    ) -> Result<Account, Error> {
        let keylink = self.inner.clone();
        let session = on_blocking_pool(move || keylink.link(start)).await?;
        let cancel = CancelOnDrop(Some(session.canceller()));
        let account = on_blocking_pool(move || session.run(timeout, &mut progress)).await;
        cancel.disarm();
        account
    }

    /// Cancels the active link session, if there is one ([`Keylink::cancel_link`]).
    pub fn cancel_link(&self) -> bool {
        self.inner.cancel_link()
    }

    /// Hands a redirect URL the OS delivered to the core ([`Keylink::deliver_redirect`]).
    pub async fn deliver_redirect(&self, url: &str) -> Delivery {
        let (keylink, url) = (self.inner.clone(), url.to_owned());
        match tokio::task::spawn_blocking(move || keylink.deliver_redirect(&url)).await {
            Ok(delivery) => delivery,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => Delivery::Completed(Err(Error::Interrupted)),
        }
    }

    /// Unlinks an account, revoking its refresh token first where the provider allows
    /// ([`Keylink::unlink`]).
    pub async fn unlink(&self, account: &AccountId) -> Result<UnlinkReport, Error> {
        let (keylink, account) = (self.inner.clone(), account.clone());
        on_blocking_pool(move || keylink.unlink(&account)).await
    }

    /// Unlinks an account and opens the provider's sign-out page, ending the person's
    /// session there ([`Keylink::unlink_and_sign_out`]).
    pub async fn unlink_and_sign_out(&self, account: &AccountId) -> Result<UnlinkReport, Error> {
        let (keylink, account) = (self.inner.clone(), account.clone());
        on_blocking_pool(move || keylink.unlink_and_sign_out(&account)).await
    }

    /// Calls the provider's API as the account, the token attached here and never handed
    /// out ([`Keylink::api_request`]).
    pub async fn api_request(
        &self,
        account: &AccountId,
        request: ApiRequest,
    ) -> Result<ApiResponse, Error> {
        let (keylink, account) = (self.inner.clone(), account.clone());
        on_blocking_pool(move || keylink.api_request(&account, &request)).await
    }

    /// A new access token for an account whose token a server refused although it had not
    /// expired ([`Keylink::replace_refused_token`]: one refresh, at most once a minute).
    pub async fn replace_refused_token(
        &self,
        account: &AccountId,
        refused: &AccessToken,
    ) -> Result<AccessToken, Error> {
        let (keylink, account, refused) = (self.inner.clone(), account.clone(), refused.clone());
        on_blocking_pool(move || keylink.replace_refused_token(&account, &refused)).await
    }

    /// Asks the provider who the account's tokens belong to ([`Keylink::check_connection`]).
    pub async fn check_connection(&self, account: &AccountId) -> Result<ConnectionCheck, Error> {
        let (keylink, account) = (self.inner.clone(), account.clone());
        on_blocking_pool(move || keylink.check_connection(&account)).await
    }
}

/// Cancels a link session whose future was dropped before it finished.
struct CancelOnDrop(Option<LinkCanceller>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(canceller) = self.0.take() {
            canceller.cancel();
        }
    }
}
