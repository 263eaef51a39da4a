//! Keylink links a person's cloud accounts to a desktop app: OAuth 2.0 authorization code with
//! PKCE in the system browser (RFC 8252), the redirect through a private-use URL scheme or a
//! loopback listener, OpenID Connect ID token validation, and tokens kept in the OS keychain so
//! a fresh access token is always one call away.
//!
//! An app builds one [`Keylink`] with [`Keylink::builder`] (its identity, configuration,
//! and optionally network settings, clock, secret store and browser opener), runs a
//! [`LinkSession`] to link an account, and asks for a fresh access token whenever it needs
//! one:
//!
//! ```no_run
//! use std::time::Duration;
//! use keylink::{Keylink, LinkProgress, LinkStart};
//! # fn main() -> Result<(), keylink::Error> {
//! // Your app's identity and configuration; the environment only where you want it.
//! let config = keylink::Config::parse(
//!     r#"[providers.work]
//!        issuer = "https://login.example.com"
//!        client_id = "my-desktop-client""#,
//! )?;
//! let keylink = Keylink::builder()
//!     .identity(keylink::AppIdentity::new("com.example.notes")?)
//!     .config(config)
//!     .environment(keylink::Environment::capture(std::env::var_os))
//!     .build()?;
//! // 1. Reserve the app's link session: one at a time, cancellable from any thread.
//! let session = keylink.link(LinkStart::browser("work"))?;
//! let cancel = session.canceller(); // e.g. for a Cancel button
//! # let _ = cancel;
//! // 2. Run it: the system browser opens at the provider; the redirect comes back through
//! //    the loopback listener, or through the OS running your app (or `keylink open-url`)
//! //    with the URL, which hands it to `Keylink::deliver_redirect`.
//! let account = session.run(Duration::from_secs(300), |progress| match progress {
//!     LinkProgress::BrowserOpened => eprintln!("Continue in your browser..."),
//!     LinkProgress::Exchanging => eprintln!("Signed in; finishing..."),
//!     _ => {}
//! })?;
//! // 3. Any time later, in any process of the app: a fresh access token.
//! let token = keylink.access_token(&account.id, 60)?;
//! # let _ = token;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod api;
mod app;
mod asynchronous;
mod authorization;
mod browser;
mod callback;
mod client;
mod clock;
mod context;
#[cfg(unix)]
mod desktop_entry;
mod device;
mod error;
mod exchange;
mod flow;
// Entry points for the fuzz targets in `fuzz/` (SECURITY 56); not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod id_token;
mod identity;
mod ids;
#[cfg(test)]
mod mutate;
mod outcome;
mod provider;
mod secret;
mod session;
mod store;
mod tokens;

pub use api::{ApiRequest, ApiResponse};
pub use app::{AppIdentity, Environment, KEYLINK_APP};
pub use asynchronous::AsyncKeylink;
pub use browser::{BrowserOpener, SystemBrowser};
pub use callback::{
    AuthorizationResponse, LOOPBACK_REQUEST_DEADLINE, LoopbackError, LoopbackListener,
    LoopbackVerdict, MAX_REDIRECT_LEN, RedirectError, parse_redirect, printable, redirect_matches,
};
pub use client::{Keylink, KeylinkBuilder};
pub use clock::{Clock, FixedClock, SystemClock, UnixTime, parse_rfc3339, rfc3339};
#[cfg(unix)]
pub use desktop_entry::{
    DesktopEntryError, DesktopFileId, EntryProblem, HandlerResolution, InstalledHandler,
    ShadowedPackageHandler, UrlHandler, XdgDataDirs, XdgEnvironment, resolve_url_handler,
    shadowed_package_handler,
};
pub use device::{
    DEFAULT_POLL_INTERVAL, DEVICE_CODE_GRANT_TYPE, DeviceAuthorization, DeviceError,
    MAX_POLL_INTERVAL, SLOW_DOWN_STEP,
};
pub use error::{Error, ErrorCode};
pub use exchange::{ExchangeError, TokenSet};
pub use flow::{PENDING_FLOW_LIFETIME, PendingError, PendingFlow};
pub use http::{
    Answer, DEFAULT_TIMEOUT, FetchError, Http, HttpError, MAX_BODY_BYTES, NetworkSettings,
    is_allowed_endpoint,
};
pub use id_token::{
    Expected, IdClaims, IdTokenError, Jwks, allowed_algorithms, validate as validate_id_token,
};
pub use identity::{ConnectionCheck, account_id};
pub use ids::{AccountId, FlowId, IssuerUrl, ProviderId};
pub use provider::{
    CALLBACK_PATH, Config, ConfigError, DiscoveryError, EndpointOverrides, IgnoredPolicy,
    IgnoredReason, Metadata, ProviderConfig, Quirks, RedirectKind, SYSTEM_POLICY_FILE, Untrusted,
    UserEndpoint, discover,
};
pub use secret::DeviceCode;
pub use secret::{
    AccessToken, AuthorizationCode, ClientSecret, CsrfState, IdToken, Nonce, PkceCodeVerifier,
    RefreshToken, SecretString,
};
pub use session::{
    Delivery, LinkCanceller, LinkProgress, LinkSession, LinkStart, SessionId, SignIn,
};
pub use store::{
    Account, AccountStatus, Chunked, DEFAULT_KEYCHAIN_TIMEOUT, Index, KEYCHAIN_SERVICE, Keychain,
    MAX_ENTRY_BYTES, MAX_VALUE_BYTES, SecretStore, StoreError, Timed, open_token_store,
};
pub use tokens::{MAX_RETRY_WAIT, REFRESH_ATTEMPTS, Revocation, UnlinkReport};
