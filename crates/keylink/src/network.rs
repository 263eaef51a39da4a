//! How Keylink reaches providers: [`NetworkSettings`] (extra CA certificates, a proxy, a
//! timeout), from the configuration's `[network]` table, the admin policy, or the app.
//! Answers are capped at [`MAX_BODY_BYTES`] and every request at its timeout, body included.
//!
//! ```no_run
//! use std::time::Duration;
//! # fn run(identity: keylink::AppIdentity) -> Result<(), keylink::Error> {
//! let network = keylink::network::NetworkSettings {
//!     timeout: Some(Duration::from_secs(10)),
//!     ..Default::default()
//! };
//! let keylink = keylink::Keylink::builder(identity).network(network).build()?;
//! # let _ = keylink;
//! # Ok(()) }
//! ```

pub use crate::http::{DEFAULT_TIMEOUT, HttpError, MAX_BODY_BYTES, NetworkSettings};
