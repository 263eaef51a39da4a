//! The token agent: fresh access tokens from memory, over a Unix socket only this user can
//! reach, for tools that ask on every operation (git, kubectl, docker, scripts).
//!
//! Without it each `keylink token` pays a D-Bus connection, a key exchange with the Secret
//! Service and two calls to it. The agent holds one [`Keylink`](crate::Keylink) and answers
//! from its memory, under the same rules as every other process:
//!
//! - **The keychain stays the store of record.** The agent keeps access tokens in memory only
//!   (zeroized when dropped) and writes nothing of its own. Refreshing goes through the same
//!   cross-process lock as the CLI's and the app's, so refreshes stay single-flight.
//! - **Changes take effect at once.** Every request first looks at the account index and the
//!   configuration files (a `stat` each): an unlink, a relink, an account marked
//!   `needs_relink`, a refresh by another process or an edited configuration drops what the
//!   agent holds before it answers.
//! - **Only this user.** The socket is `$XDG_RUNTIME_DIR/keylink/<app identifier>.sock`, in a
//!   directory of mode 0700 that must belong to this user, and the agent refuses every peer
//!   whose uid is not its own (`SO_PEERCRED`). The client checks the directory and the agent's
//!   uid the same way before it sends anything.
//! - **It answers only what it can answer alike.** A request from a process whose data
//!   directory or configuration files differ from the agent's, and every error, get "not
//!   served": the caller then does the work itself and reports exactly what it would have
//!   reported without an agent.
//!
//! ```no_run
//! use std::time::Duration;
//! use keylink::agent::{self, Agent};
//! use keylink::{AppIdentity, Environment};
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let env = Environment::capture(std::env::var_os);
//! // The serving side (`keylink agent`, or an app while it runs):
//! let server = Agent::bind(AppIdentity::keylink(), env.clone())?;
//! let stopper = server.stopper();
//! std::thread::spawn(move || server.serve());
//! // Any process of the same user:
//! if let Some(answer) = agent::ask(&AppIdentity::keylink(), &env, "alice@example.com", Duration::from_secs(60)) {
//!     println!("{}", answer.access_token.secret());
//! }
//! stopper.stop();
//! # Ok(()) }
//! ```

mod client;
mod protocol;
mod server;

pub use client::{AgentAnswer, AgentStatus, ask, status};
pub use protocol::socket_path;
pub use server::{Agent, AgentError, AgentStopper};

#[cfg(test)]
mod tests;
