//! The token endpoint: the authorization code exchange (RFC 6749 §4.1.3, with the PKCE
//! verifier of RFC 7636 §4.5) and the refresh grant (RFC 6749 §6), through the `oauth2` crate.
//!
//! Token responses are read leniently where real providers deviate (RFC-violating but common:
//! `expires_in` as a string, comma-separated scopes, an `error` body with HTTP 200) and
//! strictly everywhere else. A response body is never logged or put into an error: it may hold
//! tokens.

use std::cell::Cell;
use std::time::Duration;

use oauth2::basic::{
    BasicErrorResponse, BasicRevocationErrorResponse, BasicTokenIntrospectionResponse,
    BasicTokenType,
};
use oauth2::{
    AuthUrl, ClientId, EndpointNotSet, EndpointSet, RedirectUrl, RequestTokenError, Scope,
    StandardRevocableToken, TokenUrl,
};
use serde::{Deserialize, Deserializer, Serialize};
use url::Url;
use zeroize::Zeroize;

use crate::clock::UnixTime;
use crate::http::{FetchError, Http};
use crate::provider::{Metadata, ProviderConfig};
use crate::secret::{AccessToken, AuthorizationCode, IdToken, PkceCodeVerifier, RefreshToken};
use crate::text::printable;

/// Tokens as the token endpoint returned them, with the expiry made absolute at receipt.
#[derive(Debug, Clone)]
pub(crate) struct TokenSet {
    /// The access token.
    pub access_token: AccessToken,
    /// The refresh token, when one was issued.
    pub refresh_token: Option<RefreshToken>,
    /// The ID token, for OpenID Connect providers.
    pub id_token: Option<IdToken>,
    /// When the access token expires; `None` when the provider did not say.
    pub expires_at: Option<UnixTime>,
    /// The granted scopes, when the provider returned them (they may differ from the request).
    pub scopes: Option<Vec<String>>,
}

/// Why the token endpoint did not give tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExchangeError {
    /// The provider answered with an OAuth error (RFC 6749 §5.2), e.g. `invalid_grant`.
    #[error("the provider refused the token request: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Rejected {
        /// The error code.
        error: String,
        /// The description, as plain text.
        description: Option<String>,
    },
    /// The provider is unreachable, timed out, or the connection broke.
    #[error("the provider's token endpoint could not be reached ({reason})")]
    Transport {
        /// What happened, without URLs or bodies.
        reason: String,
        /// True when the request certainly never reached the provider (the connection was not
        /// established), so sending it again cannot replay a refresh token.
        unsent: bool,
    },
    /// The provider answered 5xx or 429.
    #[error("the provider's token endpoint is unavailable (HTTP {status})")]
    Unavailable {
        /// HTTP status.
        status: u16,
        /// `Retry-After`, in seconds, when sent.
        retry_after: Option<u64>,
    },
    /// The answer was not a token response Keylink can read.
    #[error("the provider's token endpoint sent an unreadable answer{0}")]
    Malformed(String),
}

impl ExchangeError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            ExchangeError::Transport { .. } => "check the network and try again".to_owned(),
            ExchangeError::Unavailable { .. } => "try again later".to_owned(),
            ExchangeError::Malformed(..) => "try again, and report it if it persists".to_owned(),
            _ => return None,
        })
    }
}

impl From<FetchError> for ExchangeError {
    fn from(e: FetchError) -> Self {
        match e {
            FetchError::TooLarge { .. } => ExchangeError::Malformed(" (larger than 1 MiB)".into()),
            e => ExchangeError::Transport {
                unsent: e.is_unsent(),
                reason: e.reason(),
            },
        }
    }
}

impl ExchangeError {
    /// True for the errors that mean the grant itself is dead and the account must be linked
    /// again (RFC 6749 §5.2).
    pub fn is_grant_dead(&self) -> bool {
        matches!(self, ExchangeError::Rejected { error, .. }
            if matches!(error.as_str(), "invalid_grant" | "invalid_client" | "unauthorized_client"))
    }

