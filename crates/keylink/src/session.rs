//! Link sessions: one link in progress per app, the same shape for browser and device
//! sign-in. A session starts, reports its progress (browser opened or code shown, waiting,
//! exchanging) and ends linked or failed; it can be cancelled at any point, and nothing is
//! stored once it is. Redirects the OS delivers to this process go through
//! [`Keylink::deliver_redirect`](crate::Keylink::deliver_redirect), which drops a second
//! delivery of the same URL and says whether the session waiting here reports the result.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use url::Url;

use crate::authorization::{self, Hooks};
use crate::browser::BrowserOpener;
use crate::context::Context;
use crate::device::DeviceAuthorization;
use crate::error::Error;
use crate::flow::ReconnectTarget;
use crate::ids::{AccountId, FlowId, ProviderId};
use crate::store::Account;

/// What a link session does: sign in at a provider in the browser or with a code on
/// another device, or sign in again as an existing account.
///
/// ```
/// use keylink::{AccountId, LinkStart, ProviderId};
/// let work = ProviderId::new("work");
/// let browser = LinkStart::browser(work.clone());
/// let printed = LinkStart::browser(work.clone()).without_browser(); // the CLI's --no-browser
/// let device = LinkStart::device(work);
/// let again = LinkStart::reconnect(AccountId::new("work-3f2a9c1b07"));
/// // Incremental consent: the calendar too, keeping what was granted before.
/// let more = LinkStart::reconnect(AccountId::new("work-3f2a9c1b07")).scopes(["calendar"]);
/// # let _ = (browser, printed, device, again, more);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkStart {
    target: Target,
    method: SignIn,
    open_browser: bool,
    extra_scopes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Provider(ProviderId),
    Account(AccountId),
}

/// How the person signs in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignIn {
    /// In the system browser (authorization code with PKCE, RFC 8252).
    Browser,
    /// On another device with a short code (RFC 8628).
    Device,
}

impl LinkStart {
    /// Link a new account at `provider`, signing in in the system browser.
    pub fn browser(provider: ProviderId) -> Self {
        LinkStart {
            target: Target::Provider(provider),
            method: SignIn::Browser,
            open_browser: true,
            extra_scopes: Vec::new(),
        }
    }

    /// Link a new account at `provider` with a code entered on another device.
    pub fn device(provider: ProviderId) -> Self {
        LinkStart {
            target: Target::Provider(provider),
            method: SignIn::Device,
            open_browser: false,
            extra_scopes: Vec::new(),
        }
    }

    /// Sign in again as the account `account`, in the browser, with `login_hint` and
    /// `prompt=login`. Signing in as anyone else changes nothing and fails with
    /// [`Error::WrongAccount`] (SECURITY 45).
    pub fn reconnect(account: AccountId) -> Self {
        LinkStart {
            target: Target::Account(account),
            method: SignIn::Browser,
            open_browser: true,
            extra_scopes: Vec::new(),
        }
    }

    /// Browser sign-in without opening the browser: the session hands the URL to open to
    /// its progress callback ([`LinkProgress::OpenInBrowser`]) instead.
    pub fn without_browser(mut self) -> Self {
        self.open_browser = false;
        self
    }

    /// Asks for `extra` scopes besides the provider's configured ones (incremental
    /// consent). A reconnect also asks again for every scope the account has, so nothing
    /// granted before is dropped. After the sign-in the account's scopes are those the
    /// provider says it granted (RFC 6749 §3.3, §5.1); a refusal changes nothing. Each must
    /// be a scope-token of RFC 6749 §3.3, else [`Keylink::link`](crate::Keylink::link)
    /// fails with [`Error::InvalidScope`] and nothing is requested.
    pub fn scopes(mut self, extra: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.extra_scopes.extend(extra.into_iter().map(Into::into));
        self
    }

    /// How the person signs in.
    pub fn method(&self) -> SignIn {
        self.method
    }
}

/// Identifies a link session within its process.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(u64);

impl std::fmt::Display for SessionId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "link-{}", self.0)
    }
}

