//! The authorization code flow in the system browser (RFC 8252): starting it (discovery,
//! PKCE S256, state, nonce, the pending flow saved), waiting for its redirect (through the
//! loopback listener, or the outcome another process leaves), and completing a redirect in
//! any process, at most once.

pub(crate) mod device;

use std::time::{Duration, Instant};

use url::Url;

use crate::callback::{
    AuthorizationResponse, LoopbackError, LoopbackListener, LoopbackVerdict, RedirectError,
    check_issuer, parse_redirect, redirect_matches,
};
use crate::clock::UnixTime;
use crate::context::Context;
use crate::error::Error;
use crate::exchange;
use crate::flow::{Claim, PendingFlow, ReconnectTarget};
use crate::ids::{AccountId, FlowId, ProviderId};
use crate::outcome::Outcomes;
use crate::provider::{ProviderConfig, RedirectKind};
use crate::store::Account;
use crate::text::printable;

/// A started sign-in: the browser goes to `authorization_url`, the redirect comes back.
pub(crate) struct Started {
    /// The pending flow's id.
    pub(crate) flow_id: FlowId,
    /// The URL to open in the system browser. It carries the state and the nonce, so it is
    /// shown to the person and to nobody else.
    pub(crate) authorization_url: Url,
    loopback: Option<LoopbackListener>,
}

/// What happens around completing a redirect, for the link session waiting on it.
pub(crate) struct Hooks<'a> {
    /// Called with the flow's id once the redirect's pending flow is claimed, before the
    /// code exchange.
    pub(crate) claimed: &'a mut dyn FnMut(&FlowId),
    /// Asked after the exchange, before anything is stored: `false` (a cancelled link)
    /// stores nothing and ends the flow with [`Error::Cancelled`].
    pub(crate) may_store: &'a dyn Fn(&FlowId) -> bool,
}

/// The reconnect target for the account `query`: its provider, and who must sign in.
pub(crate) fn reconnect_target(
    ctx: &Context,
    account: &AccountId,
) -> Result<(ProviderId, ReconnectTarget), Error> {
    let account = ctx.account_by_id(account)?;
    // Signing in again at another issuer cannot be the same account (SECURITY 52).
    if let Some(configured) =
        crate::identity::changed_issuer(ctx, ctx.provider(&account.provider)?, &account)?
    {
        return Err(Error::IssuerChanged {
            linked: account.issuer.to_string(),
            provider: account.provider.to_string(),
            account: account.id,
            configured: printable(&configured, 200),
        });
    }
    let shown = account
        .email
        .clone()
        .or_else(|| account.name.clone())
        .unwrap_or_else(|| account.subject.clone());
    let target = ReconnectTarget {
        account: account.id.clone(),
        subject: account.subject.clone(),
        shown,
    };
    Ok((account.provider, target))
}

/// Starts a sign-in at `provider`: discovery, PKCE S256, state and nonce, the pending flow
/// saved, and for loopback providers the listener bound. With `reconnect`, the request
/// carries `login_hint` and `prompt=login` (SECURITY 45). It asks for `scopes`.
pub(crate) fn start(
    ctx: &Context,
    provider: &ProviderConfig,
    reconnect: Option<ReconnectTarget>,
    scopes: Vec<String>,
) -> Result<Started, Error> {
    // Without a usable keychain the tokens could not be kept: say so before the person
    // signs in, not after.
    ctx.check_keychain()?;
    let metadata = ctx.metadata(provider)?;
    if !crate::http::is_allowed_endpoint(&metadata.authorization_endpoint) {
        return Err(Error::UnsafeAuthorizationUrl(
            crate::browser::shown_without_query(&metadata.authorization_endpoint),
        ));
    }
    let (loopback, redirect_uri) = match provider.redirect {
        RedirectKind::DeepLink => (None, provider.deep_link_redirect(&ctx.identity)),
        RedirectKind::Loopback => {
            let listener = LoopbackListener::bind()?;
            let uri = listener.redirect_uri(&provider.loopback_path());
            (Some(listener), uri)
        }
    };
    let now = ctx.now();
    let pending = ctx.pending()?;
    pending.prune(now);
    let (flow, authorization_url) =
        PendingFlow::start(provider, &metadata, redirect_uri, reconnect, scopes, now);
    pending.save(&flow)?;
    tracing::info!(provider = %provider.id, flow = %flow.id, "authorization started");
    Ok(Started {
        flow_id: flow.id,
        authorization_url,
        loopback,
    })
}

/// Cancels a started sign-in: its redirect is refused from now on.
pub(crate) fn cancel(ctx: &Context, flow_id: &FlowId) {
    if let Ok(pending) = ctx.pending() {
        pending.remove(flow_id);
    }
}

/// Waits until the started sign-in completes (in this process through the loopback
/// listener, or in any process through [`complete_redirect`]), `deadline` passes, or
/// `cancelled` returns true. A sign-in that did not complete is cancelled.
pub(crate) fn wait(
    ctx: &Context,
    started: Started,
    deadline: Instant,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    hooks: Hooks<'_>,
) -> Result<Account, Error> {
    let flow_id = started.flow_id;
    let outcomes = Outcomes::new(ctx)?;
    let result = match started.loopback {
        Some(listener) => {
            let Hooks { claimed, may_store } = hooks;
            listener
                .serve(deadline, cancelled, |url| {
                    let hooks = Hooks {
                        claimed: &mut *claimed,
                        may_store,
                    };
                    match complete_redirect(ctx, url, hooks).1 {
                        Ok(account) => LoopbackVerdict::Done(
                            Ok(account),
                            "Your account is linked. You can close this tab and return to the app."
                                .into(),
                        ),
                        Err(Error::Redirect(e)) if is_not_ours(&e) => {
                            LoopbackVerdict::Rejected(e.to_string())
                        }
                        Err(e) => {
                            let page = format!("Linking failed: {e}");
                            LoopbackVerdict::Done(Err(e), page)
                        }
                    }
                })
                .map_err(|e| match e {
                    LoopbackError::TimedOut => Error::LinkTimedOut(timeout),
                    LoopbackError::Cancelled => Error::Cancelled,
                    other => Error::Loopback(other),
                })
                .and_then(|r| r)
        }
        None => wait_for_outcome(
            ctx, &outcomes, &flow_id, deadline, timeout, cancelled, hooks,
        ),
    };
    if result.is_err() {
        cancel(ctx, &flow_id);
    }
    outcomes.discard(&flow_id);
    result
}