    /// True when sending the same request again is safe and may succeed: the provider said it
    /// is unavailable (5xx, 429), or the connection was never established. A request that
    /// timed out after it was sent is not retried: the provider may have rotated the refresh
    /// token already, and replaying it would revoke the whole grant (RFC 9700 §4.14.2).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            ExchangeError::Unavailable { .. } | ExchangeError::Transport { unsent: true, .. }
        )
    }

    /// The provider's `Retry-After`, in seconds, when it sent one.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            ExchangeError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// The token response on the wire. Only the `oauth2` crate sees this type.
#[derive(Debug, Serialize, Deserialize)]
struct WireTokenResponse {
    access_token: oauth2::AccessToken,
    #[serde(default = "bearer", deserialize_with = "lenient_token_type")]
    token_type: BasicTokenType,
    #[serde(default, deserialize_with = "lenient_seconds")]
    expires_in: Option<u64>,
    refresh_token: Option<oauth2::RefreshToken>,
    #[serde(default, rename = "scope", deserialize_with = "lenient_scopes")]
    scopes: Option<Vec<Scope>>,
    // The oauth2 crate's secret type keeps the ID token redacted in Debug until it is moved
    // into Keylink's own `IdToken`.
    id_token: Option<oauth2::AccessToken>,
}

fn bearer() -> BasicTokenType {
    BasicTokenType::Bearer
}

fn lenient_token_type<'de, D: Deserializer<'de>>(d: D) -> Result<BasicTokenType, D::Error> {
    // RFC 6749 §5.1: token_type is case-insensitive ("bearer" is common).
    let raw = String::deserialize(d)?;
    Ok(match raw.to_ascii_lowercase().as_str() {
        "bearer" => BasicTokenType::Bearer,
        "mac" => BasicTokenType::Mac,
        _ => BasicTokenType::Extension(raw),
    })
}

fn lenient_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Seconds {
        Number(u64),
        Float(f64),
        Text(String),
    }
    Ok(match Option::<Seconds>::deserialize(d)? {
        None => None,
        Some(Seconds::Number(n)) => Some(n),
        Some(Seconds::Float(f)) if f.is_finite() && f >= 0.0 => Some(f as u64),
        Some(Seconds::Float(_)) => None,
        Some(Seconds::Text(s)) => s.trim().parse().ok(),
    })
}

fn lenient_scopes<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Scope>>, D::Error> {
    let raw = Option::<String>::deserialize(d)?;
    Ok(raw.map(|s| {
        s.split([' ', ','])
            .filter(|s| !s.is_empty())
            .map(|s| Scope::new(s.to_owned()))
            .collect()
    }))
}

impl oauth2::TokenResponse for WireTokenResponse {
    type TokenType = BasicTokenType;

    fn access_token(&self) -> &oauth2::AccessToken {
        &self.access_token
    }
    fn token_type(&self) -> &BasicTokenType {
        &self.token_type
    }
    fn expires_in(&self) -> Option<Duration> {
        self.expires_in.map(Duration::from_secs)
    }
    fn refresh_token(&self) -> Option<&oauth2::RefreshToken> {
        self.refresh_token.as_ref()
    }
    fn scopes(&self) -> Option<&Vec<Scope>> {
        self.scopes.as_ref()
    }
}

impl WireTokenResponse {
    fn into_token_set(self, received_at: UnixTime) -> TokenSet {
        TokenSet {
            access_token: AccessToken::new(self.access_token.into_secret()),
            refresh_token: self
                .refresh_token
                .map(|t| RefreshToken::new(t.into_secret())),
            id_token: self.id_token.map(|t| IdToken::new(t.into_secret())),
            expires_at: self
                .expires_in
                // A decade at most: a hostile `expires_in` must not overflow (SECURITY 40).
                .map(|s| received_at.saturating_add(s.min(MAX_EXPIRES_IN) as i64)),
            scopes: self
                .scopes
                .map(|s| s.into_iter().map(|s| s.to_string()).collect()),
        }
    }
}

