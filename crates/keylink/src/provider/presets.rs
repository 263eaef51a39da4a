//! Presets: what linking an account at the big providers takes, as data. A preset fills in
//! what its provider's documentation says (endpoints, scopes, redirect transport, extra
//! authorization parameters) and declares its deviations from the standards as [`Quirks`];
//! anything set explicitly in the configuration wins. The core flow has no provider branches.

use std::path::Path;

use super::validate::{RawProvider, invalid};
use super::{ConfigError, RedirectKind};

/// A provider's declared deviations from plain OAuth 2.0 / OpenID Connect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quirks {
    /// Multi-tenant discovery (Microsoft Entra `common`, `organizations`, `consumers`): the
    /// discovery document's issuer has a `{tenantid}` segment where the configured issuer has
    /// the tenant, and each ID token's `iss` is that template with its own `tid` claim filled
    /// in. Nothing else about the issuer checks is loosened.
    pub tenant_issuer: bool,
    /// How the account's identity is read from the user endpoint when there is no ID token.
    pub user_endpoint: UserEndpoint,
}

impl Default for Quirks {
    fn default() -> Self {
        Quirks {
            tenant_issuer: false,
            user_endpoint: UserEndpoint::STANDARD,
        }
    }
}

/// Where the subject, email and name are in a user endpoint's JSON answer. Each field lists
/// JSON pointers tried in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserEndpoint {
    /// Ask with POST (and an empty JSON body) instead of GET.
    pub post: bool,
    /// Stable account identifier.
    pub subject: &'static [&'static str],
    /// Email address.
    pub email: &'static [&'static str],
    /// Display name.
    pub name: &'static [&'static str],
}

impl UserEndpoint {
    /// OIDC userinfo (OIDC Core §5.3), with the common `id`/`login` fallbacks.
    pub const STANDARD: UserEndpoint = UserEndpoint {
        post: false,
        subject: &["/sub", "/id"],
        email: &["/email"],
        name: &["/name", "/login"],
    };
}

/// A preset: defaults for one provider.
#[derive(Debug)]
pub(crate) struct Preset {
    pub id: &'static str,
    pub name: &'static str,
    /// Issuer for discovery; `{tenant}` is replaced by the `tenant` setting.
    pub issuer: Option<&'static str>,
    pub authorization_endpoint: Option<&'static str>,
    pub token_endpoint: Option<&'static str>,
    pub revocation_endpoint: Option<&'static str>,
    pub userinfo_endpoint: Option<&'static str>,
    pub device_authorization_endpoint: Option<&'static str>,
    pub scopes: &'static [&'static str],
    pub redirect: RedirectKind,
    pub authorize_params: &'static [(&'static str, &'static str)],
    pub quirks: Quirks,
}

const NONE: Preset = Preset {
    id: "",
    name: "",
    issuer: None,
    authorization_endpoint: None,
    token_endpoint: None,
    revocation_endpoint: None,
    userinfo_endpoint: None,
    device_authorization_endpoint: None,
    scopes: &["openid", "profile", "email", "offline_access"],
    redirect: RedirectKind::DeepLink,
    authorize_params: &[],
    quirks: Quirks {
        tenant_issuer: false,
        user_endpoint: UserEndpoint::STANDARD,
    },
};

/// Every preset Keylink knows.
pub(crate) const PRESETS: &[Preset] = &[
    // Google: desktop clients may only use loopback redirects; the desktop client's secret
    // is required although it cannot be kept secret; a refresh token is issued only with
    // access_type=offline, and again on later sign-ins only with prompt=consent. Google
    // rejects the offline_access scope.
    Preset {
        id: "google",
        name: "Google",
        issuer: Some("https://accounts.google.com"),
        scopes: &["openid", "email", "profile"],
        redirect: RedirectKind::Loopback,
        authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        ..NONE
    },
    // Microsoft Entra ID: `tenant` is common, organizations, consumers or a tenant id; the
    // multi-tenant discovery documents name the issuer `.../{tenantid}/v2.0`.
    Preset {
        id: "microsoft",
        name: "Microsoft",
        issuer: Some("https://login.microsoftonline.com/{tenant}/v2.0"),
        scopes: &["openid", "profile", "email", "offline_access"],
        redirect: RedirectKind::DeepLink,
        quirks: Quirks {
            tenant_issuer: true,
            user_endpoint: UserEndpoint::STANDARD,
        },
        ..NONE
    },
    // GitHub: OAuth 2.0 without OpenID Connect (no discovery, no ID token); the account is
    // whoever /user says; tokens of OAuth apps may never expire and then come without a
    // refresh token.
    Preset {
        id: "github",
        name: "GitHub",
        authorization_endpoint: Some("https://github.com/login/oauth/authorize"),
        token_endpoint: Some("https://github.com/login/oauth/access_token"),
        userinfo_endpoint: Some("https://api.github.com/user"),
        device_authorization_endpoint: Some("https://github.com/login/device/code"),
        scopes: &["read:user", "user:email"],
        redirect: RedirectKind::Loopback,
        quirks: Quirks {
            tenant_issuer: false,
            user_endpoint: UserEndpoint {
                post: false,
                subject: &["/id"],
                email: &["/email"],
                name: &["/name", "/login"],
            },
        },
        ..NONE
    },
    // Dropbox: PKCE public client without discovery; a refresh token only with
    // token_access_type=offline; the account from users/get_current_account (a POST).
    Preset {
        id: "dropbox",
        name: "Dropbox",
        authorization_endpoint: Some("https://www.dropbox.com/oauth2/authorize"),
        token_endpoint: Some("https://api.dropboxapi.com/oauth2/token"),
        userinfo_endpoint: Some("https://api.dropboxapi.com/2/users/get_current_account"),
        scopes: &["account_info.read"],
        redirect: RedirectKind::Loopback,
        authorize_params: &[("token_access_type", "offline")],
        quirks: Quirks {
            tenant_issuer: false,
            user_endpoint: UserEndpoint {
                post: true,
                subject: &["/account_id"],
                email: &["/email"],
                name: &["/name/display_name"],
            },
        },
        ..NONE
    },
    // Any OpenID Connect provider, by issuer: the standard behaviour, nothing assumed.
    Preset {
        id: "generic",
        name: "OpenID Connect",
        ..NONE
    },
];

