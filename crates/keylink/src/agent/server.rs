//! The serving side: the socket, the peer check, and answers from one [`Keylink`] that is
//! rebuilt or emptied whenever what it was built from changes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use zeroize::Zeroizing;

use crate::app::{AppIdentity, Environment};
use crate::client::Keylink;
use crate::error::ErrorCode;
use crate::store::Account;

use super::protocol::{
    self, Answer, MAX_REQUEST_BYTES, Request, VERSION, check_private_dir, my_uid, peer_uid,
};

/// At most this many requests are answered at once; more are closed unanswered, and their
/// callers do the work themselves.
const MAX_CONNECTIONS: usize = 32;

/// How long a connected peer may take to send its request.
const REQUEST_WAIT: Duration = Duration::from_secs(5);

/// Why the agent cannot serve.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AgentError {
    /// `XDG_RUNTIME_DIR` is not set to an absolute path.
    #[error("XDG_RUNTIME_DIR is not set, so there is no private place for the agent's socket")]
    NoRuntimeDir,
    /// The socket's path is longer than a Unix socket address holds.
    #[error("the agent's socket path {} is longer than 107 bytes", .0.display())]
    PathTooLong(PathBuf),
    /// The socket's directory is not private to this user.
    #[error("the agent's directory {} {problem}", path.display())]
    UnsafeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
    },
    /// Another agent already answers on the socket.
    #[error("another Keylink agent already serves {}", .0.display())]
    AlreadyServing(PathBuf),
    /// Something other than a socket is in the socket's place.
    #[error("{} exists and is not a socket", .0.display())]
    NotASocket(PathBuf),
    /// The socket could not be created or used.
    #[error("the agent's socket {} failed: {reason}", path.display())]
    Socket {
        /// The socket's path.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
}

impl AgentError {
    /// What the person can do about it, when there is something.
    pub fn remedy(&self) -> Option<String> {
        match self {
            AgentError::NoRuntimeDir => {
                Some("run the agent inside your login session, where XDG_RUNTIME_DIR is set".into())
            }
            AgentError::PathTooLong(_) => Some("use a shorter XDG_RUNTIME_DIR".into()),
            AgentError::UnsafeDir { path, .. } => Some(format!(
                "remove {} (nothing in it is kept) and start the agent again",
                path.display()
            )),
            AgentError::AlreadyServing(_) => {
                Some("use the running agent, or stop it before starting another".into())
            }
            AgentError::NotASocket(path) => Some(format!("move {} away", path.display())),
            AgentError::Socket { .. } => None,
        }
    }
}

/// A bound agent, ready to [`serve`](Agent::serve).
pub struct Agent {
    listener: Arc<UnixListener>,
    path: PathBuf,
    /// The inode of the socket this agent created, removed when it stops; `None` for a
    /// socket handed over by systemd, which systemd removes.
    created: Option<(u64, u64)>,
    served: Arc<Served>,
    stop: Arc<StopSignal>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("path", &self.path).finish()
    }
}

/// Stops a serving agent from another thread.
#[derive(Debug, Clone)]
pub struct AgentStopper {
    listener: Arc<UnixListener>,
    stop: Arc<StopSignal>,
}

impl AgentStopper {
    /// Asks the agent to stop: it answers no further request, and [`Agent::serve`] returns
    /// after removing the socket it created.
    pub fn stop(&self) {
        self.stop.raise();
        // Every thread waiting in `accept` wakes with an error and sees the flag; a process
        // that connects from now on is refused at once and asks the keychain.
        let _ = rustix::net::shutdown(&*self.listener, rustix::net::Shutdown::Read);
    }
}

