//! Keylink links a person's cloud accounts to a desktop app: OAuth 2.0 authorization code with
//! PKCE in the system browser (RFC 8252), the redirect through a private-use URL scheme or a
//! loopback listener, OpenID Connect ID token validation, and tokens kept in the OS keychain so
//! a fresh access token is always one call away.
//!
//! Start with [`Keylink`]; its example shows the whole flow.

#![warn(missing_docs)]

mod app;
mod browser;
mod callback;
mod client;
mod clock;
#[cfg(unix)]
mod desktop_entry;
mod device;
mod error;
mod exchange;
mod flow;
mod http;
mod id_token;
#[cfg(test)]
mod mutate;
mod provider;
mod secret;
mod store;
mod tokens;

pub use app::{AppIdentity, Environment, KEYLINK_APP};
pub use browser::{BrowserOpener, SystemBrowser};
pub use callback::{
    AuthorizationResponse, LOOPBACK_REQUEST_DEADLINE, LoopbackError, LoopbackListener,
    LoopbackVerdict, MAX_REDIRECT_LEN, RedirectError, parse_redirect, printable, redirect_matches,
};
pub use client::{ConnectionCheck, Keylink, KeylinkBuilder, LinkRequest, UnlinkReport, account_id};
pub use clock::{Clock, FixedClock, SystemClock, UnixTime, parse_rfc3339, rfc3339};
#[cfg(unix)]
pub use desktop_entry::{
    DesktopEntryError, DesktopFileId, EntryProblem, HandlerResolution, InstalledHandler,
    UrlHandler, XdgDataDirs, XdgEnvironment, resolve_url_handler,
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
pub use provider::{
    CALLBACK_PATH, Config, ConfigError, DiscoveryError, EndpointOverrides, Metadata,
    ProviderConfig, Quirks, RedirectKind, URL_SCHEME, UserEndpoint, discover,
};
pub use secret::DeviceCode;
pub use secret::{
    AccessToken, AuthorizationCode, ClientSecret, CsrfState, IdToken, Nonce, PkceCodeVerifier,
    RefreshToken, SecretString,
};
pub use store::{
    Account, AccountStatus, Chunked, DEFAULT_KEYCHAIN_TIMEOUT, Index, KEYCHAIN_SERVICE, Keychain,
    MAX_ENTRY_BYTES, MAX_VALUE_BYTES, SecretStore, StoreError, Timed, open_token_store,
};
pub use tokens::{MAX_RETRY_WAIT, REFRESH_ATTEMPTS};
