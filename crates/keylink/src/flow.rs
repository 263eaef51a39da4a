//! The authorization request (RFC 6749 §4.1.1 with PKCE, RFC 7636, and OIDC's nonce) and the
//! pending flow that remembers it until the redirect comes back.
//!
//! A pending flow is persisted in a 0600 file under the data directory for at most
//! [`PENDING_FLOW_LIFETIME`] seconds, so whichever process receives the redirect can complete
//! it. Claiming one is an atomic rename: of two processes handed the same redirect, exactly
//! one wins.

use crate::ids::{AccountId, FlowId, ProviderId};
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use url::Url;
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::provider::{Metadata, ProviderConfig};
use crate::secret::{CsrfState, Nonce, PkceCodeVerifier};

/// How long a started authorization may wait for its redirect.
pub const PENDING_FLOW_LIFETIME: std::time::Duration = std::time::Duration::from_secs(600);
/// [`PENDING_FLOW_LIFETIME`] in the clock's seconds.
const PENDING_FLOW_SECS: UnixTime = PENDING_FLOW_LIFETIME.as_secs() as UnixTime;

fn random_token(bytes: usize) -> String {
    let mut buf = Zeroizing::new(vec![0u8; bytes]);
    rand::rng().fill_bytes(&mut buf);
    URL_SAFE_NO_PAD.encode(&*buf)
}

impl PkceCodeVerifier {
    /// A fresh verifier: 32 random bytes, base64url, 43 characters from the unreserved set
    /// (RFC 7636 §4.1).
    pub(crate) fn generate() -> Self {
        Self::new(random_token(32))
    }

    /// The S256 code challenge: `BASE64URL(SHA256(verifier))` (RFC 7636 §4.2). Keylink never
    /// uses `plain`.
    pub(crate) fn s256_challenge(&self) -> String {
        URL_SAFE_NO_PAD.encode(Sha256::digest(self.secret().as_bytes()))
    }
}

impl CsrfState {
    /// A fresh `state` with 256 random bits (RFC 6749 §10.10 asks for at least 128).
    pub(crate) fn generate() -> Self {
        Self::new(random_token(32))
    }
}

impl Nonce {
    /// A fresh `nonce` with 256 random bits.
    pub(crate) fn generate() -> Self {
        Self::new(random_token(32))
    }
}

/// A started authorization, waiting for its redirect.
#[derive(Debug)]
pub(crate) struct PendingFlow {
    /// Random, non-secret id, used to report the outcome to the process waiting for it.
    pub id: FlowId,
    /// Provider id.
    pub provider: ProviderId,
    /// Issuer the redirect's `iss` must equal (RFC 9207).
    pub issuer: Option<String>,
    /// The provider promised `iss` in every authorization response.
    pub require_iss: bool,
    /// The exact redirect URI sent in the request.
    pub redirect_uri: Url,
    /// `state`.
    pub state: CsrfState,
    /// PKCE verifier.
    pub verifier: PkceCodeVerifier,
    /// OIDC nonce.
    pub nonce: Nonce,
    /// When the flow started.
    pub created_at: UnixTime,
    /// The account this sign-in reconnects, when it is a reconnect.
    pub reconnect: Option<ReconnectTarget>,
    /// The scopes requested, which the account has when the token response names none.
    /// Kept with the flow, since another process may complete it.
    pub scopes: Vec<String>,
}

/// The account a reconnect must sign in as (SECURITY 45): not secret, kept with the flow so
/// whichever process completes it can check who came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ReconnectTarget {
    /// The account id.
    pub account: AccountId,
    /// Its subject at the issuer.
    pub subject: String,
    /// How the person knows it (email, else name, else subject), also the `login_hint`.
    pub shown: String,
}

impl PendingFlow {
    /// Starts a flow for `provider` and returns it with the authorization URL to open.
    pub(crate) fn start(
        provider: &ProviderConfig,
        metadata: &Metadata,
        redirect_uri: Url,
        reconnect: Option<ReconnectTarget>,
        scopes: Vec<String>,
        now: UnixTime,
    ) -> (PendingFlow, Url) {
        let flow = PendingFlow {
            id: FlowId::new(hex(&Sha256::digest(random_token(16).as_bytes())[..8])),
            provider: provider.id.clone(),
            issuer: metadata.issuer.clone(),
            require_iss: metadata.authorization_response_iss_parameter_supported,
            redirect_uri,
            state: CsrfState::generate(),
            verifier: PkceCodeVerifier::generate(),
            nonce: Nonce::generate(),
            created_at: now,
            reconnect,
            scopes,
        };
        let url = flow.authorization_url(provider, metadata);
        (flow, url)
    }

