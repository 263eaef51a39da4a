//! OpenID Connect Discovery 1.0 and RFC 8414 metadata: fetched from the configured issuer
//! with the exact-issuer and S256 checks, or built from explicit endpoints for providers
//! without discovery.

use serde::Deserialize;
use url::Url;

use super::{ProviderConfig, presets};
use crate::http::is_allowed_endpoint;

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
    /// Where the browser ends the person's session at the provider (OpenID Connect
    /// RP-Initiated Logout 1.0 §2.1); discovered only, checked like every other endpoint.
    pub end_session_endpoint: Option<Url>,
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
    #[error("could not fetch the discovery document of {issuer} ({reason})")]
    Unreachable {
        /// Configured issuer.
        issuer: String,
        /// Transport error or HTTP status.
        reason: String,
    },
    /// The discovery document is not valid JSON metadata.
    #[error("the discovery document of {issuer} is malformed ({reason})")]
    Malformed {
        /// Configured issuer.
        issuer: String,
        /// What was wrong.
        reason: String,
    },
    /// The document's `issuer` differs from the configured one (RFC 8414 §3.3): a mix-up or a
    /// wrong configuration, e.g. a trailing slash.
    #[error(
        "the provider's discovery document names the issuer {found:?} but {expected:?} is configured"
    )]
    IssuerMismatch {
        /// Configured issuer.
        expected: String,
        /// Issuer in the document.
        found: String,
    },
    /// The provider does not support PKCE S256, which Keylink always uses (RFC 9700 §2.1.1).
    #[error("the provider {issuer} does not support PKCE with S256, which Keylink requires")]
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

impl DiscoveryError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            DiscoveryError::Unreachable { .. } => {
                "check the network and the provider's issuer setting".to_owned()
            }
            DiscoveryError::Malformed { .. } => "check the provider's issuer setting".to_owned(),
            DiscoveryError::IssuerMismatch { .. } => {
                "they must match exactly, so fix `issuer` in the configuration".to_owned()
            }
            DiscoveryError::NoS256 { .. } => "use a provider that does".to_owned(),
            _ => return None,
        })
    }
}

#[derive(Deserialize)]
pub(super) struct RawMetadata {
    pub(super) issuer: String,
    pub(super) authorization_endpoint: Option<String>,
    pub(super) token_endpoint: Option<String>,
    pub(super) jwks_uri: Option<String>,
    pub(super) userinfo_endpoint: Option<String>,
    pub(super) revocation_endpoint: Option<String>,
    pub(super) device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub(super) end_session_endpoint: Option<String>,
    pub(super) code_challenge_methods_supported: Option<Vec<String>>,
    #[serde(default)]
    pub(super) id_token_signing_alg_values_supported: Vec<String>,
    #[serde(default)]
    pub(super) authorization_response_iss_parameter_supported: bool,
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
            end_session_endpoint: None,
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

pub(super) fn metadata_from_document(
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
        // No configuration key overrides it: a provider without discovery offers no logout.
        end_session_endpoint: endpoint("end_session_endpoint", &None, raw.end_session_endpoint)?,
        id_token_signing_alg_values_supported: raw.id_token_signing_alg_values_supported,
        authorization_response_iss_parameter_supported: raw
            .authorization_response_iss_parameter_supported,
    })
}
