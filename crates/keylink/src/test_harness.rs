//! What the unit tests of the link session, the authorization flow, tokens and identity share:
//! a Keylink context over a temporary data directory with an in-memory keychain, a clock the
//! test sets, a browser opener that hands the URL to the test, and a provider on 127.0.0.1
//! (std only) whose answers the test scripts and whose requests it counts. Compiled for tests
//! only.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::app::AppIdentity;
use crate::browser::BrowserOpener;
use crate::clock::{Clock, UnixTime};
use crate::context::Context;
use crate::error::Error;
use crate::exchange::TokenSet;
use crate::ids::{AccountId, IssuerUrl, ProviderId};
use crate::provider::{Config, Metadata};
use crate::secret::{AccessToken, RefreshToken, SecretString};
use crate::store::{Account, AccountStatus, SecretStore, StoreError, encode_tokens};

/// The instant every test starts at.
pub(crate) const T0: UnixTime = 1_800_000_000;

/// The app the tests link accounts for; its deep-link redirects are
/// `com.example.tests:/callback/<provider>`.
pub(crate) const APP: &str = "com.example.tests";

/// How long a test waits for something another thread does before it fails.
pub(crate) const PATIENCE: Duration = Duration::from_secs(20);

/// Three plain OAuth providers at the test server (`{server}`), one of them redirecting to a
/// loopback listener, and an OpenID provider whose metadata [`Fixture::new`] puts in the
/// discovery cache, so none of them is discovered.
pub(crate) const CONFIG: &str = r#"
[providers.plain]
name = "Plain Example"
client_id = "test-client"
authorization_endpoint = "https://plain.example/authorize"
token_endpoint = "{server}/token"
userinfo_endpoint = "{server}/userinfo"
revocation_endpoint = "{server}/revoke"
scopes = ["read"]

[providers.other]
name = "Other Example"
client_id = "other-client"
authorization_endpoint = "https://other.example/authorize"
token_endpoint = "{server}/other/token"
userinfo_endpoint = "{server}/other/userinfo"
scopes = ["read"]

[providers.loop]
name = "Loopback Example"
client_id = "loop-client"
authorization_endpoint = "https://loop.example/authorize"
token_endpoint = "{server}/loop/token"
redirect = "loopback"
scopes = ["read"]

[providers.oidc]
name = "OpenID Example"
issuer = "https://idp.example"
client_id = "oidc-client"
"#;

/// A clock the test sets.
#[derive(Debug)]
pub(crate) struct TestClock(AtomicI64);

impl TestClock {
    pub(crate) fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}

impl Clock for TestClock {
    fn now(&self) -> UnixTime {
        self.0.load(Ordering::SeqCst)
    }
}

/// A keychain in memory; `broken` makes every call fail, as a locked keychain does.
#[derive(Debug, Default)]
pub(crate) struct MemoryStore {
    entries: Mutex<HashMap<String, String>>,
    pub(crate) broken: AtomicBool,
}

impl MemoryStore {
    fn check(&self) -> Result<(), StoreError> {
        if self.broken.load(Ordering::SeqCst) {
            return Err(StoreError::Keychain("the test keychain is locked".into()));
        }
        Ok(())
    }

    /// Every entry, for comparing before and after.
    pub(crate) fn snapshot(&self) -> Vec<(String, String)> {
        let mut all: Vec<_> = self
            .entries
            .lock()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        all.sort();
        all
    }
}

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        self.check()?;
        Ok(self
            .entries
            .lock()
            .unwrap()
            .get(key)
            .map(|v| SecretString::new(v.clone())))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.check()?;
        self.entries
            .lock()
            .unwrap()
            .insert(key.to_owned(), value.to_owned());
        Ok(())
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.check()?;
        self.entries.lock().unwrap().remove(key);
        Ok(())
    }
}

/// A browser opener that hands every URL it is asked to open to the test.
#[derive(Debug)]
pub(crate) struct TestBrowser {
    opened: Mutex<Sender<Url>>,
}

impl TestBrowser {
    pub(crate) fn new() -> (Arc<TestBrowser>, Receiver<Url>) {
        let (tx, rx) = std::sync::mpsc::channel();
        (
            Arc::new(TestBrowser {
                opened: Mutex::new(tx),
            }),
            rx,
        )
    }
}

impl BrowserOpener for TestBrowser {
    fn open(&self, url: &Url) -> Result<(), Error> {
        let _ = self.opened.lock().unwrap().send(url.clone());
        Ok(())
    }
}

/// One request the test provider received.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: String,
}

