//! The facade every front end uses (the CLI, the desktop app, apps embedding Keylink):
//! [`Keylink`] and its builder. Each method forwards to the part that owns the concept: the
//! context (identity, configuration, keychain), the token source, the link sessions, the
//! authorization flow and identity.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::api::{ApiRequest, ApiResponse};
use crate::app::{AppIdentity, Environment, IdentityError};
use crate::authorization::{self, Hooks};
use crate::browser::{BrowserOpener, SystemBrowser};
use crate::clock::{Clock, ClockOffset, ClockOffsetError, SystemClock, UnixTime};
use crate::context::Context;
use crate::error::Error;
use crate::http::NetworkSettings;
use crate::identity::ConnectionCheck;
use crate::ids::{AccountId, ProviderId};
use crate::provider::{Config, Metadata, ProviderConfig};
use crate::secret::AccessToken;
use crate::session::{Delivery, LinkSession, LinkSessions, LinkStart};
use crate::store::{Account, SecretStore};
use crate::text::printable;
use crate::tokens::{TokenSource, UnlinkReport};

/// Keylink for one app: its identity, configuration, data directory, keychain and caches.
/// Cheap to clone (the clones share everything, including the one link session), `Send`
/// and `Sync`. Made with [`Keylink::builder`]; the [crate documentation](crate) shows the
/// whole flow.
#[derive(Clone)]
pub struct Keylink {
    ctx: Arc<Context>,
    browser: Arc<dyn BrowserOpener>,
    tokens: Arc<TokenSource>,
    sessions: Arc<LinkSessions>,
}

impl std::fmt::Debug for Keylink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keylink")
            .field("identity", &self.ctx.identity)
            .field("data_dir", &self.ctx.data_dir)
            .finish_non_exhaustive()
    }
}

/// Everything an app embedding Keylink may vary, set before [`KeylinkBuilder::build`]: the
/// configuration, the data directory, network settings, clock, secret store and browser
/// opener. The app's identity is given to [`Keylink::builder`] and cannot be left out, so an
/// app never shares another app's keychain entries by accident. What is not set comes from
/// the [`Environment`] given (none by default) and the identity's defaults.
///
/// ```compile_fail
/// // No identity, no Keylink: the builder cannot be made without one.
/// let keylink = keylink::Keylink::builder().build();
/// ```
pub struct KeylinkBuilder {
    identity: AppIdentity,
    environment: Environment,
    config: Option<Config>,
    data_dir: Option<PathBuf>,
    network: Option<NetworkSettings>,
    clock: Option<Arc<dyn Clock>>,
    secrets: Option<Arc<dyn SecretStore>>,
    browser: Option<Arc<dyn BrowserOpener>>,
}

impl std::fmt::Debug for KeylinkBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeylinkBuilder")
            .field("identity", &self.identity)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl KeylinkBuilder {
    /// The environment the front end captured: it supplies the configuration files
    /// (`KEYLINK_CONFIG`, `$XDG_CONFIG_HOME/keylink/keylink.toml`), the data directory, the
    /// browser and the proxy where they are not set explicitly.
    pub fn environment(mut self, environment: Environment) -> Self {
        self.environment = environment;
        self
    }

    /// An in-memory configuration instead of the configuration files.
    pub fn config(mut self, config: Config) -> Self {
        self.config = Some(config);
        self
    }

    /// The data directory (an absolute path) instead of the identity's default.
    pub fn data_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.data_dir = Some(dir.into());
        self
    }

    /// Network settings instead of the configuration's `[network]` table.
    pub fn network(mut self, settings: NetworkSettings) -> Self {
        self.network = Some(settings);
        self
    }

    /// A clock instead of the system clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// A secret store instead of the OS keychain.
    pub fn secret_store(mut self, store: Arc<dyn SecretStore>) -> Self {
        self.secrets = Some(store);
        self
    }

    /// A browser opener instead of the system browser.
    pub fn browser(mut self, browser: Arc<dyn BrowserOpener>) -> Self {
        self.browser = Some(browser);
        self
    }

    /// Builds Keylink: loads the configuration unless one was given and sets up the HTTP
    /// client. Nothing is written yet.
    pub fn build(self) -> Result<Keylink, Error> {
        let config = match self.config {
            Some(config) => config,
            None => Config::load(&self.environment)?,
        };
        config.check_redirect_uris(&self.identity)?;
        let data_dir = match self.data_dir {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => {
                return Err(IdentityError::DataDirUnknown(format!(
                    "the data directory {} is not an absolute path",
                    printable(&dir.display().to_string(), 200)
                ))
                .into());
            }
            None => self.identity.default_data_dir(&self.environment)?,
        };
        let mut network = self.network.unwrap_or_else(|| config.network.clone());
        network.apply_environment(&self.environment);
        let http = crate::http::Http::new(&network)?;
        let browser = self
            .browser
            .unwrap_or_else(|| Arc::new(SystemBrowser::from_environment(&self.environment)));
        let ctx = Context {
            identity: self.identity,
            config,
            data_dir,
            http,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            secrets: Mutex::new(self.secrets),
            metadata: Mutex::new(HashMap::new()),
            jwks: Mutex::new(HashMap::new()),
            keychain_id: Mutex::new(None),
        };
        Ok(Keylink {
            ctx: Arc::new(ctx),
            browser,
            tokens: Arc::default(),
            sessions: Arc::default(),
        })
    }
}

