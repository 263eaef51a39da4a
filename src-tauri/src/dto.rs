//! What crosses IPC to the UI: account summaries, provider names, link progress and notices.
//! Nothing here can hold a token, a code or a state value: the types are built only from the
//! core's non-secret metadata.

use keylink::{Account, AccountStatus, Keylink, ProviderConfig, RedirectKind, UnixTime, rfc3339};
use serde::Serialize;

use crate::error::ErrorDto;

/// A configured provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProviderDto {
    /// Provider id (the key under `[providers]`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// The issuer's host, shown so people know where they will sign in.
    pub host: Option<String>,
    /// `deep-link` or `loopback`.
    pub redirect: &'static str,
    /// The provider offers device sign-in (RFC 8628): a code entered on another device.
    pub device: bool,
    /// Set by the system policy (the administrator).
    pub from_policy: bool,
}

impl From<&ProviderConfig> for ProviderDto {
    fn from(p: &ProviderConfig) -> Self {
        let host = p
            .issuer
            .as_deref()
            .and_then(|i| url::Url::parse(i).ok())
            .or_else(|| p.endpoints.authorization_endpoint.clone())
            .and_then(|u| u.host_str().map(str::to_owned));
        Self {
            id: p.id.to_string(),
            name: p.name.clone(),
            host,
            redirect: match p.redirect {
                RedirectKind::DeepLink => "deep-link",
                RedirectKind::Loopback => "loopback",
            },
            device: false,
            from_policy: p.from_policy,
        }
    }
}

impl ProviderDto {
    /// The provider, with whether discovery found a device authorization endpoint.
    pub fn with_device(p: &ProviderConfig, device: bool) -> Self {
        Self {
            device,
            ..Self::from(p)
        }
    }
}

/// The code for device sign-in and where to enter it. Public by design: the person types it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeviceCodeDto {
    /// Where to enter the code.
    pub verification_uri: String,
    /// The code.
    pub user_code: String,
    /// An address with the code filled in, when the provider gives one.
    pub verification_uri_complete: Option<String>,
    /// The address to open (with the code filled in when there is one) as a QR code, an SVG
    /// document; `None` if it is too long for one.
    pub qr_svg: Option<String>,
}

impl From<&keylink::DeviceAuthorization> for DeviceCodeDto {
    fn from(a: &keylink::DeviceAuthorization) -> Self {
        let target = a
            .verification_uri_complete
            .as_ref()
            .unwrap_or(&a.verification_uri);
        let qr_svg = qrcode::QrCode::new(target.as_str().as_bytes())
            .ok()
            .map(|code| {
                code.render::<qrcode::render::svg::Color<'_>>()
                    .min_dimensions(180, 180)
                    .quiet_zone(true)
                    .build()
            });
        Self {
            qr_svg,
            verification_uri: a.verification_uri.to_string(),
            user_code: a.user_code.clone(),
            verification_uri_complete: a
                .verification_uri_complete
                .as_ref()
                .map(ToString::to_string),
        }
    }
}

/// A linked account, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AccountDto {
    /// Account id.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// Provider display name (the id when the provider is no longer configured).
    pub provider_name: String,
    /// Display name, when shared.
    pub name: Option<String>,
    /// Email, when shared.
    pub email: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// RFC 3339 UTC.
    pub linked_at: String,
    /// When the stored access token expires, RFC 3339 UTC.
    pub expires_at: Option<String>,
    /// `ok` or `needs_relink`.
    pub status: &'static str,
}

