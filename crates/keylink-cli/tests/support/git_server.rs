//! A git server on 127.0.0.1 for the credential-helper tests: the real `git http-backend`
//! (CGI) behind HTTP Basic authentication whose password must be an access token the test
//! provider accepts, asked at its userinfo endpoint as a resource server would.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use base64::Engine;
use tempfile::TempDir;

use super::http_server::{Request, read_request, write_response};
use super::{Idp, wait_output};

/// The credentials of one request, as the server saw them.
#[derive(Clone)]
pub struct Presented {
    pub username: String,
    pub password: String,
    /// Whether the server let the request through.
    pub accepted: bool,
}

/// What the server saw, in order.
#[derive(Clone, Default)]
pub struct Seen {
    /// Every request that carried Basic credentials.
    pub presented: Vec<Presented>,
    /// How many requests were answered 401.
    pub unauthorized: usize,
    /// Every request, as `METHOD target`.
    pub requests: Vec<String>,
    /// How many request bodies came chunked (a push larger than git's `http.postBuffer`).
    pub chunked_bodies: usize,
    /// What `git http-backend` wrote on stderr, when it wrote anything.
    pub backend_errors: Vec<String>,
}

/// A running server; dropping it stops its threads.
pub struct GitServer {
    /// `http://127.0.0.1:PORT`, the origin git's credential request names.
    pub url: String,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
    _dir: TempDir,
}

struct Shared {
    root: PathBuf,
    home: PathBuf,
    backend: PathBuf,
    userinfo: String,
    http: reqwest::blocking::Client,
    seen: Mutex<Seen>,
    // Tokens the provider accepted once: asking again for every request of a clone would
    // only slow the tests down.
    valid: Mutex<HashSet<String>>,
    revoked: Mutex<HashSet<String>>,
    revoke_next: AtomicBool,
    stop: AtomicBool,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

impl GitServer {
    /// Serves the bare repositories made with [`GitServer::create_repo`] to whoever presents
    /// an access token `idp` accepts.
    pub fn start(idp: &Idp) -> GitServer {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("repositories");
        let home = dir.path().join("home");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&home).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let shared = Arc::new(Shared {
            root,
            home,
            backend: http_backend(),
            userinfo: format!("{}/me", idp.issuer),
            http: idp.http().clone(),
            seen: Mutex::new(Seen::default()),
            valid: Mutex::new(HashSet::new()),
            revoked: Mutex::new(HashSet::new()),
            revoke_next: AtomicBool::new(false),
            stop: AtomicBool::new(false),
            workers: Mutex::new(Vec::new()),
        });
        let accepting = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                if accepting.stop.load(Ordering::SeqCst) {
                    break;
                }
                let serving = accepting.clone();
                let worker = std::thread::spawn(move || serving.serve(stream));
                let mut workers = accepting.workers.lock().unwrap();
                workers.retain(|w| !w.is_finished());
                workers.push(worker);
            }
        });
        GitServer {
            url,
            shared,
            accept: Some(accept),
            _dir: dir,
        }
    }

    /// The URL git clones `name` from.
    pub fn repo_url(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// The bare repository `name` on disk.
    pub fn repo_path(&self, name: &str) -> PathBuf {
        self.shared.root.join(name)
    }

    /// Makes the bare repository `name` (branch `main`) with one commit holding `files`.
    pub fn create_repo(&self, name: &str, files: &[(&str, &str)]) {
        let bare = self.repo_path(name);
        self.git(
            &self.shared.root,
            &["init", "-q", "--bare", "-b", "main", name],
        );
        let work = tempfile::tempdir().unwrap();
        self.git(work.path(), &["init", "-q", "-b", "main", "."]);
        for (path, content) in files {
            std::fs::write(work.path().join(path), content).unwrap();
        }
        self.git(work.path(), &["add", "."]);
        self.git(work.path(), &["commit", "-q", "-m", "Initial commit"]);
        self.git(
            work.path(),
            &["push", "-q", bare.to_str().unwrap(), "main:main"],
        );
    }

    /// The subjects of the commits on `main` of the bare repository `name`, newest first.
    pub fn log(&self, name: &str) -> Vec<String> {
        let git_dir = self.repo_path(name);
        self.git(
            &self.shared.root,
            &[
                "--git-dir",
                git_dir.to_str().unwrap(),
                "log",
                "--format=%s",
                "main",
            ],
        )
        .lines()
        .map(str::to_owned)
        .collect()
    }

    /// The next token presented is refused with 401, valid or not, and so is every later
    /// request presenting it: a token revoked at the server.
    pub fn revoke_next_token(&self) {
        self.shared.revoke_next.store(true, Ordering::SeqCst);
    }

    pub fn seen(&self) -> Seen {
        self.shared.seen.lock().unwrap().clone()
    }

    /// `git ARGS` in `dir`, on the server's side (no credentials involved); returns stdout.
    fn git(&self, dir: &Path, args: &[&str]) -> String {
        let child = Command::new("git")
            .args(args)
            .current_dir(dir)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.shared.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Server")
            .env("GIT_AUTHOR_EMAIL", "server@example.test")
            .env("GIT_COMMITTER_NAME", "Server")
            .env("GIT_COMMITTER_EMAIL", "server@example.test")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let out = wait_output(child, Duration::from_secs(30));
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

impl Drop for GitServer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        let workers = std::mem::take(&mut *self.shared.workers.lock().unwrap());
        for worker in workers {
            let _ = worker.join();
        }
    }
}

/// `git-http-backend` of the git on PATH.
fn http_backend() -> PathBuf {
    let out = Command::new("git")
        .arg("--exec-path")
        .stdin(Stdio::null())
        .output()
        .expect("git is installed");
    let exec_path = String::from_utf8(out.stdout).unwrap();
    let backend = Path::new(exec_path.trim()).join("git-http-backend");
    assert!(backend.is_file(), "no {}", backend.display());
    backend
}