    fn authorization_url(&self, provider: &ProviderConfig, metadata: &Metadata) -> Url {
        let mut url = metadata.authorization_endpoint.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", &provider.client_id)
                .append_pair("redirect_uri", self.redirect_uri.as_str())
                .append_pair("scope", &self.scopes.join(" "))
                .append_pair("state", self.state.secret())
                .append_pair("code_challenge", &self.verifier.s256_challenge())
                .append_pair("code_challenge_method", "S256");
            if provider.is_oidc() {
                q.append_pair("nonce", self.nonce.secret());
            }
            for (name, value) in &provider.authorize_params {
                q.append_pair(name, value);
            }
            // A reconnect asks for the same person (OIDC Core §3.1.2.1 `login_hint`) and a
            // fresh login, so the browser's current session does not sign in someone else;
            // a preset's own `prompt` (Google's consent) is kept.
            if let Some(target) = &self.reconnect {
                q.append_pair("login_hint", &target.shown);
                if provider.is_oidc() && !provider.authorize_params.contains_key("prompt") {
                    q.append_pair("prompt", "login");
                }
            }
        }
        url
    }

    /// True when the flow is older than [`PENDING_FLOW_LIFETIME`].
    pub(crate) fn is_expired(&self, now: UnixTime) -> bool {
        now - self.created_at > PENDING_FLOW_SECS || now < self.created_at - 60
    }
}

/// The scopes a sign-in asks for: the provider's configured ones, then those the account
/// was granted before (a reconnect drops nothing already granted), then the extra ones,
/// each once, in that order.
pub(crate) fn requested_scopes(
    configured: &[String],
    granted: &[String],
    extra: &[String],
) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in configured.iter().chain(granted).chain(extra) {
        if !scopes.contains(scope) {
            scopes.push(scope.clone());
        }
    }
    scopes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The on-disk form of a pending flow. Lives only at the storage boundary.
#[derive(Serialize, Deserialize)]
struct PendingFlowFile<'a> {
    id: &'a str,
    provider: &'a str,
    issuer: Option<&'a str>,
    require_iss: bool,
    redirect_uri: &'a str,
    state: &'a str,
    verifier: &'a str,
    nonce: &'a str,
    created_at: UnixTime,
    #[serde(default)]
    reconnect: Option<ReconnectTarget>,
    #[serde(default)]
    scopes: Option<Vec<String>>,
}

/// Why a pending flow could not be stored or claimed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PendingError {
    /// The data directory could not be written.
    #[error("cannot write Keylink's data directory {dir} ({reason})")]
    Io {
        /// The directory.
        dir: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
}

/// How old a claimed flow file must be to count as left behind by a crashed process.
const ORPHAN_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// The pending flows in `<data dir>/pending/`.
#[derive(Debug, Clone)]
pub(crate) struct PendingFlows {
    dir: PathBuf,
}

/// What claiming a redirect's `state` found.
#[derive(Debug)]
pub(crate) enum Claim {
    /// This process now owns the flow; nobody else can complete it.
    Claimed(Box<PendingFlow>),
    /// No pending flow has this state: unsolicited, already completed, or cancelled.
    NoSuchFlow,
    /// The flow existed but is older than the lifetime; it has been removed.
    Expired,
    /// Another process claimed it first (the same redirect was delivered twice).
    AlreadyClaimed,
}

