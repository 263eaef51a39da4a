//! Layering the configuration: built-in presets < system policy < user file, with what the
//! admin policy fixes (locked providers, `allow_user_providers`, network settings) kept from
//! the user files (SECURITY 47).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::policy_file::{self, IgnoredPolicy, IgnoredReason};
use super::validate::{RawProvider, invalid, parse_provider, syntax_error};
use super::{Config, ConfigError, SYSTEM_POLICY_FILE};

#[derive(Debug, Clone, Default)]
pub(super) struct PolicyNetwork {
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
    #[serde(default)]
    credentials: BTreeMap<String, RawCredential>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCredential {
    account: String,
    username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNetwork {
    ca_file: Option<PathBuf>,
    timeout_secs: Option<u64>,
    https_proxy: Option<String>,
    no_proxy: Option<String>,
}

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

    /// Every file [`Config::load`] may read with `env`, whether it exists or not: the system
    /// policy, the file `KEYLINK_POLICY` names, and the user's file. The token agent compares
    /// them with its caller's and watches them for changes.
    #[cfg(unix)]
    pub(crate) fn candidate_files(env: &crate::app::Environment) -> Vec<PathBuf> {
        let mut files = vec![PathBuf::from(SYSTEM_POLICY_FILE)];
        files.extend(env.var("KEYLINK_POLICY").map(PathBuf::from));
        match env.var("KEYLINK_CONFIG") {
            Some(path) => files.push(PathBuf::from(path)),
            None => files.extend(default_user_file(env)),
        }
        files
    }

    pub(super) fn load_with_system_policy(
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
        self.layer_credentials(file, raw.credentials)?;
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
        self.layer_credentials(file, raw.credentials)?;
        self.files.push(file.to_owned());
        Ok(())
    }

    /// Adds the `[credentials."<origin>"]` entries: which account answers a tool's credential
    /// request for that server. A later file's entry for the same server replaces an earlier
    /// one.
    fn layer_credentials(
        &mut self,
        file: &Path,
        raw: BTreeMap<String, RawCredential>,
    ) -> Result<(), ConfigError> {
        for (server, entry) in raw {
            let key = |field: &str| format!("credentials.\"{server}\"{field}");
            let origin = super::ServerOrigin::parse(&server)
                .map_err(|problem| invalid(file, &key(""), &problem))?;
            if entry.account.trim().is_empty() {
                return Err(invalid(
                    file,
                    &key(".account"),
                    "is empty; name an account by its id or email",
                ));
            }
            let username = entry.username.unwrap_or_else(|| "oauth2".to_owned());
            if username.is_empty() || username.chars().any(|c| c.is_control() || c == ':') {
                return Err(invalid(
                    file,
                    &key(".username"),
                    "must be a non-empty name without control characters or ':'",
                ));
            }
            self.credentials.insert(
                origin,
                super::ServerCredential {
                    account: entry.account,
                    username,
                },
            );
        }
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
