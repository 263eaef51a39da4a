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
    /// The core's sentence, which says what happened, and what an app's user can do about
    /// it: the plugin's own advice (an app user's words), else the core's remedy for every
    /// front end.
    fn from(e: keylink::Error) -> Self {
        let message = match advice(&e).or_else(|| e.remedy()) {
            Some(advice) => format!("{e}; {advice}"),
            None => e.to_string(),
        };
        Error::new(e.code(), message)
    }
}

/// What an app's user can do about `e`: what they can see (the app's Reconnect and Link
/// buttons, their desktop), never a `keylink` command, flag or variable.
fn advice(e: &keylink::Error) -> Option<String> {
    use keylink::Error as E;
    use keylink::link::DeviceError;
    use keylink::store::StoreError;
    let text = match e {
        E::Browser(_) => "set a default browser, or link with a code on another device".into(),
        E::LinkTimedOut(_) => "link again when you are ready".into(),
        E::NeedsRelink(_) | E::NoRefreshToken(_) => "reconnect the account to link it again".into(),
        E::UnknownAccount(_) => "it may have been unlinked elsewhere".into(),
        E::AmbiguousAccount(_) => "choose the account by its id".into(),
        E::Store(StoreError::Keychain(_)) => {
            "try again, and check that your desktop keychain is running if it persists".into()
        }
        E::Store(StoreError::DataDir { .. }) | E::Pending(_) => {
            "check that the directory is yours and writable".into()
        }
        E::Device(DeviceError::Unsupported(_)) => "link it in the browser instead".into(),
        E::InvalidScope(_) => {
            "the app asked for a permission no provider can grant, so nothing was sent and nothing changed".into()
        }
        _ => return None,
    };
    Some(text)
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