impl PendingFlows {
    /// The pending flows under `data_dir`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            dir: data_dir.join("pending"),
        }
    }

    fn io(&self, e: std::io::Error) -> PendingError {
        PendingError::Io {
            dir: self.dir.clone(),
            reason: e.to_string(),
        }
    }

    /// Stores `flow`, replacing any other pending flow of the same provider (one at a time).
    pub(crate) fn save(&self, flow: &PendingFlow) -> Result<(), PendingError> {
        crate::store::create_private_dir(&self.dir).map_err(|e| self.io(e))?;
        for (path, other) in self.read_all() {
            if other.provider == flow.provider {
                let _ = std::fs::remove_file(path);
            }
        }
        let file = PendingFlowFile {
            id: flow.id.as_str(),
            provider: flow.provider.as_str(),
            issuer: flow.issuer.as_deref(),
            require_iss: flow.require_iss,
            redirect_uri: flow.redirect_uri.as_str(),
            state: flow.state.secret(),
            verifier: flow.verifier.secret(),
            nonce: flow.nonce.secret(),
            created_at: flow.created_at,
            reconnect: flow.reconnect.clone(),
            scopes: Some(flow.scopes.clone()),
        };
        let bytes = Zeroizing::new(serde_json::to_vec(&file).map_err(|e| self.io(e.into()))?);
        crate::store::write_atomic(&self.dir.join(format!("{}.json", flow.id)), &bytes)
            .map_err(|e| self.io(e))
    }

    /// Whether the flow with this id is still waiting for its redirect (not claimed,
    /// cancelled or pruned).
    pub(crate) fn contains(&self, id: &FlowId) -> bool {
        self.dir.join(format!("{id}.json")).exists()
    }

    /// Removes the flow with this id, if it is still pending (a cancelled or timed-out link).
    pub(crate) fn remove(&self, id: &FlowId) {
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.json")));
    }

    fn read_all(&self) -> Vec<(PathBuf, PendingFlow)> {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return Vec::new();
        };
        entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter_map(|p| read_flow(&p).map(|f| (p, f)))
            .collect()
    }

    /// Finds the flow whose state equals `state` (compared in constant time) and whose redirect
    /// URI `accepts`, and claims it atomically: the file is renamed away, so a second delivery
    /// of the same redirect finds nothing.
    pub(crate) fn claim(
        &self,
        state: &str,
        now: UnixTime,
        accepts: impl Fn(&PendingFlow) -> bool,
    ) -> Claim {
        let mut outcome = Claim::NoSuchFlow;
        for (path, flow) in self.read_all() {
            if !flow.state.ct_eq(state) || !accepts(&flow) {
                continue;
            }
            let claimed = path.with_extension(format!("claimed-{}", std::process::id()));
            if std::fs::rename(&path, &claimed).is_err() {
                outcome = Claim::AlreadyClaimed;
                continue;
            }
            let flow = read_flow(&claimed);
            let _ = std::fs::remove_file(&claimed);
            return match flow {
                Some(flow) if flow.is_expired(now) => Claim::Expired,
                Some(flow) if flow.state.ct_eq(state) => Claim::Claimed(Box::new(flow)),
                _ => Claim::AlreadyClaimed,
            };
        }
        outcome
    }

    /// Deletes expired flows left behind by processes that ended, and flows a process
    /// claimed but did not live to finish (`*.claimed-<pid>`: they hold a verifier). A live
    /// claimer holds its file for microseconds, so one older than a minute is an orphan.
    pub(crate) fn prune(&self, now: UnixTime) {
        for (path, flow) in self.read_all() {
            if flow.is_expired(now) {
                let _ = std::fs::remove_file(path);
            }
        }
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let claimed = path
                .extension()
                .and_then(|x| x.to_str())
                .is_some_and(|x| x.starts_with("claimed-"));
            let orphaned = entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age >= ORPHAN_AGE);
            if claimed && orphaned {
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

fn read_flow(path: &Path) -> Option<PendingFlow> {
    let bytes = crate::store::read_private(path).ok()?;
    let f: PendingFlowFile<'_> = serde_json::from_slice(&bytes).ok()?;
    Some(PendingFlow {
        id: FlowId::new(f.id),
        provider: ProviderId::new(f.provider),
        issuer: f.issuer.map(str::to_owned),
        require_iss: f.require_iss,
        redirect_uri: Url::parse(f.redirect_uri).ok()?,
        state: CsrfState::new(f.state),
        verifier: PkceCodeVerifier::new(f.verifier),
        nonce: Nonce::new(f.nonce),
        created_at: f.created_at,
        reconnect: f.reconnect,
        // A flow saved before scopes were kept with it asked for the configured ones, which
        // `finish` uses when this is empty.
        scopes: f.scopes.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests;
