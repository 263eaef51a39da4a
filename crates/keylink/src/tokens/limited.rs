//! Access tokens limited to some of the granted scopes (RFC 6749 §6) and to one API (RFC 8707
//! resource indicators), each obtained with the account's refresh token and kept apart from
//! the account's own access token, so that a token for one API never reaches another
//! (SECURITY 58).

use url::Url;

use super::{
    CachedToken, TokenSource, account_lock, check_refreshed_identity, check_usable,
    mark_needs_relink,
};
use crate::clock::UnixTime;
use crate::context::Context;
use crate::error::Error;
use crate::exchange::TokenSet;
use crate::ids::AccountId;
use crate::secret::AccessToken;
use crate::store::{SecretStore, decode_tokens, encode_tokens};
use crate::token_request::TokenRequest;

impl TokenRequest {
    /// Limits the token to `scope` too; each must be one the account was granted. Fails
    /// when `scope` is not a scope-token of RFC 6749 §3.3.
    pub fn scope(mut self, scope: &str) -> Result<Self, Error> {
        crate::error::check_scope(scope)?;
        self.scopes.insert(scope.to_owned());
        Ok(self)
    }

    /// Limits the token to the API `resource`: an absolute URI without a fragment (RFC 8707
    /// §2).
    pub fn resource(mut self, resource: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidResource(crate::text::printable(resource, 200));
        let url = Url::parse(resource).map_err(|_| invalid())?;
        if url.fragment().is_some() || resource.contains('#') {
            return Err(invalid());
        }
        self.resource = Some(resource.to_owned());
        Ok(self)
    }
}

/// An access token limited by a [`TokenRequest`], and when it expires.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// The access token.
    pub access_token: AccessToken,
    /// When it expires, if the provider said.
    pub expires_at: Option<UnixTime>,
}

/// The keychain key of the list of an account's limited tokens; beside the account's own
/// key, so unlinking finds them without the keychain having to enumerate anything.
fn list_key(account_key: &str) -> String {
    format!("{account_key}/apis")
}

fn entry_key(account_key: &str, digest: &str) -> String {
    format!("{account_key}/api/{digest}")
}

fn read_list(secrets: &dyn SecretStore, account_key: &str) -> Result<Vec<String>, Error> {
    Ok(match secrets.get(&list_key(account_key))? {
        // The list holds digests only, no secrets; an unreadable one is treated as empty
        // rather than blocking unlink.
        Some(raw) => serde_json::from_str(raw.secret()).unwrap_or_default(),
        None => Vec::new(),
    })
}

/// Deletes every limited token of the account whose own key is `account_key`, and their
/// list (when unlinking, under the account lock).
pub(super) fn delete_all(secrets: &dyn SecretStore, account_key: &str) -> Result<(), Error> {
    for digest in read_list(secrets, account_key)? {
        secrets.delete(&entry_key(account_key, &digest))?;
    }
    secrets.delete(&list_key(account_key))?;
    Ok(())
}

impl TokenSource {
    /// An access token for `account` limited by `request`, refreshed first when it expires
    /// within `min_ttl` seconds; the empty request is the account's own token.
    ///
    /// A scope the account was never granted is refused before anything is sent. The token
    /// comes from a refresh grant with `scope` and `resource`, under the same per-account
    /// lock as every refresh (single-flight across threads and processes), and is kept in
    /// memory and in the keychain under its own key. The grant is the account's: a rotated
    /// refresh token replaces the account's before the new access token is handed out.
    pub(crate) fn limited_token(
        &self,
        ctx: &Context,
        account: &AccountId,
        request: &TokenRequest,
        min_ttl: u64,
    ) -> Result<ApiToken, Error> {
        self.limited(ctx, account, request, min_ttl, None)
    }

    /// A new token limited by `request` for an API that has just refused `rejected` (HTTP
    /// 401) although it had not expired (SECURITY 44): one refresh, at most one per account
    /// per [`REJECTED_TOKEN_REFRESH_INTERVAL`](super::REJECTED_TOKEN_REFRESH_INTERVAL)
    /// together with the account's own token (SECURITY 49); within it, a token another
    /// refresh stored meanwhile or [`Error::TokenRejectedAgain`].
    pub(crate) fn replace_rejected_limited_token(
        &self,
        ctx: &Context,
        account: &AccountId,
        request: &TokenRequest,
        rejected: &AccessToken,
    ) -> Result<ApiToken, Error> {
        if request.is_empty() {
            let access_token = self.replace_rejected_token(ctx, account, rejected)?;
            let expires_at = ctx.account_by_id(account)?.expires_at;
            return Ok(ApiToken {
                access_token,
                expires_at,
            });
        }
        self.limited(ctx, account, request, 0, Some(rejected))
    }

