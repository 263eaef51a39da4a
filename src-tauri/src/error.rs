//! Errors as they cross IPC: `{code, message}`. The code is one of a few values the UI switches
//! on; the message is one plain sentence saying what happened and what to do, never a secret.

use keylink::{Error, LoopbackError};
use serde::Serialize;

/// What kind of failure, for the UI to choose its help text and actions: the core's code.
pub use keylink::ErrorCode;

/// An error as the UI receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorDto {
    /// What kind of failure.
    pub code: ErrorCode,
    /// One sentence for people.
    pub message: String,
}

impl ErrorDto {
    /// An error raised by the shell itself.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: sentence(&message.into()),
        }
    }
}

impl From<Error> for ErrorDto {
    fn from(e: Error) -> Self {
        // Where the core's sentence names a CLI command, say what to do in the app instead.
        let (code, message) = match &e {
            Error::Browser(detail) => (
                ErrorCode::Browser,
                format!(
                    "Keylink could not open your web browser ({detail}); set a default browser and try again"
                ),
            ),
            Error::Loopback(LoopbackError::Cancelled) => {
                (ErrorCode::Cancelled, "the link was cancelled".to_owned())
            }
            Error::LinkTimedOut(secs) => (
                ErrorCode::Timeout,
                format!(
                    "no sign-in arrived within {}, so nothing was linked; click Link to try again",
                    duration_words(*secs)
                ),
            ),
            Error::NeedsRelink(_) => (
                ErrorCode::NeedsRelink,
                "the provider no longer accepts this account's sign-in; click Reconnect to link it again"
                    .to_owned(),
            ),
            Error::NoRefreshToken(_) => (
                ErrorCode::NeedsRelink,
                "this account's access has expired and cannot be renewed; click Reconnect to link it again"
                    .to_owned(),
            ),
            Error::UnknownProvider(id) => (
                ErrorCode::NotFound,
                format!("no provider named \"{id}\" is configured"),
            ),
            Error::UnknownAccount(_) => (
                ErrorCode::NotFound,
                "this account is no longer linked (it may have been unlinked elsewhere)".to_owned(),
            ),
            other => (code_of(other), other.to_string()),
        };
        Self {
            code,
            message: sentence(&message),
        }
    }
}

fn code_of(e: &Error) -> ErrorCode {
    e.code()
}

/// "300" → "5 minutes", "90" → "90 seconds".
fn duration_words(secs: u64) -> String {
    match secs {
        60 => "a minute".to_owned(),
        s if s % 60 == 0 => format!("{} minutes", s / 60),
        s => format!("{s} seconds"),
    }
}

/// A message as a sentence: capitalised, ending in a full stop.
pub fn sentence(message: &str) -> String {
    let trimmed = message.trim();
    let mut chars = trimmed.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return "Something went wrong.".to_owned(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}