impl AccountDto {
    /// The summary of `account`, with its provider's display name from `keylink`'s config.
    pub fn new(account: &Account, keylink: Option<&Keylink>) -> Self {
        let provider_name = keylink
            .and_then(|k| k.config().provider(&account.provider))
            .map(|p| p.name.clone())
            .unwrap_or_else(|| account.provider.to_string());
        Self {
            id: account.id.to_string(),
            provider: account.provider.to_string(),
            provider_name,
            name: account.name.clone(),
            email: account.email.clone(),
            scopes: account.scopes.clone(),
            linked_at: rfc3339(account.linked_at),
            expires_at: account.expires_at.map(rfc3339),
            status: match account.status {
                AccountStatus::Ok => "ok",
                AccountStatus::NeedsRelink => "needs_relink",
            },
        }
    }
}

/// Where the current link stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum LinkDto {
    /// Nothing is being linked.
    Idle,
    /// The browser was opened; waiting for the redirect.
    Waiting {
        /// Provider id.
        provider: String,
        /// Provider display name.
        provider_name: String,
        /// Seconds until the link times out.
        seconds_left: u64,
        /// The whole timeout, in seconds.
        timeout_secs: u64,
        /// For device sign-in: the code and where to enter it, once the provider gave them.
        device: Option<DeviceCodeDto>,
    },
    /// The account was linked (reported once).
    Linked {
        /// The new account.
        account: AccountDto,
    },
    /// Linking failed or timed out (reported once).
    Failed {
        /// Provider id.
        provider: String,
        /// Provider display name.
        provider_name: String,
        /// Why.
        error: ErrorDto,
    },
}

/// Something that happened without the UI asking: a redirect completed or refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum NoticeDto {
    /// A redirect linked an account.
    Linked {
        /// The account.
        account: AccountDto,
    },
    /// A redirect was refused or failed; nothing was linked.
    Error {
        /// Why.
        error: ErrorDto,
    },
}

/// Everything the UI shows, pulled when it loads and while it polls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AppStateDto {
    /// Configured providers, in configuration order.
    pub providers: Vec<ProviderDto>,
    /// Linked accounts.
    pub accounts: Vec<AccountDto>,
    /// Why the accounts or providers could not be read, if they could not.
    pub error: Option<ErrorDto>,
    /// The link in progress or just finished.
    pub link: LinkDto,
    /// Notices not yet shown (each is returned once).
    pub notices: Vec<NoticeDto>,
    /// A redirect is being completed right now.
    pub completing: bool,
    /// The configuration files that were read.
    pub config_files: Vec<String>,
}

/// The answer of "Check connection".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConnectionDto {
    /// Account id.
    pub account: AccountDto,
    /// The userinfo endpoint's host, i.e. who answered.
    pub answered_by: String,
    /// The subject the provider answered for.
    pub subject: String,
    /// Name in the answer.
    pub name: Option<String>,
    /// Email in the answer.
    pub email: Option<String>,
    /// When the access token used expires, RFC 3339 UTC.
    pub expires_at: Option<String>,
    /// When the check was made, RFC 3339 UTC.
    pub checked_at: String,
}

/// The answer of "Unlink".
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnlinkDto {
    /// The account that was removed.
    pub account: AccountDto,
    /// True when the provider revoked the grant; false when it has no revocation endpoint or
    /// revoking failed (see `warning`).
    pub revoked: bool,
    /// Why revoking failed (the account was removed locally anyway).
    pub warning: Option<String>,
}

impl UnlinkDto {
    /// The summary of an unlink report.
    pub fn new(report: &keylink::UnlinkReport, keylink: Option<&Keylink>) -> Self {
        let (revoked, warning) = match &report.revocation {
            keylink::Revocation::Revoked => (true, None),
            keylink::Revocation::Failed(reason) => (
                false,
                Some(crate::error::sentence(&format!(
                    "the provider could not be told to revoke access ({reason}); the account was removed from this computer anyway"
                ))),
            ),
            keylink::Revocation::NotSupported => (false, None),
        };
        Self {
            account: AccountDto::new(&report.account, keylink),
            revoked,
            warning,
        }
    }
}

/// RFC 3339 of an optional time.
pub fn time(t: Option<UnixTime>) -> Option<String> {
    t.map(rfc3339)
}
