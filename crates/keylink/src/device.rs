//! Linking on a machine without a browser (an SSH session, a headless box): the OAuth 2.0
//! Device Authorization Grant (RFC 8628). The person opens the provider's verification page on
//! any other device and enters a short code, while Keylink polls the token endpoint.
//!
//! The device code is a bearer secret until the grant completes: it lives in a
//! [`DeviceCode`] and never reaches a log line or an error message. The user code and the
//! verification URI are meant to be shown.

use std::time::Duration;

use serde_json::Value;
use url::Url;

use crate::clock::UnixTime;
use crate::exchange::{ExchangeError, TokenSet};
use crate::http::is_allowed_endpoint;
use crate::provider::ProviderConfig;
use crate::secret::DeviceCode;
use crate::text::printable;

/// The `grant_type` of the device access token request (RFC 8628 §3.4).
pub(crate) const DEVICE_CODE_GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// How long to wait between polls when the provider does not say (RFC 8628 §3.2).
pub(crate) const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How much longer to wait after each `slow_down` (RFC 8628 §3.5).
pub(crate) const SLOW_DOWN_STEP: Duration = Duration::from_secs(5);
/// The longest poll interval believed (SECURITY 40): a provider asking for more is broken
/// or hostile, and the sign-in is refused rather than left waiting for ever.
pub(crate) const MAX_POLL_INTERVAL: Duration = Duration::from_secs(300);
/// The longest a device code is believed to live; a longer `expires_in` is cut to this.
const MAX_CODE_LIFETIME: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest wait between polls, whatever the provider advertises (an `interval` of 0
/// must not turn into a busy loop against its token endpoint).
const MIN_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// User codes are typed by a person: anything longer is not one.
const MAX_USER_CODE_LEN: usize = 64;

/// What the person needs to approve a device sign-in (RFC 8628 §3.2, §3.3). Nothing in it is
/// secret: show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeviceAuthorization {
    /// The page to open on another device (https, or http on loopback only).
    pub verification_uri: Url,
    /// The code to enter there.
    pub user_code: String,
    /// The same page with the code filled in, when the provider offers one (RFC 8628 §3.3.1).
    pub verification_uri_complete: Option<Url>,
    /// How long the code stays valid from when the provider issued it.
    pub expires_in: Duration,
}

impl DeviceAuthorization {
    /// A code to show, as a provider would give it (for front ends' own tests and previews).
    pub fn new(
        verification_uri: Url,
        user_code: String,
        verification_uri_complete: Option<Url>,
        expires_in: Duration,
    ) -> Self {
        DeviceAuthorization {
            verification_uri,
            user_code,
            verification_uri_complete,
            expires_in,
        }
    }
}

/// Why a device sign-in did not link an account. Failures of the token endpoint itself are
/// [`ExchangeError`]s.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeviceError {
    /// The provider publishes no `device_authorization_endpoint` and none is configured.
    #[error(
        "the provider {0} does not support device sign-in (it has no device authorization endpoint)"
    )]
    Unsupported(String),
    /// The device authorization endpoint could not be reached, or answered 5xx or 429.
    #[error("the provider's device authorization endpoint could not be reached ({0})")]
    Unreachable(String),
    /// The provider refused to start a device sign-in (RFC 8628 §3.2 with an RFC 6749 §5.2
    /// error), usually because the client is not allowed the device grant.
    #[error("the provider refused to start a device sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Refused {
        /// The error code.
        error: String,
        /// The description, as plain text.
        description: Option<String>,
    },
    /// The device authorization response is not one Keylink can use.
    #[error("the provider's device authorization endpoint sent an unreadable answer ({0})")]
    Malformed(String),
    /// The verification URI is not https (or http on loopback), so it is not shown.
    #[error(
        "the provider's verification URI {0:?} is not an https URL; Keylink refuses to show it"
    )]
    UnsafeVerificationUri(String),
    /// The person declined at the provider (`access_denied`, RFC 8628 §3.5).
    #[error("the sign-in was declined at the provider, so nothing was linked")]
    Denied,
    /// The code expired before the person approved it (`expired_token`, or its `expires_in`
    /// passed).
    #[error("the code expired before the sign-in was approved, so nothing was linked")]
    Expired,
}