impl Agent {
    /// Creates the agent's socket for `identity` at [`socket_path`](super::socket_path):
    /// the directory is created private, or refused when it exists and is not; a socket
    /// left by an agent that is gone is replaced; a live agent is
    /// [`AgentError::AlreadyServing`].
    pub fn bind(identity: AppIdentity, env: Environment) -> Result<Agent, AgentError> {
        let path = protocol::socket_path(&identity, &env)?;
        let socket_err = |e: std::io::Error| AgentError::Socket {
            path: path.clone(),
            reason: e.to_string(),
        };
        let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
        match std::fs::DirBuilder::new().mode_private().create(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => {
                return Err(AgentError::Socket {
                    path: dir,
                    reason: e.to_string(),
                });
            }
        }
        check_private_dir(&dir).map_err(|problem| AgentError::UnsafeDir {
            path: dir.clone(),
            problem,
        })?;
        match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.file_type().is_socket() => {
                if UnixStream::connect(&path).is_ok() {
                    return Err(AgentError::AlreadyServing(path));
                }
                // Nobody listens: an agent that was killed left it behind.
                std::fs::remove_file(&path).map_err(socket_err)?;
            }
            Ok(_) => return Err(AgentError::NotASocket(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(socket_err(e)),
        }
        let listener = UnixListener::bind(&path).map_err(socket_err)?;
        // The directory already keeps everyone else out; the socket's own mode says so too.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .map_err(socket_err)?;
        let meta = std::fs::symlink_metadata(&path).map_err(socket_err)?;
        let mut agent = Self::serving(listener, path, identity, env);
        agent.created = Some((meta.dev(), meta.ino()));
        Ok(agent)
    }

    /// An agent on a socket someone else created and listens on, such as the one systemd
    /// passes to a socket-activated service. Its directory must still be private to this
    /// user; the socket is left in place when the agent stops.
    pub fn from_listener(
        listener: UnixListener,
        identity: AppIdentity,
        env: Environment,
    ) -> Result<Agent, AgentError> {
        let expected = protocol::socket_path(&identity, &env)?;
        let path = listener
            .local_addr()
            .ok()
            .and_then(|a| a.as_pathname().map(Path::to_owned))
            .unwrap_or(expected);
        let dir = path.parent().unwrap_or(Path::new("/")).to_owned();
        check_private_dir(&dir).map_err(|problem| AgentError::UnsafeDir { path: dir, problem })?;
        Ok(Self::serving(listener, path, identity, env))
    }

    fn serving(
        listener: UnixListener,
        path: PathBuf,
        identity: AppIdentity,
        env: Environment,
    ) -> Agent {
        Agent {
            listener: Arc::new(listener),
            path,
            created: None,
            served: Arc::new(Served::new(identity, env)),
            stop: Arc::default(),
        }
    }

    /// The socket's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A handle that stops this agent from another thread.
    pub fn stopper(&self) -> AgentStopper {
        AgentStopper {
            listener: Arc::clone(&self.listener),
            stop: Arc::clone(&self.stop),
        }
    }

    /// Answers requests until [`AgentStopper::stop`], on up to 32 threads at once. Peers of
    /// another uid are closed without a byte (SO_PEERCRED).
    pub fn serve(self) -> Result<(), AgentError> {
        tracing::info!(socket = %self.path.display(), "token agent serving");
        let acceptors = Arc::new(Acceptors {
            listener: self.listener,
            served: self.served,
            stop: self.stop,
            idle: AtomicUsize::new(0),
            running: AtomicUsize::new(0),
        });
        Acceptors::add_thread(&acceptors);
        // The threads that answer stop as they finish what they are answering; none is
        // waited for.
        acceptors.stop.wait();
        if let Some((dev, ino)) = self.created {
            // Only the socket this agent created: another agent may have replaced it.
            if std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.dev() == dev && m.ino() == ino)
            {
                let _ = std::fs::remove_file(&self.path);
            }
        }
        tracing::info!(socket = %self.path.display(), "token agent stopped");
        Ok(())
    }
}

/// The stop flag, and the wait for it.
#[derive(Debug, Default)]
struct StopSignal {
    raised: Mutex<bool>,
    changed: std::sync::Condvar,
}

impl StopSignal {
    fn raise(&self) {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner()) = true;
        self.changed.notify_all();
    }

    fn is_raised(&self) -> bool {
        *self.raised.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait(&self) {
        let mut raised = self.raised.lock().unwrap_or_else(|p| p.into_inner());
        while !*raised {
            raised = self.changed.wait(raised).unwrap_or_else(|p| p.into_inner());
        }
    }
}

