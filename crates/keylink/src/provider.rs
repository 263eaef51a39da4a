//! Providers: the layered TOML configuration (built-in presets < system policy < user file),
//! and OpenID Connect Discovery / RFC 8414 metadata with the exact-issuer and S256 checks.
//!
//! A [`Config`] that exists is valid: every URL is parsed and allowed, every provider is usable.
//! This module holds the configuration types; the work is in `layering` (the files and the
//! admin policy), `validate` (one provider's table), `presets` (the built-in providers),
//! `policy_file` (whether a policy file can be trusted) and `discovery` (the metadata).
//!
//! ```
//! let config = keylink::Config::parse(
//!     r#"[providers.work]
//!        preset = "microsoft"
//!        client_id = "00000000-0000-0000-0000-000000000000""#,
//! )?;
//! let work = config.provider(&keylink::ProviderId::new("work")).expect("configured");
//! assert_eq!(work.client_id, "00000000-0000-0000-0000-000000000000");
//! # Ok::<(), keylink::provider::ConfigError>(())
//! ```

use crate::ids::ProviderId;
use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Deserialize;
use url::Url;

use crate::http::NetworkSettings;
use crate::secret::ClientSecret;

mod credentials;
mod discovery;
mod layering;
mod policy_file;
mod presets;
mod validate;
pub use credentials::{ServerCredential, ServerOrigin};
pub(crate) use discovery::discover;
#[cfg(feature = "fuzzing")]
pub(crate) use discovery::read_metadata;
pub use discovery::{DiscoveryError, Metadata};
use layering::PolicyNetwork;
pub use policy_file::{IgnoredPolicy, IgnoredReason, Untrusted};
pub use presets::{Quirks, UserEndpoint};

/// The path every redirect URI starts with; the provider id follows it, so each provider's
/// redirect URI is its own (RFC 9700 §4.4.2: the mix-up defence for providers without
/// RFC 9207 `iss`).
pub const CALLBACK_PATH: &str = "/callback";
/// Path of the system policy file that IT admins deploy.
pub const SYSTEM_POLICY_FILE: &str = "/etc/keylink/keylink.toml";

/// What is wrong with a configuration file. Every message names the file, the key and the
/// problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file exists but could not be read (permissions, a directory, ...).
    #[error("cannot read the configuration file {file}: {reason}")]
    Read {
        /// The file.
        file: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The file is not valid TOML, or a key has the wrong type or is unknown.
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: PathBuf,
        /// 1-based line of the problem.
        line: usize,
        /// The parser's description (never the file's text, which may hold a client secret).
        message: String,
    },
    /// A key has a value that parses but is not acceptable.
    #[error("{file}: `{key}` {problem}")]
    Invalid {
        /// The file.
        file: PathBuf,
        /// Dotted key, e.g. `providers.demo.issuer`.
        key: String,
        /// What is wrong and what to do.
        problem: String,
    },
    /// `KEYLINK_CONFIG` names a file that does not exist.
    #[error("the configuration file {0} named by KEYLINK_CONFIG does not exist")]
    Missing(PathBuf),
    /// The system policy file is not trusted (SECURITY 47): someone other than root could
    /// have written it. As sudo does with sudoers, Keylink neither uses it nor runs without
    /// it, since ignoring it would drop the administrator's locks.
    #[error("the system policy {file} {problem}, so Keylink neither uses it nor runs without it")]
    UntrustedPolicy {
        /// The system policy file.
        file: PathBuf,
        /// What is wrong with it.
        problem: Untrusted,
    },
    /// Two providers have the same redirect URI (SECURITY 53), usually an explicit
    /// `redirect_uri` copied from another provider or naming another provider's default.
    #[error(
        "the providers \"{first}\" and \"{second}\" have the same redirect URI {uri}, so a sign-in at one could complete at the other"
    )]
    SharedRedirectUri {
        /// The first provider, by id.
        first: String,
        /// The second provider, by id.
        second: String,
        /// The redirect URI both would use.
        uri: String,
    },
}

impl ConfigError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            ConfigError::Syntax { .. } => "fix the configuration file".to_owned(),
            ConfigError::Missing(..) => "create it or unset KEYLINK_CONFIG".to_owned(),
            ConfigError::UntrustedPolicy { .. } => "ask your administrator to make it a regular file owned by root that only root can write".to_owned(),
            ConfigError::SharedRedirectUri { .. } => "give each its own `redirect_uri`, or leave it out for the default <scheme>:/callback/<provider id>".to_owned(),
            _ => return None,
        })
    }
}

