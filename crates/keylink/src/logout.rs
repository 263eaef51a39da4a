//! Signing out at the provider when an account is unlinked (OpenID Connect RP-Initiated
//! Logout 1.0): the browser is sent to the provider's `end_session_endpoint` with the
//! account's ID token as a hint, and the provider's answer comes back to the app's scheme
//! on a path of its own, which is a confirmation and never a sign-in.

use url::Url;

use crate::app::AppIdentity;
use crate::browser::BrowserOpener;
use crate::context::Context;
use crate::exchange::TokenSet;
use crate::ids::ProviderId;
use crate::secret::CsrfState;
use crate::store::Account;

/// The path under the app's scheme where a provider confirms a sign-out:
/// `<scheme>:/signed-out/<provider-id>`.
pub(crate) const SIGNED_OUT_PATH: &str = "/signed-out";

/// What became of ending the person's session at the provider when unlinking with
/// [`Keylink::unlink_and_sign_out`](crate::Keylink::unlink_and_sign_out). The account is
/// unlinked in every case; none of these carries a secret or the sign-out URL (which holds
/// the ID token).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignOut {
    /// The browser was opened at the provider's sign-out page; the provider ends its
    /// session once the person confirms there.
    Opened,
    /// The provider advertises no `end_session_endpoint`: the person stays signed in there.
    NotSupported,
    /// No ID token is stored for the account (a plain OAuth provider, or one that issued
    /// none), so the provider cannot be told whose session to end.
    NoIdToken,
    /// Signing out failed, for this reason (no secrets in it).
    Failed(String),
}

/// The `post_logout_redirect_uri` of `provider` for the app: `<scheme>:/signed-out/<id>`,
/// registered at the provider exactly (OIDC RP-Initiated Logout §3.1).
pub(crate) fn post_logout_redirect_uri(identity: &AppIdentity, provider: &ProviderId) -> String {
    format!("{}:{SIGNED_OUT_PATH}/{provider}", identity.scheme())
}

/// Opens the provider's sign-out page for `account`, whose stored `tokens` are about to be
/// deleted. The URL carries the ID token, so it goes to the opener only and is never
/// logged, returned or put in an error (SECURITY 50).
pub(crate) fn sign_out(
    ctx: &Context,
    browser: &dyn BrowserOpener,
    account: &Account,
    tokens: Option<&TokenSet>,
) -> SignOut {
    // The ID token of another issuer is not sent to this one (SECURITY 52).
    let (provider, metadata) = match crate::tokens::provider_of_tokens(ctx, account) {
        Ok(found) => found,
        Err(reason) => return SignOut::Failed(reason),
    };
    let Some(endpoint) = &metadata.end_session_endpoint else {
        return SignOut::NotSupported;
    };
    let Some(id_token) = tokens.and_then(|t| t.id_token.as_ref()) else {
        return SignOut::NoIdToken;
    };
    // Discovery checked it; checked again because this URL goes to a browser (SECURITY 2).
    if !crate::http::is_allowed_endpoint(endpoint) {
        return SignOut::Failed(format!(
            "the provider's end_session_endpoint {} is not an https URL",
            crate::browser::shown_without_query(endpoint)
        ));
    }
    let url = end_session_url(
        endpoint,
        id_token.secret(),
        &provider.client_id,
        &post_logout_redirect_uri(&ctx.identity, &provider.id),
        &CsrfState::generate(),
    );
    tracing::debug!(provider = %provider.id, "opening the provider's sign-out page");
    match browser.open(&url) {
        Ok(()) => SignOut::Opened,
        // An opener of the app's own may name the URL it failed on: the URL is cut to its
        // endpoint and the ID token struck out (SECURITY 50).
        Err(e) => SignOut::Failed(
            e.to_string()
                .replace(url.as_str(), &crate::browser::shown_without_query(&url))
                .replace(id_token.secret(), "[redacted]"),
        ),
    }
}

/// The end-session request (OIDC RP-Initiated Logout §2): `id_token_hint`, `client_id`,
/// `post_logout_redirect_uri` and `state`, added to the endpoint's own query.
fn end_session_url(
    endpoint: &Url,
    id_token: &str,
    client_id: &str,
    post_logout_redirect_uri: &str,
    state: &CsrfState,
) -> Url {
    let mut url = endpoint.clone();
    url.query_pairs_mut()
        .append_pair("id_token_hint", id_token)
        .append_pair("client_id", client_id)
        .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
        .append_pair("state", state.secret());
    url
}

/// The configured provider a sign-out confirmation `url` comes from, when `url` is one:
/// exactly `<scheme>:/signed-out/<provider-id>` with at most a `state` parameter (what the
/// provider adds), no fragment, host or user info. Anything else is not a confirmation
/// and goes the way of a sign-in redirect, which checks it strictly. A confirmation starts
/// nothing and changes nothing (SECURITY 11): it only says that the browser came back.
pub(crate) fn signed_out_provider(ctx: &Context, url: &str) -> Option<ProviderId> {
    if url.len() > crate::callback::MAX_REDIRECT_LEN
        || url.chars().any(|c| c.is_control() || c == ' ' || c == '#')
    {
        return None;
    }
    let parsed = Url::parse(url).ok()?;
    if !parsed.scheme().eq_ignore_ascii_case(ctx.identity.scheme())
        || parsed.host().is_some()
        || !parsed.username().is_empty()
        || parsed.password().is_some()
    {
        return None;
    }
    let id = parsed
        .path()
        .strip_prefix(SIGNED_OUT_PATH)?
        .strip_prefix('/')?;
    let mut names = parsed.query_pairs().map(|(name, _)| name);
    match (names.next(), names.next()) {
        (None, _) => {}
        (Some(name), None) if name == "state" => {}
        _ => return None,
    }
    ctx.config
        .provider(&ProviderId::new(id))
        .map(|provider| provider.id.clone())
}

#[cfg(test)]
mod tests;
