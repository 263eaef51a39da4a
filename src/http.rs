//! The one HTTP client Keylink uses: rustls, no redirect following (a redirect from a token or
//! discovery endpoint is an SSRF vector, RFC 9700 §4.11), connect and total timeouts, the
//! system proxy settings (`HTTPS_PROXY`, `NO_PROXY`) and extra trusted roots from
//! `network.ca_file`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use url::{Host, Url};

/// Why the HTTP client could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// `network.ca_file` could not be read or holds no PEM certificate.
    #[error(
        "the extra CA file {path} could not be used ({reason}); fix `network.ca_file` in the configuration"
    )]
    CaFile {
        /// The configured path.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The TLS stack could not be initialised.
    #[error("the HTTP client could not be initialised ({0})")]
    Client(String),
}

/// Network settings (the `[network]` configuration table).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetworkSettings {
    /// Extra trusted root certificates (PEM), e.g. a corporate CA.
    pub ca_file: Option<PathBuf>,
    /// Total timeout of one request.
    pub timeout: Option<Duration>,
}

/// Default total timeout of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Builds the blocking HTTP client used for discovery, token, userinfo and revocation requests.
pub fn client(settings: &NetworkSettings) -> Result<reqwest::blocking::Client, HttpError> {
    let mut builder = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(settings.timeout.unwrap_or(DEFAULT_TIMEOUT))
        .user_agent(concat!("keylink/", env!("CARGO_PKG_VERSION")))
        .https_only(false);
    if let Some(path) = &settings.ca_file {
        for cert in load_ca_file(path)? {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder
        .build()
        .map_err(|e| HttpError::Client(e.to_string()))
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
pub fn is_loopback(url: &Url) -> bool {
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
pub fn is_allowed_endpoint(url: &Url) -> bool {
    let has_host = url.host().is_some() && url.username().is_empty() && url.password().is_none();
    match url.scheme() {
        "https" => has_host,
        "http" => has_host && is_loopback(url),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_is_allowed() {
        let cases = [
            ("https://login.example.com/authorize", true),
            ("http://127.0.0.1:4433/auth", true),
            ("http://[::1]:4433/auth", true),
            ("http://localhost/auth", true),
            ("http://login.example.com/authorize", false),
            ("file:///etc/passwd", false),
            ("smb://host/share", false),
            ("javascript:alert(1)", false),
            ("https://user:pw@login.example.com/", false),
        ];
        for (url, allowed) in cases {
            let parsed = Url::parse(url).unwrap();
            assert_eq!(is_allowed_endpoint(&parsed), allowed, "{url}");
        }
    }
}