/// Where a link session is, in the order a session reports it: `Starting`, then
/// `BrowserOpened` (or `OpenInBrowser`) or `CodeShown`, then `Waiting`, then `Exchanging`
/// once the sign-in came back, then the session ends with its result.
#[derive(Clone)]
#[non_exhaustive]
pub enum LinkProgress {
    /// Looking up the provider and checking the keychain.
    Starting,
    /// The system browser was opened at the provider's sign-in page.
    BrowserOpened,
    /// The page to open in a browser, for a session started
    /// [`without_browser`](LinkStart::without_browser). It carries the request's state and
    /// nonce: show it to the person, log it nowhere (Debug hides its query).
    OpenInBrowser(Url),
    /// The code to enter on another device, and where.
    CodeShown(DeviceAuthorization),
    /// Waiting for the person to finish signing in, at most until `deadline`.
    Waiting {
        /// When the session gives up.
        deadline: Instant,
    },
    /// The sign-in came back: exchanging the code, validating and storing the account.
    Exchanging,
}

impl std::fmt::Debug for LinkProgress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkProgress::Starting => f.write_str("Starting"),
            LinkProgress::BrowserOpened => f.write_str("BrowserOpened"),
            LinkProgress::OpenInBrowser(url) => {
                let mut shown = url.clone();
                shown.set_query(Some("[redacted]"));
                f.debug_tuple("OpenInBrowser")
                    .field(&shown.as_str())
                    .finish()
            }
            LinkProgress::CodeShown(code) => f.debug_tuple("CodeShown").field(code).finish(),
            LinkProgress::Waiting { deadline } => f
                .debug_struct("Waiting")
                .field("deadline", deadline)
                .finish(),
            LinkProgress::Exchanging => f.write_str("Exchanging"),
        }
    }
}

/// What became of a redirect delivered with
/// [`Keylink::deliver_redirect`](crate::Keylink::deliver_redirect).
#[derive(Debug)]
#[non_exhaustive]
pub enum Delivery {
    /// The same URL was delivered to this process before (the OS may hand a forwarded
    /// redirect over twice); nothing was done.
    Duplicate,
    /// It belonged to the link session of this process, which reports the result.
    ToSession(SessionId),
    /// A sign-in no session here waits for (started by another process, or refused before
    /// it reached one): its result, for the front end to show.
    Completed(Result<Account, Error>),
    /// The provider's confirmation that the person signed out there
    /// ([`Keylink::unlink_and_sign_out`](crate::Keylink::unlink_and_sign_out)), for this
    /// configured provider: not a sign-in, and nothing was changed.
    SignedOut(ProviderId),
}

/// The link sessions of one [`Keylink`](crate::Keylink): the active one, the flows of this
/// process's sessions, and the redirects already delivered.
pub(crate) struct LinkSessions {
    active: Mutex<Option<Active>>,
    /// Pending flow id → its session, and whether it was cancelled. Cancelled flows are
    /// kept, so a redirect already being exchanged for one stores nothing.
    flows: Mutex<HashMap<FlowId, (SessionId, bool)>>,
    /// Hashes of the redirect URLs already delivered, keyed per process, so the URLs (which
    /// carry codes) are not kept.
    seen: Mutex<HashSet<u64>>,
    hasher: RandomState,
    next_id: AtomicU64,
}

struct Active {
    id: SessionId,
    provider_name: String,
    flow_id: Option<FlowId>,
    cancel: Arc<AtomicBool>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Default for LinkSessions {
    fn default() -> Self {
        LinkSessions {
            active: Mutex::new(None),
            flows: Mutex::default(),
            seen: Mutex::default(),
            hasher: RandomState::new(),
            next_id: AtomicU64::new(1),
        }
    }
}

impl LinkSessions {
    /// Reserves this app's one link session for `start`. Cheap: no network, nothing
    /// written; an unknown provider or account is refused here.
    pub(crate) fn begin(
        self: &Arc<Self>,
        ctx: &Arc<Context>,
        browser: &Arc<dyn BrowserOpener>,
        start: LinkStart,
    ) -> Result<LinkSession, Error> {
        for scope in &start.extra_scopes {
            crate::error::check_scope(scope)?;
        }
        let (provider, reconnect, granted) = match &start.target {
            Target::Provider(id) => (ctx.provider(id)?.id.clone(), None, Vec::new()),
            Target::Account(account) => {
                let (provider, target) = authorization::reconnect_target(ctx, account)?;
                let granted = ctx.account_by_id(account)?.scopes;
                (provider, Some(target), granted)
            }
        };
        let config = ctx.provider(&provider)?;
        let provider_name = config.name.clone();
        let scopes = crate::flow::requested_scopes(&config.scopes, &granted, &start.extra_scopes);
        let mut active = lock(&self.active);
        if let Some(other) = active.as_ref() {
            return Err(Error::LinkInProgress(other.provider_name.clone()));
        }
        let id = SessionId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let cancel = Arc::new(AtomicBool::new(false));
        *active = Some(Active {
            id,
            provider_name,
            flow_id: None,
            cancel: cancel.clone(),
        });
        Ok(LinkSession {
            id,
            provider,
            reconnect,
            scopes,
            start,
            cancel,
            ctx: ctx.clone(),
            browser: browser.clone(),
            sessions: self.clone(),
        })
    }