impl Shared {
    fn serve(&self, stream: TcpStream) {
        // A client that stops talking must not keep the server's drop waiting.
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Some(request) = read_request(&stream) else {
            return;
        };
        if self.stop.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut seen = self.seen.lock().unwrap();
            seen.requests
                .push(format!("{} {}", request.method, request.path));
            seen.chunked_bodies += usize::from(request.chunked);
        }
        match self.authenticate(&request) {
            Some(user) => {
                let (status, headers, body) = self.run_backend(&request, &user);
                write_response(&stream, status, &headers, &body);
            }
            None => {
                self.seen.lock().unwrap().unauthorized += 1;
                let challenge: (String, String) =
                    ("WWW-Authenticate".into(), r#"Basic realm="test""#.into());
                write_response(&stream, 401, &[challenge], b"");
            }
        }
    }

    /// The user name of a request whose Basic password is a token the provider accepts.
    fn authenticate(&self, request: &Request) -> Option<String> {
        let header = request.header("authorization")?;
        let (scheme, encoded) = header.split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (username, password) = decoded.split_once(':')?;
        let accepted = self.accepts(password);
        self.seen.lock().unwrap().presented.push(Presented {
            username: username.to_owned(),
            password: password.to_owned(),
            accepted,
        });
        accepted.then(|| username.to_owned())
    }

    fn accepts(&self, token: &str) -> bool {
        if self.revoke_next.swap(false, Ordering::SeqCst) {
            self.revoked.lock().unwrap().insert(token.to_owned());
        }
        if self.revoked.lock().unwrap().contains(token) {
            return false;
        }
        if self.valid.lock().unwrap().contains(token) {
            return true;
        }
        let accepted = self
            .http
            .get(&self.userinfo)
            .bearer_auth(token)
            .send()
            .is_ok_and(|answer| answer.status().is_success());
        if accepted {
            self.valid.lock().unwrap().insert(token.to_owned());
        }
        accepted
    }

    /// Runs `git http-backend` for `request` as `user`; returns its status, headers and body.
    fn run_backend(&self, request: &Request, user: &str) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let (path, query) = request
            .path
            .split_once('?')
            .unwrap_or((request.path.as_str(), ""));
        let mut cmd = Command::new(&self.backend);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &self.home)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_PROJECT_ROOT", &self.root)
            .env("GIT_HTTP_EXPORT_ALL", "1")
            .env("GATEWAY_INTERFACE", "CGI/1.1")
            .env("SERVER_PROTOCOL", "HTTP/1.1")
            .env("REQUEST_METHOD", &request.method)
            .env("PATH_INFO", path)
            .env("QUERY_STRING", query)
            .env("REMOTE_ADDR", "127.0.0.1")
            // An authenticated user is what lets http-backend accept pushes (receive-pack).
            .env("REMOTE_USER", user)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if request.method == "POST" {
            // A chunked body has been decoded already: its length is known now.
            cmd.env("CONTENT_LENGTH", request.body.len().to_string());
        }
        if let Some(content_type) = request.header("content-type") {
            cmd.env("CONTENT_TYPE", content_type);
        }
        for (name, value) in &request.headers {
            let skip = [
                "authorization",
                "content-type",
                "content-length",
                "transfer-encoding",
            ];
            if !skip.iter().any(|s| name.eq_ignore_ascii_case(s)) {
                // Git-Protocol (protocol v2) and Content-Encoding (gzip) among them.
                let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
                cmd.env(var, value);
            }
        }
        let mut child = cmd.spawn().expect("start git http-backend");
        let mut stdin = child.stdin.take().unwrap();
        let mut stdout = child.stdout.take().unwrap();
        let mut stderr = child.stderr.take().unwrap();
        // Each pipe on a thread of its own, so a backend that answers before reading all of
        // its input cannot leave both sides waiting.
        let (out, err) = std::thread::scope(|scope| {
            scope.spawn(move || {
                let _ = stdin.write_all(&request.body);
            });
            let err = scope.spawn(move || {
                let mut err = Vec::new();
                let _ = stderr.read_to_end(&mut err);
                err
            });
            let mut out = Vec::new();
            let _ = stdout.read_to_end(&mut out);
            (out, err.join().unwrap())
        });
        let status = child.wait().expect("wait for git http-backend");
        if !err.is_empty() || !status.success() {
            self.seen.lock().unwrap().backend_errors.push(format!(
                "{} {} ({status}): {}",
                request.method,
                request.path,
                String::from_utf8_lossy(&err)
            ));
        }
        parse_cgi(&out)
    }
}

/// A CGI answer: header lines (`Status:` among them, 200 when absent), a blank line, the body.
fn parse_cgi(out: &[u8]) -> (u16, Vec<(String, String)>, Vec<u8>) {
    let crlf = out
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map(|i| (i, 4));
    let lf = out.windows(2).position(|w| w == b"\n\n").map(|i| (i, 2));
    let Some((end, sep)) = [crlf, lf].into_iter().flatten().min_by_key(|(i, _)| *i) else {
        return (
            502,
            Vec::new(),
            b"git http-backend gave no headers".to_vec(),
        );
    };
    let mut status = 200;
    let mut headers = Vec::new();
    for line in String::from_utf8_lossy(&out[..end]).lines() {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("status") {
            status = value
                .split_whitespace()
                .next()
                .and_then(|code| code.parse().ok())
                .unwrap_or(502);
        } else {
            headers.push((name.trim().to_owned(), value.to_owned()));
        }
    }
    (status, headers, out[end + sep..].to_vec())
}