type TokenClient = oauth2::Client<
    BasicErrorResponse,
    WireTokenResponse,
    BasicTokenIntrospectionResponse,
    StandardRevocableToken,
    BasicRevocationErrorResponse,
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointSet,
>;

fn token_client(provider: &ProviderConfig, metadata: &Metadata) -> TokenClient {
    let mut client = oauth2::Client::new(ClientId::new(provider.client_id.clone()))
        .set_auth_uri(AuthUrl::from_url(metadata.authorization_endpoint.clone()))
        .set_token_uri(TokenUrl::from_url(metadata.token_endpoint.clone()));
    if let Some(secret) = &provider.client_secret {
        client = client.set_client_secret(oauth2::ClientSecret::new(secret.secret().to_owned()));
    }
    client
}

/// What the HTTP layer saw, for classifying failures the `oauth2` crate reports without it.
#[derive(Default)]
struct Observed {
    status: Cell<Option<u16>>,
    retry_after: Cell<Option<u64>>,
}

fn observing<'a>(
    http: &'a Http,
    seen: &'a Observed,
    now: UnixTime,
) -> impl Fn(oauth2::HttpRequest) -> Result<oauth2::HttpResponse, FetchError> + 'a {
    move |request| {
        let unbuildable = |e: &dyn std::fmt::Display| FetchError::Transport {
            endpoint: TOKEN_ENDPOINT,
            reason: format!(
                "the request could not be built ({})",
                printable(&e.to_string(), 100)
            ),
            unsent: true,
        };
        let request = reqwest::blocking::Request::try_from(request).map_err(|e| unbuildable(&e))?;
        let answer = http.send(
            TOKEN_ENDPOINT,
            reqwest::blocking::RequestBuilder::from_parts(http.client().clone(), request),
        )?;
        seen.status.set(Some(answer.status));
        seen.retry_after
            .set(crate::http::retry_after(answer.header("retry-after"), now));
        let mut response = oauth2::http::Response::builder().status(answer.status);
        for (name, value) in &answer.headers {
            response = response.header(name, value);
        }
        // oauth2 takes the body by value; the copy it parses is its own to drop.
        response
            .body(answer.body.to_vec())
            .map_err(|e| unbuildable(&e))
    }
}

/// Exchanges an authorization code for tokens. The code is sent exactly once: whatever
/// happens, the caller must not retry with the same code (RFC 6749 §4.1.2).
pub(crate) fn exchange_code(
    http: &Http,
    provider: &ProviderConfig,
    metadata: &Metadata,
    code: AuthorizationCode,
    verifier: &PkceCodeVerifier,
    redirect_uri: &Url,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let client = token_client(provider, metadata);
    let seen = Observed::default();
    let redirect = RedirectUrl::from_url(redirect_uri.clone());
    let result = client
        .exchange_code(oauth2::AuthorizationCode::new(code.secret().to_owned()))
        .set_pkce_verifier(oauth2::PkceCodeVerifier::new(verifier.secret().to_owned()))
        .set_redirect_uri(std::borrow::Cow::Owned(redirect))
        .request(&observing(http, &seen, now));
    classify(result, &seen, now)
}

/// Uses a refresh token (RFC 6749 §6).
pub(crate) fn refresh(
    http: &Http,
    provider: &ProviderConfig,
    metadata: &Metadata,
    refresh_token: &RefreshToken,
    limit: &crate::token_request::TokenRequest,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let client = token_client(provider, metadata);
    let seen = Observed::default();
    let token = oauth2::RefreshToken::new(refresh_token.secret().to_owned());
    let mut request = client.exchange_refresh_token(&token);
    // RFC 6749 §6: a narrower scope than granted; RFC 8707 §2.2: the API the token is for.
    for scope in limit.scopes() {
        request = request.add_scope(oauth2::Scope::new(scope.clone()));
    }
    if let Some(resource) = limit.resource_uri() {
        request = request.add_extra_param("resource", resource);
    }
    let result = request.request(&observing(http, &seen, now));
    classify(result, &seen, now)
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    error_description: Option<String>,
}