/// Waits for the outcome another process (or this one's redirect handler) leaves; says
/// when the redirect was claimed, which is when its pending flow disappears.
fn wait_for_outcome(
    ctx: &Context,
    outcomes: &Outcomes,
    flow_id: &FlowId,
    deadline: Instant,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    hooks: Hooks<'_>,
) -> Result<Account, Error> {
    let pending = ctx.pending()?;
    let mut claimed = false;
    loop {
        if let Some(result) = outcomes.take(ctx, flow_id) {
            // Completed between two looks: it was claimed and exchanged all the same.
            if !claimed {
                (hooks.claimed)(flow_id);
            }
            return result;
        }
        if cancelled() {
            return Err(Error::Cancelled);
        }
        if !claimed && !pending.contains(flow_id) {
            claimed = true;
            (hooks.claimed)(flow_id);
        }
        if Instant::now() >= deadline {
            return Err(Error::LinkTimedOut(timeout));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Completes a sign-in from its redirect URL: strict parsing, the pending flow claimed by
/// `state` (at most once, across processes), exact redirect URI and `iss` checks, then the
/// code exchange, ID token validation and storage. Untrusted input: anything wrong is
/// refused before any token request. Returns the claimed flow's id (none when the redirect
/// was refused before a flow was claimed) with the result, which is also left for the
/// flow's waiter.
pub(crate) fn complete_redirect(
    ctx: &Context,
    url: &str,
    hooks: Hooks<'_>,
) -> (Option<FlowId>, Result<Account, Error>) {
    let claim = || -> Result<(PendingFlow, AuthorizationResponse), Error> {
        let response = parse_redirect(url)?;
        let now = ctx.now();
        let claim = ctx.pending()?.claim(response.state.secret(), now, |flow| {
            redirect_matches(&response.base, &flow.redirect_uri)
        });
        match claim {
            Claim::Claimed(flow) => Ok((*flow, response)),
            Claim::NoSuchFlow | Claim::AlreadyClaimed => Err(RedirectError::Unsolicited.into()),
            Claim::Expired => Err(RedirectError::Expired.into()),
        }
    };
    let (flow, response) = match claim() {
        Ok(claimed) => claimed,
        Err(e) => return (None, Err(e)),
    };
    (hooks.claimed)(&flow.id);
    let flow_id = flow.id.clone();
    let result = finish(ctx, flow, response, hooks.may_store);
    if let Ok(outcomes) = Outcomes::new(ctx) {
        outcomes.record(&flow_id, &result);
    }
    (Some(flow_id), result)
}

fn finish(
    ctx: &Context,
    flow: PendingFlow,
    response: AuthorizationResponse,
    may_store: &dyn Fn(&FlowId) -> bool,
) -> Result<Account, Error> {
    let now: UnixTime = ctx.now();
    check_issuer(
        response.iss.as_deref(),
        flow.issuer.as_deref(),
        flow.require_iss,
    )?;
    if let Some((error, description)) = response.error {
        // The person said no on the consent page: that is their choice, not a failure of
        // the provider (RFC 6749 §4.1.2.1).
        if error == "access_denied" {
            let name = ctx
                .provider(&flow.provider)
                .map_or_else(|_| flow.provider.to_string(), |p| p.name.clone());
            return Err(Error::SignInDeclined(name));
        }
        return Err(RedirectError::Provider {
            error: printable(&error, 64),
            description: description.map(|d| printable(&d, 300)),
        }
        .into());
    }
    let code = response.code.ok_or(RedirectError::MissingCode)?;
    let provider = ctx.provider(&flow.provider)?;
    let metadata = ctx.metadata(provider)?;
    let tokens = exchange::exchange_code(
        &ctx.http,
        provider,
        &metadata,
        code,
        &flow.verifier,
        &flow.redirect_uri,
        now,
    )?;
    if !may_store(&flow.id) {
        tracing::info!(flow = %flow.id, "the link was cancelled during the exchange; nothing stored");
        return Err(Error::Cancelled);
    }
    // A flow saved before scopes were kept with it asked for the configured ones.
    let requested = if flow.scopes.is_empty() {
        &provider.scopes
    } else {
        &flow.scopes
    };
    crate::identity::store_link(
        ctx,
        provider,
        &metadata,
        tokens,
        Some(&flow.nonce),
        flow.reconnect.as_ref(),
        requested,
        now,
    )
}

/// Refusals that say the redirect was not this flow's (the loopback listener keeps waiting
/// for the genuine one), as opposed to the provider's answer to it.
fn is_not_ours(e: &RedirectError) -> bool {
    !matches!(
        e,
        RedirectError::Provider { .. }
            | RedirectError::IssuerMismatch
            | RedirectError::MissingIssuer
    )
}

#[cfg(test)]
mod tests;
