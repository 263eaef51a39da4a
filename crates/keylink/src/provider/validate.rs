//! Validating one provider's table: every URL parsed and allowed, the preset applied, the
//! reserved authorization parameters refused, every error naming the file and the key.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;
use url::Url;

use super::presets::apply_preset;
use super::{
    ApiConfig, ConfigError, EndpointOverrides, ProviderConfig, RedirectKind, ServerOrigin,
};
use crate::http::is_allowed_endpoint;
use crate::ids::ProviderId;
use crate::secret::ClientSecret;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProvider {
    pub(super) name: Option<String>,
    pub(super) issuer: Option<String>,
    pub(super) client_id: Option<String>,
    pub(super) client_secret: Option<String>,
    pub(super) scopes: Option<Vec<String>>,
    pub(super) redirect: Option<RedirectKind>,
    pub(super) redirect_uri: Option<String>,
    pub(super) preset: Option<String>,
    pub(super) tenant: Option<String>,
    pub(super) authorization_endpoint: Option<String>,
    pub(super) token_endpoint: Option<String>,
    pub(super) revocation_endpoint: Option<String>,
    pub(super) userinfo_endpoint: Option<String>,
    pub(super) jwks_uri: Option<String>,
    pub(super) device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub(super) authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) api_origins: Vec<String>,
    #[serde(default)]
    pub(super) optional_scopes: Vec<String>,
    #[serde(default)]
    pub(super) apis: BTreeMap<String, RawApi>,
    #[serde(default)]
    pub(super) locked: bool,
}

/// `[providers.<id>.apis."<origin>"]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApi {
    resource: Option<String>,
    #[serde(default)]
    scopes: Vec<String>,
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

pub(super) fn syntax_error(file: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
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

pub(super) fn invalid(file: &Path, key: &str, problem: &str) -> ConfigError {
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

pub(super) fn parse_provider(
    file: &Path,
    id: &str,
    raw: RawProvider,
) -> Result<ProviderConfig, ConfigError> {
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
    let mut optional_scopes: Vec<String> = Vec::new();
    for scope in raw.optional_scopes {
        // The same rule a sign-in applies to the scopes an app asks for, so a scope that is
        // configured here can always be asked for.
        if !crate::text::is_scope_token(&scope) {
            return Err(invalid(
                file,
                &key("optional_scopes"),
                &format!(
                    "contains the invalid scope {:?}; a scope is one word of printable ASCII characters without quotes or backslashes",
                    crate::text::printable(&scope, 100)
                ),
            ));
        }
        if !optional_scopes.contains(&scope) {
            optional_scopes.push(scope);
        }
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
    let apis = parse_apis(file, id, raw.apis)?;
    Ok(ProviderConfig {
        id: ProviderId::new(id),
        name: raw.name.unwrap_or_else(|| id.to_owned()),
        issuer,
        client_id,
        client_secret: raw.client_secret.map(ClientSecret::new),
        scopes,
        optional_scopes,
        redirect,
        redirect_uri,
        endpoints,
        authorize_params: raw.authorize_params,
        api_origins,
        apis,
        locked: raw.locked,
        from_policy: false,
        preset: raw.preset,
        quirks,
    })
}

/// `[providers.<id>.apis."<origin>"]`: for each API origin, the resource indicator (RFC 8707)
/// and the scopes of the tokens sent there.
fn parse_apis(
    file: &Path,
    id: &str,
    raw: BTreeMap<String, RawApi>,
) -> Result<BTreeMap<ServerOrigin, ApiConfig>, ConfigError> {
    let mut apis = BTreeMap::new();
    for (origin, api) in raw {
        let key = |k: Option<&str>| {
            let table = format!("providers.{id}.apis.{origin:?}");
            k.map_or(table.clone(), |k| format!("{table}.{k}"))
        };
        let parsed = ServerOrigin::parse(&origin).map_err(|problem| {
            invalid(
                file,
                &key(None),
                &problem.replace(
                    "a server only, such as https://git.example.com",
                    "an origin only, such as https://api.example.com",
                ),
            )
        })?;
        if let Some(resource) = &api.resource {
            let ok = Url::parse(resource).is_ok_and(|u| u.fragment().is_none())
                && !resource.contains('#');
            if !ok {
                return Err(invalid(
                    file,
                    &key(Some("resource")),
                    &format!(
                        "is {:?}, which is not an absolute URI without a fragment (RFC 8707), such as https://api.example.com",
                        crate::text::printable(resource, 100)
                    ),
                ));
            }
        }
        let mut scopes: Vec<String> = Vec::new();
        for scope in api.scopes {
            if !crate::text::is_scope_token(&scope) {
                return Err(invalid(
                    file,
                    &key(Some("scopes")),
                    &format!(
                        "contains the invalid scope {:?}; a scope is one word of printable ASCII characters without quotes or backslashes",
                        crate::text::printable(&scope, 100)
                    ),
                ));
            }
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if api.resource.is_none() && scopes.is_empty() {
            return Err(invalid(
                file,
                &key(None),
                "names neither `resource` nor `scopes`; give at least one, or remove the table",
            ));
        }
        if apis.contains_key(&parsed) {
            return Err(invalid(
                file,
                &key(None),
                &format!("names the origin {parsed} a second time; keep one table for it"),
            ));
        }
        apis.insert(
            parsed,
            ApiConfig {
                resource: api.resource,
                scopes,
            },
        );
    }
    Ok(apis)
}