    /// Cancels the session `id` (the active one when `None`); returns whether one was.
    /// Its pending flow is removed, so its redirect is refused from now on, and the slot is
    /// free at once for a new session.
    pub(crate) fn cancel(&self, ctx: &Context, id: Option<SessionId>) -> bool {
        let cancelled = {
            let mut active = lock(&self.active);
            match active.as_ref() {
                Some(a) if id.is_none_or(|id| id == a.id) => active.take(),
                _ => None,
            }
        };
        let Some(cancelled) = cancelled else {
            return false;
        };
        cancelled.cancel.store(true, Ordering::SeqCst);
        if let Some(flow_id) = cancelled.flow_id {
            lock(&self.flows).insert(flow_id.clone(), (cancelled.id, true));
            authorization::cancel(ctx, &flow_id);
        }
        tracing::info!(session = %cancelled.id, "link cancelled");
        true
    }

    fn started_flow(&self, id: SessionId, flow_id: &FlowId) {
        lock(&self.flows).insert(flow_id.clone(), (id, false));
        if let Some(active) = lock(&self.active).as_mut().filter(|a| a.id == id) {
            active.flow_id = Some(flow_id.clone());
        }
    }

    fn finished(&self, id: SessionId) {
        let mut active = lock(&self.active);
        if active.as_ref().is_some_and(|a| a.id == id) {
            *active = None;
        }
        drop(active);
        lock(&self.flows).retain(|_, (session, cancelled)| *session != id || *cancelled);
    }

    fn is_cancelled_flow(&self, flow_id: &FlowId) -> bool {
        lock(&self.flows)
            .get(flow_id)
            .is_some_and(|(_, cancelled)| *cancelled)
    }

    /// Completes a redirect the OS delivered to this process, once per URL.
    pub(crate) fn deliver(&self, ctx: &Context, url: &str) -> Delivery {
        if !lock(&self.seen).insert(self.hasher.hash_one(url)) {
            tracing::debug!("redirect already delivered; ignoring the second delivery");
            return Delivery::Duplicate;
        }
        if let Some(provider) = crate::logout::signed_out_provider(ctx, url) {
            tracing::debug!(%provider, "sign-out confirmation delivered");
            return Delivery::SignedOut(provider);
        }
        // Which session the flow belongs to is read when it is claimed: once the outcome is
        // recorded, the session may take it and end before this call returns.
        let mut session = None;
        let hooks = Hooks {
            claimed: &mut |flow_id| session = lock(&self.flows).get(flow_id).map(|(id, _)| *id),
            may_store: &|flow_id| !self.is_cancelled_flow(flow_id),
        };
        let (_, result) = authorization::complete_redirect(ctx, url, hooks);
        match session {
            Some(id) => Delivery::ToSession(id),
            None => Delivery::Completed(result),
        }
    }
}

/// A reserved link session, ready to [`run`](LinkSession::run). Dropping it without
/// running frees the app's session slot.
pub struct LinkSession {
    id: SessionId,
    provider: ProviderId,
    reconnect: Option<ReconnectTarget>,
    /// The scopes this sign-in asks for.
    scopes: Vec<String>,
    start: LinkStart,
    cancel: Arc<AtomicBool>,
    ctx: Arc<Context>,
    browser: Arc<dyn BrowserOpener>,
    sessions: Arc<LinkSessions>,
}

impl std::fmt::Debug for LinkSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkSession")
            .field("id", &self.id)
            .field("provider", &self.provider)
            .field("start", &self.start)
            .finish_non_exhaustive()
    }
}

