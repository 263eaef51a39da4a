//! The asking side: a token from a running agent, or `None` so that the caller does the work
//! itself.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::app::{AppIdentity, Environment};
use crate::clock::UnixTime;
use crate::ids::AccountId;
use crate::secret::AccessToken;

use super::protocol::{
    self, Answer, MAX_ANSWER_BYTES, Request, VERSION, check_private_dir, my_uid, peer_uid,
};

/// How long to wait for the answer: as long as a refresh at the provider may take, which the
/// agent does when the token it holds is about to expire.
const ANSWER_WAIT: Duration = Duration::from_secs(150);

/// An access token the agent answered with.
#[derive(Debug)]
#[non_exhaustive]
pub struct AgentAnswer {
    /// The account it belongs to.
    pub account: AccountId,
    /// The token, valid for at least the asked-for time.
    pub access_token: AccessToken,
    /// When it expires, as the account index says.
    pub expires_at: Option<UnixTime>,
    /// What the system policy refused of the configuration, one sentence each, for the
    /// front end to show as it shows them without an agent.
    pub warnings: Vec<String>,
}

/// Asks the agent of `identity` for a token of `account` (an id or an email) that stays
/// valid for at least `min_ttl`.
///
/// `None` when no agent runs, when its directory or its uid is not this user's, or when it
/// did not serve the request (another data directory or configuration, an unknown account,
/// one that needs linking again, a keychain or provider error): the caller then asks the
/// keychain, which says what is wrong. Connecting never waits: a missing or busy agent costs
/// one failed `connect`.
pub fn ask(
    identity: &AppIdentity,
    env: &Environment,
    account: &str,
    min_ttl: Duration,
) -> Option<AgentAnswer> {
    let path = protocol::socket_path(identity, env).ok()?;
    let request = Request {
        version: VERSION,
        account: account.to_owned(),
        min_ttl_secs: min_ttl.as_secs(),
        data_dir: identity.default_data_dir(env).ok()?,
        config: protocol::config_files(env),
    };
    match exchange(&path, &request) {
        Ok(answer) => answer,
        Err(reason) => {
            tracing::debug!(reason, "no answer from the token agent");
            None
        }
    }
}

/// Whether an agent of `identity` serves, as `keylink doctor` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AgentStatus {
    /// An agent of this user answers on the socket.
    Serving(PathBuf),
    /// No agent listens there; tokens come from the keychain.
    NotRunning(PathBuf),
    /// `XDG_RUNTIME_DIR` is not set, so there is no agent.
    NoRuntimeDir,
    /// The socket's directory is not private to this user, so it is not used.
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// The socket belongs to another user, so it is not used.
    OtherUser {
        /// The socket.
        path: PathBuf,
        /// Its owner's uid.
        uid: u32,
    },
}

/// Looks for the agent of `identity` without asking it anything: the same checks as [`ask`]
/// makes before it sends a request.
pub fn status(identity: &AppIdentity, env: &Environment) -> AgentStatus {
    let path = match protocol::socket_path(identity, env) {
        Ok(path) => path,
        Err(_) => return AgentStatus::NoRuntimeDir,
    };
    let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
    match check_private_dir(&dir) {
        Ok(()) => {}
        Err(_) if !dir.exists() => return AgentStatus::NotRunning(path),
        Err(problem) => return AgentStatus::UnsafeDir { path: dir, problem },
    }
    match connect(&path).map(|s| peer_uid(&s)) {
        Ok(Ok(uid)) if uid == my_uid() => AgentStatus::Serving(path),
        Ok(Ok(uid)) => AgentStatus::OtherUser { path, uid },
        _ => AgentStatus::NotRunning(path),
    }
}

fn exchange(path: &Path, request: &Request) -> Result<Option<AgentAnswer>, String> {
    // Before anything is sent: an agent in a directory another user controls could be theirs.
    check_private_dir(path.parent().unwrap_or(Path::new("/")))?;
    let stream = connect(path).map_err(|e| e.to_string())?;
    match peer_uid(&stream) {
        Ok(uid) if uid == my_uid() => {}
        Ok(uid) => return Err(format!("the socket belongs to user id {uid}")),
        Err(e) => return Err(e.to_string()),
    }
    stream
        .set_read_timeout(Some(ANSWER_WAIT))
        .and_then(|()| stream.set_write_timeout(Some(Duration::from_secs(5))))
        .map_err(|e| e.to_string())?;
    let mut line = serde_json::to_vec(request).map_err(|e| e.to_string())?;
    line.push(b'\n');
    (&stream).write_all(&line).map_err(|e| e.to_string())?;
    let mut answer = Zeroizing::new(Vec::new());
    BufReader::new(&stream)
        .take(MAX_ANSWER_BYTES)
        .read_until(b'\n', &mut answer)
        .map_err(|e| e.to_string())?;
    match serde_json::from_slice::<Answer>(&answer) {
        Ok(Answer::Token {
            account,
            access_token,
            expires_at,
            warnings,
        }) => {
            let account = AccountId::new(account);
            Ok(Some(AgentAnswer {
                account,
                access_token: AccessToken::new(access_token.as_str()),
                expires_at,
                warnings,
            }))
        }
        Ok(Answer::NotServed { reason }) => Err(reason),
        Err(_) if answer.is_empty() => Err("the agent closed the connection".into()),
        Err(_) => Err("the agent's answer is not one this client understands".into()),
    }
}

/// Connects without waiting: a Unix socket whose agent is gone refuses at once, and one whose
/// backlog is full answers `EAGAIN` rather than blocking.
fn connect(path: &Path) -> std::io::Result<UnixStream> {
    use rustix::net::{AddressFamily, SocketAddrUnix, SocketFlags, SocketType};
    let socket = rustix::net::socket_with(
        AddressFamily::UNIX,
        SocketType::STREAM,
        SocketFlags::NONBLOCK | SocketFlags::CLOEXEC,
        None,
    )?;
    rustix::net::connect(&socket, &SocketAddrUnix::new(path)?)?;
    let stream = UnixStream::from(socket);
    stream.set_nonblocking(false)?;
    Ok(stream)
}