/// The threads that answer: each accepts a connection itself and answers it, so a request
/// wakes one thread and waits for no hand-over. When the last idle one takes a connection it
/// starts another first (up to [`MAX_CONNECTIONS`]), so one waiting on a refresh holds up no
/// other request.
struct Acceptors {
    listener: Arc<UnixListener>,
    served: Arc<Served>,
    stop: Arc<StopSignal>,
    /// Threads waiting in `accept`.
    idle: AtomicUsize,
    /// Threads started and not yet stopped.
    running: AtomicUsize,
}

impl Acceptors {
    fn run(this: &Arc<Acceptors>) {
        loop {
            this.idle.fetch_add(1, Ordering::SeqCst);
            let accepted = this.listener.accept();
            let idle = this.idle.fetch_sub(1, Ordering::SeqCst) - 1;
            if this.stop.is_raised() {
                break;
            }
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, mostly: let the peers' timeouts run out
                    // rather than spin.
                    tracing::warn!(error = %e, "the agent could not accept a connection");
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
            };
            match peer_uid(&stream) {
                Ok(uid) if uid == my_uid() => {}
                Ok(uid) => {
                    tracing::warn!(uid, "the agent refused a connection from another user");
                    continue;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the agent could not tell who connected, so it refused the connection");
                    continue;
                }
            }
            if idle == 0 {
                Self::add_thread(this);
            }
            this.served.handle(stream);
        }
        this.running.fetch_sub(1, Ordering::SeqCst);
    }

    fn add_thread(this: &Arc<Acceptors>) {
        let running = this
            .running
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                (n < MAX_CONNECTIONS).then_some(n + 1)
            });
        if running.is_err() {
            // The next request waits for one of them; its caller's timeout is long enough
            // for a refresh.
            tracing::warn!("the agent is answering {MAX_CONNECTIONS} requests already");
            return;
        }
        let next = Arc::clone(this);
        let spawned = std::thread::Builder::new()
            .name("keylink-agent".into())
            .spawn(move || Self::run(&next));
        if let Err(e) = spawned {
            this.running.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(error = %e, "the agent could not start a thread for a request");
        }
    }
}

trait PrivateDir {
    fn mode_private(&mut self) -> &mut Self;
}

impl PrivateDir for std::fs::DirBuilder {
    fn mode_private(&mut self) -> &mut Self {
        std::os::unix::fs::DirBuilderExt::mode(self, 0o700)
    }
}

/// What identifies a file's version: a change of content, owner or mode changes it, and so
/// does replacing it (the index is replaced on every write). `None` for a missing file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp(Option<FileVersion>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileVersion {
    device: u64,
    inode: u64,
    modified: (i64, i64),
    changed: (i64, i64),
    size: u64,
    mode: u32,
    owner: u32,
}

fn stamp(path: &Path) -> FileStamp {
    FileStamp(std::fs::metadata(path).ok().map(|m| FileVersion {
        device: m.dev(),
        inode: m.ino(),
        modified: (m.mtime(), m.mtime_nsec()),
        changed: (m.ctime(), m.ctime_nsec()),
        size: m.size(),
        mode: m.mode(),
        owner: m.uid(),
    }))
}

/// What the agent answers from, and what it was built from.
struct Served {
    identity: AppIdentity,
    env: Environment,
    config_files: Vec<PathBuf>,
    /// The data directory as the environment names it; `None` when it names none.
    data_dir: Option<PathBuf>,
    index: PathBuf,
    current: Mutex<Current>,
}

#[derive(Default)]
struct Current {
    keylink: Option<Arc<Keylink>>,
    config: Vec<FileStamp>,
    accounts: Option<Arc<Vec<Account>>>,
    /// The index the accounts were read from.
    index: Option<FileStamp>,
}

impl Served {
    fn new(identity: AppIdentity, env: Environment) -> Self {
        let data_dir = identity.default_data_dir(&env).ok();
        let index = data_dir
            .as_deref()
            .map(crate::store::Index::new)
            .map(|i| i.path().to_owned())
            .unwrap_or_default();
        Served {
            config_files: protocol::config_files(&env),
            identity,
            env,
            data_dir,
            index,
            current: Mutex::default(),
        }
    }

