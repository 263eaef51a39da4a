//! The top-level error: every module's error, and the [`ErrorCode`] front ends switch on.
//!
//! Messages say what happened, never a secret. What the person can do about it depends on
//! the front end (the CLI names its commands, an app its buttons), so each front end adds its
//! own advice by [`ErrorCode`] and variant.
//!
//! ```no_run
//! use keylink::{Error, ErrorCode};
//! # fn run(keylink: &keylink::Keylink, account: &keylink::AccountId) {
//! match keylink.access_token(account, std::time::Duration::from_secs(60)) {
//!     Ok(token) => { let _ = token; }
//!     // The front end's own advice, by code: here, a Reconnect button.
//!     Err(e) if e.code() == ErrorCode::NeedsRelink => eprintln!("{e}; press Reconnect"),
//!     Err(e) => match e.remedy() {
//!         Some(remedy) => eprintln!("{e}; {remedy}"),
//!         None => eprintln!("{e}"),
//!     },
//! }
//! # }
//! ```

use crate::app::IdentityError;
use crate::callback::{LoopbackError, RedirectError};
use crate::exchange::ExchangeError;
use crate::flow::PendingError;
use crate::http::HttpError;
use crate::id_token::IdTokenError;
use crate::ids::{AccountId, ProviderId};
use crate::provider::{ConfigError, DiscoveryError};
use crate::store::StoreError;

