//! `[credentials."<server>"]`: which linked account answers a tool's credential request for a
//! server (git's and docker's credential helpers), and the user name it gives.

use std::fmt;

use url::Url;

/// A server as a credential request names it: the origin of an `https` URL (`http` only on the
/// loopback address), default ports left out, so `https://git.example.com` and
/// `https://git.example.com:443` are one server.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ServerOrigin(String);

impl ServerOrigin {
    /// `text` as a server: an origin (`https://host[:port]`), with no path, query, fragment or
    /// user info; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<ServerOrigin, String> {
        let url = Url::parse(text).map_err(|e| format!("is not a URL ({e})"))?;
        if !matches!(url.scheme(), "https" | "http") {
            return Err("must be an https URL (http only on the loopback address)".into());
        }
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(name)) => name == "localhost",
            None => return Err("has no host".into()),
        };
        if !(url.scheme() == "https" || (url.scheme() == "http" && loopback)) {
            return Err("must be an https URL (http only on the loopback address)".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry a user name or password".into());
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(
                "must be a server only, such as https://git.example.com, with no path".into(),
            );
        }
        Ok(ServerOrigin(url.origin().ascii_serialization()))
    }

    /// The server a credential request names by its `protocol` and `host` (`host[:port]`), as
    /// git's credential helpers are told.
    pub fn from_request(protocol: &str, host: &str) -> Result<ServerOrigin, String> {
        ServerOrigin::parse(&format!("{protocol}://{host}"))
    }

    /// The origin as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ServerOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The account that answers for one server, and the user name it gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServerCredential {
    /// The account: its id, or the email it was linked with.
    pub account: String,
    /// The user name the tool sends with the token (`oauth2` unless configured).
    pub username: String,
}

#[cfg(test)]
mod tests;
