//! The one API every front end uses (the CLI, the desktop app, apps embedding Keylink):
//! start a link, complete a redirect, list accounts, get a fresh access token, unlink.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;

use crate::app::{AppIdentity, Environment};
use crate::browser::{BrowserOpener, SystemBrowser};
use crate::callback::{
    AuthorizationResponse, LoopbackListener, LoopbackVerdict, RedirectError, check_issuer,
    parse_redirect, printable, redirect_matches,
};
use crate::clock::{Clock, SystemClock, UnixTime};
use crate::error::Error;
use crate::exchange::{self, TokenSet};
use crate::flow::{Claim, PendingFlow, PendingFlows, ReconnectTarget};
use crate::id_token::{self, Expected, Jwks};
use crate::provider::{Config, Metadata, ProviderConfig, RedirectKind, discover};
use crate::secret::AccessToken;
use crate::store::{Account, AccountStatus, Index, Keychain, SecretStore, encode_tokens};
use crate::tokens::CachedToken;

/// Keylink: configuration, data directory, keychain and caches of one process.
///
/// ```no_run
/// use std::time::Duration;
/// # fn main() -> Result<(), keylink::Error> {
/// // Your app's identity and configuration; the environment only where you want it.
/// let config = keylink::Config::parse(
///     r#"[providers.demo]
///        issuer = "https://login.example.com"
///        client_id = "my-desktop-client""#,
/// )?;
/// let keylink = keylink::Keylink::builder()
///     .identity(keylink::AppIdentity::new("com.example.notes")?)
///     .config(config)
///     .environment(keylink::Environment::capture(std::env::var_os))
///     .build()?;
/// // 1. Start: discovery, PKCE, state and nonce; the pending flow is saved.
/// let request = keylink.start_link("demo")?;
/// // 2. Send the person to the provider in the system browser.
/// keylink.open_browser(&request.authorization_url)?;
/// // 3. Wait for the redirect (delivered by the loopback listener, or by the OS running
/// //    `keylink open-url <url>`, which calls `Keylink::complete_redirect`).
/// let account = keylink.wait_for_link(request, Duration::from_secs(300), || false)?;
/// // 4. Any time later, in any process: a fresh access token.
/// let token = keylink.access_token(&account.id, 60)?;
/// # let _ = token;
/// # Ok(()) }
/// ```
pub struct Keylink {
    identity: AppIdentity,
    config: Config,
    data_dir: PathBuf,
    http: crate::http::Http,
    clock: Arc<dyn Clock>,
    secrets: Mutex<Option<Arc<dyn SecretStore>>>,
    browser: Arc<dyn BrowserOpener>,
    metadata: Mutex<HashMap<String, Arc<Metadata>>>,
    jwks: Mutex<HashMap<Url, Arc<Jwks>>>,
    /// Access tokens this process holds, by account id and by the query used.
    pub(crate) cache: Mutex<HashMap<String, CachedToken>>,
    /// The data directory's keychain id, once read (see [`Keylink::token_key`]).
    keychain_id: Mutex<Option<String>>,
}

impl std::fmt::Debug for Keylink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keylink")
            .field("identity", &self.identity)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

/// A started link: open `authorization_url` in the system browser, then wait.
pub struct LinkRequest {
    /// The pending flow's id.
    pub flow_id: String,
    /// Provider id.
    pub provider: String,
    /// The URL to open in the system browser. Contains only public values (the PKCE
    /// challenge, not the verifier).
    pub authorization_url: Url,
    loopback: Option<LoopbackListener>,
}

// The authorization URL carries the state and the nonce: Debug shows it without its query.
impl std::fmt::Debug for LinkRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut shown = self.authorization_url.clone();
        shown.set_query(Some("[redacted]"));
        f.debug_struct("LinkRequest")
            .field("flow_id", &self.flow_id)
            .field("provider", &self.provider)
            .field("authorization_url", &shown.as_str())
            .finish_non_exhaustive()
    }
}

