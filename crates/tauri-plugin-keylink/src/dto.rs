//! What crosses IPC to the webview: summaries of providers and accounts, link progress and
//! API answers, serialised as the JS API's types (`guest-js/index.ts`). No token, verifier,
//! state or code is in any of them. A host's own commands may return them too:
//!
//! ```no_run
//! use tauri_plugin_keylink::{KeylinkExt, dto::Account};
//!
//! /// The linked accounts as the page sees them, with nothing secret in them.
//! #[tauri::command]
//! async fn accounts(app: tauri::AppHandle) -> Result<Vec<Account>, String> {
//!     let keylink = app.keylink().map_err(|e| e.to_string())?;
//!     let accounts = keylink.accounts().await.map_err(|e| e.to_string())?;
//!     Ok(accounts.iter().map(Account::from).collect())
//! }
//! ```

use base64::Engine;
use serde::{Deserialize, Serialize};

/// A configured provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Provider {
    /// Provider id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// `deep-link` or `loopback`.
    pub redirect: &'static str,
    /// The redirect URI to register at the provider.
    pub redirect_uri: String,
    /// The host people sign in at (the issuer's, else the authorization endpoint's).
    pub host: Option<String>,
    /// The provider offers device sign-in (a code entered on another device), as far as its
    /// discovery, started with the app, has found.
    pub device_sign_in: bool,
    /// Set by the system policy.
    pub from_policy: bool,
    /// The scopes an app may ask for later with `link`'s or `reconnect`'s `scopes`, as the
    /// configuration's `optional_scopes` lists them.
    pub optional_scopes: Vec<String>,
}

impl Provider {
    pub(crate) fn new(
        keylink: &keylink::Keylink,
        p: &keylink::provider::ProviderConfig,
        device_sign_in: bool,
    ) -> Self {
        let host = p
            .issuer
            .as_deref()
            .and_then(|i| url::Url::parse(i).ok())
            .or_else(|| p.endpoints.authorization_endpoint.clone())
            .and_then(|u| u.host_str().map(str::to_owned));
        Provider {
            id: p.id.to_string(),
            name: p.name.clone(),
            host,
            device_sign_in,
            redirect: match p.redirect {
                keylink::provider::RedirectKind::DeepLink => "deep-link",
                keylink::provider::RedirectKind::Loopback => "loopback",
            },
            redirect_uri: keylink.redirect_uri_to_register(p),
            from_policy: p.from_policy,
            optional_scopes: p.optional_scopes.clone(),
        }
    }
}

/// A linked account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Account {
    /// Account id.
    pub id: String,
    /// Provider id.
    pub provider: String,
    /// Email, when the provider shared it.
    pub email: Option<String>,
    /// Display name, when the provider shared it.
    pub name: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When it was linked (RFC 3339).
    pub linked_at: String,
    /// When its access token expires (RFC 3339).
    pub expires_at: Option<String>,
    /// `ok` or `needs_relink`.
    pub status: keylink::store::AccountStatus,
}

impl From<&keylink::Account> for Account {
    fn from(a: &keylink::Account) -> Self {
        Account {
            id: a.id.to_string(),
            provider: a.provider.to_string(),
            email: a.email.clone(),
            name: a.name.clone(),
            scopes: a.scopes.clone(),
            linked_at: keylink::clock::rfc3339(a.linked_at),
            expires_at: a.expires_at.map(keylink::clock::rfc3339),
            status: a.status,
        }
    }
}

/// A step of a link in progress, sent over the command's channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(
    tag = "kind",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Progress {
    /// The session started; `session` names it for `cancel_link`.
    Starting {
        /// The session id.
        session: String,
    },
    /// The browser was opened at the provider.
    BrowserOpened,
    /// The code to enter on another device.
    CodeShown {
        /// Where to enter it.
        verification_uri: String,
        /// The code.
        user_code: String,
        /// The page with the code filled in, when the provider has one.
        verification_uri_complete: Option<String>,
        /// That page (or else `verification_uri`) as a QR code, an SVG document, for a phone
        /// to scan; `None` when the address is too long for one.
        qr_svg: Option<String>,
    },
    /// Waiting for the person, at most this many seconds more.
    Waiting {
        /// Seconds until the link gives up.
        seconds_left: u64,
    },
    /// The sign-in came back; finishing.
    Exchanging,
}

impl Progress {
    pub(crate) fn from_core(progress: &keylink::LinkProgress) -> Option<Self> {
        Some(match progress {
            keylink::LinkProgress::BrowserOpened => Progress::BrowserOpened,
            keylink::LinkProgress::CodeShown(code) => Progress::CodeShown {
                qr_svg: qr_svg(
                    code.verification_uri_complete
                        .as_ref()
                        .unwrap_or(&code.verification_uri)
                        .as_str(),
                ),
                verification_uri: code.verification_uri.to_string(),
                user_code: code.user_code.clone(),
                verification_uri_complete: code
                    .verification_uri_complete
                    .as_ref()
                    .map(ToString::to_string),
            },
            keylink::LinkProgress::Waiting { deadline } => Progress::Waiting {
                seconds_left: deadline
                    .saturating_duration_since(std::time::Instant::now())
                    .as_secs(),
            },
            keylink::LinkProgress::Exchanging => Progress::Exchanging,
            // Starting is sent with the session id; the URL of a session without a browser
            // is never sent to the webview.
            _ => return None,
        })
    }
}