impl Keylink {
    /// Starts configuring Keylink for the app `identity` (its URL scheme, keychain namespace
    /// and default data directory): see [`KeylinkBuilder`]. Apps other than Keylink's own
    /// pass their own identity, [`AppIdentity::new`].
    pub fn builder(identity: AppIdentity) -> KeylinkBuilder {
        KeylinkBuilder {
            identity,
            environment: Environment::default(),
            config: None,
            data_dir: None,
            network: None,
            clock: None,
            secrets: None,
            browser: None,
        }
    }

    /// The app identity Keylink works for.
    pub fn identity(&self) -> &AppIdentity {
        &self.ctx.identity
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.ctx.config
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.ctx.data_dir
    }

    /// The configured provider `id`.
    pub fn provider(&self, id: &ProviderId) -> Result<&ProviderConfig, Error> {
        self.ctx.provider(id)
    }

    /// The provider's metadata, discovered once per process.
    pub fn metadata(&self, provider: &ProviderConfig) -> Result<Arc<Metadata>, Error> {
        crate::asynchronous::off_runtime(|| self.ctx.metadata(provider))
    }

    /// Whether `provider` offers device sign-in ([`LinkStart::device`]): its discovered
    /// metadata has a device authorization endpoint.
    pub fn supports_device_sign_in(&self, provider: &ProviderConfig) -> Result<bool, Error> {
        let metadata = crate::asynchronous::off_runtime(|| self.ctx.metadata(provider))?;
        Ok(metadata.device_authorization_endpoint.is_some())
    }

    /// The redirect URI to register at `provider`, exactly (`keylink providers` shows it).
    pub fn redirect_uri_to_register(&self, provider: &ProviderConfig) -> String {
        provider.registered_redirect_uri(&self.ctx.identity)
    }

    /// How far this computer's clock is from the provider's, from the HTTP `Date` of its
    /// authorization endpoint's answer to a `HEAD` request. ID tokens are checked against
    /// this computer's clock, so a large offset makes every sign-in fail.
    pub fn clock_offset(&self, metadata: &Metadata) -> Result<ClockOffset, ClockOffsetError> {
        crate::asynchronous::off_runtime(|| {
            let http = &self.ctx.http;
            let answer = http
                .send(
                    "the authorization endpoint",
                    http.client().head(metadata.authorization_endpoint.clone()),
                )
                .map_err(|e| ClockOffsetError::Unreachable(e.reason()))?;
            let date = answer.header("date").ok_or(ClockOffsetError::NoDate)?;
            let theirs = httpdate::parse_http_date(date)
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .and_then(|d| UnixTime::try_from(d.as_secs()).ok())
                .ok_or(ClockOffsetError::NoDate)?;
            Ok(ClockOffset::between(self.ctx.clock.now(), theirs))
        })
    }

    /// Checks that the keychain is reachable, unlocked and writable, with a probe entry that
    /// is written, read back and deleted.
    pub fn check_keychain(&self) -> Result<(), Error> {
        crate::asynchronous::off_runtime(|| self.ctx.check_keychain())
    }

    /// Reserves the app's link session for `start` (see [`LinkSession::run`]). One session
    /// runs at a time per `Keylink`: while one is active this fails with
    /// [`Error::LinkInProgress`]. An unknown provider or account fails here, before
    /// anything happens.
    pub fn link(&self, start: LinkStart) -> Result<LinkSession, Error> {
        crate::asynchronous::off_runtime(|| self.sessions.begin(&self.ctx, &self.browser, start))
    }

