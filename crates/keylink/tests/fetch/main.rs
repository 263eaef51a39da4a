//! `Keylink::api_request` (the plugin's JS `fetch`) against an API that tries to hand the
//! token back: an echo endpoint at an allowed origin answering plainly, compressed, in part,
//! with JSON escapes, or always with 401; and the tokens of a provider whose issuer changed
//! after linking. Accounts are linked at the real test provider (npm `oidc-provider`), which
//! counts the refresh grants; tokens are kept in memory.
#![allow(clippy::unwrap_used)]

#[path = "../support/idp.rs"]
mod support;

#[path = "../../../keylink-cli/tests/support/http_server.rs"]
#[allow(dead_code)]
mod http_server;

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keylink::{
    Account, Error, ErrorCode, Keylink, LinkStart, api::ApiRequest, browser::BrowserOpener,
    clock::Clock, store::AccountStatus, store::SecretStore, store::StoreError, token::SecretString,
};

use http_server::{Reply, Request, Server};
use support::{Idp, repo};

/// The scripted user agent as the browser: it signs in as alice and brings the redirect to
/// the session's loopback listener itself.
#[derive(Debug)]
struct LoopbackBrowser {
    ca: std::path::PathBuf,
    running: Mutex<Vec<Child>>,
}

impl BrowserOpener for LoopbackBrowser {
    fn open(&self, url: &url::Url) -> Result<(), Error> {
        let child = Command::new(repo().join("tests/idp/user-agent.js"))
            .arg(url.as_str())
            .env("KEYLINK_UA_LOGIN", "alice")
            .env("NODE_EXTRA_CA_CERTS", &self.ca)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.running.lock().unwrap().push(child);
        Ok(())
    }
}

impl Drop for LoopbackBrowser {
    fn drop(&mut self) {
        for mut child in self.running.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Tokens in memory, shared by the instances of one test.
#[derive(Debug, Default)]
struct MemoryStore(Mutex<HashMap<String, String>>);

impl SecretStore for MemoryStore {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        Ok(self
            .0
            .lock()
            .unwrap()
            .get(key)
            .cloned()
            .map(SecretString::new))
    }
    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().insert(key.into(), value.into());
        Ok(())
    }
    fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().remove(key);
        Ok(())
    }
}

/// The system clock, moved forward when a test says so.
#[derive(Debug, Default)]
struct SteppingClock(AtomicI64);

impl Clock for SteppingClock {
    fn now(&self) -> i64 {
        keylink::clock::SystemClock.now() + self.0.load(Ordering::SeqCst)
    }
}

/// The path and headers of each request the API received.
type Received = Arc<Mutex<Vec<(String, Vec<(String, String)>)>>>;

/// One test's provider, API, keychain and clock, with an account linked.
struct World {
    idp: Idp,
    api: Server,
    seen: Received,
    dir: tempfile::TempDir,
    store: Arc<MemoryStore>,
    clock: Arc<SteppingClock>,
    browser: Arc<LoopbackBrowser>,
    keylink: Keylink,
    account: Account,
}

