//! Identifiers with their own types, so that a provider id, an account id and an issuer can
//! never be passed in one another's place (as `oauth2` and `openidconnect` do for client ids
//! and URLs): none converts into another, and none is made from text implicitly. Each is a
//! string underneath, serialised as the plain string, and read as text with `as_str()`.

use std::borrow::Borrow;
use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! string_id {
    ($(#[$doc:meta])* $name:ident) => {
        string_id!(@common $(#[$doc])* $name, transparent);

        impl $name {
            /// Wraps `value`.
            pub fn new(value: impl Into<String>) -> Self {
                $name(value.into())
            }
        }
    };
    (@common $(#[$doc:meta])* $name:ident, $serde:meta) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde($serde)]
        pub struct $name(String);

        impl $name {
            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The id as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                value.0
            }
        }

        impl From<&$name> for String {
            fn from(value: &$name) -> Self {
                value.0.clone()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.0 == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.0 == *other
            }
        }
    };
}

string_id!(
    /// A provider's id: its key under `[providers]` in the configuration (`demo`, `work`).
    ProviderId
);
string_id!(
    /// A linked account's stable id: the provider id and a hash of issuer and subject
    /// (`demo-3f2a9c1b07`), never the email (SECURITY 20).
    AccountId
);
string_id!(@common
    /// The issuer an account's identity comes from: the OpenID issuer identifier, or for
    /// plain OAuth providers the token endpoint's origin. Made with [`IssuerUrl::new`], which
    /// refuses anything else (also when read back from storage).
    IssuerUrl, try_from = "String"
);

impl IssuerUrl {
    /// `value` as an issuer identifier (OpenID Connect Core 1.0 §2, RFC 8414 §2): an https
    /// URL with a host and no query or fragment; http only on the loopback address (a
    /// provider on the same machine). The text is kept exactly as given: issuers are
    /// compared as strings.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidIssuer> {
        let value = value.into();
        let ok = url::Url::parse(&value).is_ok_and(|url| {
            let loopback = matches!(
                url.host(),
                Some(url::Host::Ipv4(ip)) if ip.is_loopback()
            ) || matches!(url.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback())
                || url.host_str() == Some("localhost");
            (url.scheme() == "https" || (url.scheme() == "http" && loopback))
                && url.host().is_some()
                && url.query().is_none()
                && url.fragment().is_none()
                && url.username().is_empty()
                && url.password().is_none()
        });
        if ok {
            Ok(IssuerUrl(value))
        } else {
            Err(InvalidIssuer(crate::text::printable(&value, 200)))
        }
    }
}

impl TryFrom<String> for IssuerUrl {
    type Error = InvalidIssuer;
    fn try_from(value: String) -> Result<Self, InvalidIssuer> {
        IssuerUrl::new(value)
    }
}

/// A text that is not an issuer identifier ([`IssuerUrl::new`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "\"{0}\" is not an issuer: an https URL with no query or fragment (http only on the loopback address)"
)]
pub struct InvalidIssuer(String);
string_id!(
    /// A started browser sign-in's id: names its pending flow and its outcome.
    FlowId
);

#[cfg(test)]
mod tests;
