//! Providers: the layered TOML configuration (built-in presets < system policy < user file),
//! and OpenID Connect Discovery / RFC 8414 metadata with the exact-issuer and S256 checks.
//!
//! A [`Config`] that exists is valid: every URL is parsed and allowed, every provider is usable.

use crate::ids::ProviderId;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use url::Url;

use crate::http::{NetworkSettings, is_allowed_endpoint};
use crate::secret::ClientSecret;

mod policy_file;
mod presets;
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
    #[error("{file}:{line}: {message}; fix the configuration file")]
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
    #[error(
        "the configuration file {0} named by KEYLINK_CONFIG does not exist; create it or unset KEYLINK_CONFIG"
    )]
    Missing(PathBuf),
    /// The system policy file is not trusted (SECURITY 47): someone other than root could
    /// have written it. As sudo does with sudoers, Keylink neither uses it nor runs without
    /// it, since ignoring it would drop the administrator's locks.
    #[error(
        "the system policy {file} {problem}, so Keylink neither uses it nor runs without it; ask your administrator to make it a regular file owned by root that only root can write"
    )]
    UntrustedPolicy {
        /// The system policy file.
        file: PathBuf,
        /// What is wrong with it.
        problem: Untrusted,
    },
    /// Two providers have the same redirect URI (SECURITY 53), usually an explicit
    /// `redirect_uri` copied from another provider or naming another provider's default.
    #[error(
        "the providers \"{first}\" and \"{second}\" have the same redirect URI {uri}, so a sign-in at one could complete at the other; give each its own `redirect_uri`, or leave it out for the default <scheme>:/callback/<provider id>"
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
            policy_network: PolicyNetwork::default(),
        }
    }
}

#[derive(Debug, Clone, Default)]
struct PolicyNetwork {
    ca_file: bool,
    timeout: bool,
    proxy: bool,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    allow_user_providers: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    network: Option<RawNetwork>,
    #[serde(default)]
    policy: Option<RawPolicy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProvider {
    name: Option<String>,
    issuer: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scopes: Option<Vec<String>>,
    redirect: Option<RedirectKind>,
    redirect_uri: Option<String>,
    preset: Option<String>,
    tenant: Option<String>,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    userinfo_endpoint: Option<String>,
    jwks_uri: Option<String>,
    device_authorization_endpoint: Option<String>,
    #[serde(default)]
    authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    api_origins: Vec<String>,
    #[serde(default)]
    locked: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    https_proxy: Option<String>,
    no_proxy: Option<String>,
}

/// Authorization parameters Keylink sets itself; a config may not override them.
const RESERVED_PARAMS: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
    "login_hint",
];

impl Config {
    /// Loads the configuration the documented way: the system policy file, then
    /// `KEYLINK_CONFIG` or `$XDG_CONFIG_HOME/keylink/keylink.toml` from `env` (each optional,
    /// except that a file named by `KEYLINK_CONFIG` must exist).
    ///
    /// The system policy is `/etc/keylink/keylink.toml`; `KEYLINK_POLICY` names another file
    /// only where that one does not exist. Either is used only when it is a regular file owned
    /// by root that nobody else can write (SECURITY 47); an untrusted `/etc/keylink/keylink.toml`
    /// is an error, an untrusted `KEYLINK_POLICY` file is ignored and said in `warnings` and
    /// `ignored_policy`.
    pub fn load(env: &crate::app::Environment) -> Result<Config, ConfigError> {
        Self::load_with_system_policy(env, Path::new(SYSTEM_POLICY_FILE))
    }