impl DeviceError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            DeviceError::Unreachable(..) => "check the network and try again".to_owned(),
            DeviceError::Refused { .. } => {
                "check that the client registered at the provider may use the device flow"
                    .to_owned()
            }
            DeviceError::Malformed(..) => "try again, and report it if it persists".to_owned(),
            DeviceError::Denied => "start the link again if that was a mistake".to_owned(),
            DeviceError::Expired => "run the link again and enter the new code".to_owned(),
            _ => return None,
        })
    }
}

/// The device authorization request (RFC 8628 §3.1): the client id and `scopes`, and the
/// client secret for the few providers that demand one (sent in the body, as RFC 6749 §2.3.1
/// allows and device-flow providers document).
pub(crate) fn request_device_authorization(
    http: &crate::http::Http,
    provider: &ProviderConfig,
    endpoint: &Url,
    scopes: &[String],
) -> Result<(DeviceCode, DeviceAuthorization, Option<u64>), DeviceError> {
    let scope = scopes.join(" ");
    let mut form = vec![("client_id", provider.client_id.as_str())];
    if !scope.is_empty() {
        form.push(("scope", scope.as_str()));
    }
    if let Some(secret) = &provider.client_secret {
        form.push(("client_secret", secret.secret()));
    }
    let answer = http
        .send(
            "the device authorization endpoint",
            http.client()
                .post(endpoint.clone())
                .header("accept", "application/json")
                .form(&form),
        )
        .map_err(|e| DeviceError::Unreachable(e.reason()))?;
    // The body holds the device code; it is wiped when `answer` drops.
    read_device_authorization(answer.status, &answer.body)
}

/// Reads a device authorization response (RFC 8628 §3.2), tolerating what real providers do:
/// numbers as strings, `verification_url` (Google's older spelling), an OAuth error with any
/// status.
pub(crate) fn read_device_authorization(
    status: u16,
    body: &[u8],
) -> Result<(DeviceCode, DeviceAuthorization, Option<u64>), DeviceError> {
    if status >= 500 || status == 429 {
        return Err(DeviceError::Unreachable(format!("HTTP {status}")));
    }
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return Err(DeviceError::Malformed(format!("HTTP {status}, not JSON")));
    };
    if let Some(error) = value.get("error").and_then(Value::as_str) {
        return Err(DeviceError::Refused {
            error: printable(error, 64),
            description: value
                .get("error_description")
                .and_then(Value::as_str)
                .map(|d| printable(d, 300)),
        });
    }
    if !(200..300).contains(&status) {
        return Err(DeviceError::Malformed(format!("HTTP {status}")));
    }
    // Moved out of the document, so the only copy left is the zeroizing one.
    let device_code = match value.get_mut("device_code").map(Value::take) {
        Some(Value::String(code)) if !code.is_empty() => DeviceCode::new(code),
        _ => return Err(DeviceError::Malformed("it has no device_code".into())),
    };
    let text = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| value.get(*n).and_then(Value::as_str))
    };
    let user_code = match text(&["user_code"]) {
        Some(code)
            if !code.trim().is_empty()
                && code.chars().count() <= MAX_USER_CODE_LEN
                && !code.chars().any(char::is_control) =>
        {
            code.to_owned()
        }
        Some(_) => return Err(DeviceError::Malformed("its user_code is unusable".into())),
        None => return Err(DeviceError::Malformed("it has no user_code".into())),
    };
    let raw_uri = text(&["verification_uri", "verification_url"])
        .ok_or_else(|| DeviceError::Malformed("it has no verification_uri".into()))?;
    let verification_uri = Url::parse(raw_uri)
        .ok()
        .filter(is_allowed_endpoint)
        .ok_or_else(|| DeviceError::UnsafeVerificationUri(printable(raw_uri, 200)))?;
    let verification_uri_complete =
        text(&["verification_uri_complete", "verification_url_complete"]).and_then(|raw| {
            let url = Url::parse(raw).ok().filter(is_allowed_endpoint);
            if url.is_none() {
                tracing::warn!("ignoring a verification_uri_complete that is not an https URL");
            }
            url
        });
    let expires_in = value
        .get("expires_in")
        .and_then(seconds)
        .ok_or_else(|| DeviceError::Malformed("it has no usable expires_in".into()))?;
    let interval = match value.get("interval") {
        None | Some(Value::Null) => None,
        Some(raw) => match seconds(raw) {
            Some(secs) if Duration::from_secs(secs) <= MAX_POLL_INTERVAL => Some(secs),
            _ => {
                return Err(DeviceError::Malformed(format!(
                    "its polling interval {} is not a number of seconds up to {}",
                    printable(&raw.to_string(), 40),
                    MAX_POLL_INTERVAL.as_secs()
                )));
            }
        },
    };
    let authorization = DeviceAuthorization {
        verification_uri,
        user_code,
        verification_uri_complete,
        expires_in: Duration::from_secs(expires_in).min(MAX_CODE_LIFETIME),
    };
    Ok((device_code, authorization, interval))
}