/// What unlinking did.
#[derive(Debug)]
pub struct UnlinkReport {
    /// The account that was removed.
    pub account: Account,
    /// Revocation at the provider: `Ok(true)` revoked, `Ok(false)` the provider has no
    /// revocation endpoint, `Err` why it failed (the account was removed locally anyway).
    pub revocation: Result<bool, String>,
}

/// The result of a completed flow, left for the process waiting on it.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Outcome {
    Linked { account: String },
    Failed { code: String, message: String },
}

/// Everything an app embedding Keylink may vary, set before [`KeylinkBuilder::build`]: its
/// identity, the configuration, the data directory, network settings, clock, secret store
/// and browser opener. What is not set comes from the [`Environment`] given (none by
/// default) and the Keylink app's defaults.
#[derive(Default)]
pub struct KeylinkBuilder {
    identity: AppIdentity,
    environment: Environment,
    config: Option<Config>,
    data_dir: Option<PathBuf>,
    network: Option<crate::http::NetworkSettings>,
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
    /// The app's identity (URL scheme, keychain namespace, default data directory); the
    /// Keylink app's own, `dev.keylink`, by default.
    pub fn identity(mut self, identity: AppIdentity) -> Self {
        self.identity = identity;
        self
    }

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
    pub fn network(mut self, settings: crate::http::NetworkSettings) -> Self {
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
        let data_dir = match self.data_dir {
            Some(dir) if dir.is_absolute() => dir,
            Some(dir) => {
                return Err(Error::DataDirUnknown(format!(
                    "the data directory {} is not an absolute path",
                    printable(&dir.display().to_string(), 200)
                )));
            }
            None => self.identity.default_data_dir(&self.environment)?,
        };
        let mut network = self.network.unwrap_or_else(|| config.network.clone());
        network.apply_environment(&self.environment);
        let http = crate::http::Http::new(&network)?;
        let browser = self
            .browser
            .unwrap_or_else(|| Arc::new(SystemBrowser::from_environment(&self.environment)));
        Ok(Keylink {
            identity: self.identity,
            config,
            data_dir,
            http,
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            secrets: Mutex::new(self.secrets),
            browser,
            metadata: Mutex::new(HashMap::new()),
            jwks: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            keychain_id: Mutex::new(None),
        })
    }
}

impl Keylink {
    /// Starts configuring Keylink for an app: see [`KeylinkBuilder`].
    pub fn builder() -> KeylinkBuilder {
        KeylinkBuilder::default()
    }

    /// Keylink for the Keylink app's identity with an explicit configuration and data
    /// directory, nothing taken from the environment: `builder().config(..).data_dir(..)`.
    pub fn new(config: Config, data_dir: PathBuf) -> Result<Self, Error> {
        Self::builder().config(config).data_dir(data_dir).build()
    }

    /// The app identity Keylink works for.
    pub fn identity(&self) -> &AppIdentity {
        &self.identity
    }

    /// The redirect URI to register at `provider`, exactly (`keylink providers` shows it).
    pub fn redirect_uri_to_register(&self, provider: &ProviderConfig) -> String {
        provider.registered_redirect_uri(&self.identity)
    }