    fn load_with_system_policy(
        env: &crate::app::Environment,
        system: &Path,
    ) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        let choice = choose_policy(env, system)?;
        if let Some((file, text)) = choice.applied {
            config.layer_policy(&file, &text)?;
        }
        if let Some(ignored) = choice.ignored {
            let instead = match &config.policy {
                Some(file) => format!("the system policy {} applies", file.display()),
                None => "no system policy applies".to_owned(),
            };
            // A missing file changes nothing where no policy is deployed: `doctor` says it,
            // every command need not.
            if ignored.reason != IgnoredReason::Missing || config.policy.is_some() {
                config.warn(format!("{ignored}; {instead}"));
            }
            config.ignored_policy = Some(ignored);
        }
        let mut files = Vec::new();
        match env.var("KEYLINK_CONFIG") {
            Some(path) => {
                let path = PathBuf::from(path);
                if !path.exists() {
                    return Err(ConfigError::Missing(path));
                }
                files.push(path);
            }
            None => {
                if let Some(path) = default_user_file(env).filter(|p| p.is_file()) {
                    files.push(path);
                }
            }
        }
        for file in &files {
            config.layer(file, &read(file)?)?;
        }
        Ok(config)
    }

    /// Layers the system policy file (`/etc/keylink/keylink.toml`, for IT admins): its
    /// providers may be `locked`, its `[policy]` table may refuse user providers, and the
    /// network settings it sets cannot be changed by user files.
    pub(crate) fn layer_policy(&mut self, file: &Path, text: &str) -> Result<(), ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
        if let Some(policy) = &raw.policy
            && let Some(allow) = policy.allow_user_providers
        {
            self.allow_user_providers = allow;
        }
        for (id, provider) in raw.providers {
            let mut parsed = parse_provider(file, &id, provider)?;
            parsed.from_policy = true;
            self.providers.insert(id, parsed);
        }
        if let Some(net) = raw.network {
            self.policy_network = PolicyNetwork {
                ca_file: net.ca_file.is_some(),
                timeout: net.timeout_secs.is_some(),
                proxy: net.https_proxy.is_some() || net.no_proxy.is_some(),
            };
            self.layer_network(file, net)?;
        }
        self.policy = Some(file.to_owned());
        self.files.push(file.to_owned());
        Ok(())
    }

    /// An in-memory configuration from TOML text (an app's built-in providers), in the
    /// format of the configuration file.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        config.layer(Path::new("(built-in configuration)"), text)?;
        Ok(config)
    }

    /// Loads and layers the given user files, later ones winning.
    pub fn from_files(files: &[PathBuf]) -> Result<Config, ConfigError> {
        let mut config = Config::default();
        for file in files {
            config.layer(file, &read(file)?)?;
        }
        Ok(config)
    }

    /// Parses one user file's text and layers it over what is already there, except what
    /// the system policy fixed: a locked provider, providers at all when the policy refuses
    /// them, and the network settings it set (each refusal is noted in `warnings`).
    pub fn layer(&mut self, file: &Path, text: &str) -> Result<(), ConfigError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| syntax_error(file, text, &e))?;
        if raw.policy.is_some() {
            return Err(invalid(
                file,
                "policy",
                "is only allowed in the system policy file (/etc/keylink/keylink.toml)",
            ));
        }
        for (id, provider) in raw.providers {
            if provider.locked {
                return Err(invalid(
                    file,
                    &format!("providers.{id}.locked"),
                    "is only allowed in the system policy file (/etc/keylink/keylink.toml)",
                ));
            }
            let parsed = parse_provider(file, &id, provider)?;
            if !self.allow_user_providers {
                self.warn(format!(
                    "{}: the provider \"{id}\" was ignored because the system policy allows only its own providers (ask your administrator)",
                    file.display()
                ));
                continue;
            }
            if self.providers.get(&id).is_some_and(|p| p.locked) {
                self.warn(format!(
                    "{}: the provider \"{id}\" was ignored because the system policy locks it (ask your administrator to change it)",
                    file.display()
                ));
                continue;
            }
            self.providers.insert(id, parsed);
        }
        if let Some(mut net) = raw.network {
            let fixed = self.policy_network.clone();
            let mut refused = Vec::new();
            if fixed.ca_file && net.ca_file.take().is_some() {
                refused.push("network.ca_file");
            }
            if fixed.timeout && net.timeout_secs.take().is_some() {
                refused.push("network.timeout_secs");
            }
            if fixed.proxy && (net.https_proxy.take().is_some() | net.no_proxy.take().is_some()) {
                refused.push("the proxy settings");
            }
            if !refused.is_empty() {
                self.warn(format!(
                    "{}: {} ignored because the system policy sets them",
                    file.display(),
                    refused.join(", ")
                ));
            }
            self.layer_network(file, net)?;
        }
        self.files.push(file.to_owned());
        Ok(())
    }

    /// Keeps a refusal for the front end to show (the CLI prints each once on stderr); only
    /// logged at info, or the CLI's default `warn` log level would print it a second time.
    fn warn(&mut self, warning: String) {
        tracing::info!("{warning}");
        self.warnings.push(warning);
    }

    fn layer_network(&mut self, file: &Path, net: RawNetwork) -> Result<(), ConfigError> {
        if let Some(proxy) = net.https_proxy {
            self.network.https_proxy = Some(proxy);
        }
        if let Some(no_proxy) = net.no_proxy {
            self.network.no_proxy = Some(no_proxy);
        }
        if let Some(ca) = net.ca_file {
            let ca = if ca.is_relative() {
                file.parent().unwrap_or(Path::new(".")).join(ca)
            } else {
                ca
            };
            self.network.ca_file = Some(ca);
        }
        if let Some(secs) = net.timeout_secs {
            if secs == 0 || secs > 600 {
                return Err(invalid(
                    file,
                    "network.timeout_secs",
                    "must be between 1 and 600",
                ));
            }
            self.network.timeout = Some(Duration::from_secs(secs));
        }
        Ok(())
    }

    /// The provider with this id, or an error listing the configured ones.
    pub fn provider(&self, id: &str) -> Option<&ProviderConfig> {
        self.providers.get(id)
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

/// The policy file to layer and its text, if any, and the `KEYLINK_POLICY` file not used.
struct PolicyChoice {
    applied: Option<(PathBuf, String)>,
    ignored: Option<IgnoredPolicy>,
}

/// Chooses the policy (SECURITY 47). `KEYLINK_POLICY` never replaces a deployed system
/// policy: a user could name any empty or comment-only file root owns.
fn choose_policy(
    env: &crate::app::Environment,
    system: &Path,
) -> Result<PolicyChoice, ConfigError> {
    use policy_file::PolicyRead;
    let read_error = |file: &Path, e: std::io::Error| ConfigError::Read {
        file: file.to_owned(),
        reason: e.to_string(),
    };
    let deployed = match policy_file::read_trusted(system).map_err(|e| read_error(system, e))? {
        PolicyRead::Missing => None,
        PolicyRead::Trusted(text) => Some((system.to_owned(), text)),
        PolicyRead::Untrusted(problem) => {
            return Err(ConfigError::UntrustedPolicy {
                file: system.to_owned(),
                problem,
            });
        }
    };
    let Some(named) = env
        .var("KEYLINK_POLICY")
        .map(PathBuf::from)
        .filter(|named| named != system)
    else {
        return Ok(PolicyChoice {
            applied: deployed,
            ignored: None,
        });
    };
    let ignored = |reason| IgnoredPolicy {
        file: named.clone(),
        reason,
    };
    let reason = match policy_file::read_trusted(&named) {
        Ok(PolicyRead::Trusted(text)) if deployed.is_none() => {
            return Ok(PolicyChoice {
                applied: Some((named, text)),
                ignored: None,
            });
        }
        Ok(PolicyRead::Trusted(_)) => IgnoredReason::SystemPolicyDeployed,
        Ok(PolicyRead::Missing) => IgnoredReason::Missing,
        Ok(PolicyRead::Untrusted(why)) => IgnoredReason::Untrusted(why),
        Err(e) => IgnoredReason::Unreadable(e.to_string()),
    };
    Ok(PolicyChoice {
        applied: deployed,
        ignored: Some(ignored(reason)),
    })
}

fn read(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| ConfigError::Read {
        file: file.to_owned(),
        reason: e.to_string(),
    })
}

