//! The token agent while the app runs ([`Builder::token_agent`](crate::Builder::token_agent)):
//! `keylink token` and the credential helpers get their tokens from the app's memory instead
//! of the keychain. Unix only; the core's [`keylink::agent`] does the serving.

use std::sync::{Arc, Mutex};
#[cfg(unix)]
use std::time::Duration;

/// How long the app's exit waits for the agent to remove its socket.
#[cfg(unix)]
const STOP_WAIT: Duration = Duration::from_secs(2);

/// Where the agent is: its thread binds, serves and then removes its socket; the app's exit
/// stops it.
#[derive(Clone, Default)]
pub(crate) struct TokenAgent(Arc<Mutex<Phase>>);

#[derive(Default)]
enum Phase {
    #[default]
    Starting,
    #[cfg(unix)]
    Serving {
        stopper: keylink::agent::AgentStopper,
        /// Disconnected when the serving thread ends, its socket removed.
        done: std::sync::mpsc::Receiver<()>,
    },
    Stopped,
}

impl TokenAgent {
    /// Serves `identity`'s tokens on a thread of its own. It answers as `keylink token` would
    /// in this process's environment (the CLI's configuration files, data directory and
    /// keychain), so a caller with another environment is not served and asks the keychain.
    #[cfg(unix)]
    pub(crate) fn start(&self, identity: keylink::AppIdentity) {
        use keylink::agent::{Agent, AgentError};
        let serving = self.clone();
        let spawned = std::thread::Builder::new()
            .name("keylink-token-agent".into())
            .spawn(move || {
                let env = keylink::Environment::capture(std::env::var_os);
                let agent = match Agent::bind(identity, env) {
                    Ok(agent) => agent,
                    // `keylink agent` or its systemd socket: that one answers, as well.
                    Err(AgentError::AlreadyServing(path)) => {
                        tracing::info!(socket = %path.display(), "another token agent serves already");
                        return;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "the token agent cannot serve");
                        return;
                    }
                };
                let (_ended, done) = std::sync::mpsc::channel::<()>();
                {
                    let mut state = serving.lock();
                    match *state {
                        // The app exited while the socket was made: it is removed at once.
                        Phase::Stopped => agent.stopper().stop(),
                        _ => {
                            *state = Phase::Serving {
                                stopper: agent.stopper(),
                                done,
                            }
                        }
                    }
                }
                if let Err(e) = agent.serve() {
                    tracing::warn!(error = %e, "the token agent stopped");
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "the token agent's thread could not start");
        }
    }

    /// Stops the agent and waits (briefly) until it has removed its socket: the app is
    /// exiting, and the process ends as soon as this returns.
    pub(crate) fn stop(&self) {
        let previous = std::mem::replace(&mut *self.lock(), Phase::Stopped);
        #[cfg(unix)]
        if let Phase::Serving { stopper, done } = previous {
            stopper.stop();
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = done.recv_timeout(STOP_WAIT) {
                tracing::warn!("the token agent did not stop in time; its socket may be left");
            }
        }
        #[cfg(not(unix))]
        let _ = previous;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Phase> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
