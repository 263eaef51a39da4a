//! Who an account is: the validated ID token, completed from the provider's user endpoint
//! (or the user endpoint alone for plain OAuth providers), turned into a stored account; and
//! asking the provider again later ("Check connection").

use sha2::{Digest, Sha256};
use url::Url;

use crate::clock::UnixTime;
use crate::context::Context;
use crate::error::Error;
use crate::exchange::TokenSet;
use crate::flow::ReconnectTarget;
use crate::id_token::{self, Expected};
use crate::ids::{AccountId, IssuerUrl, ProviderId};
use crate::provider::{Metadata, ProviderConfig};
use crate::secret::AccessToken;
use crate::store::{Account, AccountStatus, encode_tokens};
use crate::text::printable;
use crate::tokens::TokenSource;

/// Identifies the account behind freshly issued `tokens` (validating the ID token against
/// `nonce` when the grant had one) and stores it: tokens in the keychain, metadata in the
/// index. Every way of linking ends here. The account's scopes are those the provider says
/// it granted, or the `requested` ones when its token response names none (RFC 6749 §5.1).
#[allow(clippy::too_many_arguments)] // each is one fact about this one sign-in
pub(crate) fn store_link(
    ctx: &Context,
    provider: &ProviderConfig,
    metadata: &Metadata,
    tokens: TokenSet,
    nonce: Option<&crate::secret::Nonce>,
    reconnect: Option<&ReconnectTarget>,
    requested: &[String],
    now: UnixTime,
) -> Result<Account, Error> {
    let (issuer, subject, email, name) = identify(ctx, provider, metadata, nonce, &tokens, now)?;
    // Provider-supplied text is cleaned before it is stored or shown (SECURITY 39).
    let clean = |text: Option<String>| text.map(|t| printable(&t, 320)).filter(|t| !t.is_empty());
    // A reconnect that came back as someone else neither replaces nor hides the account
    // being reconnected, and adds nobody (SECURITY 45).
    if let Some(target) = reconnect
        && target.subject != subject
    {
        let signed_in_as = clean(email.clone())
            .or_else(|| clean(name.clone()))
            .unwrap_or_else(|| printable(&subject, 100));
        tracing::warn!(account = %target.account, "a reconnect signed in as another account");
        return Err(Error::WrongAccount {
            signed_in_as,
            expected: target.shown.clone(),
        });
    }
    let account = Account {
        id: account_id(&provider.id, &issuer, &subject),
        provider: provider.id.clone(),
        issuer,
        subject,
        email: clean(email),
        name: clean(name),
        scopes: tokens.scopes.clone().unwrap_or_else(|| requested.to_vec()),
        linked_at: now,
        expires_at: tokens.expires_at,
        status: AccountStatus::Ok,
    };
    ctx.secrets()?
        .set(&ctx.token_key(&account.id)?, &encode_tokens(&tokens))?;
    let stored = account.clone();
    ctx.index()?.update(move |accounts| {
        accounts.retain(|a| a.id != stored.id);
        accounts.push(stored);
    })?;
    tracing::info!(account = %account.id, "account linked");
    Ok(account)
}

/// Validates an ID token of `provider` (OIDC Core §3.1.3.7): its discovered issuer and
/// keys, the client id, `nonce` when the grant had one.
pub(crate) fn validate_id_token(
    ctx: &Context,
    provider: &ProviderConfig,
    metadata: &Metadata,
    id_token: &crate::secret::IdToken,
    nonce: Option<&crate::secret::Nonce>,
    now: UnixTime,
) -> Result<id_token::IdClaims, Error> {
    let issuer = metadata
        .issuer
        .as_deref()
        .ok_or_else(|| Error::NoIdentity("no issuer".into()))?;
    let jwks_uri = metadata
        .jwks_uri
        .as_ref()
        .ok_or_else(|| Error::NoIdentity("the provider publishes no jwks_uri".into()))?;
    let algorithms = id_token::allowed_algorithms(&metadata.id_token_signing_alg_values_supported);
    let expected = Expected {
        issuer,
        client_id: &provider.client_id,
        nonce,
        algorithms: &algorithms,
    };
    Ok(id_token::validate(
        id_token,
        &expected,
        &ctx.jwks_for(jwks_uri),
        &ctx.http,
        now,
    )?)
}

