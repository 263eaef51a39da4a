//! Tokens and other secret values. Every secret lives in a type whose `Debug` prints
//! `Name([redacted])`, which is not `Serialize`, compares in constant time and zeroizes its
//! memory on drop; the value is reachable only through `.secret()`. A fresh access token is
//! one call away, [`Keylink::access_token`](crate::Keylink::access_token), which refreshes
//! (RFC 6749 §6) when the stored one has less than the asked-for time left.
//!
//! ```no_run
//! use std::time::Duration;
//! # fn run(keylink: &keylink::Keylink, account: &keylink::AccountId) -> Result<(), keylink::Error> {
//! let token: keylink::token::AccessToken =
//!     keylink.access_token(account, Duration::from_secs(60))?;
//! let header = format!("Bearer {}", token.secret());
//! # let _ = header;
//! # Ok(()) }
//! ```

pub use crate::logout::SignOut;
pub use crate::secret::{AccessToken, ClientSecret, IdToken, RefreshToken, SecretString};
pub use crate::tokens::{
    ApiToken, MAX_RETRY_WAIT, REFRESH_ATTEMPTS, Revocation, TokenRequest, UnlinkReport,
};