fn default_user_file(env: &crate::app::Environment) -> Option<PathBuf> {
    let base = env
        .absolute("XDG_CONFIG_HOME")
        .or_else(|| env.absolute("HOME").map(|h| h.join(".config")))?;
    Some(base.join("keylink").join("keylink.toml"))
}

fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    let line = e
        .span()
        .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1)
        .unwrap_or(1);
    ConfigError::Syntax {
        file: file.to_owned(),
        line,
        message: e.message().trim().to_owned(),
    }
}

fn invalid(file: &Path, key: &str, problem: &str) -> ConfigError {
    ConfigError::Invalid {
        file: file.to_owned(),
        key: key.to_owned(),
        problem: problem.to_owned(),
    }
}

fn parse_endpoint(
    file: &Path,
    key: &str,
    value: Option<String>,
) -> Result<Option<Url>, ConfigError> {
    let Some(value) = value else { return Ok(None) };
    let url =
        Url::parse(&value).map_err(|e| invalid(file, key, &format!("is not a valid URL ({e})")))?;
    if !is_allowed_endpoint(&url) {
        return Err(invalid(
            file,
            key,
            "must be an https:// URL (http:// is accepted only for 127.0.0.1, [::1] or localhost)",
        ));
    }
    Ok(Some(url))
}

