//! What varies by embedding app, and what the process environment says. The core never reads
//! the environment itself: a front end captures it ([`Environment::capture`] with
//! `std::env::var_os`) and hands it to [`Keylink::builder`](crate::Keylink::builder), and an
//! embedding app may hand it nothing at all.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::path::PathBuf;

use url::Url;

use crate::ids::ProviderId;

/// The identifier, URL scheme and keychain namespace of the Keylink app and the `keylink`
/// CLI, which share their accounts.
pub(crate) const KEYLINK_APP: &str = "dev.keylink";

/// An app identity, or the data directory it implies, that Keylink cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// An app identifier or URL scheme is not a reverse-domain name.
    #[error("the {what} \"{value}\" is not a reverse-domain name such as com.example.app")]
    NotReverseDomain {
        /// What was being set.
        what: &'static str,
        /// The value, as plain text.
        value: String,
    },
    /// No absolute data directory could be determined from the environment or the setting.
    #[error("Keylink cannot tell where to keep its data ({0})")]
    DataDirUnknown(String),
}

impl IdentityError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            IdentityError::NotReverseDomain { .. } => {
                "use lower-case letters, digits, dashes and dots".to_owned()
            }
            _ => return None,
        })
    }
}

/// The app Keylink links accounts for: its identifier (reverse-domain, e.g.
/// `com.example.notes`), the private-use URL scheme its redirects use (RFC 8252 §7.1), and
/// from those its keychain namespace and default data directory. Two apps with different
/// identities never see each other's accounts or tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppIdentity {
    identifier: String,
    scheme: String,
}

impl AppIdentity {
    /// The Keylink app's own identity, `dev.keylink`, shared with the `keylink` CLI.
    pub fn keylink() -> Self {
        Self {
            identifier: KEYLINK_APP.to_owned(),
            scheme: KEYLINK_APP.to_owned(),
        }
    }

    /// The identity of the app `identifier` (reverse-domain: lower-case letters, digits, `-`
    /// and at least one `.`); its URL scheme is the identifier too unless
    /// [`AppIdentity::with_scheme`] says otherwise.
    pub fn new(identifier: &str) -> Result<Self, IdentityError> {
        check_reverse_domain(identifier, "app identifier")?;
        Ok(Self {
            identifier: identifier.to_owned(),
            scheme: identifier.to_owned(),
        })
    }

    /// Uses `scheme` (reverse-domain, RFC 8252 §7.1) for redirects instead of the identifier.
    pub fn with_scheme(mut self, scheme: &str) -> Result<Self, IdentityError> {
        check_reverse_domain(scheme, "URL scheme")?;
        self.scheme = scheme.to_owned();
        Ok(self)
    }

    /// The app identifier.
    pub fn identifier(&self) -> &str {
        &self.identifier
    }

    /// The private-use URL scheme of the app's redirects.
    pub fn scheme(&self) -> &str {
        &self.scheme
    }

    /// The keychain service under which the app's entries live.
    pub fn keychain_service(&self) -> &str {
        &self.identifier
    }

    /// True when `arg` is a URL of this app's scheme (what the OS hands the app or
    /// `keylink open-url` for a deep-link redirect).
    pub fn is_redirect(&self, arg: &str) -> bool {
        let prefix = format!("{}:", self.scheme);
        arg.len() > prefix.len()
            && arg
                .get(..prefix.len())
                .is_some_and(|s| s.eq_ignore_ascii_case(&prefix))
    }

    /// The default deep-link redirect URI of provider `id`: `<scheme>:/callback/<id>`.
    pub fn deep_link_redirect(&self, provider_id: &ProviderId) -> Url {
        Url::parse(&format!(
            "{}:{}/{provider_id}",
            self.scheme,
            crate::provider::CALLBACK_PATH
        ))
        .unwrap_or_else(|_| unreachable!("a checked scheme and a provider id always parse"))
    }

    /// The name of the app's directory under the platform data directory: `keylink` for
    /// the Keylink app (its established path), the identifier for every other app.
    fn data_dir_name(&self) -> &str {
        if self.identifier == KEYLINK_APP {
            "keylink"
        } else {
            &self.identifier
        }
    }

    /// The app's default data directory: `$KEYLINK_DATA_DIR`, else
    /// `$XDG_DATA_HOME/<name>`, else `~/.local/share/<name>`, else (Windows, where neither
    /// is usually set) `%LOCALAPPDATA%\<name>`. Always an absolute path: with no usable
    /// variable it is an error, never the current directory (SECURITY 38).
    pub fn default_data_dir(&self, env: &Environment) -> Result<PathBuf, IdentityError> {
        if let Some(dir) = env.var("KEYLINK_DATA_DIR") {
            let dir = PathBuf::from(dir);
            if !dir.is_absolute() {
                return Err(IdentityError::DataDirUnknown(format!(
                    "KEYLINK_DATA_DIR ({}) is not an absolute path",
                    crate::text::printable(&dir.display().to_string(), 200)
                )));
            }
            return Ok(dir);
        }
        let base = env
            .absolute("XDG_DATA_HOME")
            .or_else(|| env.absolute("HOME").map(|h| h.join(".local/share")))
            .or_else(|| env.absolute("LOCALAPPDATA"))
            .ok_or_else(|| {
                IdentityError::DataDirUnknown(
                    "none of XDG_DATA_HOME, HOME and LOCALAPPDATA is set to an absolute path"
                        .into(),
                )
            })?;
        Ok(base.join(self.data_dir_name()))
    }
}

fn check_reverse_domain(text: &str, what: &'static str) -> Result<(), IdentityError> {
    let ok = (3..=100).contains(&text.len())
        && text.contains('.')
        && text
            .split('.')
            .all(|label| !label.is_empty() && !label.starts_with('-'))
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
        && text.starts_with(|c: char| c.is_ascii_lowercase());
    if ok {
        Ok(())
    } else {
        Err(IdentityError::NotReverseDomain {
            what,
            value: crate::text::printable(text, 100),
        })
    }
}

/// The environment variables Keylink understands, captured once by a front end.
const VARIABLES: &[&str] = &[
    "KEYLINK_CONFIG",
    "KEYLINK_POLICY",
    "KEYLINK_DATA_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
    "HOME",
    "LOCALAPPDATA",
    "XDG_RUNTIME_DIR",
    "BROWSER",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "HTTPS_PROXY",
    "https_proxy",
    "ALL_PROXY",
    "all_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// A snapshot of the environment variables Keylink understands (see the README), taken by
/// the front end. An empty one (the default) means: configuration, data directory and
/// browser come only from what is passed to the builder.
#[derive(Debug, Clone, Default)]
pub struct Environment {
    vars: BTreeMap<&'static str, OsString>,
}

impl Environment {
    /// Reads the variables through `lookup` (normally `std::env::var_os`); empty values
    /// count as unset.
    pub fn capture(lookup: impl Fn(&'static str) -> Option<OsString>) -> Self {
        let vars = VARIABLES
            .iter()
            .filter_map(|&name| {
                lookup(name)
                    .filter(|v| !v.is_empty())
                    .map(|value| (name, value))
            })
            .collect();
        Self { vars }
    }

    /// The value of `name`, when set and not empty.
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.vars.get(name).map(OsString::as_os_str)
    }

    /// The value of `name` as text, when set, not empty and valid UTF-8.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.var(name).and_then(OsStr::to_str)
    }

    /// The value of `name` as a path, when it is an absolute one.
    pub fn absolute(&self, name: &str) -> Option<PathBuf> {
        self.var(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    }
}

#[cfg(test)]
mod tests;