impl Request {
    /// A parameter of a form-encoded body.
    pub(crate) fn form(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.body.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What the test provider answers; status 0 closes the connection without an answer.
#[derive(Debug, Clone)]
pub(crate) struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    pub(crate) fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply {
            status,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: body.to_string(),
        }
    }

    /// A token answer (RFC 6749 §5.1).
    pub(crate) fn tokens(access: &str, refresh: Option<&str>, expires_in: u64) -> Reply {
        let mut body = serde_json::json!({
            "access_token": access, "token_type": "Bearer", "expires_in": expires_in,
        });
        if let Some(refresh) = refresh {
            body["refresh_token"] = refresh.into();
        }
        Reply::json(200, body)
    }

    /// An OAuth error answer (RFC 6749 §5.2).
    pub(crate) fn oauth_error(error: &str) -> Reply {
        Reply::json(400, serde_json::json!({ "error": error }))
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Closes the connection after reading the request, without answering.
    pub(crate) fn hang_up() -> Reply {
        Reply {
            status: 0,
            headers: Vec::new(),
            body: String::new(),
        }
    }
}

/// Decides the answer to a request; the number is how many requests for the same path came
/// before it.
pub(crate) type Handler = dyn Fn(&Request, usize) -> Reply + Send + Sync;

/// A provider on 127.0.0.1 that answers with the test's handler and keeps every request.
/// Connections are served one at a time; dropping it stops its thread.
pub(crate) struct TestProvider {
    addr: SocketAddr,
    requests: Arc<Mutex<Vec<Request>>>,
    handler: Arc<Mutex<Arc<Handler>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TestProvider {
    pub(crate) fn start() -> TestProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let unscripted: Arc<Handler> = Arc::new(|r: &Request, _| {
            Reply::json(500, serde_json::json!({ "unscripted": r.path }))
        });
        let handler = Arc::new(Mutex::new(unscripted));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (requests, handler, stop) = (requests.clone(), handler.clone(), stop.clone());
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(stream) = stream {
                        serve(stream, &requests, &handler);
                    }
                }
            })
        };
        TestProvider {
            addr,
            requests,
            handler,
            stop,
            thread: Some(thread),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub(crate) fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn answer(
        &self,
        handler: impl Fn(&Request, usize) -> Reply + Send + Sync + 'static,
    ) {
        *self.handler.lock().unwrap() = Arc::new(handler);
    }

    /// The requests received for `path`, in order.
    pub(crate) fn requests(&self, path: &str) -> Vec<Request> {
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter(|r| r.path == path)
            .cloned()
            .collect()
    }

    /// How many requests reached the token endpoint of the `plain` provider.
    pub(crate) fn token_requests(&self) -> usize {
        self.requests("/token").len()
    }
}