fn parse_provider(file: &Path, id: &str, raw: RawProvider) -> Result<ProviderConfig, ConfigError> {
    let key = |k: &str| format!("providers.{id}.{k}");
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(invalid(
            file,
            &format!("providers.{id}"),
            "is not a valid provider id; use letters, digits, '-' and '_'",
        ));
    }
    let (raw, quirks) = apply_preset(file, id, raw)?;
    let client_id = raw
        .client_id
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                file,
                &key("client_id"),
                "is missing; set the client id registered at the provider",
            )
        })?;
    let issuer = match raw.issuer {
        Some(issuer) => {
            let url = Url::parse(&issuer)
                .map_err(|e| invalid(file, &key("issuer"), &format!("is not a valid URL ({e})")))?;
            if !is_allowed_endpoint(&url) || url.query().is_some() || url.fragment().is_some() {
                return Err(invalid(
                    file,
                    &key("issuer"),
                    "must be an https:// URL without query or fragment (http:// only for loopback hosts)",
                ));
            }
            // Kept exactly as written: discovery must return this very string (RFC 8414 §3.3).
            Some(issuer)
        }
        None => None,
    };
    let endpoints = EndpointOverrides {
        authorization_endpoint: parse_endpoint(
            file,
            &key("authorization_endpoint"),
            raw.authorization_endpoint,
        )?,
        token_endpoint: parse_endpoint(file, &key("token_endpoint"), raw.token_endpoint)?,
        revocation_endpoint: parse_endpoint(
            file,
            &key("revocation_endpoint"),
            raw.revocation_endpoint,
        )?,
        userinfo_endpoint: parse_endpoint(file, &key("userinfo_endpoint"), raw.userinfo_endpoint)?,
        jwks_uri: parse_endpoint(file, &key("jwks_uri"), raw.jwks_uri)?,
        device_authorization_endpoint: parse_endpoint(
            file,
            &key("device_authorization_endpoint"),
            raw.device_authorization_endpoint,
        )?,
    };
    if issuer.is_none()
        && (endpoints.authorization_endpoint.is_none() || endpoints.token_endpoint.is_none())
    {
        return Err(invalid(
            file,
            &format!("providers.{id}"),
            "needs either `issuer` (for discovery) or both `authorization_endpoint` and `token_endpoint`",
        ));
    }
    let scopes = raw.scopes.unwrap_or_else(|| {
        ["openid", "profile", "email", "offline_access"]
            .map(String::from)
            .to_vec()
    });
    if let Some(bad) = scopes
        .iter()
        .find(|s| s.is_empty() || s.chars().any(|c| c.is_whitespace() || c.is_control()))
    {
        return Err(invalid(
            file,
            &key("scopes"),
            &format!("contains the invalid scope {bad:?}; scopes are single words"),
        ));
    }
    let redirect = raw.redirect.unwrap_or(RedirectKind::DeepLink);
    let redirect_uri = match raw.redirect_uri {
        Some(uri) => {
            let url = Url::parse(&uri).map_err(|e| {
                invalid(
                    file,
                    &key("redirect_uri"),
                    &format!("is not a valid URL ({e})"),
                )
            })?;
            if redirect == RedirectKind::DeepLink && !url.scheme().contains('.') {
                return Err(invalid(
                    file,
                    &key("redirect_uri"),
                    "must use a reverse-domain private-use scheme such as dev.keylink:/callback (RFC 8252 §7.1)",
                ));
            }
            if url.fragment().is_some() || url.query().is_some() {
                return Err(invalid(
                    file,
                    &key("redirect_uri"),
                    "must not have a query or fragment",
                ));
            }
            Some(url)
        }
        None => None,
    };
    if let Some(reserved) = raw
        .authorize_params
        .keys()
        .find(|k| RESERVED_PARAMS.contains(&k.as_str()))
    {
        return Err(invalid(
            file,
            &format!("providers.{id}.authorize_params.{reserved}"),
            "is set by Keylink itself and cannot be configured",
        ));
    }
    let mut api_origins = Vec::new();
    for text in &raw.api_origins {
        let url = Url::parse(text).ok().filter(|u| {
            is_allowed_endpoint(u)
                && matches!(u.path(), "" | "/")
                && u.query().is_none()
                && u.fragment().is_none()
                && u.username().is_empty()
                && u.password().is_none()
        });
        let Some(url) = url else {
            return Err(invalid(
                file,
                &key("api_origins"),
                &format!(
                    "has {text:?}, which is not an origin; write https://host or https://host:port (http only on 127.0.0.1 or localhost)"
                ),
            ));
        };
        api_origins.push(url.origin());
    }
    Ok(ProviderConfig {
        id: ProviderId::new(id),
        name: raw.name.unwrap_or_else(|| id.to_owned()),
        issuer,
        client_id,
        client_secret: raw.client_secret.map(ClientSecret::new),
        scopes,
        redirect,
        redirect_uri,
        endpoints,
        authorize_params: raw.authorize_params,
        api_origins,
        locked: raw.locked,
        from_policy: false,
        preset: raw.preset,
        quirks,
    })
}