    /// Cancels the active link session, if there is one (see [`LinkCanceller::cancel`]).
    ///
    /// [`LinkCanceller::cancel`]: crate::link::LinkCanceller::cancel
    pub fn cancel_link(&self) -> bool {
        self.sessions.cancel(&self.ctx, None)
    }

    /// Hands a redirect URL the OS delivered to this process (a cold start's argument, a
    /// forwarded second instance, a deep-link event) to the core, once per URL, and says
    /// who reports the result: the session waiting for it here, or the caller.
    pub fn deliver_redirect(&self, url: &str) -> Delivery {
        crate::asynchronous::off_runtime(|| self.sessions.deliver(&self.ctx, url))
    }

    /// Completes a sign-in from its redirect URL in a process with no link session of its
    /// own (`keylink open-url`): strict parsing, the pending flow claimed at most once
    /// across processes, exact redirect URI and `iss` checks, then the code exchange, ID
    /// token validation and storage. The process whose session waits for it sees the result.
    pub fn complete_redirect(&self, url: &str) -> Result<Account, Error> {
        crate::asynchronous::off_runtime(|| {
            let hooks = Hooks {
                claimed: &mut |_| {},
                may_store: &|_| true,
            };
            authorization::complete_redirect(&self.ctx, url, hooks).1
        })
    }

