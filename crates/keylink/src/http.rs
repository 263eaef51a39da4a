//! The one HTTP client Keylink uses: rustls, no redirect following (a redirect from a token or
//! discovery endpoint is an SSRF vector, RFC 9700 §4.11), one total deadline per request
//! covering connect, headers and the whole body, every body read through a size cap, the
//! `HTTPS_PROXY`/`NO_PROXY` settings (never for loopback providers), and extra trusted roots
//! from `network.ca_file`.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use url::{Host, Url};
use zeroize::Zeroizing;

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// `network.ca_file` could not be read or holds no PEM certificate.
    #[error("the extra CA file {path} could not be used ({reason})")]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS stack could not be initialised, or the proxy setting is not a URL.
    #[error("the HTTP client could not be initialised ({0})")]
    Client(String),
}

impl HttpError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            HttpError::CaFile { .. } => "fix `network.ca_file` in the configuration".to_owned(),
            _ => return None,
        })
    }
}

/// Network settings (the `[network]` configuration table).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Extra trusted root certificates (PEM), e.g. a corporate CA.
    pub ca_file: Option<PathBuf>,
    /// Total deadline of one request: connect, headers and the whole body.
    pub timeout: Option<Duration>,
    /// The proxy for https requests (`HTTPS_PROXY`); never used for loopback hosts.
    pub https_proxy: Option<String>,
    /// Hosts that bypass the proxy (`NO_PROXY` syntax).
    pub no_proxy: Option<String>,
}

// A proxy URL may carry a password (`http://user:secret@proxy`): Debug says only whether
// one is set.
impl std::fmt::Debug for NetworkSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkSettings")
            .field("ca_file", &self.ca_file)
            .field("timeout", &self.timeout)
            .field(
                "https_proxy",
                &self.https_proxy.as_ref().map(|_| "[redacted]"),
            )
            .field("no_proxy", &self.no_proxy)
            .finish()
    }
}

impl NetworkSettings {
    /// Takes the proxy settings from `HTTPS_PROXY` (or `https_proxy`, `ALL_PROXY`) and
    /// `NO_PROXY` when the configuration sets neither `https_proxy` nor `no_proxy`. The two
    /// are one setting: a policy's proxy with the user's `NO_PROXY=*` would be no proxy at all
    /// (SECURITY 47), and a policy's `no_proxy` alone means "no proxy but for these", not
    /// "the user's proxy".
    pub fn apply_environment(&mut self, env: &crate::app::Environment) {
        if self.https_proxy.is_some() || self.no_proxy.is_some() {
            return;
        }
        let first = |names: &[&str]| names.iter().find_map(|n| env.text(n)).map(str::to_owned);
        self.https_proxy = first(&["HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"]);
        self.no_proxy = first(&["NO_PROXY", "no_proxy"]);
    }
}

/// Default total deadline of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest response body Keylink reads from a provider (SECURITY 35). Discovery
/// documents, key sets and token answers are a few KiB; anything near this is hostile.
pub const MAX_BODY_BYTES: usize = 1 << 20;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Why one request to a provider failed. Messages name the endpoint, never a URL's query or
/// a body.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// Connecting, sending or receiving failed.
    #[error("{endpoint} could not be reached ({reason})")]
    Transport {
        /// Which endpoint, in words ("the token endpoint").
        endpoint: &'static str,
        /// What went wrong, without secrets.
        reason: String,
        /// True when the request certainly never reached the provider (connection refused).
        unsent: bool,
    },
    /// The whole exchange took longer than the deadline (a provider that dribbles its answer).
    #[error("{endpoint} did not answer completely within {secs} s")]
    TimedOut {
        /// Which endpoint.
        endpoint: &'static str,
        /// The deadline.
        secs: u64,
    },
    /// The answer was larger than [`MAX_BODY_BYTES`].
    #[error("{endpoint} sent an answer larger than 1 MiB, which Keylink does not read")]
    TooLarge {
        /// Which endpoint.
        endpoint: &'static str,
    },
}

