//! Linking an account: a [`LinkSession`] runs one sign-in (OAuth 2.0 authorization code with
//! PKCE in the system browser, RFC 8252, or device sign-in, RFC 8628) from [`LinkStart`] to a
//! linked [`Account`](crate::Account), reporting [`LinkProgress`] on the way. The redirect
//! comes back through the loopback listener, or through the OS starting the app with the URL,
//! which the app hands to [`Keylink::deliver_redirect`](crate::Keylink::deliver_redirect).
//!
//! ```no_run
//! use std::time::Duration;
//! use keylink::link::{LinkProgress, LinkStart};
//! # fn run(keylink: &keylink::Keylink) -> Result<(), keylink::Error> {
//! let session = keylink.link(LinkStart::browser(keylink::ProviderId::new("work")))?;
//! let cancel = session.canceller(); // for a Cancel button, from any thread
//! # let _ = cancel;
//! let account = session.run(Duration::from_secs(300), |progress| {
//!     if let LinkProgress::BrowserOpened = progress {
//!         eprintln!("Continue in your browser...");
//!     }
//! })?;
//! println!("linked {}", account.id);
//! # Ok(()) }
//! ```

pub use crate::callback::{LoopbackError, MAX_REDIRECT_LEN, RedirectError};
pub use crate::device::{DeviceAuthorization, DeviceError};
pub use crate::exchange::ExchangeError;
pub use crate::flow::{PENDING_FLOW_LIFETIME, PendingError};
pub use crate::id_token::IdTokenError;
pub use crate::identity::ConnectionCheck;
pub use crate::session::{
    Delivery, LinkCanceller, LinkProgress, LinkSession, LinkStart, SessionId, SignIn,
};