/// How the redirect reaches Keylink.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RedirectKind {
    /// A private-use URI scheme handled by the OS (RFC 8252 §7.1).
    DeepLink,
    /// A one-shot listener on `http://127.0.0.1:<ephemeral>/callback/<provider-id>`
    /// (RFC 8252 §7.3).
    Loopback,
}

/// One configured provider, validated.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Key under `[providers]`, used on the command line.
    pub id: ProviderId,
    /// Display name.
    pub name: String,
    /// OpenID issuer; discovery happens at `<issuer>/.well-known/openid-configuration`.
    pub issuer: Option<String>,
    /// The OAuth client id.
    pub client_id: String,
    /// Only for providers that demand one from desktop apps.
    pub client_secret: Option<ClientSecret>,
    /// Requested scopes.
    pub scopes: Vec<String>,
    /// Scopes an app may ask for later, beyond [`scopes`](Self::scopes) (incremental
    /// consent, with [`LinkStart::scopes`](crate::LinkStart::scopes)): each a scope-token of
    /// RFC 6749 §3.3, each once. Nothing asks for them by itself; a front end offers them.
    pub optional_scopes: Vec<String>,
    /// Redirect transport.
    pub redirect: RedirectKind,
    /// The configured deep-link redirect URI, if any; the default is
    /// `<app scheme>:/callback/<provider-id>` (see [`ProviderConfig::deep_link_redirect`]).
    /// Ignored for loopback, whose port is chosen per flow.
    pub redirect_uri: Option<Url>,
    /// Explicit endpoints, overriding discovery.
    pub endpoints: EndpointOverrides,
    /// Extra query parameters of the authorization request.
    pub authorize_params: BTreeMap<String, String>,
    /// Origins (`https://api.example.com`) an app may send this provider's accounts' access
    /// tokens to through [`Keylink::api_request`](crate::Keylink::api_request): exact
    /// origins, https (or http on loopback) only.
    pub api_origins: Vec<url::Origin>,
    /// `[providers.<id>.apis."<origin>"]`: the token each API origin gets, limited to a
    /// resource (RFC 8707) and scopes; see [`ProviderConfig::api_for`].
    pub apis: BTreeMap<ServerOrigin, ApiConfig>,
    /// Set by a locked system policy: the user file cannot replace this provider.
    pub locked: bool,
    /// Defined by the system policy file (shown as such by `keylink providers` and the app).
    pub from_policy: bool,
    /// The preset this provider was configured from, if any.
    pub preset: Option<String>,
    /// Declared deviations from the standards (from the preset).
    pub quirks: Quirks,
}

impl ProviderConfig {
    /// True when this is an OpenID Connect provider (an ID token is expected and checked).
    pub fn is_oidc(&self) -> bool {
        self.issuer.is_some() && self.scopes.iter().any(|s| s == "openid")
    }

    /// The configured API whose origin is `url`'s, if any: what a request to `url` should
    /// get its token with ([`ApiConfig::token_request`] for
    /// [`Keylink::access_token_for`](crate::Keylink::access_token_for)).
    pub fn api_for(&self, url: &Url) -> Option<&ApiConfig> {
        let origin = ServerOrigin::parse(&url.origin().ascii_serialization()).ok()?;
        self.apis.get(&origin)
    }

    /// The path of this provider's loopback redirect URI, `/callback/<provider-id>`.
    pub(crate) fn loopback_path(&self) -> String {
        format!("{CALLBACK_PATH}/{}", self.id)
    }

    /// The deep-link redirect URI for `app`: the configured one, else
    /// `<scheme>:/callback/<provider-id>`.
    pub fn deep_link_redirect(&self, app: &crate::app::AppIdentity) -> Url {
        self.redirect_uri
            .clone()
            .unwrap_or_else(|| app.deep_link_redirect(&self.id))
    }

    /// The redirect URI to register at the provider, exactly: the deep-link URI, or for
    /// loopback `http://127.0.0.1/callback/<provider-id>` (the port is chosen per sign-in,
    /// which native-app rules allow, RFC 8252 §7.3).
    pub fn registered_redirect_uri(&self, app: &crate::app::AppIdentity) -> String {
        match self.redirect {
            RedirectKind::DeepLink => self.deep_link_redirect(app).to_string(),
            RedirectKind::Loopback => format!("http://127.0.0.1{}", self.loopback_path()),
        }
    }
}

