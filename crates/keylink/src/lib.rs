//! Keylink links a person's cloud accounts to a desktop app: OAuth 2.0 authorization code with
//! PKCE in the system browser (RFC 8252), the redirect through a private-use URL scheme or a
//! loopback listener, OpenID Connect ID token validation, and tokens kept in the OS keychain so
//! a fresh access token is always one call away.
//!
//! An app builds one [`Keylink`] with [`Keylink::builder`] (its identity, then its
//! configuration, and optionally network settings, clock, secret store and browser opener),
//! runs a [`LinkSession`] to link an account, and asks for a fresh access token whenever it
//! needs one. Async code uses the same API through [`AsyncKeylink`] (`keylink.into_async()`).
//!
//! The root holds what every app uses; the rest lives in one module per concept:
//! [`provider`] (configuration, admin policy, presets, discovery), [`link`] (the link
//! session and its errors), [`token`] (access tokens and other secrets), [`store`] (linked
//! accounts and the keychain), [`api`] (calling a provider's API with an account's token),
//! [`network`], [`browser`], [`clock`], `platform` (the URL-scheme handler on freedesktop
//! systems) and [`error`].
//!
//!
//! ```no_run
//! use std::time::Duration;
//! use keylink::{Keylink, LinkProgress, LinkStart};
//! # fn main() -> Result<(), keylink::Error> {
//! // Your app's identity and configuration; the environment only where you want it.
//! let config = keylink::Config::parse(
//!     r#"[providers.work]
//!        issuer = "https://login.example.com"
//!        client_id = "my-desktop-client""#,
//! )?;
//! let keylink = Keylink::builder(keylink::AppIdentity::new("com.example.notes")?)
//!     .config(config)
//!     .environment(keylink::Environment::capture(std::env::var_os))
//!     .build()?;
//! // 1. Reserve the app's link session: one at a time, cancellable from any thread.
//! let session = keylink.link(LinkStart::browser(keylink::ProviderId::new("work")))?;
//! let cancel = session.canceller(); // e.g. for a Cancel button
//! # let _ = cancel;
//! // 2. Run it: the system browser opens at the provider; the redirect comes back through
//! //    the loopback listener, or through the OS running your app (or `keylink open-url`)
//! //    with the URL, which hands it to `Keylink::deliver_redirect`.
//! let account = session.run(Duration::from_secs(300), |progress| match progress {
//!     LinkProgress::BrowserOpened => eprintln!("Continue in your browser..."),
//!     LinkProgress::Exchanging => eprintln!("Signed in; finishing..."),
//!     _ => {}
//! })?;
//! // 3. Any time later, in any process of the app: a fresh access token.
//! let token = keylink.access_token(&account.id, Duration::from_secs(60))?;
//! # let _ = token;
//! # Ok(()) }
//! ```

#![warn(missing_docs, unreachable_pub)]

// The concepts, one module each; the root re-exports what every embedder touches.
#[cfg(unix)]
pub mod agent;
pub mod api;
pub mod browser;
pub mod clock;
pub mod error;
pub mod link;
pub mod network;
#[cfg(unix)]
pub mod platform;
pub mod provider;
pub mod store;
pub mod token;

// The implementation behind them.
mod app;
mod asynchronous;
mod authorization;
mod callback;
mod client;
mod context;
#[cfg(unix)]
mod desktop_entry;
mod device;
mod exchange;
mod flow;
// Entry points for the fuzz targets in `fuzz/` (SECURITY 56); not part of the API.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
mod http;
mod id_token;
mod identity;
mod ids;
mod logout;
#[cfg(test)]
mod mutate;
mod outcome;
mod secret;
mod session;
#[cfg(test)]
mod test_harness;
mod text;
mod token_request;
mod tokens;

pub use app::{AppIdentity, Environment, IdentityError};
pub use asynchronous::AsyncKeylink;
pub use client::{Keylink, KeylinkBuilder};
pub use error::{Error, ErrorCode};
pub use ids::{AccountId, IssuerUrl, ProviderId};
pub use link::{LinkProgress, LinkSession, LinkStart};
pub use provider::Config;
pub use store::Account;
pub use token::AccessToken;
