//! Tokens after linking: a fresh access token on demand (refreshed single-flight across
//! threads and processes, rotation persisted first, failures classified), and unlinking with
//! revocation (RFC 7009).

use std::collections::HashMap;
use std::time::Duration;

use crate::clock::UnixTime;
use crate::context::Context;
use crate::error::Error;
use crate::exchange::{self, TokenSet};
use crate::ids::AccountId;
use crate::logout::SignOut;
use crate::provider::{Metadata, ProviderConfig};
use crate::secret::AccessToken;
use crate::store::{Account, AccountStatus, decode_tokens, encode_tokens};

mod limited;
pub use crate::token_request::TokenRequest;
pub use limited::ApiToken;

/// An access token this process holds.
#[derive(Clone)]
struct CachedToken {
    account: AccountId,
    token: AccessToken,
    expires_at: Option<UnixTime>,
}

/// The least time between two refreshes of one account that an API's refusal of its access
/// token (HTTP 401) sets off (SECURITY 49): a resource server that refuses every token must
/// not rotate the refresh token on every call.
pub(crate) const REJECTED_TOKEN_REFRESH_INTERVAL: Duration = Duration::from_secs(60);

/// How many times a refresh is attempted when the provider is unavailable.
pub const REFRESH_ATTEMPTS: u32 = 3;
/// The longest `Retry-After` Keylink waits for before giving up.
pub const MAX_RETRY_WAIT: Duration = Duration::from_secs(10);

/// What unlinking did.
#[derive(Debug)]
pub struct UnlinkReport {
    /// The account that was removed.
    pub account: Account,
    /// What the provider was told (the account was removed locally in every case).
    pub revocation: Revocation,
    /// Whether the person's session at the provider is being ended, when that was asked
    /// for ([`Keylink::unlink_and_sign_out`](crate::Keylink::unlink_and_sign_out)).
    pub sign_out: Option<SignOut>,
}

/// Revocation at the provider when unlinking (RFC 7009).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// The provider revoked the grant.
    Revoked,
    /// The provider has no revocation endpoint.
    NotSupported,
    /// Revoking failed, for this reason (no secrets in it).
    Failed(String),
}

/// The token source: fresh access tokens, refresh and revocation for linked accounts. It
/// owns the access tokens this process holds; the tokens themselves live in the keychain.
#[derive(Default)]
pub(crate) struct TokenSource {
    /// Access tokens this process holds, by account id and by the query used.
    cache: std::sync::Mutex<HashMap<AccountId, CachedToken>>,
    /// When a refused access token last set off a refresh, by account.
    rejected_refreshes: std::sync::Mutex<HashMap<AccountId, UnixTime>>,
    /// Limited access tokens this process holds, by account and request digest.
    limited: std::sync::Mutex<HashMap<(AccountId, String), CachedToken>>,
}

impl TokenSource {
    /// A valid access token for the account, refreshed first when it expires within
    /// `min_ttl` seconds.
    ///
    /// A token this process already holds is returned from memory. Refreshing is
    /// single-flight per account across threads and processes (a file lock); inside the lock
    /// the stored tokens are read again, so a refresh another process just did is used rather
    /// than repeated (a replayed rotated refresh token would revoke the grant, RFC 9700
    /// §4.14.2). The rotated refresh token is stored before the access token is returned.
    /// `invalid_grant` marks the account `needs_relink`; network errors, 5xx and 429 are
    /// retried a bounded number of times and never change the stored tokens.
    pub(crate) fn access_token(
        &self,
        ctx: &Context,
        account: &AccountId,
        min_ttl: u64,
    ) -> Result<AccessToken, Error> {
        self.fresh_token(ctx, account, min_ttl, None)
    }

    /// A new access token for an account whose provider has just refused `rejected` (HTTP
    /// 401) although it had not expired (SECURITY 44): one refresh, whatever the expiry says,
    /// and at most one such refresh per account per
    /// [`REJECTED_TOKEN_REFRESH_INTERVAL`] (SECURITY 49); within it, a token another refresh
    /// stored meanwhile or [`Error::TokenRejectedAgain`]. A refused refresh marks the account
    /// `needs_relink`.
    pub(crate) fn replace_rejected_token(
        &self,
        ctx: &Context,
        account: &AccountId,
        rejected: &AccessToken,
    ) -> Result<AccessToken, Error> {
        self.fresh_token(ctx, account, 0, Some(rejected))
    }

    /// The access token this process holds for `account` when it stays valid for more than
    /// `min_ttl` seconds: memory only, so it never waits (the async API's fast path).
    pub(crate) fn cached(
        &self,
        ctx: &Context,
        account: &AccountId,
        min_ttl: i64,
    ) -> Option<AccessToken> {
        let cache = self.lock_cache();
        let cached = cache.get(account)?;
        let now = ctx.now();
        cached
            .expires_at
            .is_none_or(|exp| exp.saturating_sub(now) > min_ttl)
            .then(|| cached.token.clone())
    }

