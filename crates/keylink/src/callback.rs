//! The redirect back from the provider: untrusted input, parsed strictly and matched exactly
//! against the redirect URI of the flow (RFC 8252 §7, RFC 9700 §4.1), plus the one-shot
//! loopback listener (RFC 8252 §7.3).

use crate::text::printable;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use url::Url;

use crate::secret::{AuthorizationCode, CsrfState};

/// Longest redirect URL accepted.
pub const MAX_REDIRECT_LEN: usize = 8 * 1024;

/// Why a redirect was refused. Messages never contain the code or the state.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedirectError {
    /// Longer than [`MAX_REDIRECT_LEN`]: not something a provider sends.
    #[error("the redirect URL is longer than 8 KiB and was refused")]
    TooLong,
    /// Not a URL, or contains control characters (NUL, newlines).
    #[error("the redirect URL is malformed and was refused")]
    Malformed,
    /// Has a fragment or user info, which a genuine redirect never carries.
    #[error("the redirect URL carries a fragment or user info and was refused")]
    UnexpectedPart,
    /// Scheme, host, port or path differ from the redirect URI that was registered.
    #[error("the redirect URL does not match Keylink's redirect URI and was refused")]
    RedirectMismatch,
    /// A parameter appears twice (parameter pollution).
    #[error("the redirect URL repeats the parameter `{0}` and was refused")]
    DuplicateParameter(String),
    /// No `state` parameter.
    #[error("the redirect URL has no `state` parameter and was refused")]
    MissingState,
    /// No `code` and no `error`.
    #[error("the redirect URL has neither a `code` nor an `error` and was refused")]
    MissingCode,
    /// No pending flow has this state: a redirect that this user did not ask for, one already
    /// used, or one whose link was cancelled.
    #[error(
        "this redirect does not belong to a sign-in started here (or was already used) and was refused"
    )]
    Unsolicited,
    /// The flow it belongs to is older than 10 minutes.
    #[error("the sign-in took longer than 10 minutes and expired")]
    Expired,
    /// `iss` differs from the issuer the flow was started with (RFC 9207 mix-up defence).
    #[error(
        "the redirect names a different issuer than the one the sign-in was started with and was refused (possible mix-up attack)"
    )]
    IssuerMismatch,
    /// The provider promised `iss` (RFC 9207) but the redirect has none.
    #[error(
        "the redirect lacks the `iss` parameter that this provider always sends and was refused"
    )]
    MissingIssuer,
    /// The provider reported an error (RFC 6749 §4.1.2.1), e.g. the user denied access.
    #[error("the provider refused the sign-in: {error}{}", description.as_deref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Provider {
        /// The `error` code, sanitised.
        error: String,
        /// `error_description`, sanitised to plain text.
        description: Option<String>,
    },
}

impl RedirectError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            RedirectError::TooLong => "start the link again".to_owned(),
            RedirectError::Malformed => "start the link again".to_owned(),
            RedirectError::UnexpectedPart => "start the link again".to_owned(),
            RedirectError::DuplicateParameter(..) => "start the link again".to_owned(),
            RedirectError::MissingCode => "start the link again".to_owned(),
            RedirectError::Unsolicited => "start the link again in the app".to_owned(),
            RedirectError::Expired => "start the link again".to_owned(),
            RedirectError::IssuerMismatch => "start the link again".to_owned(),
            RedirectError::MissingIssuer => "start the link again".to_owned(),
            RedirectError::Provider { .. } => "try linking again".to_owned(),
            _ => return None,
        })
    }
}

/// The parameters of a redirect that passed the structural checks. The state has not been
/// matched against a pending flow yet.
#[derive(Debug)]
pub(crate) struct AuthorizationResponse {
    /// The URL without its query, for matching against the flow's redirect URI.
    pub base: Url,
    /// `state`.
    pub state: CsrfState,
    /// `code`, when the provider granted access.
    pub code: Option<AuthorizationCode>,
    /// `iss` (RFC 9207).
    pub iss: Option<String>,
    /// `error` and `error_description`, raw; shown only after the state matched.
    pub error: Option<(String, Option<String>)>,
}

