//! `plugins.keylink` in `tauri.conf.json`: which identity the plugin links accounts for and
//! where its providers come from.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The plugin's configuration, `plugins.keylink` in `tauri.conf.json`. Every key is
/// optional; providers come from exactly one of `providers`, `configFile` or
/// `userConfig`.
///
/// ```json
/// "plugins": {
///   "keylink": {
///     "providers": {
///       "work": { "issuer": "https://login.example.com", "client_id": "my-desktop-client",
///                 "api_origins": ["https://api.example.com"],
///                 "optional_scopes": ["calendar"] }
///     }
///   }
/// }
/// ```
#[derive(Debug, Default, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Config {
    /// The identity accounts are kept under (keychain namespace, data directory), a
    /// reverse-domain name. Default: the app's `identifier`.
    pub app: Option<String>,
    /// The private-use URL scheme redirects come back on. Default: the first desktop scheme
    /// of `plugins.deep-link`, else the identity.
    pub scheme: Option<String>,
    /// Providers inline, keyed by provider id, with the keys of Keylink's TOML
    /// `[providers.<id>]` tables (`optional_scopes` among them: the scopes the app may ask
    /// for later with `link`'s or `reconnect`'s `scopes`, listed as each provider's
    /// `optionalScopes`).
    pub providers: Option<serde_json::Map<String, serde_json::Value>>,
    /// Or a TOML configuration file with `[providers.<id>]` tables. `$APPCONFIG/` at its
    /// start stands for the app's configuration directory (on Linux
    /// `~/.config/<identifier>/`), where a person or an installer can edit it; other
    /// relative paths are relative to the working directory.
    pub config_file: Option<PathBuf>,
    /// Or the files the `keylink` CLI reads (`KEYLINK_CONFIG`, the user's
    /// `keylink/keylink.toml`, the system policy): for the Keylink app itself.
    #[serde(default)]
    pub user_config: bool,
    /// `[network]` settings (`ca_file`, `timeout_secs`, `https_proxy`, `no_proxy`) for inline
    /// providers.
    pub network: Option<serde_json::Map<String, serde_json::Value>>,
    /// How long a sign-in may take, in seconds (default 300).
    pub link_timeout_secs: Option<u64>,
}

/// Where the core's configuration comes from.
#[derive(Debug)]
pub(crate) enum Source {
    Inline(keylink::Config),
    File(keylink::Config),
    UserFiles,
}

/// Why `plugins.keylink` cannot be used; says which key and what to do.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// More than one source of providers.
    #[error("plugins.keylink sets more than one of providers, configFile and userConfig; keep one")]
    Conflicting,
    /// No providers anywhere.
    #[error(
        "plugins.keylink has no providers; add plugins.keylink.providers, configFile or userConfig"
    )]
    NoProviders,
    /// A value cannot be written as TOML (a `null`, say).
    #[error(
        "plugins.keylink.{key} cannot be used ({reason}); give the keys of a [providers.<id>] table"
    )]
    NotToml {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
    /// The configuration file could not be read.
    #[error("plugins.keylink.configFile {path} could not be read ({reason}); check the path")]
    File {
        /// The file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// The providers are not valid Keylink configuration.
    #[error(transparent)]
    Keylink(#[from] keylink::provider::ConfigError),
}

impl Config {
    pub(crate) fn source(&self, app_config_dir: Option<&Path>) -> Result<Source, ConfigError> {
        let given = [
            self.providers.is_some(),
            self.config_file.is_some(),
            self.user_config,
        ];
        match given.iter().filter(|g| **g).count() {
            0 => return Err(ConfigError::NoProviders),
            1 => {}
            _ => return Err(ConfigError::Conflicting),
        }
        if self.user_config {
            return Ok(Source::UserFiles);
        }
        if let Some(path) = &self.config_file {
            let path = match (path.strip_prefix("$APPCONFIG"), app_config_dir) {
                (Ok(rest), Some(dir)) => dir.join(rest),
                (Ok(_), None) => {
                    return Err(ConfigError::File {
                        path: path.clone(),
                        reason: "the app has no configuration directory".into(),
                    });
                }
                (Err(_), _) => path.clone(),
            };
            let path = &path;
            let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
                path: path.clone(),
                reason: e.to_string(),
            })?;
            let mut config = keylink::Config::default();
            config.layer(path, &text)?;
            return Ok(Source::File(config));
        }
        let mut table = toml::Table::new();
        let mut put = |key: &str, value: &serde_json::Map<String, serde_json::Value>| {
            let value = toml::Value::try_from(value).map_err(|e| ConfigError::NotToml {
                key: key.to_owned(),
                reason: e.to_string(),
            })?;
            table.insert(key.to_owned(), value);
            Ok::<(), ConfigError>(())
        };
        if let Some(providers) = &self.providers {
            put("providers", providers)?;
        }
        if let Some(network) = &self.network {
            put("network", network)?;
        }
        let text = toml::to_string(&table).map_err(|e| ConfigError::NotToml {
            key: "providers".into(),
            reason: e.to_string(),
        })?;
        let mut config = keylink::Config::default();
        config.layer(Path::new("tauri.conf.json plugins.keylink"), &text)?;
        Ok(Source::Inline(config))
    }
}