    fn limited(
        &self,
        ctx: &Context,
        account: &AccountId,
        request: &TokenRequest,
        min_ttl: u64,
        rejected: Option<&AccessToken>,
    ) -> Result<ApiToken, Error> {
        if request.is_empty() {
            let access_token = self.access_token(ctx, account, min_ttl)?;
            let expires_at = ctx.account_by_id(account)?.expires_at;
            return Ok(ApiToken {
                access_token,
                expires_at,
            });
        }
        let min_ttl = i64::try_from(min_ttl).unwrap_or(i64::MAX);
        let fresh = |expires_at: Option<UnixTime>, now: UnixTime| {
            expires_at.is_none_or(|exp| exp.saturating_sub(now) > min_ttl)
        };
        // A token the API refused is not fresh, whatever its expiry says.
        let usable = |tokens: &TokenSet, now: UnixTime| {
            fresh(tokens.expires_at, now) && rejected != Some(&tokens.access_token)
        };
        let digest = request.digest();
        let cache_key = (account.clone(), digest.clone());
        if let Some(cached) = self.lock_limited().get(&cache_key)
            && fresh(cached.expires_at, ctx.now())
            && rejected != Some(&cached.token)
        {
            return Ok(ApiToken {
                access_token: cached.token.clone(),
                expires_at: cached.expires_at,
            });
        }
        let account = ctx.account_by_id(account)?;
        let missing: Vec<&str> = request
            .scopes
            .iter()
            .filter(|s| !account.scopes.contains(s))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(Error::ScopeNotGranted {
                account: account.id.clone(),
                scopes: missing.iter().map(|s| s.to_string()).collect(),
            });
        }
        // Only an API the configuration names: a provider may count the refresh token as
        // used even when it refuses an unknown resource, and the next refresh would then be a
        // replay that ends the grant.
        if let Some(resource) = &request.resource {
            let provider = ctx.provider(&account.provider)?;
            if !provider
                .apis
                .values()
                .any(|api| api.resource.as_deref() == Some(resource.as_str()))
            {
                return Err(Error::ResourceNotConfigured {
                    resource: crate::text::printable(resource, 200),
                    provider: account.provider.clone(),
                });
            }
        }
        check_usable(ctx, &account)?;
        let secrets = ctx.secrets()?;
        let key = ctx.token_key(&account.id)?;
        let own_key = entry_key(&key, &digest);
        let load_own = || -> Result<Option<TokenSet>, Error> {
            match secrets.get(&own_key)? {
                Some(raw) => Ok(Some(decode_tokens(&account.id, &raw)?)),
                None => Ok(None),
            }
        };
        let remember = |tokens: &TokenSet| {
            let entry = CachedToken {
                account: account.id.clone(),
                token: tokens.access_token.clone(),
                expires_at: tokens.expires_at,
            };
            self.lock_limited().insert(cache_key.clone(), entry);
            ApiToken {
                access_token: tokens.access_token.clone(),
                expires_at: tokens.expires_at,
            }
        };
        let seen = load_own()?;
        if let Some(tokens) = &seen
            && usable(tokens, ctx.now())
        {
            return Ok(remember(tokens));
        }
        let _lock = account_lock(ctx, &account.id)?;
        // Another thread or process may have got this token while we waited for the lock.
        if let Some(tokens) = load_own()?
            && (usable(&tokens, ctx.now())
                || seen.as_ref().map(|s| &s.access_token) != Some(&tokens.access_token))
        {
            return Ok(remember(&tokens));
        }
        if rejected.is_some() && !self.may_refresh_rejected(&account.id, ctx.now()) {
            tracing::info!(account = %account.id, "an API refused the limited access token again; not refreshing within a minute of the last refresh it set off");
            return Err(Error::TokenRejectedAgain(account.id));
        }
        let load_account = || -> Result<TokenSet, Error> {
            let raw = secrets
                .get(&key)?
                .ok_or_else(|| Error::NeedsRelink(account.id.clone()))?;
            Ok(decode_tokens(&account.id, &raw)?)
        };
        let mut tokens = load_account()?;
        let refresh_token = tokens
            .refresh_token
            .clone()
            .ok_or_else(|| Error::NoRefreshToken(account.id.clone()))?;
        // Listed before anything is requested, so that unlinking deletes the entry whatever
        // happens after.
        let mut list = read_list(secrets.as_ref(), &key)?;
        if !list.contains(&digest) {
            list.push(digest.clone());
            secrets.set(
                &list_key(&key),
                &serde_json::to_string(&list).unwrap_or_default(),
            )?;
        }
        let provider = ctx.provider(&account.provider)?;
        let metadata = ctx.metadata(provider)?;
        match super::refresh_with_retries(ctx, provider, &metadata, &refresh_token, request) {
            Ok(mut new) => {
                check_refreshed_identity(ctx, provider, &metadata, &account, &new)?;
                // One grant: a rotated refresh token is the account's from now on, and is
                // stored before anything is handed out (a lost one would end the grant).
                if let Some(rotated) = new.refresh_token.take() {
                    tokens.refresh_token = Some(rotated);
                    if let Some(id_token) = new.id_token.take() {
                        tokens.id_token = Some(id_token);
                    }
                    secrets.set(&key, &encode_tokens(&tokens))?;
                }
                new.id_token = None;
                secrets.set(&own_key, &encode_tokens(&new))?;
                tracing::info!(account = %account.id, "limited access token refreshed");
                Ok(remember(&new))
            }
            Err(e) if e.is_grant_dead() => {
                tracing::warn!(account = %account.id, error = %e, "refresh refused");
                // Only if the token that failed is still the stored one (see fresh_token).
                if load_account()?.refresh_token.as_ref() != Some(&refresh_token) {
                    return Err(Error::Relinked(account.id.clone()));
                }
                mark_needs_relink(ctx, &account.id)?;
                Err(Error::NeedsRelink(account.id))
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn lock_limited(
        &self,
    ) -> std::sync::MutexGuard<'_, std::collections::HashMap<(AccountId, String), CachedToken>>
    {
        self.limited.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests;