    fn fresh_token(
        &self,
        ctx: &Context,
        account: &AccountId,
        min_ttl: u64,
        rejected: Option<&AccessToken>,
    ) -> Result<AccessToken, Error> {
        let min_ttl = i64::try_from(min_ttl).unwrap_or(i64::MAX);
        let fresh = |expires_at: Option<UnixTime>, now: UnixTime| {
            expires_at.is_none_or(|exp| exp.saturating_sub(now) > min_ttl)
        };
        let usable = |tokens: &TokenSet, now: UnixTime| {
            fresh(tokens.expires_at, now) && rejected != Some(&tokens.access_token)
        };
        if rejected.is_none()
            && let Some(token) = self.cached(ctx, account, min_ttl)
        {
            return Ok(token);
        }
        let account = ctx.account_by_id(account)?;
        check_usable(ctx, &account)?;
        let secrets = ctx.secrets()?;
        let key = ctx.token_key(&account.id)?;
        let load = || -> Result<TokenSet, Error> {
            let raw = secrets
                .get(&key)?
                .ok_or_else(|| Error::NeedsRelink(account.id.clone()))?;
            Ok(decode_tokens(&account.id, &raw)?)
        };
        let remember = |tokens: &TokenSet| {
            let entry = CachedToken {
                account: account.id.clone(),
                token: tokens.access_token.clone(),
                expires_at: tokens.expires_at,
            };
            let mut cache = self.lock_cache();
            cache.insert(account.id.clone(), entry);
        };
        let tokens = load()?;
        if usable(&tokens, ctx.now()) {
            remember(&tokens);
            return Ok(tokens.access_token);
        }
        let seen = tokens.access_token;
        let _lock = account_lock(ctx, &account.id)?;
        // Another thread or process may have refreshed while we waited for the lock: its
        // result is as fresh as the provider makes tokens, even if that is less than min_ttl.
        let tokens = load()?;
        if usable(&tokens, ctx.now()) || tokens.access_token != seen {
            remember(&tokens);
            return Ok(tokens.access_token);
        }
        let refresh_token = tokens
            .refresh_token
            .clone()
            .ok_or_else(|| Error::NoRefreshToken(account.id.clone()))?;
        if rejected.is_some() && !self.may_refresh_rejected(&account.id, ctx.now()) {
            tracing::info!(account = %account.id, "the provider refused the access token again; not refreshing within a minute of the last refresh it set off");
            return Err(Error::TokenRejectedAgain(account.id));
        }
        let provider = ctx.provider(&account.provider)?;
        let metadata = ctx.metadata(provider)?;
        match refresh_with_retries(
            ctx,
            provider,
            &metadata,
            &refresh_token,
            &TokenRequest::default(),
        ) {
            Ok(mut new) => {
                check_refreshed_identity(ctx, provider, &metadata, &account, &new)?;
                // Keep what the provider did not resend (RFC 6749 §6: a new refresh token is
                // optional).
                if new.refresh_token.is_none() {
                    new.refresh_token = tokens.refresh_token;
                }
                if new.id_token.is_none() {
                    new.id_token = tokens.id_token;
                }
                // Persisted before anything is handed out: a rotated refresh token that was
                // not stored would be lost for good.
                secrets.set(&key, &encode_tokens(&new))?;
                let expires_at = new.expires_at;
                let scopes = new.scopes.clone();
                ctx.index()?.update(|accounts| {
                    if let Some(a) = accounts.iter_mut().find(|a| a.id == account.id) {
                        a.expires_at = expires_at;
                        if let Some(scopes) = scopes {
                            a.scopes = scopes;
                        }
                    }
                })?;
                tracing::info!(account = %account.id, "access token refreshed");
                remember(&new);
                Ok(new.access_token)
            }
            Err(e) if e.is_grant_dead() => {
                tracing::warn!(account = %account.id, error = %e, "refresh refused");
                // Change the state only if the token that failed is still the stored one
                // (a link completed meanwhile stores a new, working grant).
                let current = load()?;
                if current.refresh_token.as_ref() != Some(&refresh_token) {
                    // Relinked meanwhile: the new grant's token, if it is usable; else the
                    // caller asks again and refreshes the new grant.
                    if usable(&current, ctx.now()) {
                        remember(&current);
                        return Ok(current.access_token);
                    }
                    return Err(Error::Relinked(account.id.clone()));
                }
                mark_needs_relink(ctx, &account.id)?;
                Err(Error::NeedsRelink(account.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Drops every access token this process holds.
    #[cfg(unix)]
    pub(crate) fn forget_all(&self) {
        self.lock_cache().clear();
        self.lock_limited().clear();
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, CachedToken>> {
        self.cache.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether a refused token of `account` may set off a refresh at `now`, and if so,
    /// notes that one did (SECURITY 49). A clock that went back allows it.
    fn may_refresh_rejected(&self, account: &AccountId, now: UnixTime) -> bool {
        let interval = i64::try_from(REJECTED_TOKEN_REFRESH_INTERVAL.as_secs()).unwrap_or(60);
        let mut last = self
            .rejected_refreshes
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if last
            .get(account)
            .is_some_and(|&at| now >= at && now - at < interval)
        {
            return false;
        }
        last.insert(account.clone(), now);
        true
    }

    /// Unlinks an account: revokes its refresh token at the provider (RFC 7009) when possible,
    /// with `sign_out` opens the provider's sign-out page with the stored ID token, then
    /// always deletes the keychain entry and the index entry.
    pub(crate) fn unlink(
        &self,
        ctx: &Context,
        account: &AccountId,
        sign_out: Option<&dyn crate::browser::BrowserOpener>,
    ) -> Result<UnlinkReport, Error> {
        let account = ctx.account_by_id(account)?;
        let secrets = ctx.secrets()?;
        let key = ctx.token_key(&account.id)?;
        // A refresh in flight must not store tokens again after they are deleted (SECURITY 41).
        let _lock = account_lock(ctx, &account.id)?;
        let tokens = secrets
            .get(&key)?
            .and_then(|raw| decode_tokens(&account.id, &raw).ok());
        let revocation = match &tokens {
            Some(tokens) => revoke(ctx, &account, tokens),
            None => Revocation::NotSupported,
        };
        // Read before the tokens are deleted: the ID token is the provider's hint.
        let sign_out = sign_out
            .map(|browser| crate::logout::sign_out(ctx, browser, &account, tokens.as_ref()));
        // The limited tokens first: the account's own entry is what says it is linked.
        limited::delete_all(secrets.as_ref(), &key)?;
        secrets.delete(&key)?;
        self.lock_cache()
            .retain(|_, cached| cached.account != account.id);
        self.lock_limited()
            .retain(|_, cached| cached.account != account.id);
        let id = account.id.clone();
        ctx.index()?
            .update(move |accounts| accounts.retain(|a| a.id != id))?;
        Ok(UnlinkReport {
            account,
            revocation,
            sign_out,
        })
    }
}

/// Refuses an account whose tokens must not be used: its provider's issuer changed since it
/// was linked (marked `needs_relink`), or it already needs linking again.
fn check_usable(ctx: &Context, account: &Account) -> Result<(), Error> {
    // Before anything is read or sent: tokens go only to the issuer they came from
    // (SECURITY 52). A provider no longer configured is found out below, when it is
    // needed.
    if let Ok(provider) = ctx.provider(&account.provider)
        && let Some(configured) = crate::identity::changed_issuer(ctx, provider, account)?
    {
        tracing::warn!(account = %account.id, "the provider's issuer changed since the account was linked");
        if account.status != AccountStatus::NeedsRelink {
            mark_needs_relink(ctx, &account.id)?;
        }
        return Err(Error::IssuerChanged {
            linked: account.issuer.to_string(),
            provider: account.provider.to_string(),
            account: account.id.clone(),
            configured: crate::text::printable(&configured, 200),
        });
    }
    if account.status == AccountStatus::NeedsRelink {
        return Err(Error::NeedsRelink(account.id.clone()));
    }
    Ok(())
}

/// An ID token that comes with a refresh is checked like the first one and must name the
/// same person (OIDC Core §12.2, SECURITY 42); otherwise nothing is stored.
fn check_refreshed_identity(
    ctx: &Context,
    provider: &ProviderConfig,
    metadata: &Metadata,
    account: &Account,
    new: &TokenSet,
) -> Result<(), Error> {
    if let Some(id_token) = &new.id_token
        && provider.is_oidc()
    {
        let claims =
            crate::identity::validate_id_token(ctx, provider, metadata, id_token, None, ctx.now())?;
        if claims.subject != account.subject || account.issuer.as_str() != claims.issuer {
            tracing::warn!(account = %account.id, "refreshed ID token names another subject");
            return Err(Error::RefreshedIdentityMismatch(account.id.clone()));
        }
    }
    Ok(())
}

/// The refresh grant with bounded retries: at most [`REFRESH_ATTEMPTS`] attempts, backing
/// off exponentially or as long as `Retry-After` asks (up to [`MAX_RETRY_WAIT`]), and only
/// for errors where a retry cannot replay a token the provider already consumed.
fn refresh_with_retries(
    ctx: &Context,
    provider: &ProviderConfig,
    metadata: &Metadata,
    refresh_token: &crate::secret::RefreshToken,
    limit: &TokenRequest,
) -> Result<TokenSet, exchange::ExchangeError> {
    let mut backoff = Duration::from_millis(500);
    let mut attempt = 1;
    loop {
        let result = exchange::refresh(
            ctx.http(),
            provider,
            metadata,
            refresh_token,
            limit,
            ctx.now(),
        );
        match result {
            Err(e) if e.is_retryable() && attempt < REFRESH_ATTEMPTS => {
                let wait = e.retry_after().map(Duration::from_secs).unwrap_or(backoff);
                if wait > MAX_RETRY_WAIT {
                    return Err(e);
                }
                tracing::info!(attempt, wait_ms = wait.as_millis() as u64, error = %e, "retrying the refresh");
                std::thread::sleep(wait);
                backoff *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// The longest a refresh holding the account lock can take: every attempt's deadline and
/// the waits between them. Waiting for another process's lock longer than this means it
/// is stuck.
fn lock_wait(ctx: &Context) -> Duration {
    ctx.http().timeout() * (REFRESH_ATTEMPTS + 1) + MAX_RETRY_WAIT * (REFRESH_ATTEMPTS - 1)
}

/// Marks `account` `needs_relink` in the index: its grant is gone, or its tokens must not go
/// to the provider it now names.
fn mark_needs_relink(ctx: &Context, account: &AccountId) -> Result<(), Error> {
    ctx.index()?.update(|accounts| {
        if let Some(a) = accounts.iter_mut().find(|a| a.id == *account) {
            a.status = AccountStatus::NeedsRelink;
        }
    })?;
    Ok(())
}

/// Takes the per-account lock that serialises refresh and unlink across threads and
/// processes, waiting at most [`lock_wait`] (SECURITY 34).
fn account_lock(ctx: &Context, account: &AccountId) -> Result<std::fs::File, Error> {
    let dir = ctx.trusted_dir("locks")?;
    let err = |e: std::io::Error| crate::store::StoreError::DataDir {
        path: dir.clone(),
        reason: e.to_string(),
    };
    crate::store::create_private_dir(&dir).map_err(err)?;
    let file =
        crate::store::open_private(&dir.join(format!("{account}.lock")), false).map_err(err)?;
    let wait = lock_wait(ctx);
    let deadline = std::time::Instant::now() + wait;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(err(e).into()),
        }
        if std::time::Instant::now() >= deadline {
            return Err(Error::LockTimedOut {
                account: account.to_owned(),
                waited: wait,
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The account's provider and its metadata, for sending the account's tokens to one of its
/// endpoints on the way out (revocation, sign-out): only while it is still the issuer the
/// tokens came from (SECURITY 52). The error is the reason, without a secret.
pub(crate) fn provider_of_tokens<'a>(
    ctx: &'a Context,
    account: &Account,
) -> Result<(&'a ProviderConfig, std::sync::Arc<Metadata>), String> {
    let provider = ctx.provider(&account.provider).map_err(|e| e.to_string())?;
    match crate::identity::changed_issuer(ctx, provider, account) {
        Ok(None) => {}
        Ok(Some(_)) => {
            return Err("the provider's issuer changed since the account was linked, so its tokens were not sent to the new one".into());
        }
        Err(e) => return Err(e.to_string()),
    }
    let metadata = ctx.metadata(provider).map_err(|e| e.to_string())?;
    Ok((provider, metadata))
}

fn revoke(ctx: &Context, account: &Account, tokens: &TokenSet) -> Revocation {
    // Not even to be revoked do tokens go to another issuer's endpoints.
    let (provider, metadata) = match provider_of_tokens(ctx, account) {
        Ok(found) => found,
        Err(reason) => return Revocation::Failed(reason),
    };
    let Some(endpoint) = &metadata.revocation_endpoint else {
        return Revocation::NotSupported;
    };
    let (token, hint) = match &tokens.refresh_token {
        Some(rt) => (rt.secret(), "refresh_token"),
        None => (tokens.access_token.secret(), "access_token"),
    };
    // RFC 7009 §2.1, sent directly: the oauth2 crate refuses http:// revocation endpoints
    // even on loopback.
    let mut form = vec![
        ("token", token),
        ("token_type_hint", hint),
        ("client_id", provider.client_id.as_str()),
    ];
    let secret;
    if let Some(s) = &provider.client_secret {
        secret = s.secret().to_owned();
        form.push(("client_secret", secret.as_str()));
    }
    let http = ctx.http();
    match http.send(
        "the revocation endpoint",
        http.client().post(endpoint.clone()).form(&form),
    ) {
        Ok(answer) if answer.is_success() => Revocation::Revoked,
        Ok(answer) => Revocation::Failed(format!("the provider answered HTTP {}", answer.status)),
        Err(e) => Revocation::Failed(e.to_string()),
    }
}

#[cfg(test)]
mod tests;