/// Parses a redirect URL strictly: size cap, no control characters, no fragment or user info,
/// every parameter at most once, `state` required, and either `code` or `error`.
pub(crate) fn parse_redirect(raw: &str) -> Result<AuthorizationResponse, RedirectError> {
    if raw.len() > MAX_REDIRECT_LEN {
        return Err(RedirectError::TooLong);
    }
    if raw.chars().any(|c| c.is_control() || c == ' ') {
        return Err(RedirectError::Malformed);
    }
    if raw.contains('#') {
        return Err(RedirectError::UnexpectedPart);
    }
    let url = Url::parse(raw).map_err(|_| RedirectError::Malformed)?;
    if !url.username().is_empty() || url.password().is_some() || url.fragment().is_some() {
        return Err(RedirectError::UnexpectedPart);
    }
    let mut state = None;
    let mut code = None;
    let mut iss = None;
    let mut error = None;
    let mut error_description = None;
    let mut seen = std::collections::HashSet::new();
    for (name, value) in url.query_pairs() {
        if !seen.insert(name.to_string()) {
            return Err(RedirectError::DuplicateParameter(printable(&name, 40)));
        }
        if value.chars().any(|c| c.is_control()) {
            return Err(RedirectError::Malformed);
        }
        match &*name {
            "state" => state = Some(CsrfState::new(value.into_owned())),
            "code" => code = Some(AuthorizationCode::new(value.into_owned())),
            "iss" => iss = Some(value.into_owned()),
            "error" => error = Some(value.into_owned()),
            "error_description" => error_description = Some(value.into_owned()),
            _ => {}
        }
    }
    let state = state.ok_or(RedirectError::MissingState)?;
    if code.is_none() && error.is_none() {
        return Err(RedirectError::MissingCode);
    }
    let mut base = url;
    base.set_query(None);
    Ok(AuthorizationResponse {
        base,
        state,
        code,
        iss,
        error: error.map(|e| (e, error_description)),
    })
}

/// Exact redirect URI matching: scheme case-insensitively (URL parsing lower-cases it), host,
/// port and path exactly. For loopback redirects the port is part of the flow's URI.
pub(crate) fn redirect_matches(base: &Url, expected: &Url) -> bool {
    base.scheme() == expected.scheme()
        && base.host_str() == expected.host_str()
        && base.port_or_known_default() == expected.port_or_known_default()
        && base.path() == expected.path()
}

/// Checks `iss` against the flow's issuer, byte for byte (RFC 9207 §2.4).
pub(crate) fn check_issuer(
    iss: Option<&str>,
    expected: Option<&str>,
    required: bool,
) -> Result<(), RedirectError> {
    match (iss, expected) {
        (Some(found), Some(expected)) if found == expected => Ok(()),
        (Some(_), _) => Err(RedirectError::IssuerMismatch),
        (None, Some(_)) if required => Err(RedirectError::MissingIssuer),
        (None, _) => Ok(()),
    }
}

/// A one-shot HTTP listener on `127.0.0.1` with an ephemeral port (RFC 8252 §7.3, §8.3).
#[derive(Debug)]
pub(crate) struct LoopbackListener {
    listener: TcpListener,
    port: u16,
}

/// What the listener's handler decided about one request.
#[derive(Debug)]
pub(crate) enum LoopbackVerdict<T> {
    /// The redirect was ours: answer with this page and stop listening.
    Done(T, String),
    /// Not ours (wrong state, wrong path, ...): answer 400 and keep listening.
    Rejected(String),
}

/// Why waiting on the loopback listener ended without a result.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoopbackError {
    /// Binding 127.0.0.1 failed.
    #[error("cannot listen on 127.0.0.1 for the redirect ({0})")]
    Bind(String),
    /// No valid redirect arrived in time.
    #[error("no redirect arrived within the time limit")]
    TimedOut,
    /// The caller cancelled.
    #[error("the link was cancelled")]
    Cancelled,
}

impl LoopbackError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            LoopbackError::Bind(..) => "check that loopback networking works".to_owned(),
            LoopbackError::TimedOut => "start the link again".to_owned(),
            _ => return None,
        })
    }
}

/// How long one connection may take to send its request line and headers (SECURITY 36): a
/// browser sends them at once, a slowloris client is dropped.
pub(crate) const LOOPBACK_REQUEST_DEADLINE: Duration = Duration::from_secs(2);
/// The most connections read at the same time; more are closed unread.
const MAX_READING: usize = 16;
/// The most of a request (line and headers) that is read.
const MAX_REQUEST_BYTES: usize = 16 * 1024;
/// How often the serving loop looks at the deadline and the cancel flag.
const TICK: Duration = Duration::from_millis(25);

