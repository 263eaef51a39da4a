//! The URL scope of `keylink:allow-fetch`, set per capability as the http plugin's is:
//!
//! ```json
//! { "identifier": "keylink:allow-fetch",
//!   "allow": [{ "url": "https://api.example.com/v1/files/*" }],
//!   "deny": [{ "url": "https://api.example.com/v1/files/private/*" }] }
//! ```
//!
//! A URL a `deny` entry matches is refused; with `allow` entries, only a URL one of them
//! matches is allowed; without any, every URL is. On top of that, the URL's origin must be in
//! the account's provider's `api_origins` (the core checks that): the scope narrows what
//! `api_origins` allows, never widens it.

use serde::Deserialize;
use url::Url;

use crate::{Error, Result};

/// One `allow` or `deny` entry: `url` is matched against the whole request URL, where `*`
/// stands for any run of characters (`/` included).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FetchScopeEntry {
    /// The pattern, such as `https://api.example.com/v1/files/*`.
    pub url: String,
}

impl tauri::ipc::ScopeObjectMatch for FetchScopeEntry {
    type Input = Url;

    fn matches(&self, url: &Url) -> bool {
        glob_matches(self.url.as_bytes(), url.as_str().as_bytes())
    }
}

/// Refuses `url` unless the window's scope for `fetch` (the command's entries and the
/// plugin's global ones together) allows it.
pub(crate) fn check(
    url: &Url,
    command: &tauri::ipc::CommandScope<FetchScopeEntry>,
    global: &tauri::ipc::GlobalScope<FetchScopeEntry>,
) -> Result<()> {
    use tauri::ipc::ScopeObjectMatch;
    let mut denies = command.denies().iter().chain(global.denies());
    let mut allows = command.allows().iter().chain(global.allows()).peekable();
    let allowed = !denies.any(|entry| entry.matches(url))
        && (allows.peek().is_none() || allows.any(|entry| entry.matches(url)));
    if allowed {
        Ok(())
    } else {
        Err(Error::new(
            keylink::ErrorCode::NotAllowed,
            "this window may not fetch that URL: the scope of keylink:allow-fetch in its \
             capability does not allow it, so nothing was sent",
        ))
    }
}

/// `*` in `pattern` matches any run of bytes; everything else matches itself.
fn glob_matches(pattern: &[u8], text: &[u8]) -> bool {
    // The usual two-pointer match with one backtrack point: linear in practice, and never
    // exponential whatever the pattern.
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((star_p, star_t)) = star {
            p = star_p + 1;
            t = star_t + 1;
            star = Some((star_p, star_t + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests;