/// Anything that can go wrong in Keylink. Messages say what happened, and never contain a
/// secret; the front end adds what to do.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// No provider with this id is configured.
    #[error("no provider named \"{0}\" is configured")]
    UnknownProvider(String),
    /// No account matches.
    #[error("no linked account matches \"{0}\"")]
    UnknownAccount(String),
    /// An extra scope is not a scope-token of RFC 6749 §3.3 (empty, too long, or with a
    /// space, quote, backslash or non-ASCII character); nothing was requested.
    #[error(
        "{0:?} is not a valid scope: a scope is one word of printable ASCII characters without quotes or backslashes"
    )]
    InvalidScope(String),
    /// A resource asked for is not an absolute URI without a fragment (RFC 8707 §2); nothing
    /// was requested.
    #[error("{0:?} is not a valid resource: it must be an absolute URI without a fragment")]
    InvalidResource(String),
    /// A token was asked for an API (a resource) the provider's configuration does not name;
    /// nothing was requested. A provider that refuses an unknown resource may count the
    /// refresh token as used, so asking for any resource could end the account's grant.
    #[error(
        "{resource} is not one of the APIs configured for {provider}, so no token was asked for it"
    )]
    ResourceNotConfigured {
        /// The resource asked for.
        resource: String,
        /// The account's provider.
        provider: ProviderId,
    },
    /// A token was asked for with a scope the account was never granted; nothing was
    /// requested (a refresh cannot widen a grant, RFC 6749 §6).
    #[error("the account {account} was not granted {}", scopes.join(" "))]
    ScopeNotGranted {
        /// The account id.
        account: AccountId,
        /// The scopes it lacks.
        scopes: Vec<String>,
    },
    /// More than one account has this email.
    #[error("more than one linked account has the email \"{0}\"")]
    AmbiguousAccount(String),
    /// The HTTP client could not be set up.
    #[error(transparent)]
    Http(#[from] HttpError),
    /// Discovery failed or was refused.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The authorization URL may not be opened.
    #[error(
        "the provider's authorization endpoint {0:?} is not an https URL; Keylink refuses to open it"
    )]
    UnsafeAuthorizationUrl(String),
    /// The browser could not be started.
    #[error("could not open a web browser ({0})")]
    Browser(String),
    /// The redirect was refused.
    #[error(transparent)]
    Redirect(#[from] RedirectError),
    /// Waiting for the redirect failed.
    #[error(transparent)]
    Loopback(#[from] LoopbackError),
    /// No redirect arrived in time.
    #[error(
        "no sign-in arrived within {}, so nothing was linked",
        crate::text::duration_words(*.0)
    )]
    LinkTimedOut(std::time::Duration),
    /// The person declined at the provider's consent page (`access_denied`).
    #[error("you cancelled the sign-in at {0}, so nothing was linked")]
    SignInDeclined(String),
    /// The link was cancelled (by the person or the app) before anything was stored.
    #[error("the link was cancelled and nothing was linked")]
    Cancelled,
    /// An API request was refused before it was sent (an origin outside the provider's
    /// `api_origins`, a credential header, an unknown method).
    #[error("{0}")]
    ApiNotAllowed(String),
    /// An API request failed in transit (no answer, too slow, too large).
    #[error("the provider's API did not answer: {0}")]
    ApiFailed(String),
    /// The API answered in a form whose token could not be ruled out, so the answer was not
    /// handed back: compressed in a way Keylink cannot decode, too large once decoded, or a
    /// partial answer (SECURITY 48).
    #[error("the answer of the provider's API was not handed back: {0}")]
    ApiAnswerRefused(String),
    /// Another link of this app is in progress (one at a time per app).
    #[error("a link to {0} is already in progress")]
    LinkInProgress(String),
    /// `keylink doctor` found problems.
    #[error("{0} check(s) failed")]
    ChecksFailed(usize),
    /// The process that received the redirect could not complete the link: its message,
    /// and its code (`link_failed` when it did not say).
    #[error("{message}")]
    LinkFailed {
        /// What kind of failure it was there.
        code: ErrorCode,
        /// What it said.
        message: String,
        /// What it said the person can do ([`Error::remedy`]).
        remedy: Option<String>,
    },
    /// Pending flow storage failed.
    #[error(transparent)]
    Pending(#[from] PendingError),
    /// The token endpoint failed.
    #[error(transparent)]
    Exchange(#[from] ExchangeError),
    /// Device sign-in (RFC 8628) failed: declined, expired or unsupported.
    #[error(transparent)]
    Device(#[from] crate::device::DeviceError),
    /// The ID token is invalid.
    #[error(transparent)]
    IdToken(#[from] IdTokenError),
    /// The provider did not identify the account.
    #[error("the provider did not say who signed in ({0})")]
    NoIdentity(String),
    /// "Check connection" failed at the provider's user endpoint.
    #[error("{0}")]
    ConnectionCheck(String),
    /// The keychain or the index failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The account's grant is no longer valid.
    #[error(
        "the account {0} must be linked again: the provider no longer accepts its refresh token"
    )]
    NeedsRelink(AccountId),
    /// Another process held the account's lock for longer than any refresh can take.
    #[error(
        "another Keylink process has been busy with the account {account} for more than {}",
        crate::text::duration_words(*waited)
    )]
    LockTimedOut {
        /// The account id.
        account: AccountId,
        /// How long Keylink waited.
        waited: std::time::Duration,
    },
    /// A refresh answer's ID token was valid but named another person than the account.
    #[error(
        "the provider's refreshed ID token names a different account than {0}, so the refresh was refused and the stored tokens were kept"
    )]
    RefreshedIdentityMismatch(AccountId),
    /// The account's provider is now configured with another issuer than the one its tokens
    /// came from (the configuration changed after linking), so they are not used (SECURITY
    /// 52).
    #[error(
        "the account {account} was linked at {linked}, but its provider {provider} is now configured with the issuer {configured}"
    )]
    IssuerChanged {
        /// The account id.
        account: AccountId,
        /// The provider id.
        provider: String,
        /// The issuer the tokens came from.
        linked: String,
        /// The issuer configured now.
        configured: String,
    },
    /// The provider refused an access token again soon after Keylink replaced a refused one
    /// (a resource server that refuses every token): Keylink asks for a new one at most once
    /// a minute per account (SECURITY 49).
    #[error(
        "the provider refused the access token of {0} again, and Keylink replaces a refused token at most once a minute"
    )]
    TokenRejectedAgain(AccountId),
    /// The account was linked again while its old grant was being refreshed.
    #[error("the account {0} was linked again while its token was being refreshed")]
    Relinked(AccountId),
    /// A reconnect signed in as another account than the one being reconnected.
    #[error(
        "you signed in as {signed_in_as}, not {expected}, so nothing was changed: {expected} is as it was and {signed_in_as} was not added"
    )]
    WrongAccount {
        /// Who signed in (email, name or subject, as plain text).
        signed_in_as: String,
        /// The account being reconnected.
        expected: String,
    },
    /// The app identity, or the data directory it implies, cannot be used.
    #[error(transparent)]
    Identity(#[from] IdentityError),
    /// The token expires within min-ttl and cannot be refreshed.
    #[error("the access token of {0} expires too soon and there is no refresh token")]
    NoRefreshToken(AccountId),
    /// The worker thread doing the work stopped before it finished (the async API runs the
    /// blocking work on tokio's blocking pool; the runtime was shutting down, say).
    #[error("the operation was interrupted before it finished")]
    Interrupted,
}