/// Fills what the configuration leaves unset from the named preset.
fn apply_preset(
    file: &Path,
    id: &str,
    mut raw: RawProvider,
) -> Result<(RawProvider, Quirks), ConfigError> {
    let key = |k: &str| format!("providers.{id}.{k}");
    let Some(name) = raw.preset.clone() else {
        if raw.tenant.is_some() {
            return Err(invalid(
                file,
                &key("tenant"),
                "is only used with preset = \"microsoft\"",
            ));
        }
        return Ok((raw, Quirks::default()));
    };
    let preset = presets::find(&name).ok_or_else(|| {
        invalid(
            file,
            &key("preset"),
            &format!(
                "names the unknown preset \"{name}\"; use one of {}",
                presets::names()
            ),
        )
    })?;
    if let Some(tenant) = &raw.tenant {
        if !preset.quirks.tenant_issuer {
            return Err(invalid(
                file,
                &key("tenant"),
                &format!("is not used by the {name} preset; remove it"),
            ));
        }
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid(
                file,
                &key("tenant"),
                "must be common, organizations, consumers, a tenant id or a tenant domain",
            ));
        }
    }
    let tenant = raw.tenant.as_deref().unwrap_or("common");
    let fill = |value: &mut Option<String>, default: Option<&str>| {
        if value.is_none() {
            *value = default.map(str::to_owned);
        }
    };
    fill(&mut raw.name, Some(preset.name));
    if raw.issuer.is_none() {
        raw.issuer = preset.issuer.map(|i| i.replace("{tenant}", tenant));
    }
    fill(
        &mut raw.authorization_endpoint,
        preset.authorization_endpoint,
    );
    fill(&mut raw.token_endpoint, preset.token_endpoint);
    fill(&mut raw.revocation_endpoint, preset.revocation_endpoint);
    fill(&mut raw.userinfo_endpoint, preset.userinfo_endpoint);
    fill(
        &mut raw.device_authorization_endpoint,
        preset.device_authorization_endpoint,
    );
    if raw.scopes.is_none() {
        raw.scopes = Some(preset.scopes.iter().map(|s| (*s).to_owned()).collect());
    }
    raw.redirect.get_or_insert(preset.redirect);
    for (k, v) in preset.authorize_params {
        raw.authorize_params
            .entry((*k).to_owned())
            .or_insert_with(|| (*v).to_owned());
    }
    Ok((raw, preset.quirks.clone()))
}