    /// All linked accounts.
    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        crate::asynchronous::off_runtime(|| self.ctx.accounts())
    }

    /// The account with this id, or the only one with this email: what a person types to
    /// name an account (`keylink token alice@example.com`). Everything else takes the
    /// account's [`AccountId`].
    pub fn account(&self, query: &str) -> Result<Account, Error> {
        crate::asynchronous::off_runtime(|| self.ctx.account(query))
    }

    /// A valid access token for the account, refreshed first when it expires within
    /// `min_ttl` (whole seconds count).
    ///
    /// A token this process already holds is returned from memory. Refreshing is
    /// single-flight per account across threads and processes (a file lock); inside the lock
    /// the stored tokens are read again, so a refresh another process just did is used rather
    /// than repeated (a replayed rotated refresh token would revoke the grant, RFC 9700
    /// §4.14.2). The rotated refresh token is stored before the access token is returned.
    /// `invalid_grant` marks the account `needs_relink`; network errors, 5xx and 429 are
    /// retried a bounded number of times and never change the stored tokens.
    pub fn access_token(
        &self,
        account: &AccountId,
        min_ttl: Duration,
    ) -> Result<AccessToken, Error> {
        if let Some(token) = self.cached_access_token(account, min_ttl) {
            return Ok(token);
        }
        let secs = min_ttl.as_secs();
        crate::asynchronous::off_runtime(|| self.tokens.access_token(&self.ctx, account, secs))
    }

    /// An access token for `account` limited to some of its granted scopes and to one API
    /// (`request`: RFC 6749 §6 down-scoped refresh, RFC 8707 resource indicators), refreshed
    /// first when it expires within `min_ttl`; the empty request is
    /// [`Keylink::access_token`]'s token.
    ///
    /// A scope the account was never granted is [`Error::ScopeNotGranted`], and nothing is
    /// sent. Each (scopes, resource) token is kept in memory and in the keychain under its
    /// own key beside the account's tokens, refreshed single-flight under the account's lock;
    /// a refresh token the provider rotates replaces the account's, stored first. Unlinking
    /// deletes them all.
    pub fn access_token_for(
        &self,
        account: &AccountId,
        request: &crate::tokens::TokenRequest,
        min_ttl: Duration,
    ) -> Result<crate::tokens::ApiToken, Error> {
        let secs = min_ttl.as_secs();
        crate::asynchronous::off_runtime(|| {
            self.tokens.limited_token(&self.ctx, account, request, secs)
        })
    }

    /// A new access token for an account whose token a server refused (HTTP 401) although it
    /// had not expired, such as a git server's answer that made git call its helper's
    /// `erase` (SECURITY 44): one refresh, at most once a minute per account (SECURITY 49;
    /// within that minute [`Error::TokenRejectedAgain`], or the token another refresh stored
    /// meanwhile). A refused refresh marks the account `needs_relink`; the account is never
    /// unlinked here.
    pub fn replace_refused_token(
        &self,
        account: &AccountId,
        refused: &AccessToken,
    ) -> Result<AccessToken, Error> {
        crate::asynchronous::off_runtime(|| {
            self.tokens
                .replace_rejected_token(&self.ctx, account, refused)
        })
    }

    /// The account with this id, read from the index now.
    #[cfg(unix)]
    pub(crate) fn account_by_id(&self, id: &AccountId) -> Result<Account, Error> {
        self.ctx.account_by_id(id)
    }

    /// Drops the access tokens this process holds; the next request reads the keychain.
    #[cfg(unix)]
    pub(crate) fn forget_cached_tokens(&self) {
        self.tokens.forget_all();
    }

    /// The access token this process holds for `account` when it stays valid for more than
    /// `min_ttl`; memory only.
    pub(crate) fn cached_access_token(
        &self,
        account: &AccountId,
        min_ttl: Duration,
    ) -> Option<AccessToken> {
        let min_ttl = i64::try_from(min_ttl.as_secs()).unwrap_or(i64::MAX);
        self.tokens.cached(&self.ctx, account, min_ttl)
    }

    /// Unlinks an account: revokes its refresh token at the provider (RFC 7009) when possible,
    /// then always deletes the keychain entry and the index entry.
    pub fn unlink(&self, account: &AccountId) -> Result<UnlinkReport, Error> {
        crate::asynchronous::off_runtime(|| self.tokens.unlink(&self.ctx, account, None))
    }

    /// Unlinks an account as [`Keylink::unlink`] does and also ends the person's session at
    /// the provider (OpenID Connect RP-Initiated Logout 1.0): before the tokens are deleted,
    /// the browser opener is sent to the provider's `end_session_endpoint` with the stored ID
    /// token as `id_token_hint`, the client id, a fresh `state` and the
    /// `post_logout_redirect_uri` `<scheme>:/signed-out/<provider-id>`, whose arrival
    /// [`Keylink::signed_out_provider`] recognises. [`UnlinkReport::sign_out`] says what
    /// happened; the account is unlinked in every case.
    pub fn unlink_and_sign_out(&self, account: &AccountId) -> Result<UnlinkReport, Error> {
        crate::asynchronous::off_runtime(|| {
            self.tokens
                .unlink(&self.ctx, account, Some(self.browser.as_ref()))
        })
    }

    /// The `post_logout_redirect_uri` to register at `provider` for
    /// [`Keylink::unlink_and_sign_out`]: `<scheme>:/signed-out/<provider-id>`, exactly.
    pub fn post_logout_redirect_uri(&self, provider: &ProviderConfig) -> String {
        crate::logout::post_logout_redirect_uri(&self.ctx.identity, &provider.id)
    }

    /// The provider whose sign-out confirmation `url` is (`<scheme>:/signed-out/<id>`, the
    /// provider's redirect after [`Keylink::unlink_and_sign_out`]), or `None` when `url` is
    /// not one: then it is a sign-in redirect, for [`Keylink::complete_redirect`]. A
    /// confirmation changes nothing; the front end may tell the person they are signed out.
    pub fn signed_out_provider(&self, url: &str) -> Option<ProviderId> {
        crate::logout::signed_out_provider(&self.ctx, url)
    }

    /// Calls the provider's API as the account `account`: the request goes only to an origin
    /// listed in the provider's `api_origins` (else [`Error::ApiNotAllowed`], nothing sent),
    /// with a fresh access token attached here, the usual deadline and size cap, redirects not
    /// followed, and one refresh when the API refuses the token. The answer holds nothing
    /// that could carry the token. For front ends that must never see a token (a webview).
    pub fn api_request(
        &self,
        account: &AccountId,
        request: &ApiRequest,
    ) -> Result<ApiResponse, Error> {
        crate::asynchronous::off_runtime(|| {
            crate::api::request(&self.ctx, &self.tokens, account, request)
        })
    }

    /// Asks the provider's user endpoint who the account's tokens belong to, with an access
    /// token from [`Keylink::access_token`] (the stored one, refreshed only when it expires
    /// within a minute), so it shows the stored tokens at work. A token the provider refuses
    /// is refreshed once (SECURITY 44). The token never leaves here.
    pub fn check_connection(&self, account: &AccountId) -> Result<ConnectionCheck, Error> {
        crate::asynchronous::off_runtime(|| {
            crate::identity::check_connection(&self.ctx, &self.tokens, account)
        })
    }
}