/// One API of a provider, `[providers.<id>.apis."<origin>"]`: the tokens sent to it are
/// limited to `resource` (RFC 8707) and `scopes` (RFC 6749 §6), so that a token for one API
/// never reaches another.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ApiConfig {
    /// The resource indicator, an absolute URI without a fragment, exactly as written.
    pub resource: Option<String>,
    /// The scopes, each once; each must be one the account was granted.
    pub scopes: Vec<String>,
}

impl ApiConfig {
    /// The token request for this API.
    pub fn token_request(&self) -> crate::token_request::TokenRequest {
        crate::token_request::TokenRequest::for_api(self.resource.as_deref(), &self.scopes)
    }
}

/// Endpoints given explicitly in the configuration.
#[derive(Debug, Clone, Default)]
pub struct EndpointOverrides {
    /// Authorization endpoint (RFC 6749 §3.1).
    pub authorization_endpoint: Option<Url>,
    /// Token endpoint (RFC 6749 §3.2).
    pub token_endpoint: Option<Url>,
    /// Revocation endpoint (RFC 7009).
    pub revocation_endpoint: Option<Url>,
    /// Userinfo endpoint (OIDC Core §5.3).
    pub userinfo_endpoint: Option<Url>,
    /// JWKS (RFC 7517) of the issuer.
    pub jwks_uri: Option<Url>,
    /// Device authorization endpoint (RFC 8628 §3.1).
    pub device_authorization_endpoint: Option<Url>,
}

/// The whole, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Providers by id.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Network settings.
    pub network: NetworkSettings,
    /// The files that were read, in order.
    pub files: Vec<PathBuf>,
    /// The system policy file, when one was read.
    pub policy: Option<PathBuf>,
    /// The file `KEYLINK_POLICY` named, when it was not used, and why.
    pub ignored_policy: Option<IgnoredPolicy>,
    /// `[policy] allow_user_providers`: false when the policy ignores providers from user
    /// files.
    pub allow_user_providers: bool,
    /// What the policy refused of the user files, one sentence each, for the front end to
    /// show: nothing is changed by them.
    pub warnings: Vec<String>,
    /// `[credentials."<server>"]`: the account that answers a tool's credential request for
    /// each server (git, docker).
    pub credentials: BTreeMap<ServerOrigin, ServerCredential>,
    /// Network settings the policy fixed: user files cannot change them.
    policy_network: PolicyNetwork,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            providers: BTreeMap::new(),
            network: NetworkSettings::default(),
            files: Vec::new(),
            policy: None,
            ignored_policy: None,
            allow_user_providers: true,
            warnings: Vec::new(),
            credentials: BTreeMap::new(),
            policy_network: PolicyNetwork::default(),
        }
    }
}

impl Config {
    /// The provider with this id, or an error listing the configured ones.
    pub fn provider(&self, id: &ProviderId) -> Option<&ProviderConfig> {
        self.providers.get(id.as_str())
    }

    /// Checks that no two providers share a redirect URI for `app` (SECURITY 53): the
    /// per-provider redirect URI is the mix-up defence for providers without RFC 9207 `iss`
    /// (SECURITY 37), and a shared one would let a redirect meant for one provider complete
    /// the other's sign-in. URIs are compared the way redirects are matched.
    pub(crate) fn check_redirect_uris(
        &self,
        app: &crate::app::AppIdentity,
    ) -> Result<(), ConfigError> {
        let mut seen: Vec<(&ProviderConfig, Url)> = Vec::new();
        for provider in self.providers.values() {
            let uri = match provider.redirect {
                RedirectKind::DeepLink => provider.deep_link_redirect(app),
                // Loopback URIs are http on 127.0.0.1, which no deep-link URI may use, and
                // end in the provider's own id.
                RedirectKind::Loopback => continue,
            };
            if let Some((first, _)) = seen
                .iter()
                .find(|(_, other)| crate::callback::redirect_matches(&uri, other))
            {
                return Err(ConfigError::SharedRedirectUri {
                    first: first.id.to_string(),
                    second: provider.id.to_string(),
                    uri: uri.to_string(),
                });
            }
            seen.push((provider, uri));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