/// Cancels one link session from any thread (a Cancel button, an abort signal).
#[derive(Clone)]
pub struct LinkCanceller {
    id: SessionId,
    ctx: Arc<Context>,
    sessions: Arc<LinkSessions>,
}

impl std::fmt::Debug for LinkCanceller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkCanceller")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl LinkCanceller {
    /// Cancels the session: it ends with [`Error::Cancelled`] and stores nothing. Returns
    /// whether it was still in progress.
    pub fn cancel(&self) -> bool {
        self.sessions.cancel(&self.ctx, Some(self.id))
    }
}

impl LinkSession {
    /// The session's id.
    pub fn id(&self) -> SessionId {
        self.id
    }

    /// The id of the provider the person signs in at.
    pub fn provider(&self) -> &ProviderId {
        &self.provider
    }

    /// A handle that cancels this session from another thread.
    pub fn canceller(&self) -> LinkCanceller {
        LinkCanceller {
            id: self.id,
            ctx: self.ctx.clone(),
            sessions: self.sessions.clone(),
        }
    }

    /// Runs the session on this thread until it is linked, fails, is cancelled, or
    /// `timeout` passes, handing each step to `progress` (see [`LinkProgress`] for the
    /// order). Blocks: run it on a worker thread in a GUI.
    pub fn run(
        self,
        timeout: Duration,
        mut progress: impl FnMut(&LinkProgress) + Send,
    ) -> Result<Account, Error> {
        crate::asynchronous::off_runtime(move || self.run_here(timeout, &mut progress))
    }

    fn run_here(
        self,
        timeout: Duration,
        mut progress: &mut (dyn FnMut(&LinkProgress) + Send),
    ) -> Result<Account, Error> {
        let deadline = crate::clock::deadline_after(timeout);
        progress(&LinkProgress::Starting);
        let result = match self.start.method {
            SignIn::Browser => self.run_browser(deadline, timeout, &mut progress),
            SignIn::Device => {
                let cancelled = || self.cancel.load(Ordering::SeqCst);
                self.ctx.provider(&self.provider).and_then(|provider| {
                    crate::authorization::device::link(
                        &self.ctx,
                        provider,
                        deadline,
                        timeout,
                        &cancelled,
                        &mut progress,
                        &self.scopes,
                    )
                })
            }
        };
        // Whatever went wrong, a cancelled session reports that it was cancelled.
        match result {
            Err(_) if self.cancel.load(Ordering::SeqCst) => Err(Error::Cancelled),
            other => other,
        }
    }

    fn run_browser(
        &self,
        deadline: Instant,
        timeout: Duration,
        progress: &mut dyn FnMut(&LinkProgress),
    ) -> Result<Account, Error> {
        let cancelled = || self.cancel.load(Ordering::SeqCst);
        let provider = self.ctx.provider(&self.provider)?;
        let started = authorization::start(
            &self.ctx,
            provider,
            self.reconnect.clone(),
            self.scopes.clone(),
        )?;
        self.sessions.started_flow(self.id, &started.flow_id);
        let give_up = |e: Error| {
            authorization::cancel(&self.ctx, &started.flow_id);
            Err(e)
        };
        if cancelled() {
            return give_up(Error::Cancelled);
        }
        let url = &started.authorization_url;
        if self.start.open_browser {
            if !crate::http::is_allowed_endpoint(url) {
                // Named without its query, which holds the state and nonce (SECURITY 50).
                return give_up(Error::UnsafeAuthorizationUrl(
                    crate::browser::shown_without_query(url),
                ));
            }
            if let Err(e) = self.browser.open(url) {
                return give_up(e);
            }
            progress(&LinkProgress::BrowserOpened);
        } else {
            progress(&LinkProgress::OpenInBrowser(url.clone()));
        }
        if cancelled() {
            return give_up(Error::Cancelled);
        }
        progress(&LinkProgress::Waiting { deadline });
        let mut exchanging = |_: &_| progress(&LinkProgress::Exchanging);
        let hooks = Hooks {
            claimed: &mut exchanging,
            may_store: &|_| !cancelled(),
        };
        authorization::wait(&self.ctx, started, deadline, timeout, &cancelled, hooks)
    }
}

impl Drop for LinkSession {
    fn drop(&mut self) {
        self.sessions.finished(self.id);
    }
}

#[cfg(test)]
mod tests;
