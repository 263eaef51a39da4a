//! Calling a provider's API with an account's access token, for front ends that must never
//! hold the token themselves (a webview): the request goes only to an origin the provider's
//! `api_origins` lists, with a fresh bearer token attached here, the same deadline and size
//! cap as every other request, no redirects followed, and the answer handed back without
//! anything that could echo the token: uncompressed, whole, and with the token redacted in
//! every form it can be written in (SECURITY 48).
//!
//! ```no_run
//! use keylink::api::ApiRequest;
//! # fn run(keylink: &keylink::Keylink, account: &keylink::AccountId) -> Result<(), keylink::Error> {
//! let url = url::Url::parse("https://graph.microsoft.com/v1.0/me").expect("a URL");
//! let answer = keylink.api_request(account, &ApiRequest::get(url))?;
//! println!("{} {}", answer.status, String::from_utf8_lossy(&answer.body));
//! # Ok(()) }
//! ```

use std::io::Read;

use url::Url;
use zeroize::Zeroizing;

use crate::context::Context;
use crate::error::Error;
use crate::http::MAX_BODY_BYTES;
use crate::ids::AccountId;
use crate::secret::AccessToken;
use crate::tokens::{TokenRequest, TokenSource};

/// A request to a provider's API, made with an account's access token
/// ([`Keylink::api_request`](crate::Keylink::api_request)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiRequest {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH` or `DELETE`.
    pub method: String,
    /// The URL; its origin must be in the provider's `api_origins`.
    pub url: Url,
    /// Extra request headers. `Authorization`, `Cookie`, `Proxy-Authorization` and `Host`
    /// are refused: Keylink sets the credentials. So are the headers that change how the
    /// answer is framed or encoded (`Accept-Encoding`, `Range`, `If-Range`, `TE`,
    /// `Connection`, `Upgrade`, `Expect`, `Transfer-Encoding`, `Content-Length`,
    /// `Keep-Alive`, `Trailer`, `Proxy-*`): Keylink must see the answer whole and
    /// uncompressed to keep the token out of it.
    pub headers: Vec<(String, String)>,
    /// The request body, if any.
    pub body: Option<Vec<u8>>,
    /// The scopes the token is limited to (RFC 6749 §6), each one the account was granted;
    /// empty for those configured for the URL's origin
    /// (`[providers.<id>.apis."<origin>"]`), if any.
    pub scopes: Vec<String>,
    /// The API the token is limited to (RFC 8707 resource indicator); `None` for the one
    /// configured for the URL's origin, if any.
    pub resource: Option<String>,
}

impl ApiRequest {
    /// A `GET` of `url` without extra headers, with the token configured for its origin.
    pub fn get(url: Url) -> Self {
        ApiRequest {
            method: "GET".into(),
            url,
            headers: Vec::new(),
            body: None,
            scopes: Vec::new(),
            resource: None,
        }
    }

    /// The same request with a token limited to `scopes` (instead of the origin's
    /// configured ones).
    pub fn with_scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> Self {
        self.scopes = scopes.into_iter().map(Into::into).collect();
        self
    }

    /// The same request with a token limited to the API `resource` (instead of the origin's
    /// configured one).
    pub fn with_resource(mut self, resource: impl Into<String>) -> Self {
        self.resource = Some(resource.into());
        self
    }

    /// What the token sent with this request is limited to: the scopes and resource asked
    /// for, each defaulting to what the provider configures for the URL's origin; the empty
    /// request (the account's own token) when neither names anything. Invalid values are
    /// refused here, before anything is sent.
    fn token_request(
        &self,
        provider: &crate::provider::ProviderConfig,
    ) -> Result<TokenRequest, Error> {
        let configured = provider.api_for(&self.url);
        let scopes = if self.scopes.is_empty() {
            configured.map_or(&[][..], |api| api.scopes.as_slice())
        } else {
            self.scopes.as_slice()
        };
        let resource = self
            .resource
            .as_deref()
            .or_else(|| configured.and_then(|api| api.resource.as_deref()));
        let mut limited = TokenRequest::new();
        for scope in scopes {
            limited = limited.scope(scope)?;
        }
        if let Some(resource) = resource {
            limited = limited.resource(resource)?;
        }
        Ok(limited)
    }
}

/// The API's answer: status, headers (without `Set-Cookie`, credentials, hop-by-hop headers
/// or anything holding the token) and body (uncompressed; where the token, should the API
/// echo it, reads `[redacted]`).
#[derive(Clone, PartialEq, Eq)]
pub struct ApiResponse {
    /// HTTP status.
    pub status: u16,
    /// Response headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body, at most [`MAX_BODY_BYTES`] bytes.
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
/// Request headers that change how the answer is framed or encoded (besides `proxy-*`): a
/// compressed or partial answer would carry the token past the redaction (SECURITY 48).
const FRAMING_REQUEST_HEADERS: &[&str] = &[
    "accept-encoding",
    "range",
    "if-range",
    "te",
    "connection",
    "upgrade",
    "expect",
    "transfer-encoding",
    "content-length",
    "keep-alive",
    "trailer",
];
/// Response headers never handed back: they carry or set credentials, or describe the
/// connection rather than the answer.
const DROPPED_RESPONSE_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "set-cookie",
    "set-cookie2",
    "authentication-info",
    "proxy-authentication-info",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "trailer",
    "upgrade",
];
/// What redacted text reads.
const REDACTED: &[u8] = b"[redacted]";

