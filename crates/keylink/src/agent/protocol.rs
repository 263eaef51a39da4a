//! What travels over the agent's socket, and where the socket is.
//!
//! One request per connection, one JSON line each way. The request names the account as the
//! person typed it and says which data directory and configuration files the asking process
//! would use; the answer is a token or "not served".

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::app::{AppIdentity, Environment};
use crate::clock::UnixTime;

use super::server::AgentError;

/// The protocol version both sides speak; another one is not served.
pub(super) const VERSION: u32 = 1;

/// The longest request the agent reads.
pub(super) const MAX_REQUEST_BYTES: u64 = 8 * 1024;

/// The longest answer the client reads (tokens can be large JWTs).
pub(super) const MAX_ANSWER_BYTES: u64 = 256 * 1024;

/// A request for an account's access token.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub(super) struct Request {
    pub(super) version: u32,
    /// The account's id or email, as given to `keylink token`.
    pub(super) account: String,
    /// Refresh first when the token expires within this many seconds.
    pub(super) min_ttl_secs: u64,
    /// The data directory the asking process would use.
    pub(super) data_dir: PathBuf,
    /// The configuration files it would read, in order (whether they exist or not).
    pub(super) config: Vec<PathBuf>,
}

/// The agent's answer.
#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum Answer {
    Token {
        account: String,
        access_token: Zeroizing<String>,
        expires_at: Option<UnixTime>,
        /// What the configuration's policy refused, as every front end says it.
        warnings: Vec<String>,
    },
    /// Not answered here; the reason has no secret in it.
    NotServed { reason: String },
}

/// Where the agent of `identity` listens: `$XDG_RUNTIME_DIR/keylink/<identifier>.sock`.
///
/// `XDG_RUNTIME_DIR` is the per-user directory the session manager creates (mode 0700,
/// removed at logout); without it there is no agent.
pub fn socket_path(identity: &AppIdentity, env: &Environment) -> Result<PathBuf, AgentError> {
    let runtime = env
        .absolute("XDG_RUNTIME_DIR")
        .ok_or(AgentError::NoRuntimeDir)?;
    let path = runtime
        .join("keylink")
        .join(format!("{}.sock", identity.identifier()));
    // sockaddr_un's sun_path holds 108 bytes with the terminating NUL.
    if path.as_os_str().len() > 107 {
        return Err(AgentError::PathTooLong(path));
    }
    Ok(path)
}

/// The configuration files a process with `env` would read, whether they exist or not.
pub(super) fn config_files(env: &Environment) -> Vec<PathBuf> {
    crate::provider::Config::candidate_files(env)
}

/// Whether `dir` is a directory of this user's that nobody else can enter: the socket's
/// directory, checked by both sides before they trust what is in it.
pub(super) fn check_private_dir(dir: &Path) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::symlink_metadata(dir).map_err(|e| e.to_string())?;
    if !meta.is_dir() {
        return Err("is not a directory".into());
    }
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(format!(
            "belongs to user id {}, not to you ({me})",
            meta.uid()
        ));
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!("other users can enter it (mode {mode:03o})"));
    }
    Ok(())
}

/// The uid of the process at the other end of `socket` (for a listening agent, the one that
/// created the socket).
pub(super) fn peer_uid(socket: &std::os::unix::net::UnixStream) -> std::io::Result<u32> {
    Ok(rustix::net::sockopt::socket_peercred(socket)?.uid.as_raw())
}

/// This process's effective uid.
pub(super) fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}