    fn handle(&self, stream: UnixStream) {
        let _ = stream.set_read_timeout(Some(REQUEST_WAIT));
        let _ = stream.set_write_timeout(Some(REQUEST_WAIT));
        let mut line = Vec::new();
        let read = BufReader::new(&stream)
            .take(MAX_REQUEST_BYTES)
            .read_until(b'\n', &mut line);
        let answer = match read {
            Ok(_) => match serde_json::from_slice::<Request>(&line) {
                Ok(request) => self.answer(&request),
                Err(_) => not_served("the request is not one this agent understands"),
            },
            Err(_) => return,
        };
        let mut bytes = Zeroizing::new(Vec::with_capacity(1024));
        if serde_json::to_writer(&mut *bytes, &answer).is_ok() {
            bytes.push(b'\n');
            let _ = (&stream).write_all(&bytes);
        }
    }

    fn answer(&self, request: &Request) -> Answer {
        if request.version != VERSION {
            return not_served("the agent speaks another protocol version");
        }
        if self.data_dir.as_deref() != Some(request.data_dir.as_path())
            || request.config != self.config_files
        {
            return not_served("the caller uses another data directory or configuration");
        }
        let Some((keylink, accounts)) = self.current() else {
            return not_served("the agent's configuration or account index cannot be used");
        };
        let before = stamp(&self.index);
        let min_ttl = Duration::from_secs(request.min_ttl_secs);
        let result = crate::context::find_account(&accounts, &request.account)
            .cloned()
            .and_then(|account| {
                let token = keylink.access_token(&account.id, min_ttl)?;
                // A refresh just now moved the expiry: read it again.
                if stamp(&self.index) != before {
                    return Ok((keylink.account_by_id(&account.id)?, token));
                }
                Ok((account, token))
            });
        match result {
            Ok((account, token)) => {
                tracing::debug!(account = %account.id, "the agent answered a token request");
                Answer::Token {
                    account: account.id.to_string(),
                    access_token: Zeroizing::new(token.secret().to_owned()),
                    expires_at: account.expires_at,
                    warnings: keylink.config().warnings.clone(),
                }
            }
            Err(e) => {
                // The caller reports it, from the keychain: the store of record. After a
                // keychain or configuration error what this agent holds is rebuilt on the
                // next request, so a keychain that restarted or a data directory fixed
                // meanwhile is used afresh.
                tracing::debug!(error = %e, "the agent did not serve a token request");
                if matches!(e.code(), ErrorCode::Keychain | ErrorCode::Config) {
                    *self.lock() = Current::default();
                }
                not_served("the agent could not answer; the caller asks the keychain")
            }
        }
    }

    /// The Keylink to answer from and the accounts it knows: built again when a
    /// configuration file changed; the accounts read again, and the tokens it holds
    /// dropped, when the account index changed (an unlink, a relink, a refresh elsewhere, an
    /// account that needs linking again).
    fn current(&self) -> Option<(Arc<Keylink>, Arc<Vec<Account>>)> {
        let config: Vec<FileStamp> = self.config_files.iter().map(|f| stamp(f)).collect();
        let index = stamp(&self.index);
        let mut current = self.lock();
        if current.keylink.is_none() || current.config != config {
            *current = Current::default();
            let built = Keylink::builder(self.identity.clone())
                .environment(self.env.clone())
                .build();
            match built {
                Ok(keylink) => current.keylink = Some(Arc::new(keylink)),
                Err(e) => {
                    tracing::debug!(error = %e, "the agent's configuration cannot be used");
                    return None;
                }
            }
            current.config = config;
        }
        let keylink = Arc::clone(current.keylink.as_ref()?);
        if current.index.as_ref() != Some(&index) {
            keylink.forget_cached_tokens();
            current.accounts = None;
            match keylink.accounts() {
                Ok(accounts) => current.accounts = Some(Arc::new(accounts)),
                Err(e) => {
                    tracing::debug!(error = %e, "the agent cannot read the account index");
                    return None;
                }
            }
            current.index = Some(index);
        }
        Some((keylink, Arc::clone(current.accounts.as_ref()?)))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Current> {
        self.current.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn not_served(reason: &str) -> Answer {
    Answer::NotServed {
        reason: reason.to_owned(),
    }
}