fn rejected(error: &str, description: Option<&str>) -> ExchangeError {
    ExchangeError::Rejected {
        error: printable(error, 64),
        description: description.map(|d| printable(d, 300)),
    }
}

fn classify(
    result: Result<WireTokenResponse, RequestTokenError<FetchError, BasicErrorResponse>>,
    seen: &Observed,
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let status = seen.status.get();
    match result {
        Ok(wire) => Ok(wire.into_token_set(now)),
        Err(RequestTokenError::ServerResponse(e)) => Err(rejected(
            e.error().as_ref(),
            e.error_description().map(String::as_str),
        )),
        Err(RequestTokenError::Request(e)) => Err(ExchangeError::from(e)),
        Err(RequestTokenError::Parse(_, mut body)) => {
            // An OAuth error with HTTP 200 (GitHub) or a 5xx page; the body may hold tokens,
            // so it is read for an error code only and then wiped.
            let error = crate::http::json_object::<ErrorBody>(&body).ok();
            body.zeroize();
            match (error, status) {
                (_, Some(s)) if s >= 500 || s == 429 => Err(ExchangeError::Unavailable {
                    status: s,
                    retry_after: seen.retry_after.get(),
                }),
                (Some(e), _) => Err(rejected(&e.error, e.error_description.as_deref())),
                (None, Some(s)) => Err(ExchangeError::Malformed(format!(" (HTTP {s})"))),
                (None, None) => Err(ExchangeError::Malformed(String::new())),
            }
        }
        Err(RequestTokenError::Other(_)) => match status {
            Some(s) if s >= 500 || s == 429 => Err(ExchangeError::Unavailable {
                status: s,
                retry_after: seen.retry_after.get(),
            }),
            Some(s) => Err(ExchangeError::Malformed(format!(" (HTTP {s})"))),
            None => Err(ExchangeError::Malformed(String::new())),
        },
    }
}

/// The longest access-token lifetime believed, in seconds (ten years).
const MAX_EXPIRES_IN: u64 = 10 * 365 * 24 * 60 * 60;

/// How the token endpoint is named in errors.
const TOKEN_ENDPOINT: &str = "the token endpoint";

/// Sends one token request (RFC 6749 §3.2) with `form` as its body and reads the answer like
/// every other grant's: leniently where providers deviate, and an OAuth error is an error
/// whatever the HTTP status (GitHub answers its device-flow errors with 200). Used for grants
/// that are requests the caller repeats itself, such as the device grant (RFC 8628 §3.4).
pub(crate) fn post_token_form(
    http: &Http,
    endpoint: &Url,
    form: &[(&str, &str)],
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    let answer = http.send(
        TOKEN_ENDPOINT,
        http.client()
            .post(endpoint.clone())
            .header("accept", "application/json")
            .form(form),
    )?;
    let retry_after = crate::http::retry_after(answer.header("retry-after"), now);
    // The body may hold tokens; it is wiped when `answer` drops.
    read_token_answer(answer.status, retry_after, &answer.body, now)
}

/// Classifies a token endpoint's answer: 5xx and 429 first (whatever the body says), then an
/// OAuth error body (RFC 6749 §5.2), then a token response (§5.1).
pub(crate) fn read_token_answer(
    status: u16,
    retry_after: Option<u64>,
    body: &[u8],
    now: UnixTime,
) -> Result<TokenSet, ExchangeError> {
    if status >= 500 || status == 429 {
        return Err(ExchangeError::Unavailable {
            status,
            retry_after,
        });
    }
    if let Ok(e) = crate::http::json_object::<ErrorBody>(body) {
        return Err(rejected(&e.error, e.error_description.as_deref()));
    }
    if !(200..300).contains(&status) {
        return Err(ExchangeError::Malformed(format!(" (HTTP {status})")));
    }
    crate::http::json_object::<WireTokenResponse>(body)
        .map(|wire| wire.into_token_set(now))
        // serde's message may quote the body: it is not kept.
        .map_err(|_| ExchangeError::Malformed(String::new()))
}

#[cfg(test)]
mod tests;
