//! OpenID Connect ID token validation (OIDC Core §3.1.3.7).
//!
//! The algorithm comes from an allow-list (the issuer's advertised algorithms, asymmetric
//! only), never from the token header; keys come only from the pinned issuer's `jwks_uri`
//! (header `jku`, `jwk` and `x5u` are ignored, `oct` keys refused); claims are checked here
//! against an injected clock, with at most 60 s of leeway.

use std::sync::Mutex;

use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use crate::clock::UnixTime;
use crate::secret::{IdToken, Nonce};

/// Clock skew tolerated on `exp`, `iat` and `nbf`.
pub(crate) const LEEWAY: i64 = 60;
/// Oldest acceptable `iat`.
pub(crate) const MAX_AGE: i64 = 600;
/// Shortest interval between two JWKS refetches triggered by unknown key ids.
pub(crate) const REFETCH_INTERVAL: i64 = 60;

/// Why an ID token was refused. Messages never include the token.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IdTokenError {
    /// An OpenID provider answered without an ID token.
    #[error(
        "the provider returned no ID token although `openid` was requested; the sign-in was refused"
    )]
    Missing,
    /// Not a well-formed JWS, or its header or claims cannot be read (a string `exp` lands here).
    #[error("the ID token is malformed ({0}) and was refused")]
    Malformed(String),
    /// The header's algorithm is not on the allow-list (`none`, HS*, or one the issuer does
    /// not use).
    #[error(
        "the ID token is signed with {0}, which this provider does not use; the sign-in was refused"
    )]
    DisallowedAlgorithm(String),
    /// No key in the issuer's JWKS matches the token's key id, even after a refetch.
    #[error(
        "the ID token is signed with a key the provider does not publish; the sign-in was refused"
    )]
    UnknownKey,
    /// The JWKS could not be fetched and no earlier copy exists.
    #[error("the provider's signing keys could not be fetched ({0})")]
    JwksUnavailable(String),
    /// The signature does not verify.
    #[error("the ID token's signature is invalid; the sign-in was refused")]
    BadSignature,
    /// `iss` differs from the issuer.
    #[error("the ID token was issued by a different issuer; the sign-in was refused")]
    IssuerMismatch,
    /// `aud` does not contain our client id, or `azp` is wrong.
    #[error("the ID token was issued to a different client; the sign-in was refused")]
    AudienceMismatch,
    /// `nonce` missing or different.
    #[error(
        "the ID token does not belong to this sign-in (nonce mismatch); the sign-in was refused"
    )]
    NonceMismatch,
    /// `exp` has passed.
    #[error("the ID token has expired")]
    Expired,
    /// `iat` is in the future or older than 10 minutes, or `nbf` is in the future.
    #[error("the ID token's issue time is not plausible")]
    BadIssueTime,
}

impl IdTokenError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            IdTokenError::JwksUnavailable(..) => "check the network and try again".to_owned(),
            IdTokenError::Expired => "check the computer's clock and link again".to_owned(),
            IdTokenError::BadIssueTime => "check the computer's clock and link again".to_owned(),
            _ => return None,
        })
    }
}

/// What the ID token says about the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct IdClaims {
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// `email`, when present.
    pub email: Option<String>,
    /// `name`, when present.
    pub name: Option<String>,
}

/// What the ID token must match.
#[derive(Debug)]
pub(crate) struct Expected<'a> {
    /// The pinned issuer.
    pub issuer: &'a str,
    /// Our client id.
    pub client_id: &'a str,
    /// The flow's nonce; `None` for grants without one (device authorization, RFC 8628),
    /// where a `nonce` claim is not checked.
    pub nonce: Option<&'a Nonce>,
    /// Allowed signing algorithms.
    pub algorithms: &'a [Algorithm],
}