impl Error {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            Error::SignInDeclined(..) => "link again when you are ready".to_owned(),
            Error::Cancelled => "start it again when you are ready".to_owned(),
            Error::LinkInProgress(..) => "finish or cancel it before starting another".to_owned(),
            Error::NoIdentity(..) => "check the provider's scopes include openid".to_owned(),
            Error::ConnectionCheck(..) => {
                "the account stays linked, try again later or link it again".to_owned()
            }
            Error::LockTimedOut { .. } => "try again in a moment".to_owned(),
            Error::RefreshedIdentityMismatch(..) => {
                "link the account again if this persists".to_owned()
            }
            Error::IssuerChanged { .. } => {
                "its tokens go only to the issuer they came from, so link the account again"
                    .to_owned()
            }
            Error::TokenRejectedAgain(..) => "try again in a minute".to_owned(),
            Error::Relinked(..) => "try again".to_owned(),
            Error::WrongAccount { expected, .. } => {
                format!("reconnect again and sign in as {expected}")
            }
            Error::NoRefreshToken(..) => "link the account again".to_owned(),
            Error::ScopeNotGranted { .. } => {
                "reconnect the account and allow those permissions".to_owned()
            }
            Error::ResourceNotConfigured { resource, provider } => format!(
                "add it to the configuration as [providers.{provider}.apis.\"<its origin>\"] resource = \"{resource}\""
            ),
            Error::Interrupted => "try again".to_owned(),
            Error::LinkFailed { remedy, .. } => return remedy.clone(),
            Error::Config(e) => return e.remedy(),
            Error::Http(e) => return e.remedy(),
            Error::Discovery(e) => return e.remedy(),
            Error::Redirect(e) => return e.remedy(),
            Error::Loopback(e) => return e.remedy(),
            Error::Exchange(e) => return e.remedy(),
            Error::Device(e) => return e.remedy(),
            Error::IdToken(e) => return e.remedy(),
            Error::Store(e) => return e.remedy(),
            Error::Identity(e) => return e.remedy(),
            _ => return None,
        })
    }
}

/// What kind of failure an [`Error`] is: the small set a front end switches on (the app's
/// help text and buttons, the CLI's exit code). Serialised as `snake_case` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// The configuration, identity or data directory setting is missing or invalid.
    Config,
    /// No such provider or account.
    NotFound,
    /// A redirect was refused (unsolicited, replayed, expired, malformed, mix-up).
    RedirectRejected,
    /// No sign-in arrived in time.
    Timeout,
    /// The person (or the app) cancelled the link.
    Cancelled,
    /// The account must be linked again.
    NeedsRelink,
    /// The keychain or the data directory is missing, locked, failing or untrusted.
    Keychain,
    /// The provider failed, or answered something Keylink refuses.
    Provider,
    /// No browser could be opened.
    Browser,
    /// Another process is busy with the account; trying again shortly helps.
    Busy,
    /// The sign-in was completed in another process and failed there.
    LinkFailed,
    /// `doctor` found failing checks.
    ChecksFailed,
    /// The request is not allowed (an API origin outside `api_origins`).
    NotAllowed,
    /// A reconnect signed in as someone else than the account being reconnected; nothing
    /// was changed.
    WrongAccount,
    /// Anything else: a bug.
    Internal,
}