/// Provider metadata after discovery and overrides.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// The issuer, exactly as configured (and as the discovery document states it).
    pub issuer: Option<String>,
    /// Authorization endpoint.
    pub authorization_endpoint: Url,
    /// Token endpoint.
    pub token_endpoint: Url,
    /// JWKS of the issuer.
    pub jwks_uri: Option<Url>,
    /// Userinfo endpoint.
    pub userinfo_endpoint: Option<Url>,
    /// Revocation endpoint (RFC 7009).
    pub revocation_endpoint: Option<Url>,
    /// Device authorization endpoint (RFC 8628 §4).
    pub device_authorization_endpoint: Option<Url>,
    /// Signing algorithms the issuer uses for ID tokens.
    pub id_token_signing_alg_values_supported: Vec<String>,
    /// RFC 9207: the provider always returns `iss` in authorization responses.
    pub authorization_response_iss_parameter_supported: bool,
}

/// Why discovery failed or was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiscoveryError {
    /// The discovery document could not be fetched.
    #[error(
        "could not fetch the discovery document of {issuer} ({reason}); check the network and the provider's issuer setting"
    )]
    Unreachable {
        /// Configured issuer.
        issuer: String,
        /// Transport error or HTTP status.
        reason: String,
    },
    /// The discovery document is not valid JSON metadata.
    #[error(
        "the discovery document of {issuer} is malformed ({reason}); check the provider's issuer setting"
    )]
    Malformed {
        /// Configured issuer.
        issuer: String,
        /// What was wrong.
        reason: String,
    },
    /// The document's `issuer` differs from the configured one (RFC 8414 §3.3): a mix-up or a
    /// wrong configuration, e.g. a trailing slash.
    #[error(
        "the provider's discovery document names the issuer {found:?} but {expected:?} is configured; they must match exactly, so fix `issuer` in the configuration"
    )]
    IssuerMismatch {
        /// Configured issuer.
        expected: String,
        /// Issuer in the document.
        found: String,
    },
    /// The provider does not support PKCE S256, which Keylink always uses (RFC 9700 §2.1.1).
    #[error(
        "the provider {issuer} does not support PKCE with S256, which Keylink requires; use a provider that does"
    )]
    NoS256 {
        /// Configured issuer.
        issuer: String,
    },
    /// An endpoint uses a scheme other than https (or http on loopback).
    #[error("the provider's {name} {url:?} is not an https URL; Keylink refuses to use it")]
    InsecureEndpoint {
        /// Which endpoint.
        name: &'static str,
        /// The offending value, which is provider-supplied and not secret.
        url: String,
    },
}

#[derive(Deserialize)]
struct RawMetadata {
    issuer: String,
    authorization_endpoint: Option<String>,
    token_endpoint: Option<String>,
    jwks_uri: Option<String>,
    userinfo_endpoint: Option<String>,
    revocation_endpoint: Option<String>,
    device_authorization_endpoint: Option<String>,
    code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: bool,
}

/// Fetches and checks the metadata of `provider`, or builds it from explicit endpoints for
/// providers without discovery.
pub(crate) fn discover(
    http: &crate::http::Http,
    provider: &ProviderConfig,
) -> Result<Metadata, DiscoveryError> {
    let overrides = &provider.endpoints;
    let Some(issuer) = &provider.issuer else {
        // parse_provider guarantees both endpoints exist without an issuer.
        let (Some(auth), Some(token)) =
            (&overrides.authorization_endpoint, &overrides.token_endpoint)
        else {
            return Err(DiscoveryError::Malformed {
                issuer: provider.id.to_string(),
                reason: "no issuer and no explicit endpoints".into(),
            });
        };
        return Ok(Metadata {
            issuer: None,
            authorization_endpoint: auth.clone(),
            token_endpoint: token.clone(),
            jwks_uri: overrides.jwks_uri.clone(),
            userinfo_endpoint: overrides.userinfo_endpoint.clone(),
            revocation_endpoint: overrides.revocation_endpoint.clone(),
            device_authorization_endpoint: overrides.device_authorization_endpoint.clone(),
            id_token_signing_alg_values_supported: Vec::new(),
            authorization_response_iss_parameter_supported: false,
        });
    };
    let url = format!(
        "{}/.well-known/openid-configuration",
        issuer.trim_end_matches('/')
    );
    let unreachable = |reason: String| DiscoveryError::Unreachable {
        issuer: issuer.clone(),
        reason,
    };
    let answer = http
        .send(
            "the discovery document",
            http.client().get(&url).header("accept", "application/json"),
        )
        .map_err(|e| unreachable(e.reason()))?;
    if !answer.is_success() {
        return Err(unreachable(format!("HTTP {}", answer.status)));
    }
    read_metadata(provider, issuer, &answer.body)
}