impl LoopbackListener {
    /// Binds the literal `127.0.0.1` on an ephemeral port.
    pub(crate) fn bind() -> Result<Self, LoopbackError> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .map_err(|e| LoopbackError::Bind(e.to_string()))?;
        let port = listener
            .local_addr()
            .map_err(|e| LoopbackError::Bind(e.to_string()))?
            .port();
        listener
            .set_nonblocking(true)
            .map_err(|e| LoopbackError::Bind(e.to_string()))?;
        Ok(Self { listener, port })
    }

    /// The redirect URI to advertise: the same literal address that is bound, and `path`
    /// (the provider's own, `/callback/<provider-id>`).
    pub(crate) fn redirect_uri(&self, path: &str) -> Url {
        let mut url = Url::parse(&format!("http://127.0.0.1:{}/", self.port))
            .unwrap_or_else(|_| unreachable!("a loopback URL with a port always parses"));
        url.set_path(path);
        url
    }

    /// Serves requests until `handle` accepts one, the deadline passes, or `cancelled` says so.
    /// `handle` gets the full request URL.
    ///
    /// Each connection is read on its own thread with a total deadline of
    /// [`LOOPBACK_REQUEST_DEADLINE`], so a slow client never delays the browser's request or
    /// the deadline and cancel checks. On Linux a connection whose socket belongs to another
    /// user is closed before it is read: another local user can see the authorization URL
    /// (state included) in the browser's command line.
    pub(crate) fn serve<T>(
        self,
        deadline: Instant,
        cancelled: impl Fn() -> bool,
        mut handle: impl FnMut(&str) -> LoopbackVerdict<T>,
    ) -> Result<T, LoopbackError> {
        let (tx, rx) = mpsc::channel::<(TcpStream, String)>();
        let reading = Arc::new(AtomicUsize::new(0));
        loop {
            if cancelled() {
                return Err(LoopbackError::Cancelled);
            }
            if Instant::now() >= deadline {
                return Err(LoopbackError::TimedOut);
            }
            while let Ok((stream, peer)) = self.listener.accept() {
                if !peer_is_this_user(&stream, peer) {
                    tracing::warn!("refused a loopback connection from another local user");
                    continue;
                }
                if reading.load(Ordering::SeqCst) >= MAX_READING {
                    tracing::warn!("too many loopback connections at once; closing one unread");
                    continue;
                }
                reading.fetch_add(1, Ordering::SeqCst);
                let (tx, reading) = (tx.clone(), reading.clone());
                std::thread::spawn(move || {
                    if let Some(target) = read_request_target(&stream) {
                        let _ = tx.send((stream, target));
                    }
                    reading.fetch_sub(1, Ordering::SeqCst);
                });
            }
            match rx.recv_timeout(TICK) {
                Ok((stream, target)) => {
                    if let Some(result) = self.answer(stream, &target, &mut handle) {
                        return Ok(result);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
            }
        }
    }

    fn answer<T>(
        &self,
        stream: TcpStream,
        target: &str,
        handle: &mut impl FnMut(&str) -> LoopbackVerdict<T>,
    ) -> Option<T> {
        let _ = stream.set_write_timeout(Some(LOOPBACK_REQUEST_DEADLINE));
        let mut stream = &stream;
        let url = format!("http://127.0.0.1:{}{}", self.port, target);
        match handle(&url) {
            LoopbackVerdict::Done(result, page) => {
                respond(&mut stream, 200, &page);
                Some(result)
            }
            LoopbackVerdict::Rejected(message) => {
                respond(&mut stream, 400, &message);
                None
            }
        }
    }
}

/// Reads one request's line and headers within [`LOOPBACK_REQUEST_DEADLINE`] in total and
/// returns its target, or answers 400 (or nothing, for a client too slow to deserve one).
fn read_request_target(stream: &TcpStream) -> Option<String> {
    let started = Instant::now();
    let _ = stream.set_nonblocking(false);
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    let mut reader = stream;
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = LOOPBACK_REQUEST_DEADLINE.checked_sub(started.elapsed())?;
        if left.is_zero() || buf.len() > MAX_REQUEST_BYTES {
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    let line_end = buf.iter().position(|&b| b == b'\n').unwrap_or(buf.len());
    let line = std::str::from_utf8(&buf[..line_end]).ok()?.trim_end();
    let mut parts = line.split(' ');
    let mut writer = stream;
    match (parts.next(), parts.next()) {
        (Some("GET"), Some(target)) if target.starts_with('/') => Some(target.to_owned()),
        _ => {
            let _ = stream.set_write_timeout(Some(LOOPBACK_REQUEST_DEADLINE));
            respond(&mut writer, 400, "Bad request.");
            None
        }
    }
}

/// True when the connecting socket belongs to the user running Keylink (SECURITY 36). On
/// Linux the owner of the peer's socket is looked up in `/proc/net/tcp`; when it cannot be
/// found the connection is refused. Other platforms have no such table: there the state
/// and the exact redirect match remain the defence.
#[cfg(target_os = "linux")]
fn peer_is_this_user(stream: &TcpStream, peer: std::net::SocketAddr) -> bool {
    let Ok(local) = stream.local_addr() else {
        return false;
    };
    let me = rustix::process::geteuid().as_raw();
    match procfs::net::tcp() {
        Ok(entries) => entries
            .iter()
            .find(|e| e.local_address == peer && e.remote_address == local)
            .is_some_and(|e| e.uid == me),
        Err(e) => {
            tracing::warn!(error = %e, "cannot read /proc/net/tcp; refusing the connection");
            false
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn peer_is_this_user(_stream: &TcpStream, _peer: std::net::SocketAddr) -> bool {
    true
}

fn respond(stream: &mut &TcpStream, status: u16, text: &str) {
    let reason = if status == 200 { "OK" } else { "Bad Request" };
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Keylink</title>\
         <body style=\"font-family:system-ui,sans-serif;margin:3em\"><p>{}</p></body>",
        html_escape(text)
    );
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n\
         Content-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\
         Content-Security-Policy: default-src 'none'; style-src 'unsafe-inline'\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.flush();
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests;