impl ErrorCode {
    /// Every code.
    pub const ALL: &[ErrorCode] = &[
        ErrorCode::Config,
        ErrorCode::NotFound,
        ErrorCode::RedirectRejected,
        ErrorCode::Timeout,
        ErrorCode::Cancelled,
        ErrorCode::NeedsRelink,
        ErrorCode::Keychain,
        ErrorCode::Provider,
        ErrorCode::Browser,
        ErrorCode::Busy,
        ErrorCode::LinkFailed,
        ErrorCode::ChecksFailed,
        ErrorCode::NotAllowed,
        ErrorCode::WrongAccount,
        ErrorCode::Internal,
    ];

    /// The code whose text is `text`.
    pub fn parse(text: &str) -> Option<ErrorCode> {
        Self::ALL.iter().copied().find(|c| c.as_str() == text)
    }

    /// The code as text, as it is serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Config => "config",
            ErrorCode::NotFound => "not_found",
            ErrorCode::RedirectRejected => "redirect_rejected",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Cancelled => "cancelled",
            ErrorCode::NeedsRelink => "needs_relink",
            ErrorCode::Keychain => "keychain",
            ErrorCode::Provider => "provider",
            ErrorCode::Browser => "browser",
            ErrorCode::Busy => "busy",
            ErrorCode::LinkFailed => "link_failed",
            ErrorCode::ChecksFailed => "checks_failed",
            ErrorCode::NotAllowed => "not_allowed",
            ErrorCode::WrongAccount => "wrong_account",
            ErrorCode::Internal => "internal",
        }
    }
}

impl Error {
    /// What kind of failure this is, for front ends to switch on.
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::Config(_) | Error::Http(_) | Error::Identity(_) | Error::InvalidScope(_) => {
                ErrorCode::Config
            }
            Error::InvalidResource(_) | Error::ResourceNotConfigured { .. } => ErrorCode::Config,
            Error::UnknownProvider(_) | Error::UnknownAccount(_) | Error::AmbiguousAccount(_) => {
                ErrorCode::NotFound
            }
            Error::Redirect(_) => ErrorCode::RedirectRejected,
            Error::Cancelled
            | Error::SignInDeclined(_)
            | Error::Loopback(LoopbackError::Cancelled) => ErrorCode::Cancelled,
            Error::LinkTimedOut(_) | Error::Loopback(_) => ErrorCode::Timeout,
            Error::NeedsRelink(_)
            | Error::NoRefreshToken(_)
            | Error::IssuerChanged { .. }
            | Error::ScopeNotGranted { .. } => ErrorCode::NeedsRelink,
            Error::Store(_) => ErrorCode::Keychain,
            Error::Device(_)
            | Error::Discovery(_)
            | Error::Exchange(_)
            | Error::IdToken(_)
            | Error::NoIdentity(_)
            | Error::ConnectionCheck(_)
            | Error::RefreshedIdentityMismatch(_)
            | Error::TokenRejectedAgain(_)
            | Error::UnsafeAuthorizationUrl(_) => ErrorCode::Provider,
            // Its own code: a front end must not add advice about the network or the
            // provider to it, since neither failed.
            Error::WrongAccount { .. } => ErrorCode::WrongAccount,
            Error::Browser(_) => ErrorCode::Browser,
            Error::ApiNotAllowed(_) => ErrorCode::NotAllowed,
            Error::ApiFailed(_) | Error::ApiAnswerRefused(_) => ErrorCode::Provider,
            Error::LockTimedOut { .. } | Error::Relinked(_) | Error::LinkInProgress(_) => {
                ErrorCode::Busy
            }
            Error::LinkFailed { code, .. } => *code,
            Error::ChecksFailed(_) => ErrorCode::ChecksFailed,
            Error::Pending(_) | Error::Interrupted => ErrorCode::Internal,
        }
    }
}

/// Checks an extra scope asked for by the app or the person: a scope-token of RFC 6749 §3.3
/// (`%x21 / %x23-5B / %x5D-7E`, no spaces, quotes or backslashes), at most
/// [`MAX_SCOPE_LEN`](crate::text::MAX_SCOPE_LEN) characters; else [`Error::InvalidScope`].
pub(crate) fn check_scope(scope: &str) -> Result<(), Error> {
    if crate::text::is_scope_token(scope) {
        Ok(())
    } else {
        Err(Error::InvalidScope(crate::text::printable(scope, 100)))
    }
}

#[cfg(test)]
mod tests;