/// Who signed in: from the validated ID token, completed from userinfo where it lacks
/// name or email; for plain OAuth providers, from userinfo alone.
fn identify(
    ctx: &Context,
    provider: &ProviderConfig,
    metadata: &Metadata,
    nonce: Option<&crate::secret::Nonce>,
    tokens: &TokenSet,
    now: UnixTime,
) -> Result<(IssuerUrl, String, Option<String>, Option<String>), Error> {
    if provider.is_oidc() {
        let id_token = tokens
            .id_token
            .as_ref()
            .ok_or(id_token::IdTokenError::Missing)?;
        let claims = validate_id_token(ctx, provider, metadata, id_token, nonce, now)?;
        let (mut email, mut name) = (claims.email, claims.name);
        // Name and email from userinfo when the ID token lacks them (OIDC Core §5.3.2:
        // only if userinfo speaks about the same subject).
        if (email.is_none() || name.is_none())
            && let Some(endpoint) = &metadata.userinfo_endpoint
        {
            match fetch_userinfo(
                &ctx.http,
                endpoint,
                &provider.quirks.user_endpoint,
                &tokens.access_token,
            ) {
                Ok(info) if info.subject.as_deref() == Some(claims.subject.as_str()) => {
                    email = email.or(info.email);
                    name = name.or(info.name);
                }
                Ok(_) => tracing::warn!("userinfo names a different subject; ignoring it"),
                Err(e) => tracing::warn!(error = %e, "userinfo unavailable"),
            }
        }
        let issuer = IssuerUrl::new(claims.issuer).map_err(|e| Error::NoIdentity(e.to_string()))?;
        return Ok((issuer, claims.subject, email, name));
    }
    let endpoint = metadata
        .userinfo_endpoint
        .as_ref()
        .ok_or_else(|| Error::NoIdentity("no ID token and no userinfo endpoint".into()))?;
    let info = fetch_userinfo(
        &ctx.http,
        endpoint,
        &provider.quirks.user_endpoint,
        &tokens.access_token,
    )
    .map_err(|e| Error::NoIdentity(e.to_string()))?;
    let subject = info
        .subject
        .ok_or_else(|| Error::NoIdentity("userinfo has no subject".into()))?;
    let issuer = IssuerUrl::new(metadata.token_endpoint.origin().ascii_serialization())
        .map_err(|e| Error::NoIdentity(e.to_string()))?;
    Ok((issuer, subject, info.email, info.name))
}

/// The issuer `account`'s provider is configured with now, when it is not the one the
/// account's tokens came from (the configuration changed after linking); `None` when it is
/// the same. Such tokens are sent nowhere (SECURITY 52). Decided from the configuration
/// alone where it can be, so a token asked for does not cost a request: an OpenID provider's
/// issuer is the configured one (discovery insists on it), or for a multi-tenant provider
/// that issuer with the tenant id in place of the tenant; a plain OAuth provider's is the
/// origin of its token endpoint.
pub(crate) fn changed_issuer(
    ctx: &Context,
    provider: &ProviderConfig,
    account: &Account,
) -> Result<Option<String>, Error> {
    let linked = account.issuer.as_str();
    if let Some(issuer) = &provider.issuer {
        if linked == issuer
            || (provider.quirks.tenant_issuer && is_tenant_issuer_of(issuer, linked))
        {
            return Ok(None);
        }
        if provider.is_oidc() {
            return Ok(Some(issuer.clone()));
        }
    }
    let token_endpoint = match &provider.endpoints.token_endpoint {
        Some(endpoint) => endpoint.clone(),
        None => ctx.metadata(provider)?.token_endpoint.clone(),
    };
    let origin = token_endpoint.origin().ascii_serialization();
    Ok((origin != linked).then_some(origin))
}

