//! Errors as they cross IPC: `{code, message}`, `code` one of the core's
//! [`ErrorCode`](keylink::ErrorCode)s, `message` one sentence saying what happened and what
//! to do. Never a secret: the core's messages carry none.

use serde::Serialize;

/// An error a command rejects with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Error {
    /// What kind of failure, for the UI to switch on (`cancelled`, `not_allowed`, ...).
    pub code: keylink::ErrorCode,
    /// What happened and what to do, as a sentence.
    pub message: String,
}

impl Error {
    /// An error of `code` with `message`.
    pub fn new(code: keylink::ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: sentence(&message.into()),
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {}

impl From<keylink::Error> for Error {
    /// The core's sentence, except where it tells a `keylink` CLI user what to run: an app's
    /// user has buttons, not commands.
    fn from(e: keylink::Error) -> Self {
        let message = match &e {
            keylink::Error::Browser(detail) => format!(
                "the web browser could not be opened ({detail}); set a default browser, or link with a code on another device"
            ),
            keylink::Error::Loopback(keylink::link::LoopbackError::Cancelled) => {
                "the link was cancelled and nothing was linked".to_owned()
            }
            keylink::Error::LinkTimedOut(secs) => format!(
                "no sign-in arrived within {}, so nothing was linked; link again when you are ready",
                duration_words(*secs)
            ),
            keylink::Error::NeedsRelink(_) => {
                "the provider no longer accepts this account's sign-in; reconnect the account to link it again"
                    .to_owned()
            }
            keylink::Error::NoRefreshToken(_) => {
                "this account's access has expired and cannot be renewed; reconnect the account to link it again"
                    .to_owned()
            }
            keylink::Error::UnknownProvider(id) => {
                format!("no provider named \"{id}\" is configured")
            }
            keylink::Error::UnknownAccount(_) => {
                "this account is no longer linked (it may have been unlinked elsewhere)".to_owned()
            }
            keylink::Error::AmbiguousAccount(email) => format!(
                "more than one linked account has the email \"{email}\"; choose the account by its id"
            ),
            keylink::Error::Store(keylink::store::StoreError::Keychain(detail)) => format!(
                "the keychain failed ({detail}); try again, and check that your desktop keychain is running if it persists"
            ),
            keylink::Error::Device(keylink::link::DeviceError::Unsupported(provider)) => format!(
                "the provider {provider} does not support sign-in with a code; link it in the browser instead"
            ),
            other => other.to_string(),
        };
        Error::new(e.code(), message)
    }
}

/// "300" → "5 minutes", "90" → "90 seconds".
fn duration_words(secs: u64) -> String {
    match secs {
        60 => "a minute".to_owned(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// `text` as a sentence: a capital first letter (unless it starts with a URL) and a full
/// stop.
pub(crate) fn sentence(text: &str) -> String {
    let text = text.trim();
    let starts_with_url = text
        .split_whitespace()
        .next()
        .is_some_and(|word| word.contains("://"));
    if starts_with_url {
        let mut out = text.to_owned();
        if !out.ends_with(['.', '!', '?']) {
            out.push('.');
        }
        return out;
    }
    let mut chars = text.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// Results of the plugin's commands.
pub type Result<T> = std::result::Result<T, Error>;