/// The preset called `id`.
pub(crate) fn find(id: &str) -> Option<&'static Preset> {
    PRESETS.iter().find(|p| p.id == id)
}

/// The names of all presets, for error messages.
pub(crate) fn names() -> String {
    PRESETS.iter().map(|p| p.id).collect::<Vec<_>>().join(", ")
}

/// Whether `found` (a discovery document's issuer) is the multi-tenant template of
/// `configured`: the same scheme, host and path, except that the first path segment, where
/// the configured issuer names its tenant (`https://login.microsoftonline.com/common/v2.0`), is
/// `{tenantid}`.
pub(crate) fn is_tenant_template(configured: &str, found: &str) -> bool {
    let (Some((origin_a, path_a)), Some((origin_b, path_b))) =
        (split_origin(configured), split_origin(found))
    else {
        return false;
    };
    let (a, b): (Vec<&str>, Vec<&str>) = (path_a.split('/').collect(), path_b.split('/').collect());
    // Paths start with "/", so segment 0 is empty and segment 1 is the tenant.
    origin_a == origin_b
        && a.len() == b.len()
        && a.len() > 1
        && a[1] != "{tenantid}"
        && b[1] == "{tenantid}"
        && a[2..] == b[2..]
}

/// `scheme://authority` and the rest (the path, starting with `/`) of an absolute URL.
fn split_origin(url: &str) -> Option<(&str, &str)> {
    let authority = url.find("://")? + 3;
    let path = authority + url.get(authority..)?.find('/')?;
    Some(url.split_at(path))
}

/// Fills what the configuration leaves unset from the named preset.
pub(super) fn apply_preset(
    file: &Path,
    id: &str,
    mut raw: RawProvider,
) -> Result<(RawProvider, Quirks), ConfigError> {
    let key = |k: &str| format!("providers.{id}.{k}");
    let Some(name) = raw.preset.clone() else {
        if raw.tenant.is_some() {
            return Err(invalid(
                file,
                &key("tenant"),
                "is only used with preset = \"microsoft\"",
            ));
        }
        return Ok((raw, Quirks::default()));
    };
    let preset = find(&name).ok_or_else(|| {
        invalid(
            file,
            &key("preset"),
            &format!(
                "names the unknown preset \"{name}\"; use one of {}",
                names()
            ),
        )
    })?;
    if let Some(tenant) = &raw.tenant {
        if !preset.quirks.tenant_issuer {
            return Err(invalid(
                file,
                &key("tenant"),
                &format!("is not used by the {name} preset; remove it"),
            ));
        }
        if tenant.is_empty()
            || !tenant
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.')
        {
            return Err(invalid(
                file,
                &key("tenant"),
                "must be common, organizations, consumers, a tenant id or a tenant domain",
            ));
        }
    }
    let tenant = raw.tenant.as_deref().unwrap_or("common");
    let fill = |value: &mut Option<String>, default: Option<&str>| {
        if value.is_none() {
            *value = default.map(str::to_owned);
        }
    };
    fill(&mut raw.name, Some(preset.name));
    if raw.issuer.is_none() {
        raw.issuer = preset.issuer.map(|i| i.replace("{tenant}", tenant));
    }
    fill(
        &mut raw.authorization_endpoint,
        preset.authorization_endpoint,
    );
    fill(&mut raw.token_endpoint, preset.token_endpoint);
    fill(&mut raw.revocation_endpoint, preset.revocation_endpoint);
    fill(&mut raw.userinfo_endpoint, preset.userinfo_endpoint);
    fill(
        &mut raw.device_authorization_endpoint,
        preset.device_authorization_endpoint,
    );
    if raw.scopes.is_none() {
        raw.scopes = Some(preset.scopes.iter().map(|s| (*s).to_owned()).collect());
    }
    raw.redirect.get_or_insert(preset.redirect);
    for (k, v) in preset.authorize_params {
        raw.authorize_params
            .entry((*k).to_owned())
            .or_insert_with(|| (*v).to_owned());
    }
    Ok((raw, preset.quirks.clone()))
}