/// True when `linked` is the multi-tenant issuer `configured` (`.../common/v2.0`) with a
/// tenant id (a GUID) in place of its tenant segment, as each ID token's `iss` has it.
fn is_tenant_issuer_of(configured: &str, linked: &str) -> bool {
    let (a, b): (Vec<&str>, Vec<&str>) =
        (configured.split('/').collect(), linked.split('/').collect());
    let differing: Vec<&str> = a
        .iter()
        .zip(&b)
        .filter(|(x, y)| x != y)
        .map(|(_, y)| *y)
        .collect();
    a.len() == b.len()
        && matches!(differing.as_slice(), [tenant] if tenant.len() == 36
            && tenant.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
}

/// Who the provider says an account's stored tokens belong to ("Check connection").
#[derive(Debug, Clone)]
pub struct ConnectionCheck {
    /// The account, re-read after the token was obtained (a refresh updates its expiry).
    pub account: Account,
    /// Host of the user endpoint that answered.
    pub answered_by: String,
    /// Subject in the answer (always the account's).
    pub subject: String,
    /// Email in the answer.
    pub email: Option<String>,
    /// Name in the answer.
    pub name: Option<String>,
    /// When the access token used expires.
    pub expires_at: Option<UnixTime>,
    /// When the check was made.
    pub checked_at: UnixTime,
}

/// Asks the provider's user endpoint who the account's tokens belong to, with an access
/// token from the token source (the stored one, refreshed only when it expires
/// within a minute), so it shows the stored tokens at work. The token never leaves here.
pub(crate) fn check_connection(
    ctx: &Context,
    tokens: &TokenSource,
    account: &AccountId,
) -> Result<ConnectionCheck, Error> {
    let token = tokens.access_token(ctx, account, 60)?;
    let account = ctx.account_by_id(account)?;
    let provider = ctx.provider(&account.provider)?;
    let metadata = ctx.metadata(provider)?;
    let endpoint = metadata.userinfo_endpoint.as_ref().ok_or_else(|| {
        Error::ConnectionCheck("the provider has no user information endpoint".into())
    })?;
    let mapping = &provider.quirks.user_endpoint;
    let info = match fetch_userinfo(&ctx.http, endpoint, mapping, &token) {
        // The provider refused a token Keylink believed valid (it forgot the grant, or
        // revoked the token): one refresh, then ask again (SECURITY 44). A refused
        // refresh marks the account `needs_relink` and ends here.
        Err(UserInfoError::Unauthorized) => {
            tracing::info!(account = %account.id, "the provider refused the access token; refreshing");
            let token = tokens.replace_rejected_token(ctx, &account.id, &token)?;
            fetch_userinfo(&ctx.http, endpoint, mapping, &token)
        }
        other => other,
    }
    .map_err(|e| Error::ConnectionCheck(format!("the provider's user endpoint failed ({e})")))?;
    // A refresh above updates the expiry.
    let account = ctx.account_by_id(&account.id)?;
    let subject = info
        .subject
        .ok_or_else(|| Error::ConnectionCheck("the provider's answer names no account".into()))?;
    if subject != account.subject {
        return Err(Error::ConnectionCheck(
            "the provider answered for a different account than the one linked".into(),
        ));
    }
    Ok(ConnectionCheck {
        answered_by: endpoint.host_str().unwrap_or_default().to_owned(),
        subject,
        email: info.email.map(|t| printable(&t, 320)),
        name: info.name.map(|t| printable(&t, 320)),
        expires_at: account.expires_at,
        checked_at: ctx.now(),
        account,
    })
}

/// A stable account id: the provider id and a hash of (issuer, subject) (SECURITY 20: never the
/// email).
pub(crate) fn account_id(provider: &ProviderId, issuer: &IssuerUrl, subject: &str) -> AccountId {
    let digest = Sha256::digest(format!("{issuer}\n{subject}").as_bytes());
    let hex: String = digest[..5].iter().map(|b| format!("{b:02x}")).collect();
    AccountId::new(format!("{provider}-{hex}"))
}

/// Why the user endpoint gave no answer.
#[derive(Debug, thiserror::Error)]
enum UserInfoError {
    /// HTTP 401: the provider does not accept the access token.
    #[error("HTTP 401: the provider does not accept the access token")]
    Unauthorized,
    /// Anything else.
    #[error("{0}")]
    Failed(String),
}

struct UserInfo {
    subject: Option<String>,
    email: Option<String>,
    name: Option<String>,
}

/// Asks the provider's user endpoint who the token belongs to, reading the answer as the
/// provider's [`UserEndpoint`](crate::provider::UserEndpoint) mapping says.
fn fetch_userinfo(
    http: &crate::http::Http,
    endpoint: &Url,
    mapping: &crate::provider::UserEndpoint,
    token: &AccessToken,
) -> Result<UserInfo, UserInfoError> {
    let request = if mapping.post {
        // RPC-style endpoints (Dropbox) take a POST with a JSON `null` body.
        http.client()
            .post(endpoint.clone())
            .header("content-type", "application/json")
            .body("null")
    } else {
        http.client().get(endpoint.clone())
    };
    let answer = http
        .send(
            "the user endpoint",
            request
                .bearer_auth(token.secret())
                .header("accept", "application/json"),
        )
        .map_err(|e| UserInfoError::Failed(e.reason()))?;
    if answer.status == 401 {
        return Err(UserInfoError::Unauthorized);
    }
    if !answer.is_success() {
        return Err(UserInfoError::Failed(format!("HTTP {}", answer.status)));
    }
    let value: serde_json::Value = serde_json::from_slice(&answer.body)
        .map_err(|_| UserInfoError::Failed("unreadable answer".to_owned()))?;
    let first = |pointers: &[&str]| {
        pointers.iter().find_map(|p| match value.pointer(p)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    Ok(UserInfo {
        subject: first(mapping.subject),
        email: first(mapping.email),
        name: first(mapping.name),
    })
}

#[cfg(test)]
mod tests;