/// The allow-list for an issuer: its advertised algorithms that are asymmetric, or RS256 when
/// it advertises none (OIDC Discovery §3 default).
pub(crate) fn allowed_algorithms(advertised: &[String]) -> Vec<Algorithm> {
    use Algorithm::*;
    let asymmetric = [
        RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, EdDSA,
    ];
    let allowed: Vec<Algorithm> = advertised
        .iter()
        .filter_map(|a| a.parse::<Algorithm>().ok())
        .filter(|a| asymmetric.contains(a))
        .collect();
    if allowed.is_empty() {
        vec![RS256]
    } else {
        allowed
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

// Strict types: an `exp` or `iat` that is not a number fails to parse and the token is
// refused (the CVE-2026-25537 class treated such values as absent).
#[derive(Deserialize)]
struct RawClaims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: i64,
    iat: i64,
    nbf: Option<i64>,
    nonce: Option<String>,
    azp: Option<String>,
    email: Option<String>,
    name: Option<String>,
    /// Microsoft Entra's tenant id, which completes a multi-tenant issuer template.
    tid: Option<String>,
}

/// The signing keys of one issuer, cached, with a shared, rate-limited refetch.
#[derive(Debug)]
pub(crate) struct Jwks {
    uri: Url,
    state: Mutex<JwksState>,
}

#[derive(Debug, Default)]
struct JwksState {
    keys: Option<JwkSet>,
    last_fetch: Option<UnixTime>,
    /// The last fetch caused by an unknown key id while a set was cached.
    last_refetch: Option<UnixTime>,
    fetches: u64,
}

impl Jwks {
    /// Keys from `uri` (the discovered `jwks_uri` of the pinned issuer).
    pub(crate) fn new(uri: Url) -> Self {
        Self {
            uri,
            state: Mutex::new(JwksState::default()),
        }
    }

    /// How many times the set was fetched.
    #[cfg(test)]
    pub(crate) fn fetch_count(&self) -> u64 {
        self.lock().fetches
    }

    /// A set as if fetched at `now`: until [`REFETCH_INTERVAL`] has passed no key id, known or
    /// not, makes it fetch, so `validate` runs without a network (the fuzz targets).
    #[cfg(feature = "fuzzing")]
    pub(crate) fn preloaded(uri: Url, keys: JwkSet, now: UnixTime) -> Self {
        Self {
            uri,
            state: Mutex::new(JwksState {
                keys: Some(keys),
                last_fetch: Some(now),
                last_refetch: Some(now),
                fetches: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JwksState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The key for `kid`, fetching the set on first use. An unknown id means the provider
    /// may have rotated its keys (OpenID RP test rp-key-rotation-op-sign-key): the set is
    /// fetched again, even right after the first fetch, but at most once per
    /// [`REFETCH_INTERVAL`], so a flood of made-up ids costs one request (SECURITY 19, 43).
    /// When the endpoint is down, the last good set is used.
    fn key_for(
        &self,
        http: &crate::http::Http,
        kid: Option<&str>,
        alg: Algorithm,
        now: UnixTime,
    ) -> Result<Jwk, IdTokenError> {
        // The lock is held across the fetch so concurrent callers share one refetch.
        let mut state = self.lock();
        if let Some(key) = state.keys.as_ref().and_then(|set| find_key(set, kid, alg)) {
            return Ok(key);
        }
        let rotation = state.keys.is_some();
        let limiter = if rotation {
            state.last_refetch
        } else {
            state.last_fetch
        };
        let may_fetch = match limiter {
            None => true,
            Some(t) => now - t >= REFETCH_INTERVAL || now < t,
        };
        if !may_fetch {
            return Err(IdTokenError::UnknownKey);
        }
        state.last_fetch = Some(now);
        if rotation {
            state.last_refetch = Some(now);
        }
        state.fetches += 1;
        match fetch_jwks(http, &self.uri) {
            Ok(set) => state.keys = Some(set),
            Err(e) if state.keys.is_none() => return Err(e),
            Err(e) => tracing::warn!(error = %e, "keeping the last good JWKS"),
        }
        state
            .keys
            .as_ref()
            .and_then(|set| find_key(set, kid, alg))
            .ok_or(IdTokenError::UnknownKey)
    }
}

fn fetch_jwks(http: &crate::http::Http, uri: &Url) -> Result<JwkSet, IdTokenError> {
    let answer = http
        .send(
            "the key set (jwks_uri)",
            http.client()
                .get(uri.clone())
                .header("accept", "application/json"),
        )
        .map_err(|e| IdTokenError::JwksUnavailable(e.reason()))?;
    if !answer.is_success() {
        return Err(IdTokenError::JwksUnavailable(format!(
            "HTTP {}",
            answer.status
        )));
    }
    parse_jwks(&answer.body)
}

/// Reads a JWK Set (RFC 7517 §5) key by key, so one key of an unsupported type does not hide
/// the others.
pub(crate) fn parse_jwks(body: &[u8]) -> Result<JwkSet, IdTokenError> {
    #[derive(Deserialize)]
    struct Loose {
        keys: Vec<serde_json::Value>,
    }
    let loose: Loose = crate::http::json_object(body)
        .map_err(|e| IdTokenError::JwksUnavailable(format!("malformed JWKS: {e}")))?;
    let keys = loose
        .keys
        .into_iter()
        .filter_map(|k| serde_json::from_value::<Jwk>(k).ok())
        .collect();
    Ok(JwkSet { keys })
}

fn key_fits(jwk: &Jwk, alg: Algorithm) -> bool {
    let family_ok = matches!(
        (&jwk.algorithm, alg),
        (
            AlgorithmParameters::RSA(_),
            Algorithm::RS256
                | Algorithm::RS384
                | Algorithm::RS512
                | Algorithm::PS256
                | Algorithm::PS384
                | Algorithm::PS512
        ) | (
            AlgorithmParameters::EllipticCurve(_),
            Algorithm::ES256 | Algorithm::ES384
        ) | (AlgorithmParameters::OctetKeyPair(_), Algorithm::EdDSA)
    );
    let use_ok = !matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption));
    family_ok && use_ok
}

pub(crate) fn find_key(set: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let mut candidates = set.keys.iter().filter(|k| key_fits(k, alg));
    match kid {
        Some(kid) => candidates
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => {
            // Without a kid, only an unambiguous key is acceptable.
            let first = candidates.next()?;
            candidates.next().is_none().then(|| first.clone())
        }
    }
}

/// Validates `token` and returns its identity claims.
pub(crate) fn validate(
    token: &IdToken,
    expected: &Expected<'_>,
    jwks: &Jwks,
    http: &crate::http::Http,
    now: UnixTime,
) -> Result<IdClaims, IdTokenError> {
    let header = jsonwebtoken::decode_header(token.secret())
        .map_err(|e| IdTokenError::Malformed(describe_jwt_error(&e)))?;
    if !expected.algorithms.contains(&header.alg) {
        return Err(IdTokenError::DisallowedAlgorithm(format!(
            "{:?}",
            header.alg
        )));
    }
    // header.jku / header.jwk / header.x5u are deliberately never looked at.
    let jwk = jwks.key_for(http, header.kid.as_deref(), header.alg, now)?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| IdTokenError::UnknownKey)?;
    let mut validation = Validation::new(header.alg);
    validation.algorithms = vec![header.alg];
    // Claims are checked below against the injected clock.
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let data = jsonwebtoken::decode::<RawClaims>(token.secret(), &key, &validation).map_err(
        |e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenError::BadSignature,
            _ => IdTokenError::Malformed(describe_jwt_error(&e)),
        },
    )?;
    check_claims(data.claims, expected, now)
}

fn describe_jwt_error(e: &jsonwebtoken::errors::Error) -> String {
    use jsonwebtoken::errors::ErrorKind;
    match e.kind() {
        ErrorKind::InvalidToken => "not a JWS".into(),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => "unknown algorithm".into(),
        ErrorKind::Json(_) => "unreadable header or claims".into(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "bad encoding".into(),
        _ => "invalid".into(),
    }
}

/// A tenant id is a GUID (36 characters of hex digits and dashes).
fn is_tenant_id(tid: &str) -> bool {
    tid.len() == 36 && tid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

fn check_claims(
    c: RawClaims,
    expected: &Expected<'_>,
    now: UnixTime,
) -> Result<IdClaims, IdTokenError> {
    // A multi-tenant issuer template (only ever from a provider whose preset declares it,
    // see `Quirks::tenant_issuer`) is completed with the token's own tenant id.
    let issuer = match c.tid.as_deref() {
        _ if !expected.issuer.contains("{tenantid}") => expected.issuer.to_owned(),
        Some(tid) if is_tenant_id(tid) => expected.issuer.replace("{tenantid}", tid),
        _ => return Err(IdTokenError::IssuerMismatch),
    };
    if c.iss != issuer {
        return Err(IdTokenError::IssuerMismatch);
    }
    let audiences = match c.aud {
        Audience::One(a) => vec![a],
        Audience::Many(a) => a,
    };
    if !audiences.iter().any(|a| a == expected.client_id) {
        return Err(IdTokenError::AudienceMismatch);
    }
    let azp_ok = match c.azp.as_deref() {
        Some(azp) => azp == expected.client_id,
        None => audiences.len() == 1,
    };
    if !azp_ok {
        return Err(IdTokenError::AudienceMismatch);
    }
    if let Some(expected_nonce) = expected.nonce {
        match c.nonce.as_deref() {
            Some(n) if expected_nonce.ct_eq(n) => {}
            _ => return Err(IdTokenError::NonceMismatch),
        }
    }
    if now > c.exp.saturating_add(LEEWAY) {
        return Err(IdTokenError::Expired);
    }
    if c.iat > now + LEEWAY || c.iat < now - MAX_AGE {
        return Err(IdTokenError::BadIssueTime);
    }
    if c.nbf.is_some_and(|nbf| nbf > now + LEEWAY) {
        return Err(IdTokenError::BadIssueTime);
    }
    if c.sub.is_empty() {
        return Err(IdTokenError::Malformed("empty sub".into()));
    }
    Ok(IdClaims {
        issuer: c.iss,
        subject: c.sub,
        email: c.email,
        name: c.name,
    })
}

#[cfg(test)]
mod tests;
