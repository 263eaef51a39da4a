//! Calling a provider's API with an account's access token, for front ends that must never
//! hold the token themselves (a webview): the request goes only to an origin the provider's
//! `api_origins` lists, with a fresh bearer token attached here, the same deadline and size
//! cap as every other request, no redirects followed, and the answer handed back without
//! anything that could echo the token.

use url::Url;

use crate::context::Context;
use crate::error::Error;
use crate::secret::AccessToken;
use crate::tokens::TokenSource;

/// A request to a provider's API, made with an account's access token
/// ([`Keylink::api_request`](crate::Keylink::api_request)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The URL; its origin must be in the provider's `api_origins`.
    pub url: Url,
    /// Extra request headers. `Authorization`, `Cookie`, `Proxy-Authorization` and `Host`
    /// are refused: Keylink sets the credentials.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
}

impl ApiRequest {
    /// A `GET` of `url` without extra headers.
    pub fn get(url: Url) -> Self {
        ApiRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: None,
        }
    }
}

/// The API's answer: status, headers (without `Set-Cookie`, credentials or anything holding
/// the token) and body (where the token, should the API echo it, reads `[redacted]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`MAX_BODY_BYTES`](crate::MAX_BODY_BYTES).
    pub body: Vec<u8>,
}

impl std::fmt::Debug for ApiResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiResponse")
            .field("status", &self.status)
            .field("headers", &self.headers.len())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// Request headers the caller may not set: Keylink attaches the credentials itself.
const FORBIDDEN_REQUEST_HEADERS: &[&str] =
    &["authorization", "proxy-authorization", "cookie", "host"];
/// Response headers never handed back: they carry or set credentials.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "set-cookie",
    "set-cookie2",
    "authentication-info",
    "proxy-authentication-info",
];

/// Makes `request` for the account `query` (see the module documentation).
pub(crate) fn request(
    ctx: &Context,
    tokens: &TokenSource,
    query: &str,
    request: &ApiRequest,
) -> Result<ApiResponse, Error> {
    let account = ctx.account(query)?;
    let provider = ctx.provider(&account.provider)?;
    let origin = request.url.origin();
    if !provider.api_origins.contains(&origin) || !crate::http::is_allowed_endpoint(&request.url) {
        return Err(Error::ApiNotAllowed(format!(
            "{} is not one of the API origins of {} ({}); add it to api_origins in the provider's configuration",
            crate::printable(&origin.ascii_serialization(), 200),
            provider.name,
            provider.id
        )));
    }
    let method = request.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(Error::ApiNotAllowed(format!(
            "the method {:?} is not one Keylink sends; use one of {}",
            crate::printable(&request.method, 20),
            METHODS.join(", ")
        )));
    }
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        if FORBIDDEN_REQUEST_HEADERS.contains(&lower.as_str()) {
            return Err(Error::ApiNotAllowed(format!(
                "the header {lower} is set by Keylink itself; leave it out"
            )));
        }
        let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(lower.as_bytes()),
            reqwest::header::HeaderValue::from_str(value),
        ) else {
            return Err(Error::ApiNotAllowed(format!(
                "the header {:?} is not a valid HTTP header; fix its name or value",
                crate::printable(&lower, 60)
            )));
        };
        headers.append(name, value);
    }
    let method = reqwest::Method::from_bytes(method.as_bytes())
        .map_err(|_| Error::ApiNotAllowed("the method is not valid".into()))?;
    let send = |token: &AccessToken| {
        let http = ctx.http();
        let mut builder = http
            .client()
            .request(method.clone(), request.url.clone())
            .headers(headers.clone())
            .bearer_auth(token.secret());
        if let Some(body) = &request.body {
            builder = builder.body(body.clone());
        }
        http.send("the provider's API", builder)
            .map_err(|e| Error::ApiFailed(e.reason()))
    };
    let token = tokens.access_token(ctx, query, 60)?;
    let mut answer = send(&token)?;
    let mut used = token;
    // A token the provider refuses although it has not expired: one refresh, then once more
    // (SECURITY 44).
    if answer.status == 401 {
        used = tokens.replace_rejected_token(ctx, &account.id, &used)?;
        answer = send(&used)?;
    }
    let secret = used.secret().as_bytes();
    let headers = answer
        .headers
        .iter()
        .filter(|(name, _)| !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            (!value.contains(used.secret())).then(|| (name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    Ok(ApiResponse {
        status: answer.status,
        headers,
        body: redact(&answer.body, secret),
    })
}

/// `body` with every occurrence of `secret` replaced by `[redacted]`.
fn redact(body: &[u8], secret: &[u8]) -> Vec<u8> {
    if secret.is_empty() || body.len() < secret.len() {
        return body.to_vec();
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = 0;
    while i < body.len() {
        if body[i..].starts_with(secret) {
            out.extend_from_slice(b"[redacted]");
            i += secret.len();
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn an_echoed_token_is_redacted_from_the_body() {
        assert_eq!(
            redact(b"{\"seen\":\"tok-1\",\"again\":\"tok-1\"}", b"tok-1"),
            b"{\"seen\":\"[redacted]\",\"again\":\"[redacted]\"}".to_vec()
        );
        assert_eq!(redact(b"nothing here", b"tok-1"), b"nothing here".to_vec());
    }
}