/// Reads a discovery document (RFC 8414 §3.2, OIDC Discovery §4.2) fetched for `issuer` and
/// checks it against `provider`.
pub(crate) fn read_metadata(
    provider: &ProviderConfig,
    issuer: &str,
    body: &[u8],
) -> Result<Metadata, DiscoveryError> {
    let raw: RawMetadata =
        crate::http::json_object(body).map_err(|e| DiscoveryError::Malformed {
            issuer: issuer.to_owned(),
            reason: e.to_string(),
        })?;
    metadata_from_document(provider, issuer, raw)
}

fn metadata_from_document(
    provider: &ProviderConfig,
    issuer: &str,
    raw: RawMetadata,
) -> Result<Metadata, DiscoveryError> {
    let tenant_template =
        provider.quirks.tenant_issuer && presets::is_tenant_template(issuer, &raw.issuer);
    if raw.issuer != issuer && !tenant_template {
        return Err(DiscoveryError::IssuerMismatch {
            expected: issuer.to_owned(),
            found: raw.issuer,
        });
    }
    // Absent means "not advertised", which many providers that do support S256 leave out.
    if let Some(methods) = &raw.code_challenge_methods_supported
        && !methods.iter().any(|m| m == "S256")
    {
        return Err(DiscoveryError::NoS256 {
            issuer: issuer.to_owned(),
        });
    }
    let endpoint = |name: &'static str,
                    configured: &Option<Url>,
                    found: Option<String>|
     -> Result<Option<Url>, DiscoveryError> {
        if let Some(url) = configured {
            return Ok(Some(url.clone()));
        }
        let Some(found) = found else { return Ok(None) };
        match Url::parse(&found) {
            Ok(url) if is_allowed_endpoint(&url) => Ok(Some(url)),
            _ => Err(DiscoveryError::InsecureEndpoint { name, url: found }),
        }
    };
    let o = &provider.endpoints;
    let missing = |name: &str| DiscoveryError::Malformed {
        issuer: issuer.to_owned(),
        reason: format!("it has no {name}"),
    };
    Ok(Metadata {
        // The configured issuer, or for multi-tenant providers the template that each ID
        // token's `tid` completes.
        issuer: Some(raw.issuer.clone()),
        authorization_endpoint: endpoint(
            "authorization_endpoint",
            &o.authorization_endpoint,
            raw.authorization_endpoint,
        )?
        .ok_or_else(|| missing("authorization_endpoint"))?,
        token_endpoint: endpoint("token_endpoint", &o.token_endpoint, raw.token_endpoint)?
            .ok_or_else(|| missing("token_endpoint"))?,
        jwks_uri: endpoint("jwks_uri", &o.jwks_uri, raw.jwks_uri)?,
        userinfo_endpoint: endpoint(
            "userinfo_endpoint",
            &o.userinfo_endpoint,
            raw.userinfo_endpoint,
        )?,
        revocation_endpoint: endpoint(
            "revocation_endpoint",
            &o.revocation_endpoint,
            raw.revocation_endpoint,
        )?,
        device_authorization_endpoint: endpoint(
            "device_authorization_endpoint",
            &o.device_authorization_endpoint,
            raw.device_authorization_endpoint,
        )?,
        id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
        authorization_response_iss_parameter_supported: raw
            .authorization_response_iss_parameter_supported,
    })
}

#[cfg(test)]
mod tests;