impl FetchError {
    /// What went wrong, without the endpoint's name (for errors that name it themselves).
    pub fn reason(&self) -> String {
        match self {
            FetchError::Transport { reason, .. } => reason.clone(),
            FetchError::TimedOut { secs, .. } => {
                format!("no complete answer within {secs} s")
            }
            FetchError::TooLarge { .. } => "its answer is larger than 1 MiB".into(),
        }
    }

    /// True when the request certainly never reached the provider, so repeating it cannot
    /// replay anything.
    pub fn is_unsent(&self) -> bool {
        matches!(self, FetchError::Transport { unsent: true, .. })
    }
}

/// A provider's complete answer, body read within the cap and the deadline. The body may hold
/// tokens: it is wiped on drop.
pub(crate) struct Answer {
    /// HTTP status.
    pub status: u16,
    /// Response headers.
    pub headers: reqwest::header::HeaderMap,
    /// The body, at most [`MAX_BODY_BYTES`].
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Answer")
            .field("status", &self.status)
            .field("body", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl Answer {
    /// True for a 2xx status.
    pub(crate) fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// A header as text.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The HTTP client with its deadline: every request to a provider goes through
/// [`Http::send`].
#[derive(Debug, Clone)]
pub(crate) struct Http {
    client: reqwest::blocking::Client,
    timeout: Duration,
}

impl Http {
    /// Builds the client from the network settings.
    pub(crate) fn new(settings: &NetworkSettings) -> Result<Self, HttpError> {
        let timeout = settings.timeout.unwrap_or(DEFAULT_TIMEOUT);
        let mut builder = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .timeout(timeout)
            .user_agent(concat!("keylink/", env!("CARGO_PKG_VERSION")))
            // The system proxy detection would send `http://127.0.0.1` providers through
            // `HTTP_PROXY`; proxies are set explicitly below.
            .no_proxy()
            .https_only(false);
        if let Some(proxy) = https_proxy(settings)? {
            builder = builder.proxy(proxy);
        }
        if let Some(path) = &settings.ca_file {
            for cert in load_ca_file(path)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let client = builder
            .build()
            .map_err(|e| HttpError::Client(e.to_string()))?;
        Ok(Self { client, timeout })
    }

    /// The total deadline of one request.
    pub(crate) fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The underlying client, to build requests with; send them with [`Http::send`].
    pub(crate) fn client(&self) -> &reqwest::blocking::Client {
        &self.client
    }

    /// Sends `request` and reads the whole answer within one total deadline (connect, headers
    /// and body) and the size cap. `endpoint` names the endpoint in errors.
    pub(crate) fn send(
        &self,
        endpoint: &'static str,
        request: reqwest::blocking::RequestBuilder,
    ) -> Result<Answer, FetchError> {
        let started = Instant::now();
        let deadline = started + self.timeout;
        let timed_out = || FetchError::TimedOut {
            endpoint,
            secs: self.timeout.as_secs().max(1),
        };
        // A request-level timeout is a total deadline in reqwest, body included; the
        // client-level one bounds each read only.
        let mut response = request
            .timeout(self.timeout)
            .send()
            .map_err(|e| transport(endpoint, &e, timed_out))?;
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(FetchError::TooLarge { endpoint });
        }
        let status = response.status().as_u16();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Zeroizing::new(Vec::new());
        // Wiped on every way out: a chunk may hold part of a token.
        let mut chunk = Zeroizing::new([0u8; 8192]);
        let mut limited = response.by_ref().take(MAX_BODY_BYTES as u64 + 1);
        loop {
            if Instant::now() >= deadline {
                return Err(timed_out());
            }
            match limited.read(chunk.as_mut_slice()) {
                Ok(0) => break,
                Ok(n) => body.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    if Instant::now() >= deadline || e.kind() == std::io::ErrorKind::TimedOut {
                        return Err(timed_out());
                    }
                    return Err(FetchError::Transport {
                        endpoint,
                        reason: format!(
                            "the answer was cut off: {}",
                            crate::text::printable(&e.to_string(), 200)
                        ),
                        unsent: false,
                    });
                }
            }
            if body.len() > MAX_BODY_BYTES {
                return Err(FetchError::TooLarge { endpoint });
            }
        }
        Ok(Answer {
            status,
            headers,
            body,
        })
    }
}

/// Parses `body`, a provider's JSON answer, into `T`, refusing anything but a JSON object: serde
/// would fill a struct from an array by position, and every OAuth and OpenID Connect answer is
/// an object (RFC 6749 §5.1, RFC 8414 §3.2, RFC 7517 §5).
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    if !value.is_object() {
        return Err(serde::de::Error::custom("the answer is not a JSON object"));
    }
    T::deserialize(value)
}

/// The wait a `Retry-After` header asks for (RFC 9110 §10.2.3), as delay-seconds or an
/// HTTP date, in whole seconds from `now`; absurd values are clamped to a day, never overflow.
pub(crate) fn retry_after(value: Option<&str>, now: crate::clock::UnixTime) -> Option<u64> {
    const MAX: u64 = 24 * 60 * 60;
    let value = value?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(secs.min(MAX));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    let at = date.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs();
    let now = u64::try_from(now).unwrap_or(0);
    Some(at.saturating_sub(now).min(MAX))
}

fn transport(
    endpoint: &'static str,
    e: &reqwest::Error,
    timed_out: impl Fn() -> FetchError,
) -> FetchError {
    if e.is_timeout() {
        return timed_out();
    }
    FetchError::Transport {
        endpoint,
        reason: describe_reqwest(e),
        unsent: e.is_connect(),
    }
}

/// The proxy for https requests, never for loopback hosts or the hosts in `no_proxy`. Plain http goes to loopback providers only, so
/// it is never proxied.
fn https_proxy(settings: &NetworkSettings) -> Result<Option<reqwest::Proxy>, HttpError> {
    let Some(url) = settings
        .https_proxy
        .as_deref()
        .filter(|u| !u.trim().is_empty())
    else {
        return Ok(None);
    };
    let mut exempt = settings.no_proxy.clone().unwrap_or_default();
    exempt.push_str(",127.0.0.0/8,::1,localhost");
    let proxy = reqwest::Proxy::https(url.trim())
        .map_err(|e| HttpError::Client(format!("HTTPS_PROXY is not a usable proxy URL: {e}")))?
        .no_proxy(reqwest::NoProxy::from_string(&exempt));
    Ok(Some(proxy))
}

fn load_ca_file(path: &Path) -> Result<Vec<reqwest::Certificate>, HttpError> {
    let fail = |reason: String| HttpError::CaFile {
        path: path.to_owned(),
        reason,
    };
    let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| fail(e.to_string()))?;
    if certs.is_empty() {
        return Err(fail("no PEM certificate in it".into()));
    }
    Ok(certs)
}
/// True when `url`'s host is a loopback address or `localhost`.
pub(crate) fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Ipv4(ip)) => ip.is_loopback(),
        Some(Host::Ipv6(ip)) => ip.is_loopback(),
        Some(Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// True when `url` may be used as a provider endpoint or opened in the browser: `https`, or
/// `http` on a loopback host only (RFC 8252 §8.3). Everything else (`file:`, `smb:`,
/// `javascript:`, ...) is refused.
pub(crate) fn is_allowed_endpoint(url: &Url) -> bool {
    let has_host = url.host().is_some() && url.username().is_empty() && url.password().is_none();
    match url.scheme() {
        "https" => has_host,
        "http" => has_host && is_loopback(url),
        _ => false,
    }
}

/// Describes a transport error without its URL's query (which may hold secrets) or any body.
pub(crate) fn describe_reqwest(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    let mut source = std::error::Error::source(e);
    let mut detail = String::new();
    while let Some(s) = source {
        detail = s.to_string();
        source = s.source();
    }
    if detail.is_empty() {
        kind.to_owned()
    } else {
        format!("{kind}: {}", crate::text::printable(&detail, 200))
    }
}

#[cfg(test)]
mod tests;