impl Drop for TestProvider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, requests: &Mutex<Vec<Request>>, handler: &Mutex<Arc<Handler>>) {
    let _ = stream.set_read_timeout(Some(PATIENCE));
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).unwrap_or(0) == 0 {
            return;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let length = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let request = Request {
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let earlier = {
        let mut all = requests.lock().unwrap();
        let earlier = all.iter().filter(|r| r.path == request.path).count();
        all.push(request.clone());
        earlier
    };
    // Called without the lock, so a handler may wait for the test.
    let handler = handler.lock().unwrap().clone();
    let reply = handler(&request, earlier);
    if reply.status == 0 {
        return;
    }
    let mut head = format!(
        "HTTP/1.1 {} Test\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str("\r\n");
    let mut stream = &stream;
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(reply.body.as_bytes());
    let _ = stream.flush();
}

/// A Keylink context for one test: [`CONFIG`] against a [`TestProvider`], a temporary data
/// directory, an in-memory keychain and a clock at [`T0`].
pub(crate) struct Fixture {
    pub(crate) ctx: Arc<Context>,
    pub(crate) store: Arc<MemoryStore>,
    pub(crate) clock: Arc<TestClock>,
    pub(crate) server: TestProvider,
    // Held for its drop, last: removed after everything that may still write to it.
    _dir: tempfile::TempDir,
}

impl Fixture {
    pub(crate) fn new() -> Fixture {
        Fixture::with_config(CONFIG)
    }

    /// `config` with `{server}` replaced by the test provider's base URL.
    pub(crate) fn with_config(config: &str) -> Fixture {
        let server = TestProvider::start();
        let config = Config::parse(&config.replace("{server}", &server.base())).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(TestClock(AtomicI64::new(T0)));
        let settings = crate::http::NetworkSettings {
            timeout: Some(PATIENCE),
            ..Default::default()
        };
        let secrets: Arc<dyn SecretStore> = store.clone();
        let ctx = Context {
            identity: AppIdentity::new(APP).unwrap(),
            config,
            data_dir: dir.path().join("data"),
            http: crate::http::Http::new(&settings).unwrap(),
            clock: clock.clone(),
            secrets: Mutex::new(Some(secrets)),
            metadata: Mutex::new(HashMap::new()),
            jwks: Mutex::new(HashMap::new()),
            keychain_id: Mutex::new(None),
        };
        crate::store::create_private_dir(&ctx.data_dir).unwrap();
        if let Some(oidc) = ctx.config.provider(&crate::ProviderId::new("oidc")) {
            let metadata = Metadata {
                issuer: Some("https://idp.example".into()),
                authorization_endpoint: Url::parse("https://idp.example/authorize").unwrap(),
                token_endpoint: Url::parse(&format!("{}/oidc/token", server.base())).unwrap(),
                jwks_uri: Some(Url::parse("https://idp.example/jwks").unwrap()),
                userinfo_endpoint: None,
                revocation_endpoint: None,
                device_authorization_endpoint: None,
                end_session_endpoint: None,
                id_token_signing_alg_values_supported: vec!["RS256".into()],
                authorization_response_iss_parameter_supported: true,
            };
            ctx.metadata
                .lock()
                .unwrap()
                .insert(oidc.id.clone(), Arc::new(metadata));
        }
        Fixture {
            ctx: Arc::new(ctx),
            store,
            clock,
            server,
            _dir: dir,
        }
    }

    /// The issuer a plain OAuth provider's accounts have: its token endpoint's origin.
    pub(crate) fn plain_issuer(&self) -> IssuerUrl {
        IssuerUrl::new(self.server.base()).unwrap()
    }

    /// Stores an account of the `plain` provider with these tokens, as a link would.
    pub(crate) fn seed(&self, subject: &str, tokens: &TokenSet) -> Account {
        let issuer = self.plain_issuer();
        let provider = ProviderId::new("plain");
        let account = Account {
            id: crate::identity::account_id(&provider, &issuer, subject),
            provider,
            issuer,
            subject: subject.to_owned(),
            email: Some(format!("{subject}@example.test")),
            name: None,
            scopes: vec!["read".into()],
            linked_at: self.ctx.now(),
            expires_at: tokens.expires_at,
            status: AccountStatus::Ok,
        };
        self.store
            .set(&self.token_key(&account.id), &encode_tokens(tokens))
            .unwrap();
        let stored = account.clone();
        self.ctx
            .index()
            .unwrap()
            .update(move |accounts| accounts.push(stored))
            .unwrap();
        account
    }

    /// The keychain key of an account's tokens.
    pub(crate) fn token_key(&self, account: &AccountId) -> String {
        self.ctx.token_key(account).unwrap()
    }

    /// The tokens stored for `account`, if any.
    pub(crate) fn stored_tokens(&self, account: &AccountId) -> Option<TokenSet> {
        let raw = self.store.get(&self.token_key(account)).unwrap()?;
        Some(crate::store::decode_tokens(account, &raw).unwrap())
    }

    pub(crate) fn accounts(&self) -> Vec<Account> {
        self.ctx.accounts().unwrap()
    }

    /// The files of pending flows (each one a started sign-in waiting for its redirect).
    pub(crate) fn pending_flows(&self) -> Vec<PathBuf> {
        let Ok(entries) = std::fs::read_dir(self.ctx.data_dir.join("pending")) else {
            return Vec::new();
        };
        entries.flatten().map(|e| e.path()).collect()
    }
}

/// A token set as the token endpoint would have returned it.
pub(crate) fn token_set(
    access: &str,
    refresh: Option<&str>,
    expires_at: Option<UnixTime>,
) -> TokenSet {
    TokenSet {
        access_token: AccessToken::new(access),
        refresh_token: refresh.map(RefreshToken::new),
        id_token: None,
        expires_at,
        scopes: None,
    }
}

/// A query parameter of `url`, when it appears.
pub(crate) fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The deep-link redirect for the flow `authorization_url` started, with `params` appended
/// to its `state`.
pub(crate) fn redirect_for(authorization_url: &Url, params: &str) -> String {
    let redirect_uri = query(authorization_url, "redirect_uri").unwrap();
    let state = query(authorization_url, "state").unwrap();
    let mut url = Url::parse(&redirect_uri).unwrap();
    url.query_pairs_mut().append_pair("state", &state);
    format!("{url}&{params}")
}
