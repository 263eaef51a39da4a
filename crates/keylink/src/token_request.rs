//! What an access token is to be limited to: plain data, below the modules that use it (the
//! provider's configured APIs, the refresh grant, the token source). Checking what a caller
//! asks for, which can fail, is the token source's (`tokens/limited.rs`).

use std::collections::BTreeSet;

use sha2::{Digest, Sha256};

/// What an access token is to be limited to: some of the account's granted scopes (RFC 6749
/// §6) and the API it is for (RFC 8707 `resource`). The empty request is the account's own
/// access token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRequest {
    pub(crate) scopes: BTreeSet<String>,
    /// As given: providers compare resource indicators as strings, so `https://api.example.com`
    /// must not become `https://api.example.com/`.
    pub(crate) resource: Option<String>,
}

impl TokenRequest {
    /// The empty request: the account's own access token.
    pub fn new() -> Self {
        Self::default()
    }

    /// The request a configured API's values make; they were checked when the configuration
    /// was read.
    pub(crate) fn for_api(resource: Option<&str>, scopes: &[String]) -> Self {
        TokenRequest {
            scopes: scopes.iter().cloned().collect(),
            resource: resource.map(str::to_owned),
        }
    }

    /// The scopes asked for, sorted.
    pub fn scopes(&self) -> impl Iterator<Item = &String> {
        self.scopes.iter()
    }

    /// The API asked for.
    pub fn resource_uri(&self) -> Option<&str> {
        self.resource.as_deref()
    }

    /// Whether this is the account's own access token (no scope, no resource).
    pub fn is_empty(&self) -> bool {
        self.scopes.is_empty() && self.resource.is_none()
    }

    /// What tells this request's token apart in the keychain and in memory: a hash of the
    /// sorted scopes and the resource (the URI itself may be long or hold characters a
    /// keychain key should not).
    pub(crate) fn digest(&self) -> String {
        let mut hash = Sha256::new();
        for scope in &self.scopes {
            hash.update(scope.as_bytes());
            hash.update(b" ");
        }
        hash.update(b"\n");
        if let Some(resource) = &self.resource {
            hash.update(resource.as_bytes());
        }
        hash.finalize()[..16]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
}