/// The Authorization header of `request`, as the echo endpoints write it back.
fn authorization(request: &Request) -> String {
    request.header("authorization").unwrap_or("").to_owned()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// `text` as a JSON string in which every other character is written `\u00XX` and every
/// `/` as `\/`, as JSON allows.
fn json_escaped(text: &str) -> String {
    let mut out = String::from("\"");
    for (i, c) in text.chars().enumerate() {
        match c {
            '/' => out.push_str("\\/"),
            c if i % 2 == 0 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The echo API: each path answers with what the request's Authorization header was, in
/// its own way.
fn echo(request: &Request) -> Reply {
    let auth = authorization(request);
    let json = serde_json::json!({ "authorization": auth }).to_string();
    let with = |status: u16, headers: &[(&str, &str)], body: Vec<u8>| {
        let headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Reply::Respond(status, headers, body)
    };
    match request.path.as_str() {
        "/echo" => with(
            200,
            &[("content-type", "application/json"), ("x-echo", &auth)],
            json.into_bytes(),
        ),
        // Twice, so the compressor really compresses it rather than storing it as it is.
        "/gzip" => with(
            200,
            &[
                ("content-type", "application/json"),
                ("content-encoding", "gzip"),
            ],
            gzip(
                serde_json::json!({ "authorization": auth, "again": auth })
                    .to_string()
                    .as_bytes(),
            ),
        ),
        "/bomb" => with(
            200,
            &[("content-encoding", "gzip")],
            gzip(&vec![b' '; 8 << 20]),
        ),
        "/brotli" => with(200, &[("content-encoding", "br")], b"\x1b\x03\x00".to_vec()),
        "/partial" => with(
            206,
            &[("content-range", "bytes 0-19/100")],
            json.as_bytes()[..20].to_vec(),
        ),
        "/escaped" => with(
            200,
            &[("content-type", "application/json")],
            format!("{{\"authorization\":{}}}", json_escaped(&auth)).into_bytes(),
        ),
        "/always-401" => with(
            401,
            &[("www-authenticate", "Bearer error=\"invalid_token\"")],
            Vec::new(),
        ),
        _ => with(404, &[], Vec::new()),
    }
}

fn config(issuer: &str, api: &str, ca: &Path) -> keylink::Config {
    keylink::Config::parse(&format!(
        "[providers.demo-loopback]\nname = \"Demo\"\nissuer = \"{issuer}\"\n\
         client_id = \"keylink-demo\"\nredirect = \"loopback\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n\
         api_origins = [\"{api}\"]\n\
         [network]\nca_file = \"{ca}\"\ntimeout_secs = 10\n",
        ca = ca.display()
    ))
    .unwrap()
}

impl World {
    fn new() -> World {
        let idp = Idp::start();
        let seen = Received::default();
        let log = seen.clone();
        let api = Server::start(move |request, _| {
            log.lock()
                .unwrap()
                .push((request.path.clone(), request.headers.clone()));
            echo(request)
        });
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(MemoryStore::default());
        let clock = Arc::new(SteppingClock::default());
        let browser = Arc::new(LoopbackBrowser {
            ca: idp.ca.ca_pem.clone(),
            running: Mutex::default(),
        });
        let keylink = Self::keylink(
            config(&idp.issuer, &api.url, &idp.ca.ca_pem),
            dir.path(),
            &store,
            &clock,
            &browser,
        );
        let account = keylink
            .link(LinkStart::browser(keylink::ProviderId::new(
                "demo-loopback",
            )))
            .unwrap()
            .run(Duration::from_secs(60), |_| {})
            .unwrap();
        World {
            idp,
            api,
            seen,
            dir,
            store,
            clock,
            browser,
            keylink,
            account,
        }
    }

    fn keylink(
        config: keylink::Config,
        data: &Path,
        store: &Arc<MemoryStore>,
        clock: &Arc<SteppingClock>,
        browser: &Arc<LoopbackBrowser>,
    ) -> Keylink {
        Keylink::builder(keylink::AppIdentity::keylink())
            .config(config)
            .data_dir(data.join("data"))
            .secret_store(store.clone())
            .clock(clock.clone())
            .browser(browser.clone())
            .build()
            .unwrap()
    }

    fn get(&self, path: &str) -> ApiRequest {
        ApiRequest::get(url::Url::parse(&format!("{}{path}", self.api.url)).unwrap())
    }

    fn token(&self) -> String {
        self.keylink
            .access_token(&self.account.id, Duration::from_secs(60))
            .unwrap()
            .secret()
            .to_owned()
    }

    /// The headers of the last request the API received.
    fn last_request_headers(&self) -> Vec<(String, String)> {
        self.seen.lock().unwrap().last().unwrap().1.clone()
    }
}

fn body_text(answer: &keylink::api::ApiResponse) -> String {
    String::from_utf8_lossy(&answer.body).into_owned()
}

#[test]
fn fetch_asks_for_an_uncompressed_answer_and_hands_back_no_echoed_token() {
    let world = World::new();
    let token = world.token();
    let answer = world
        .keylink
        .api_request(&world.account.id, &world.get("/echo"))
        .unwrap();
    assert_eq!(answer.status, 200);
    let sent = world.last_request_headers();
    let accept_encoding: Vec<&str> = sent
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("accept-encoding"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(accept_encoding, ["identity"], "{sent:?}");
    let echoed: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(echoed["authorization"], "Bearer [redacted]");
    assert!(
        !answer.headers.iter().any(|(k, _)| k == "x-echo"),
        "a header holding the token is not handed back: {:?}",
        answer.headers
    );
    assert!(!format!("{:?}{}", answer.headers, body_text(&answer)).contains(&token));
}

#[test]
fn headers_that_change_the_framing_or_encoding_are_refused_and_nothing_is_sent() {
    let world = World::new();
    let before = world.api.request_count();
    for (name, value) in [
        ("Accept-Encoding", "gzip"),
        ("accept-encoding", "identity"),
        ("Range", "bytes=0-10"),
        ("If-Range", "\"v1\""),
        ("TE", "trailers"),
        ("Connection", "close"),
        ("Upgrade", "websocket"),
        ("Expect", "100-continue"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Length", "0"),
        ("Keep-Alive", "timeout=5"),
        ("Trailer", "x-checksum"),
        ("Proxy-Connection", "keep-alive"),
        ("Proxy-Foo", "1"),
    ] {
        let mut request = world.get("/echo");
        request.headers.push((name.into(), value.into()));
        let refused = world
            .keylink
            .api_request(&world.account.id, &request)
            .unwrap_err();
        assert_eq!(refused.code(), ErrorCode::NotAllowed, "{name}: {refused}");
        let message = refused.to_string();
        assert!(
            message.starts_with(&format!(
                "the header {} changes how the answer is framed or encoded",
                name.to_ascii_lowercase()
            )),
            "{message}"
        );
    }
    assert_eq!(world.api.request_count(), before, "nothing was sent");
}

#[test]
fn an_answer_compressed_unasked_is_decoded_before_the_token_is_redacted() {
    let world = World::new();
    let token = world.token();
    // It used to be handed back compressed, the redaction having looked at gzip bytes: a
    // gunzip in the webview gave `Bearer <token>`.
    let answer = world
        .keylink
        .api_request(&world.account.id, &world.get("/gzip"))
        .unwrap();
    assert_eq!(answer.status, 200);
    let mut gunzipped = Vec::new();
    if answer.body.starts_with(&[0x1f, 0x8b]) {
        use std::io::Read;
        flate2::read::GzDecoder::new(answer.body.as_slice())
            .read_to_end(&mut gunzipped)
            .unwrap();
    }
    assert!(
        !String::from_utf8_lossy(&gunzipped).contains(&token),
        "the token came back inside the compressed answer"
    );
    let echoed: serde_json::Value = serde_json::from_slice(&answer.body)
        .unwrap_or_else(|e| panic!("not handed back decoded ({e}): {:?}", answer.body));
    assert_eq!(echoed["authorization"], "Bearer [redacted]");
    assert_eq!(echoed["again"], "Bearer [redacted]");
    assert!(
        !answer
            .headers
            .iter()
            .any(|(k, _)| k == "content-encoding" || k == "content-length"),
        "{:?}",
        answer.headers
    );
    assert!(!body_text(&answer).contains(&token));

    // 8 MiB packed into a few KiB: refused at 1 MiB, not unpacked.
    let bomb = world
        .keylink
        .api_request(&world.account.id, &world.get("/bomb"))
        .unwrap_err();
    assert!(matches!(bomb, Error::ApiAnswerRefused(_)), "{bomb}");
    assert_eq!(bomb.code(), ErrorCode::Provider);
    assert!(
        bomb.to_string()
            .contains("larger than 1 MiB once decompressed"),
        "{bomb}"
    );

    // A coding Keylink cannot read is refused, not handed back.
    let brotli = world
        .keylink
        .api_request(&world.account.id, &world.get("/brotli"))
        .unwrap_err();
    assert!(matches!(brotli, Error::ApiAnswerRefused(_)), "{brotli}");
    assert!(brotli.to_string().contains("compressed (br)"), "{brotli}");
}

#[test]
fn a_partial_answer_is_refused() {
    let world = World::new();
    // A range of an echo can cut the token where no redaction recognises it.
    let refused = world
        .keylink
        .api_request(&world.account.id, &world.get("/partial"))
        .unwrap_err();
    assert!(matches!(refused, Error::ApiAnswerRefused(_)), "{refused}");
    assert!(refused.to_string().contains("partial answer"), "{refused}");
}

#[test]
fn a_token_echoed_with_json_escapes_is_redacted() {
    let world = World::new();
    let token = world.token();
    let answer = world
        .keylink
        .api_request(&world.account.id, &world.get("/escaped"))
        .unwrap();
    let echoed: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    let value = echoed["authorization"].as_str().unwrap();
    assert!(!value.contains(&token), "the escaped token came back");
    assert_eq!(value, "Bearer [redacted]");
}

#[test]
fn an_api_that_always_answers_401_costs_one_refresh_a_minute() {
    let world = World::new();
    let refreshes = || world.idp.stats().token_requests.refresh_token;
    assert_eq!(refreshes(), 0);
    // Each call used to refresh, rotating the refresh token every time.
    for _ in 0..10 {
        let answer = world
            .keylink
            .api_request(&world.account.id, &world.get("/always-401"))
            .unwrap();
        assert_eq!(answer.status, 401, "the refusal is the answer");
    }
    assert_eq!(refreshes(), 1, "one refresh for ten refusals");
    // A minute later (by the injected clock) one more is allowed.
    world.clock.0.store(61, Ordering::SeqCst);
    for _ in 0..3 {
        let answer = world
            .keylink
            .api_request(&world.account.id, &world.get("/always-401"))
            .unwrap();
        assert_eq!(answer.status, 401);
    }
    assert_eq!(refreshes(), 2);
    // The account still works where its tokens are accepted.
    assert_eq!(
        world
            .keylink
            .account(world.account.id.as_str())
            .unwrap()
            .status,
        AccountStatus::Ok
    );
    assert!(world.keylink.check_connection(&world.account.id).is_ok());
}

#[test]
fn tokens_are_never_sent_to_a_provider_whose_issuer_changed_after_linking() {
    let world = World::new();
    // The configuration now names another issuer (and its API) for the same provider id.
    let elsewhere = Server::start(|_, _| Reply::Respond(500, Vec::new(), Vec::new()));
    let changed = World::keylink(
        config(&elsewhere.url, &elsewhere.url, &world.idp.ca.ca_pem),
        world.dir.path(),
        &world.store,
        &world.clock,
        &world.browser,
    );
    let id = &world.account.id;
    let request = ApiRequest::get(url::Url::parse(&format!("{}/echo", elsewhere.url)).unwrap());
    let refused = changed.api_request(id, &request).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NeedsRelink, "{refused}");
    assert!(
        refused.to_string().contains(&format!(
            "was linked at {}, but its provider demo-loopback is now configured with the issuer {}",
            world.idp.issuer, elsewhere.url
        )),
        "{refused}"
    );
    let refused = changed
        .access_token(id, Duration::from_secs(60))
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NeedsRelink);
    assert_eq!(
        changed.account(id.as_str()).unwrap().status,
        AccountStatus::NeedsRelink
    );
    assert!(changed.check_connection(id).is_err());
    let again = changed.link(LinkStart::reconnect(id.clone())).unwrap_err();
    assert_eq!(again.code(), ErrorCode::NeedsRelink, "{again}");
    // Unlinking removes it here without sending its tokens there to be revoked.
    let report = changed.unlink(id).unwrap();
    assert!(
        matches!(report.revocation, keylink::token::Revocation::Failed(_)),
        "{:?}",
        report.revocation
    );
    assert!(changed.accounts().unwrap().is_empty());
    assert_eq!(
        elsewhere.request_count(),
        0,
        "nothing went to the new issuer"
    );
    assert_eq!(world.api.request_count(), 0);
}