/// `text` as a QR code in SVG.
fn qr_svg(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::svg::Color<'_>>()
            .min_dimensions(180, 180)
            .quiet_zone(true)
            .build(),
    )
}

/// What changed in the accounts: the list as it is now and, for a redirect no link session
/// here was waiting for (a cold start, say), what it did. Such a change is kept until a
/// listener takes it, so one that came before the page loaded is not lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountsChanged {
    /// All linked accounts.
    pub accounts: Vec<Account>,
    /// The account a redirect the OS delivered linked.
    pub linked: Option<Account>,
    /// A redirect the OS delivered that linked nothing.
    pub error: Option<crate::Error>,
    /// The provider's confirmation, delivered by the OS, that the person signed out there
    /// (after `unlink` with `signOut`); it changed nothing here.
    pub signed_out: Option<SignedOut>,
}

/// A provider that confirmed the person signed out there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedOut {
    /// Provider id.
    pub provider: String,
    /// Its display name.
    pub name: String,
}

/// What `checkConnection` found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Connection {
    /// The account, as it is now.
    pub account: Account,
    /// The host of the user endpoint that answered.
    pub answered_by: String,
    /// The subject (`sub`) it answered for.
    pub subject: String,
    /// Email in the answer.
    pub email: Option<String>,
    /// Name in the answer.
    pub name: Option<String>,
    /// When the access token used expires (RFC 3339).
    pub expires_at: Option<String>,
    /// When the check was made (RFC 3339).
    pub checked_at: String,
}

/// What `unlink` did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Unlinked {
    /// The account removed.
    pub account: Account,
    /// Whether the provider revoked the grant.
    pub revoked: bool,
    /// Why revoking failed (the account was removed here anyway).
    pub warning: Option<String>,
    /// What became of signing out at the provider; `None` unless `unlink` was asked to.
    pub sign_out: Option<SignOut>,
    /// A sentence for the person about [`Unlinked::sign_out`] (never the sign-out URL, which
    /// holds the ID token: SECURITY 50).
    pub sign_out_message: Option<String>,
}

/// What became of signing out at the provider when unlinking with `signOut`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SignOut {
    /// The browser opened the provider's sign-out page.
    Opened,
    /// The provider offers no sign-out (no `end_session_endpoint`).
    NotSupported,
    /// No ID token is stored for the account, so the provider cannot be told whose session
    /// to end.
    NoIdToken,
    /// Signing out failed; the message says why.
    Failed,
}

impl SignOut {
    /// What the core reported, and a sentence for the person naming the provider.
    pub(crate) fn from_core(outcome: &keylink::token::SignOut, provider: &str) -> (Self, String) {
        match outcome {
            keylink::token::SignOut::Opened => (
                SignOut::Opened,
                format!(
                    "Your browser opened {provider}'s sign-out page; confirm there to end your session."
                ),
            ),
            keylink::token::SignOut::NotSupported => (
                SignOut::NotSupported,
                format!(
                    "{provider} offers no sign-out, so you are still signed in there; sign out on its website."
                ),
            ),
            keylink::token::SignOut::NoIdToken => (
                SignOut::NoIdToken,
                format!(
                    "{provider} cannot be told whose session to end (it gave no ID token), so you are still signed in there; sign out on its website."
                ),
            ),
            keylink::token::SignOut::Failed(reason) => (
                SignOut::Failed,
                crate::error::sentence(&format!(
                    "signing out at {provider} failed ({reason}), so you may still be signed in there; sign out on its website"
                )),
            ),
            // A kind this version does not know: said as a failure, never as done.
            _ => (
                SignOut::Failed,
                format!(
                    "Signing out at {provider} could not be confirmed; sign out on its website."
                ),
            ),
        }
    }
}

/// `fetch(account, url, init)`'s request.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FetchInit {
    /// The method (default `GET`).
    pub method: Option<String>,
    /// Request headers as name-value pairs.
    #[serde(default)]
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: Option<String>,
    /// The scopes the token is limited to; none for those configured for the URL's origin.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// The API the token is limited to (RFC 8707); `None` for the one configured for the
    /// URL's origin.
    pub resource: Option<String>,
}

/// `fetch`'s answer; the JS side makes a `Response` of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FetchResponse {
    /// HTTP status.
    pub status: u16,
    /// Headers as name-value pairs.
    pub headers: Vec<(String, String)>,
    /// The body, base64.
    pub body: String,
}

impl From<keylink::api::ApiResponse> for FetchResponse {
    fn from(r: keylink::api::ApiResponse) -> Self {
        FetchResponse {
            status: r.status,
            headers: r.headers,
            body: base64::engine::general_purpose::STANDARD.encode(&r.body),
        }
    }
}