    /// Opens `url` with the browser opener. Refuses anything but https (or http on
    /// loopback), so a hostile discovery document cannot make Keylink open `file:` or `smb:`
    /// URLs (SECURITY 2).
    pub fn open_browser(&self, url: &Url) -> Result<(), Error> {
        if !crate::http::is_allowed_endpoint(url) {
            return Err(Error::UnsafeAuthorizationUrl(printable(url.as_str(), 200)));
        }
        self.browser.open(url)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The HTTP client (shared, with the configured roots, deadline and size cap).
    pub fn http(&self) -> &crate::http::Http {
        &self.http
    }

    /// The current time, from the injected clock.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The keychain, opened once per process.
    pub fn secrets(&self) -> Result<Arc<dyn SecretStore>, Error> {
        let mut slot = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store: Arc<dyn SecretStore> =
            Keychain::open_for_tokens(self.identity.keychain_service())?;
        *slot = Some(store.clone());
        Ok(store)
    }

    /// The keychain key of an account's tokens: `<data dir id>:<account id>`. The id is
    /// random, made once per data directory, so two data directories of one app holding the
    /// same account never share (or delete) each other's tokens.
    pub fn token_key(&self, account_id: &str) -> Result<String, Error> {
        // Read (or made) once per process: it never changes for a data directory.
        let mut slot = self.keychain_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = match slot.as_ref() {
            Some(id) => id.clone(),
            None => slot.insert(self.load_keychain_id()?).clone(),
        };
        Ok(format!("{id}:{account_id}"))
    }

    /// The data directory's keychain id, from `<data dir>/keychain-id`, created on first use.
    fn load_keychain_id(&self) -> Result<String, Error> {
        let path = self.data_dir.join("keychain-id");
        crate::store::check_trusted_dir(&self.data_dir)?;
        let io = |e: std::io::Error| crate::store::StoreError::DataDir {
            path: path.clone(),
            reason: e.to_string(),
        };
        let read = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .map(str::trim)
                .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned)
        };
        let id = match crate::store::read_private(&path) {
            Ok(bytes) => read(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::store::create_private_dir(&self.data_dir).map_err(io)?;
                let fresh = format!("{:016x}", rand::random::<u64>());
                // Created exclusively: of two processes creating it at once, one wins and
                // both use its id.
                match crate::store::create_new_private(&path, fresh.as_bytes()) {
                    Ok(()) => Some(fresh),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        read(&crate::store::read_private(&path).map_err(io)?)
                    }
                    Err(e) => return Err(io(e).into()),
                }
            }
            Err(e) => return Err(io(e).into()),
        };
        Ok(id.ok_or_else(|| io(std::io::Error::other("it is not a Keylink keychain id")))?)
    }

    /// Checks that the keychain is reachable, unlocked and writable, with a probe entry that
    /// is written, read back and deleted.
    pub fn check_keychain(&self) -> Result<(), Error> {
        // Unique per process: concurrent checks must not delete each other's probe.
        let probe = format!("keylink-probe-{}", std::process::id());
        let store = self.secrets()?;
        store.set(&probe, "probe")?;
        let read = store.get(&probe);
        store.delete(&probe)?;
        match read? {
            Some(value) if value.secret() == "probe" => Ok(()),
            _ => Err(
                crate::store::StoreError::Keychain("a probe entry did not read back".into()).into(),
            ),
        }
    }

    /// `dir`, under the data directory, after checking that nobody else could have planted
    /// anything in it.
    pub(crate) fn trusted_dir(&self, sub: &str) -> Result<PathBuf, Error> {
        crate::store::check_trusted_dir(&self.data_dir)?;
        let dir = self.data_dir.join(sub);
        crate::store::check_trusted_dir(&dir)?;
        Ok(dir)
    }

    pub(crate) fn index(&self) -> Result<Index, Error> {
        crate::store::check_trusted_dir(&self.data_dir)?;
        Ok(Index::new(&self.data_dir))
    }

    fn pending(&self) -> Result<PendingFlows, Error> {
        self.trusted_dir("pending")?;
        Ok(PendingFlows::new(&self.data_dir))
    }

    /// The configured provider `id`.
    pub fn provider(&self, id: &str) -> Result<&ProviderConfig, Error> {
        self.config
            .provider(id)
            .ok_or_else(|| Error::UnknownProvider(printable(id, 64)))
    }

    /// The provider's metadata, discovered once per process.
    pub fn metadata(&self, provider: &ProviderConfig) -> Result<Arc<Metadata>, Error> {
        if let Some(m) = self
            .metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&provider.id)
        {
            return Ok(m.clone());
        }
        let m = Arc::new(discover(&self.http, provider)?);
        self.metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider.id.clone(), m.clone());
        Ok(m)
    }

    fn jwks_for(&self, uri: &Url) -> Arc<Jwks> {
        self.jwks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(uri.clone())
            .or_insert_with(|| Arc::new(Jwks::new(uri.clone())))
            .clone()
    }

    /// Starts linking an account at `provider`: discovery, PKCE S256, state and nonce, the
    /// pending flow saved, and for loopback providers the listener bound.
    pub fn start_link(&self, provider: &str) -> Result<LinkRequest, Error> {
        self.start_flow(provider, None)
    }

    /// Starts signing in again as the account `query` (SECURITY 45): like
    /// [`Keylink::start_link`] at its provider, with `login_hint` and `prompt=login`. A sign-in
    /// that comes back as someone else changes nothing and is refused with
    /// [`Error::WrongAccount`], naming who signed in.
    pub fn start_reconnect(&self, query: &str) -> Result<LinkRequest, Error> {
        let account = self.account(query)?;
        let shown = account
            .email
            .clone()
            .or_else(|| account.name.clone())
            .unwrap_or_else(|| account.subject.clone());
        let target = ReconnectTarget {
            account: account.id.clone(),
            subject: account.subject.clone(),
            shown,
        };
        self.start_flow(&account.provider, Some(target))
    }

    fn start_flow(
        &self,
        provider: &str,
        reconnect: Option<ReconnectTarget>,
    ) -> Result<LinkRequest, Error> {
        let provider = self.provider(provider)?;
        // Without a usable keychain the tokens could not be kept: say so before the user
        // signs in, not after.
        self.check_keychain()?;
        let metadata = self.metadata(provider)?;
        if !crate::http::is_allowed_endpoint(&metadata.authorization_endpoint) {
            return Err(Error::UnsafeAuthorizationUrl(printable(
                metadata.authorization_endpoint.as_str(),
                200,
            )));
        }
        let (loopback, redirect_uri) = match provider.redirect {
            RedirectKind::DeepLink => (None, provider.deep_link_redirect(&self.identity)),
            RedirectKind::Loopback => {
                let listener = LoopbackListener::bind()?;
                let uri = listener.redirect_uri(&provider.loopback_path());
                (Some(listener), uri)
            }
        };
        let now = self.now();
        let pending = self.pending()?;
        pending.prune(now);
        let (flow, authorization_url) =
            PendingFlow::start(provider, &metadata, redirect_uri, reconnect, now);
        pending.save(&flow)?;
        tracing::info!(provider = %provider.id, flow = %flow.id, "authorization started");
        Ok(LinkRequest {
            flow_id: flow.id,
            provider: provider.id.clone(),
            authorization_url,
            loopback,
        })
    }

    /// Cancels a started link: its redirect will be refused from now on.
    pub fn cancel_link(&self, flow_id: &str) {
        if let Ok(pending) = self.pending() {
            pending.remove(flow_id);
        }
    }

    /// Waits until the started link completes (in this process through the loopback listener,
    /// or in any process through [`Keylink::complete_redirect`]), times out, or `cancelled`
    /// returns true.
    pub fn wait_for_link(
        &self,
        request: LinkRequest,
        timeout: Duration,
        cancelled: impl Fn() -> bool,
    ) -> Result<Account, Error> {
        let deadline = crate::clock::deadline_after(timeout);
        let flow_id = request.flow_id.clone();
        let result = match request.loopback {
            Some(listener) => listener
                .serve(deadline, &cancelled, |url| {
                    match self.complete_redirect(url) {
                        Ok(account) => LoopbackVerdict::Done(
                            Ok(account),
                            "Your account is linked. You can close this tab and return to Keylink."
                                .into(),
                        ),
                        Err(Error::Redirect(e)) if is_not_ours(&e) => {
                            LoopbackVerdict::Rejected(e.to_string())
                        }
                        Err(e) => {
                            let page = format!("Linking failed: {e}");
                            LoopbackVerdict::Done(Err(e), page)
                        }
                    }
                })
                .map_err(|e| match e {
                    crate::callback::LoopbackError::TimedOut => {
                        Error::LinkTimedOut(timeout.as_secs())
                    }
                    other => Error::Loopback(other),
                })
                .and_then(|r| r),
            None => self.wait_for_outcome(&flow_id, deadline, timeout, &cancelled),
        };
        if result.is_err() {
            self.cancel_link(&flow_id);
        }
        if let Ok(path) = self.outcome_path(&flow_id) {
            let _ = std::fs::remove_file(path);
        }
        result
    }

    fn outcome_path(&self, flow_id: &str) -> Result<PathBuf, Error> {
        Ok(self
            .trusted_dir("outcomes")?
            .join(format!("{flow_id}.json")))
    }

    fn wait_for_outcome(
        &self,
        flow_id: &str,
        deadline: Instant,
        timeout: Duration,
        cancelled: &impl Fn() -> bool,
    ) -> Result<Account, Error> {
        let path = self.outcome_path(flow_id)?;
        loop {
            if let Ok(bytes) = crate::store::read_private(&path) {
                return match serde_json::from_slice::<Outcome>(&bytes) {
                    Ok(Outcome::Linked { account }) => self.account(&account),
                    Ok(Outcome::Failed { message, .. }) => Err(Error::LinkFailed(message)),
                    Err(_) => Err(Error::LinkFailed("the result could not be read".into())),
                };
            }
            if cancelled() {
                return Err(Error::Loopback(crate::callback::LoopbackError::Cancelled));
            }
            if Instant::now() >= deadline {
                return Err(Error::LinkTimedOut(timeout.as_secs()));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The result of a flow completed by another process, if it has arrived (for front ends
    /// that poll instead of blocking in [`Keylink::wait_for_link`]).
    pub fn take_outcome(&self, flow_id: &str) -> Option<Result<Account, Error>> {
        let path = self.outcome_path(flow_id).ok()?;
        let bytes = crate::store::read_private(&path).ok()?;
        let _ = std::fs::remove_file(&path);
        Some(match serde_json::from_slice::<Outcome>(&bytes) {
            Ok(Outcome::Linked { account }) => self.account(&account),
            Ok(Outcome::Failed { message, .. }) => Err(Error::LinkFailed(message)),
            Err(_) => Err(Error::LinkFailed("the result could not be read".into())),
        })
    }

    /// Completes a flow from its redirect URL: strict parsing, the pending flow claimed by
    /// `state` (at most once, across processes), exact redirect URI and `iss` checks, then the
    /// code exchange, ID token validation and storage. Untrusted input: anything wrong is
    /// refused before any token request.
    pub fn complete_redirect(&self, url: &str) -> Result<Account, Error> {
        let response = parse_redirect(url)?;
        let now = self.now();
        let flow = match self.pending()?.claim(response.state.secret(), now, |flow| {
            redirect_matches(&response.base, &flow.redirect_uri)
        }) {
            Claim::Claimed(flow) => *flow,
            Claim::NoSuchFlow | Claim::AlreadyClaimed => {
                return Err(RedirectError::Unsolicited.into());
            }
            Claim::Expired => return Err(RedirectError::Expired.into()),
        };
        let flow_id = flow.id.clone();
        let result = self.finish_flow(flow, response, now);
        let outcome = match &result {
            Ok(account) => Outcome::Linked {
                account: account.id.clone(),
            },
            Err(e) => Outcome::Failed {
                code: e.code().as_str().into(),
                message: e.to_string(),
            },
        };
        if let (Ok(bytes), Ok(path)) = (serde_json::to_vec(&outcome), self.outcome_path(&flow_id)) {
            if let Some(dir) = path.parent() {
                let _ = crate::store::create_private_dir(dir);
            }
            let _ = crate::store::write_atomic(&path, &bytes);
        }
        result
    }

    fn finish_flow(
        &self,
        flow: PendingFlow,
        response: AuthorizationResponse,
        now: UnixTime,
    ) -> Result<Account, Error> {
        check_issuer(
            response.iss.as_deref(),
            flow.issuer.as_deref(),
            flow.require_iss,
        )?;
        if let Some((error, description)) = response.error {
            return Err(RedirectError::Provider {
                error: printable(&error, 64),
                description: description.map(|d| printable(&d, 300)),
            }
            .into());
        }
        let code = response.code.ok_or(RedirectError::MissingCode)?;
        let provider = self.provider(&flow.provider)?;
        let metadata = self.metadata(provider)?;
        let tokens = exchange::exchange_code(
            &self.http,
            provider,
            &metadata,
            code,
            &flow.verifier,
            &flow.redirect_uri,
            now,
        )?;
        self.store_link(
            provider,
            &metadata,
            tokens,
            Some(&flow.nonce),
            flow.reconnect.as_ref(),
            now,
        )
    }

    /// Identifies the account behind freshly issued `tokens` (validating the ID token against
    /// `nonce` when the grant had one) and stores it: tokens in the keychain, metadata in the
    /// index. Every way of linking ends here.
    pub(crate) fn store_link(
        &self,
        provider: &ProviderConfig,
        metadata: &Metadata,
        tokens: TokenSet,
        nonce: Option<&crate::secret::Nonce>,
        reconnect: Option<&ReconnectTarget>,
        now: UnixTime,
    ) -> Result<Account, Error> {
        let (issuer, subject, email, name) =
            self.identify(provider, metadata, nonce, &tokens, now)?;
        // Provider-supplied text is cleaned before it is stored or shown (SECURITY 39).
        let clean =
            |text: Option<String>| text.map(|t| printable(&t, 320)).filter(|t| !t.is_empty());
        // A reconnect that came back as someone else neither replaces nor hides the account
        // being reconnected, and adds nobody (SECURITY 45).
        if let Some(target) = reconnect
            && target.subject != subject
        {
            let signed_in_as = clean(email.clone())
                .or_else(|| clean(name.clone()))
                .unwrap_or_else(|| printable(&subject, 100));
            tracing::warn!(account = %target.account, "a reconnect signed in as another account");
            return Err(Error::WrongAccount {
                signed_in_as,
                expected: target.shown.clone(),
            });
        }
        let account = Account {
            id: account_id(&provider.id, &issuer, &subject),
            provider: provider.id.clone(),
            issuer,
            subject,
            email: clean(email),
            name: clean(name),
            scopes: tokens
                .scopes
                .clone()
                .unwrap_or_else(|| provider.scopes.clone()),
            linked_at: now,
            expires_at: tokens.expires_at,
            status: AccountStatus::Ok,
        };
        self.secrets()?
            .set(&self.token_key(&account.id)?, &encode_tokens(&tokens))?;
        let stored = account.clone();
        self.index()?.update(move |accounts| {
            accounts.retain(|a| a.id != stored.id);
            accounts.push(stored);
        })?;
        tracing::info!(account = %account.id, "account linked");
        Ok(account)
    }

    /// Validates an ID token of `provider` (OIDC Core §3.1.3.7): its discovered issuer and
    /// keys, the client id, `nonce` when the grant had one.
    pub(crate) fn validate_id_token(
        &self,
        provider: &ProviderConfig,
        metadata: &Metadata,
        id_token: &crate::secret::IdToken,
        nonce: Option<&crate::secret::Nonce>,
        now: UnixTime,
    ) -> Result<id_token::IdClaims, Error> {
        let issuer = metadata
            .issuer
            .as_deref()
            .ok_or_else(|| Error::NoIdentity("no issuer".into()))?;
        let jwks_uri = metadata
            .jwks_uri
            .as_ref()
            .ok_or_else(|| Error::NoIdentity("the provider publishes no jwks_uri".into()))?;
        let algorithms =
            id_token::allowed_algorithms(&metadata.id_token_signing_alg_values_supported);
        let expected = Expected {
            issuer,
            client_id: &provider.client_id,
            nonce,
            algorithms: &algorithms,
        };
        Ok(id_token::validate(
            id_token,
            &expected,
            &self.jwks_for(jwks_uri),
            &self.http,
            now,
        )?)
    }

    /// Who signed in: from the validated ID token, completed from userinfo where it lacks
    /// name or email; for plain OAuth providers, from userinfo alone.
    fn identify(
        &self,
        provider: &ProviderConfig,
        metadata: &Metadata,
        nonce: Option<&crate::secret::Nonce>,
        tokens: &TokenSet,
        now: UnixTime,
    ) -> Result<(String, String, Option<String>, Option<String>), Error> {
        if provider.is_oidc() {
            let id_token = tokens
                .id_token
                .as_ref()
                .ok_or(id_token::IdTokenError::Missing)?;
            let claims = self.validate_id_token(provider, metadata, id_token, nonce, now)?;
            let (mut email, mut name) = (claims.email, claims.name);
            // Name and email from userinfo when the ID token lacks them (OIDC Core §5.3.2:
            // only if userinfo speaks about the same subject).
            if (email.is_none() || name.is_none())
                && let Some(endpoint) = &metadata.userinfo_endpoint
            {
                match fetch_userinfo(
                    &self.http,
                    endpoint,
                    &provider.quirks.user_endpoint,
                    &tokens.access_token,
                ) {
                    Ok(info) if info.subject.as_deref() == Some(claims.subject.as_str()) => {
                        email = email.or(info.email);
                        name = name.or(info.name);
                    }
                    Ok(_) => tracing::warn!("userinfo names a different subject; ignoring it"),
                    Err(e) => tracing::warn!(error = %e, "userinfo unavailable"),
                }
            }
            return Ok((claims.issuer, claims.subject, email, name));
        }
        let endpoint = metadata
            .userinfo_endpoint
            .as_ref()
            .ok_or_else(|| Error::NoIdentity("no ID token and no userinfo endpoint".into()))?;
        let info = fetch_userinfo(
            &self.http,
            endpoint,
            &provider.quirks.user_endpoint,
            &tokens.access_token,
        )
        .map_err(|e| Error::NoIdentity(e.to_string()))?;
        let subject = info
            .subject
            .ok_or_else(|| Error::NoIdentity("userinfo has no subject".into()))?;
        let issuer = metadata.token_endpoint.origin().ascii_serialization();
        Ok((issuer, subject, info.email, info.name))
    }

    /// All linked accounts.
    pub fn accounts(&self) -> Result<Vec<Account>, Error> {
        Ok(self.index()?.accounts()?)
    }

    /// The account with this id, or the only one with this email.
    pub fn account(&self, query: &str) -> Result<Account, Error> {
        let accounts = self.accounts()?;
        if let Some(a) = accounts.iter().find(|a| a.id == query) {
            return Ok(a.clone());
        }
        let mut by_email = accounts
            .into_iter()
            .filter(|a| a.email.as_deref() == Some(query));
        match (by_email.next(), by_email.next()) {
            (Some(a), None) => Ok(a),
            (Some(_), Some(_)) => Err(Error::AmbiguousAccount(printable(query, 100))),
            _ => Err(Error::UnknownAccount(printable(query, 100))),
        }
    }
}

/// Who the provider says an account's stored tokens belong to ("Check connection").
#[derive(Debug, Clone)]
pub struct ConnectionCheck {
    /// The account, re-read after the token was obtained (a refresh updates its expiry).
    pub account: Account,
    /// Host of the user endpoint that answered.
    pub answered_by: String,
    /// Subject in the answer (always the account's).
    pub subject: String,
    /// Email in the answer.
    pub email: Option<String>,
    /// Name in the answer.
    pub name: Option<String>,
    /// When the access token used expires.
    pub expires_at: Option<UnixTime>,
    /// When the check was made.
    pub checked_at: UnixTime,
}

impl Keylink {
    /// Asks the provider's user endpoint who the account's tokens belong to, with an access
    /// token from [`Keylink::access_token`] (the stored one, refreshed only when it expires
    /// within a minute), so it shows the stored tokens at work. The token never leaves here.
    pub fn check_connection(&self, query: &str) -> Result<ConnectionCheck, Error> {
        let token = self.access_token(query, 60)?;
        let account = self.account(query)?;
        let provider = self.provider(&account.provider)?;
        let metadata = self.metadata(provider)?;
        let endpoint = metadata.userinfo_endpoint.as_ref().ok_or_else(|| {
            Error::ConnectionCheck("the provider has no user information endpoint".into())
        })?;
        let mapping = &provider.quirks.user_endpoint;
        let info = match fetch_userinfo(&self.http, endpoint, mapping, &token) {
            // The provider refused a token Keylink believed valid (it forgot the grant, or
            // revoked the token): one refresh, then ask again (SECURITY 44). A refused
            // refresh marks the account `needs_relink` and ends here.
            Err(UserInfoError::Unauthorized) => {
                tracing::info!(account = %account.id, "the provider refused the access token; refreshing");
                let token = self.replace_rejected_token(&account.id, &token)?;
                fetch_userinfo(&self.http, endpoint, mapping, &token)
            }
            other => other,
        }
        .map_err(|e| Error::ConnectionCheck(format!("the provider's user endpoint failed ({e})")))?;
        // A refresh above updates the expiry.
        let account = self.account(&account.id)?;
        let subject = info.subject.ok_or_else(|| {
            Error::ConnectionCheck("the provider's answer names no account".into())
        })?;
        if subject != account.subject {
            return Err(Error::ConnectionCheck(
                "the provider answered for a different account than the one linked".into(),
            ));
        }
        Ok(ConnectionCheck {
            answered_by: endpoint.host_str().unwrap_or_default().to_owned(),
            subject,
            email: info.email.map(|t| printable(&t, 320)),
            name: info.name.map(|t| printable(&t, 320)),
            expires_at: account.expires_at,
            checked_at: self.now(),
            account,
        })
    }
}

fn is_not_ours(e: &RedirectError) -> bool {
    !matches!(
        e,
        RedirectError::Provider { .. }
            | RedirectError::IssuerMismatch
            | RedirectError::MissingIssuer
    )
}

/// A stable account id: the provider id and a hash of (issuer, subject) (SECURITY 20: never the
/// email).
pub fn account_id(provider: &str, issuer: &str, subject: &str) -> String {
    let digest = Sha256::digest(format!("{issuer}\n{subject}").as_bytes());
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    format!("{provider}-{hex}")
}

/// Why the user endpoint gave no answer.
#[derive(Debug, thiserror::Error)]
enum UserInfoError {
    /// HTTP 401: the provider does not accept the access token.
    #[error("HTTP 401: the provider does not accept the access token")]
    Unauthorized,
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

struct UserInfo {
    subject: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

/// Asks the provider's user endpoint who the token belongs to, reading the answer as the
/// provider's [`UserEndpoint`](crate::provider::UserEndpoint) mapping says.
fn fetch_userinfo(
    http: &crate::http::Http,
    endpoint: &Url,
    mapping: &crate::provider::UserEndpoint,
    token: &AccessToken,
) -> Result<UserInfo, UserInfoError> {
    let request = if mapping.post {
        // RPC-style endpoints (Dropbox) take a POST with a JSON `null` body.
        http.client()
            .post(endpoint.clone())
            .header("content-type", "application/json")
            .body("null")
    } else {
        http.client().get(endpoint.clone())
    };
    let answer = http
        .send(
            "the user endpoint",
            request
                .bearer_auth(token.secret())
                .header("accept", "application/json"),
        )
        .map_err(|e| UserInfoError::Failed(e.reason()))?;
    if answer.status == 401 {
        return Err(UserInfoError::Unauthorized);
    }
    if !answer.is_success() {
        return Err(UserInfoError::Failed(format!("HTTP {}", answer.status)));
    }
    let value: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|_| UserInfoError::Failed("unreadable answer".to_owned()))?;
    let first = |pointers: &[&str]| {
        pointers.iter().find_map(|p| match value.pointer(p)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    Ok(UserInfo {
        subject: first(mapping.subject),
        email: first(mapping.email),
        name: first(mapping.name),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_of_a_link_request_hides_the_state_and_the_nonce() {
        let request = LinkRequest {
            flow_id: "flow-1".into(),
            provider: "demo".into(),
            authorization_url: Url::parse(
                "https://idp.example/auth?state=canary-state&nonce=canary-nonce&code_challenge=c",
            )
            .unwrap_or_else(|_| unreachable!()),
            loopback: None,
        };
        let shown = format!("{request:?}");
        assert!(!shown.contains("canary"), "{shown}");
        assert!(shown.contains("https://idp.example/auth"), "{shown}");
    }
}