/// Makes `request` for the account `account` (see the module documentation).
pub(crate) fn request(
    ctx: &Context,
    tokens: &TokenSource,
    account: &AccountId,
    request: &ApiRequest,
) -> Result<ApiResponse, Error> {
    let account = ctx.account_by_id(account)?;
    let provider = ctx.provider(&account.provider)?;
    let origin = request.url.origin();
    if !provider.api_origins.contains(&origin) || !crate::http::is_allowed_endpoint(&request.url) {
        return Err(Error::ApiNotAllowed(format!(
            "{} is not one of the API origins of {} ({}); add it to api_origins in the provider's configuration",
            crate::text::printable(&origin.ascii_serialization(), 200),
            provider.name,
            provider.id
        )));
    }
    let limited = request.token_request(provider)?;
    let method = request.method.to_ascii_uppercase();
    if !METHODS.contains(&method.as_str()) {
        return Err(Error::ApiNotAllowed(format!(
            "the method {:?} is not one Keylink sends; use one of {}",
            crate::text::printable(&request.method, 20),
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
        if FRAMING_REQUEST_HEADERS.contains(&lower.as_str()) || lower.starts_with("proxy-") {
            return Err(Error::ApiNotAllowed(format!(
                "the header {} changes how the answer is framed or encoded, which Keylink decides itself so the token stays out of the answer; leave it out",
                crate::text::printable(&lower, 60)
            )));
        }
        let (Ok(name), Ok(value)) = (
            reqwest::header::HeaderName::from_bytes(lower.as_bytes()),
            reqwest::header::HeaderValue::from_str(value),
        ) else {
            return Err(Error::ApiNotAllowed(format!(
                "the header {:?} is not a valid HTTP header; fix its name or value",
                crate::text::printable(&lower, 60)
            )));
        };
        headers.append(name, value);
    }
    // Only an answer Keylink can read is one it can redact.
    headers.insert(
        reqwest::header::ACCEPT_ENCODING,
        reqwest::header::HeaderValue::from_static("identity"),
    );
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
    // Each API gets the token limited to it, never another API's (SECURITY 58).
    let token = tokens
        .limited_token(ctx, &account.id, &limited, 60)?
        .access_token;
    let mut answer = send(&token)?;
    let mut sent = vec![token];
    // A token the API refuses although it has not expired: one refresh, then once more
    // (SECURITY 44), at most once a minute per account, the account's own token and those
    // limited to an API together (SECURITY 49); within that minute the refusal is the
    // answer.
    if answer.status == 401 {
        let rejected = &sent[sent.len() - 1];
        match tokens.replace_rejected_limited_token(ctx, &account.id, &limited, rejected) {
            Ok(token) => {
                answer = send(&token.access_token)?;
                sent.push(token.access_token);
            }
            Err(Error::TokenRejectedAgain(_)) => {}
            Err(e) => return Err(e),
        }
    }
    let secrets: Vec<&[u8]> = sent.iter().map(|t| t.secret().as_bytes()).collect();
    hand_back(answer, &secrets)
}

/// The answer as the caller may see it: whole, uncompressed, without the headers that carry
/// credentials or describe the connection, and with every form of each of `secrets`
/// redacted. An answer that cannot be made so is refused (SECURITY 48).
fn hand_back(answer: crate::http::Answer, secrets: &[&[u8]]) -> Result<ApiResponse, Error> {
    use reqwest::header::{CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE};
    // A part of an answer may hold a part of the token, which no redaction recognises;
    // Keylink never asks for one.
    if answer.status == 206 || answer.headers.contains_key(CONTENT_RANGE) {
        return Err(Error::ApiAnswerRefused(
            "it is a partial answer (HTTP 206 or Content-Range), which Keylink did not ask for"
                .into(),
        ));
    }
    let decoded = match content_encoding(&answer.headers)? {
        None => None,
        Some(encoding) => Some(decode(&answer.body, encoding)?),
    };
    let body: &[u8] = match &decoded {
        Some(decoded) => decoded,
        None => &answer.body,
    };
    let redacted = redact(body, secrets);
    let changed = decoded.is_some() || redacted != body;
    let headers = answer
        .headers
        .iter()
        .filter(|(name, _)| !DROPPED_RESPONSE_HEADERS.contains(&name.as_str()))
        // Decoded, the answer has no encoding; changed, its length is the body's.
        .filter(|(name, _)| !(decoded.is_some() && *name == CONTENT_ENCODING))
        .filter(|(name, _)| !(changed && *name == CONTENT_LENGTH))
        .filter_map(|(name, value)| {
            let value = value.to_str().ok()?;
            (!contains_secret(value.as_bytes(), secrets))
                .then(|| (name.as_str().to_owned(), value.to_owned()))
        })
        .collect();
    Ok(ApiResponse {
        status: answer.status,
        headers,
        body: redacted,
    })
}

/// A content coding Keylink decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    /// `gzip` (RFC 1952), also as `x-gzip`.
    Gzip,
    /// `deflate`: the zlib format (RFC 1950), as RFC 9110 §8.4.1.2 defines it.
    Deflate,
}

/// The answer's content coding: `None` for none (or `identity`); an error for one Keylink
/// cannot decode, or several stacked.
fn content_encoding(headers: &reqwest::header::HeaderMap) -> Result<Option<Encoding>, Error> {
    let mut codings = Vec::new();
    for value in headers.get_all(reqwest::header::CONTENT_ENCODING) {
        let Ok(value) = value.to_str() else {
            return Err(Error::ApiAnswerRefused(
                "its Content-Encoding header is not readable text".into(),
            ));
        };
        codings.extend(
            value
                .split(',')
                .map(|c| c.trim().to_ascii_lowercase())
                .filter(|c| !c.is_empty() && c != "identity"),
        );
    }
    match codings.as_slice() {
        [] => Ok(None),
        [one] if one == "gzip" || one == "x-gzip" => Ok(Some(Encoding::Gzip)),
        [one] if one == "deflate" => Ok(Some(Encoding::Deflate)),
        _ => Err(Error::ApiAnswerRefused(format!(
            "it is compressed ({}), which Keylink did not ask for and cannot read to keep the token out of it",
            crate::text::printable(&codings.join(", "), 60)
        ))),
    }
}

/// `body` decoded, at most [`MAX_BODY_BYTES`] of it: a small answer that unpacks into more
/// (a decompression bomb) is refused once the cap is passed, never unpacked further.
fn decode(body: &[u8], encoding: Encoding) -> Result<Zeroizing<Vec<u8>>, Error> {
    let limit = MAX_BODY_BYTES as u64 + 1;
    // Allocated once at its largest: a growing buffer would leave copies of the token in
    // memory that is freed unwiped.
    let mut out = Zeroizing::new(Vec::with_capacity(MAX_BODY_BYTES + 1));
    let read = match encoding {
        Encoding::Gzip => flate2::read::MultiGzDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
        Encoding::Deflate => flate2::read::ZlibDecoder::new(body)
            .take(limit)
            .read_to_end(&mut out),
    };
    if read.is_err() {
        return Err(Error::ApiAnswerRefused(format!(
            "it is compressed ({}) and could not be decoded",
            match encoding {
                Encoding::Gzip => "gzip",
                Encoding::Deflate => "deflate",
            }
        )));
    }
    if out.len() > MAX_BODY_BYTES {
        return Err(Error::ApiAnswerRefused(
            "it is larger than 1 MiB once decompressed, which Keylink does not read".into(),
        ));
    }
    Ok(out)
}

/// `text` with every occurrence of each of `secrets` replaced by `[redacted]`, in any of the
/// forms [`secret_at`] recognises.
fn redact(text: &[u8], secrets: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        match secrets.iter().find_map(|s| secret_at(text, i, s)) {
            Some(len) => {
                out.extend_from_slice(REDACTED);
                i += len;
            }
            None => {
                out.push(text[i]);
                i += 1;
            }
        }
    }
    out
}

/// True when `text` holds one of `secrets` in any form [`secret_at`] recognises.
fn contains_secret(text: &[u8], secrets: &[&[u8]]) -> bool {
    (0..text.len()).any(|i| secrets.iter().any(|s| secret_at(text, i, s).is_some()))
}

/// The length of `secret` written at `text[at..]`, each of its bytes literally or escaped
/// as JSON writes it (`\/`, `\"`, `\\`, `\u00XX`) or as a URL does (`%XX`), in any mix and
/// any case of hex digits: an API that echoes the request as JSON or in a URL escapes it so.
fn secret_at(text: &[u8], at: usize, secret: &[u8]) -> Option<usize> {
    if secret.is_empty() {
        return None;
    }
    let mut i = at;
    for &byte in secret {
        i += byte_at(text.get(i..)?, byte)?;
    }
    Some(i - at)
}

/// The length of `byte` written at the start of `text` (see [`secret_at`]).
fn byte_at(text: &[u8], byte: u8) -> Option<usize> {
    let hex_is = |digits: &[u8]| {
        digits.iter().all(u8::is_ascii_hexdigit)
            && std::str::from_utf8(digits)
                .ok()
                .and_then(|d| u32::from_str_radix(d, 16).ok())
                == Some(u32::from(byte))
    };
    match *text.first()? {
        first if first == byte => Some(1),
        b'\\' => match *text.get(1)? {
            escaped @ (b'/' | b'"' | b'\\') if escaped == byte => Some(2),
            b'u' if hex_is(text.get(2..6)?) => Some(6),
            _ => None,
        },
        b'%' if hex_is(text.get(1..3)?) => Some(3),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