/// Seconds as a JSON number or, leniently, a string of digits.
fn seconds(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The polling state of RFC 8628 §3.5: the current interval, when the code expires, and the
/// last sign that the provider was unreachable (reported if the code expires meanwhile).
#[derive(Debug)]
pub(crate) struct Polling {
    pub(crate) interval: Duration,
    expires_at: UnixTime,
    trouble: Option<ExchangeError>,
}

/// What to do after one answer of the token endpoint.
#[derive(Debug)]
pub(crate) enum Step {
    /// Poll again after this long.
    Wait(Duration),
    /// Approved: the tokens.
    Done(TokenSet),
    /// Stop with this error.
    Fail(Stop),
}

/// Why polling stopped without tokens: the device grant's own error, or the token endpoint's.
#[derive(Debug)]
pub(crate) enum Stop {
    /// Denied, expired, or refused by the provider's rules for device sign-in.
    Device(DeviceError),
    /// The token endpoint failed or refused.
    Exchange(ExchangeError),
}

impl From<DeviceError> for Stop {
    fn from(e: DeviceError) -> Self {
        Stop::Device(e)
    }
}

impl From<ExchangeError> for Stop {
    fn from(e: ExchangeError) -> Self {
        Stop::Exchange(e)
    }
}

impl Polling {
    pub(crate) fn new(interval: Option<u64>, expires_in: Duration, now: UnixTime) -> Self {
        Polling {
            interval: interval
                .map(Duration::from_secs)
                .unwrap_or(DEFAULT_POLL_INTERVAL)
                .max(MIN_POLL_INTERVAL),
            expires_at: now.saturating_add(i64::try_from(expires_in.as_secs()).unwrap_or(i64::MAX)),
            trouble: None,
        }
    }

    /// True once the code can no longer be approved: polling is pointless from then on.
    pub(crate) fn is_expired(&self, now: UnixTime) -> bool {
        now >= self.expires_at
    }

    /// The error for a code that expired: the provider's unavailability when that is why
    /// nothing arrived, else the expiry itself.
    pub(crate) fn expired(&mut self) -> Stop {
        match self.trouble.take() {
            Some(e) => e.into(),
            None => DeviceError::Expired.into(),
        }
    }

    pub(crate) fn step(&mut self, answer: Result<TokenSet, ExchangeError>) -> Step {
        let error = match answer {
            Ok(tokens) => return Step::Done(tokens),
            Err(e) => e,
        };
        let code = match &error {
            ExchangeError::Rejected { error, .. } => error.as_str(),
            ExchangeError::Transport { .. } | ExchangeError::Unavailable { .. } => {
                // Waiting for the person continues; the provider may be back before the code
                // expires.
                tracing::warn!(error = %error, "the provider did not answer a device poll; polling on");
                let asked = Duration::from_secs(error.retry_after().unwrap_or(0));
                self.trouble = Some(error);
                return Step::Wait(self.interval.max(asked).min(MAX_POLL_INTERVAL));
            }
            _ => return Step::Fail(error.into()),
        };
        match code {
            "authorization_pending" => {
                self.trouble = None;
                Step::Wait(self.interval)
            }
            "slow_down" => {
                self.trouble = None;
                self.interval = (self.interval + SLOW_DOWN_STEP).min(MAX_POLL_INTERVAL);
                tracing::info!(
                    interval = self.interval.as_secs(),
                    "the provider asked to poll more slowly"
                );
                Step::Wait(self.interval)
            }
            "access_denied" => Step::Fail(DeviceError::Denied.into()),
            "expired_token" => Step::Fail(DeviceError::Expired.into()),
            _ => Step::Fail(error.into()),
        }
    }
}

#[cfg(test)]
mod tests;
