//! Keylink embedded the way another app embeds it: a builder with its own identity,
//! in-memory configuration and a browser opener of its own, against the real test provider
//! (npm `oidc-provider`) and the real keychain (the private gnome-keyring of
//! `scripts/with-keyring.sh`). Covers the link session every front end drives: progress in
//! order for browser and device sign-in, cancel at each stage, one session at a time, a
//! redirect delivered twice, reconnecting as the wrong person; and apps side by side that
//! cannot see or remove each other's accounts.
#![allow(clippy::unwrap_used)]

#[path = "../support/idp.rs"]
mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use keylink::{
    Account, AppIdentity, Error, ErrorCode, Keylink, LinkProgress, LinkStart,
    browser::BrowserOpener, link::Delivery,
};

use support::{Idp, param, repo, wait_for};

/// The embedding app's own "browser": the scripted user agent (`tests/idp/user-agent.js`),
/// started in the background as a browser would be. It signs in as `login`; a redirect to
/// the app's scheme is captured in a file (the app then delivers it itself), one to a
/// loopback listener is sent there.
#[derive(Debug)]
struct ScriptedBrowser {
    idp_ca: PathBuf,
    capture: PathBuf,
    login: &'static str,
    opened: Mutex<Vec<String>>,
    running: Mutex<Vec<Child>>,
}

impl ScriptedBrowser {
    fn new(idp: &Idp, dir: &Path, login: &'static str) -> Arc<ScriptedBrowser> {
        Arc::new(ScriptedBrowser {
            idp_ca: idp.ca.ca_pem.clone(),
            capture: dir.join(format!("redirect-{login}.url")),
            login,
            opened: Mutex::default(),
            running: Mutex::default(),
        })
    }

    /// The redirect the provider sent to the app's scheme, once it is there.
    fn captured(&self) -> String {
        wait_for("the redirect", Duration::from_secs(30), || {
            self.capture.exists()
        });
        let url = std::fs::read_to_string(&self.capture).unwrap();
        std::fs::remove_file(&self.capture).unwrap();
        url.trim().to_owned()
    }

    fn opened(&self) -> Vec<String> {
        self.opened.lock().unwrap().clone()
    }
}

impl BrowserOpener for ScriptedBrowser {
    fn open(&self, url: &url::Url) -> Result<(), Error> {
        self.opened.lock().unwrap().push(url.to_string());
        let mut ua = Command::new(repo().join("tests/idp/user-agent.js"));
        let loopback = param(url.as_str(), "redirect_uri")
            .is_some_and(|uri| uri.starts_with("http://127.0.0.1:"));
        if !loopback {
            ua.env("KEYLINK_UA_CAPTURE", &self.capture);
        }
        let child = ua
            .arg(url.as_str())
            .env("KEYLINK_UA_LOGIN", self.login)
            .env("NODE_EXTRA_CA_CERTS", &self.idp_ca)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        self.running.lock().unwrap().push(child);
        Ok(())
    }
}

impl Drop for ScriptedBrowser {
    fn drop(&mut self) {
        for mut child in self.running.lock().unwrap().drain(..) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn config(idp: &Idp) -> keylink::Config {
    keylink::Config::parse(&format!(
        "[providers.demo]\nname = \"Demo\"\nissuer = \"{issuer}\"\nclient_id = \"keylink-demo\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n\
         api_origins = [\"{issuer}\"]\n\
         [providers.demo-loopback]\nname = \"Demo (loopback)\"\nissuer = \"{issuer}\"\n\
         client_id = \"keylink-demo\"\nredirect = \"loopback\"\n\
         [network]\nca_file = \"{ca}\"\ntimeout_secs = 10\n",
        issuer = idp.issuer,
        ca = idp.ca.ca_pem.display()
    ))
    .unwrap()
}

fn app(idp: &Idp, identity: &str, data: &Path, browser: Arc<ScriptedBrowser>) -> Keylink {
    Keylink::builder(AppIdentity::new(identity).unwrap())
        .config(config(idp))
        .data_dir(data)
        .browser(browser)
        .build()
        .unwrap()
}

/// The steps a session reported, by name.
fn step(progress: &LinkProgress) -> &'static str {
    match progress {
        LinkProgress::Starting => "starting",
        LinkProgress::BrowserOpened => "browser opened",
        LinkProgress::OpenInBrowser(_) => "open in browser",
        LinkProgress::CodeShown(_) => "code shown",
        LinkProgress::Waiting { .. } => "waiting",
        LinkProgress::Exchanging => "exchanging",
        _ => "other",
    }
}

/// A session running on its own thread, recording its steps; `on_step` runs inside the
/// progress callback (so a cancel there happens exactly at that step).
struct Running {
    steps: Arc<Mutex<Vec<&'static str>>>,
    codes: mpsc::Receiver<keylink::link::DeviceAuthorization>,
    thread: JoinHandle<Result<Account, Error>>,
}

impl Running {
    fn start(
        keylink: &Keylink,
        start: LinkStart,
        on_step: impl Fn(&'static str, &keylink::link::LinkCanceller) + Send + 'static,
    ) -> Running {
        let session = keylink.link(start).unwrap();
        let cancel = session.canceller();
        let steps = Arc::new(Mutex::new(Vec::new()));
        let (codes_tx, codes) = mpsc::channel();
        let seen = steps.clone();
        let thread = std::thread::spawn(move || {
            session.run(Duration::from_secs(60), move |progress| {
                let name = step(progress);
                seen.lock().unwrap().push(name);
                if let LinkProgress::CodeShown(code) = progress {
                    let _ = codes_tx.send(code.clone());
                }
                on_step(name, &cancel);
            })
        });
        Running {
            steps,
            codes,
            thread,
        }
    }

    fn finish(self) -> (Vec<&'static str>, Result<Account, Error>) {
        let result = self.thread.join().unwrap();
        (self.steps.lock().unwrap().clone(), result)
    }
}

/// Links `browser.login` at the deep-link provider through a session, delivering the
/// captured redirect the way the OS hands it to the app; returns the account.
fn link(keylink: &Keylink, browser: &ScriptedBrowser) -> Account {
    let running = Running::start(
        keylink,
        LinkStart::browser(keylink::ProviderId::new("demo")),
        |_, _| {},
    );
    let redirect = browser.captured();
    let delivery = keylink.deliver_redirect(&redirect);
    assert!(matches!(delivery, Delivery::ToSession(_)), "{delivery:?}");
    let (steps, result) = running.finish();
    assert_eq!(
        steps,
        ["starting", "browser opened", "waiting", "exchanging"],
        "browser sign-in reports its steps in order"
    );
    result.unwrap()
}

/// The person on their other device: the user agent in device mode confirms `code`.
fn approve_on_other_device(idp: &Idp, code: &keylink::link::DeviceAuthorization) {
    let complete = code.verification_uri_complete.as_ref().unwrap();
    let status = Command::new(repo().join("tests/idp/user-agent.js"))
        .arg(complete.as_str())
        .env("KEYLINK_UA_DEVICE", "confirm")
        .env("NODE_EXTRA_CA_CERTS", &idp.ca.ca_pem)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "the person could not approve the code");
}

/// How many authorization codes the provider exchanged.
fn code_exchanges(idp: &Idp) -> u64 {
    idp.stats().token_requests.authorization_code
}

fn pending_flows(data: &Path) -> usize {
    std::fs::read_dir(data.join("pending")).map_or(0, |d| d.count())
}

#[test]
fn an_app_links_with_its_own_identity_and_others_cannot_see_or_remove_it() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
    let notes_data = dir.path().join("notes");
    let notes = app(&idp, "com.example.notes", &notes_data, browser.clone());
    let id = link(&notes, &browser).id;

    // Its own scheme and provider path; the opener got exactly the authorization request.
    let opened = browser.opened();
    assert_eq!(opened.len(), 1);
    let redirect_uri = param(&opened[0], "redirect_uri").unwrap();
    assert_eq!(redirect_uri, "com.example.notes:/callback/demo");
    let token = notes.access_token(&id, Duration::from_secs(60)).unwrap();
    assert!(!token.secret().is_empty());

    // Another app in the same keychain sees nothing and can remove nothing.
    let other = app(
        &idp,
        "com.example.other",
        &dir.path().join("other"),
        browser.clone(),
    );
    assert!(other.accounts().unwrap().is_empty());
    assert!(other.unlink(&id).is_err());
    assert!(other.access_token(&id, Duration::from_secs(60)).is_err());
    // Nor does the Keylink app itself.
    let keylink_app = Keylink::builder(AppIdentity::keylink())
        .config(config(&idp))
        .data_dir(dir.path().join("keylink"))
        .build()
        .unwrap();
    assert!(keylink_app.accounts().unwrap().is_empty());

    // The same app, the same account, in a second data directory: unlinking there leaves
    // the first one's tokens alone (each data directory names its own keychain entries).
    let second = app(
        &idp,
        "com.example.notes",
        &dir.path().join("notes-2"),
        browser.clone(),
    );
    let same = link(&second, &browser).id;
    assert_eq!(same, id, "the same person at the same provider");
    second.unlink(&same).unwrap();
    assert!(second.accounts().unwrap().is_empty());
    let fresh = app(&idp, "com.example.notes", &notes_data, browser.clone());
    assert_eq!(fresh.accounts().unwrap().len(), 1);
    assert!(
        fresh.access_token(&id, Duration::from_secs(60)).is_ok(),
        "the first directory's tokens survived"
    );
    fresh.unlink(&id).unwrap();
}

#[test]
fn loopback_and_device_sessions_report_their_steps_in_order() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
    let keylink = app(
        &idp,
        "com.example.notes",
        &dir.path().join("data"),
        browser.clone(),
    );

    // Loopback: the browser itself brings the redirect back to the session's listener.
    let (steps, result) = Running::start(
        &keylink,
        LinkStart::browser(keylink::ProviderId::new("demo-loopback")),
        |_, _| {},
    )
    .finish();
    assert_eq!(
        steps,
        ["starting", "browser opened", "waiting", "exchanging"]
    );
    let account = result.unwrap();
    assert_eq!(account.provider, "demo-loopback");

    // Device: the code is shown, the person approves it on another device.
    let running = Running::start(
        &keylink,
        LinkStart::device(keylink::ProviderId::new("demo")),
        |_, _| {},
    );
    let code = running.codes.recv_timeout(Duration::from_secs(30)).unwrap();
    approve_on_other_device(&idp, &code);
    let (steps, result) = running.finish();
    assert_eq!(steps, ["starting", "code shown", "waiting", "exchanging"]);
    assert_eq!(result.unwrap().provider, "demo");
    assert_eq!(keylink.accounts().unwrap().len(), 2);
    for account in keylink.accounts().unwrap() {
        keylink.unlink(&account.id).unwrap();
    }
}

#[test]
fn a_browser_session_cancelled_at_any_step_links_nothing() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    for stage in ["starting", "browser opened", "waiting", "exchanging"] {
        let data = dir.path().join(stage.replace(' ', "-"));
        let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
        let keylink = app(&idp, "com.example.notes", &data, browser.clone());
        let exchanged_before = code_exchanges(&idp);
        let running = Running::start(
            &keylink,
            LinkStart::browser(keylink::ProviderId::new("demo-loopback")),
            move |name, cancel| {
                if name == stage {
                    assert!(cancel.cancel(), "the session was still in progress");
                }
            },
        );
        let (steps, result) = running.finish();
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Cancelled), "at {stage}: {error}");
        assert_eq!(error.code(), ErrorCode::Cancelled);
        assert_eq!(
            steps.last(),
            Some(&stage),
            "nothing happened after the cancel"
        );
        assert!(
            keylink.accounts().unwrap().is_empty(),
            "cancelled at {stage}, yet linked"
        );
        assert_eq!(
            pending_flows(&data),
            0,
            "cancelled at {stage}: a flow is left"
        );
        // Only a cancel during the exchange lets the code be exchanged; its tokens are
        // dropped, not stored.
        let exchanged = code_exchanges(&idp) - exchanged_before;
        assert_eq!(exchanged, u64::from(stage == "exchanging"), "at {stage}");
        // The slot is free again.
        drop(
            keylink
                .link(LinkStart::browser(keylink::ProviderId::new("demo")))
                .unwrap(),
        );
    }
}

#[test]
fn a_device_session_cancelled_at_any_step_links_nothing() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    for stage in ["starting", "code shown", "waiting", "exchanging"] {
        let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
        let data = dir.path().join(stage.replace(' ', "-"));
        let keylink = app(&idp, "com.example.notes", &data, browser);
        let running = Running::start(
            &keylink,
            LinkStart::device(keylink::ProviderId::new("demo")),
            move |name, cancel| {
                if name == stage {
                    cancel.cancel();
                }
            },
        );
        if stage == "exchanging" {
            let code = running.codes.recv_timeout(Duration::from_secs(30)).unwrap();
            approve_on_other_device(&idp, &code);
        }
        let (steps, result) = running.finish();
        let error = result.unwrap_err();
        assert!(matches!(error, Error::Cancelled), "at {stage}: {error}");
        assert_eq!(steps.last(), Some(&stage));
        assert!(
            keylink.accounts().unwrap().is_empty(),
            "cancelled at {stage}, yet linked"
        );
    }
}

#[test]
fn one_session_at_a_time_and_a_redirect_delivered_twice_completes_once() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
    let data = dir.path().join("data");
    let keylink = app(&idp, "com.example.notes", &data, browser.clone());

    // A second start while one is active is refused, naming the link in progress; a
    // cancelled (or dropped) session frees the slot at once.
    let first = keylink
        .link(LinkStart::browser(keylink::ProviderId::new("demo")))
        .unwrap();
    let refused = keylink
        .link(LinkStart::device(keylink::ProviderId::new("demo")))
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::Busy);
    assert!(
        refused
            .to_string()
            .starts_with("a link to Demo is already in progress"),
        "{refused}"
    );
    assert!(keylink.cancel_link());
    assert!(!keylink.cancel_link(), "nothing left to cancel");
    let cancelled = first.run(Duration::from_secs(5), |_| {}).unwrap_err();
    assert!(matches!(cancelled, Error::Cancelled), "{cancelled}");
    assert!(
        browser.opened().is_empty(),
        "a cancelled session opened nothing"
    );

    // The same redirect delivered twice (the single-instance callback and the deep-link
    // event both see a forwarded URL): completed once, the second delivery dropped.
    let exchanged_before = code_exchanges(&idp);
    let running = Running::start(
        &keylink,
        LinkStart::browser(keylink::ProviderId::new("demo")),
        |_, _| {},
    );
    let redirect = browser.captured();
    let twice = std::thread::scope(|s| {
        let a = s.spawn(|| keylink.deliver_redirect(&redirect));
        let b = s.spawn(|| keylink.deliver_redirect(&redirect));
        [a.join().unwrap(), b.join().unwrap()]
    });
    let to_session = twice
        .iter()
        .filter(|d| matches!(d, Delivery::ToSession(_)))
        .count();
    let duplicates = twice
        .iter()
        .filter(|d| matches!(d, Delivery::Duplicate))
        .count();
    assert_eq!((to_session, duplicates), (1, 1), "{twice:?}");
    let (_, result) = running.finish();
    let account = result.unwrap();
    assert_eq!(code_exchanges(&idp) - exchanged_before, 1);

    // Another instance of the app (another process) delivering it again: refused, since
    // the flow is complete, and nothing changes.
    let other = app(&idp, "com.example.notes", &data, browser.clone());
    match other.deliver_redirect(&redirect) {
        Delivery::Completed(Err(e)) => assert_eq!(e.code(), ErrorCode::RedirectRejected),
        other => panic!("{other:?}"),
    }
    assert_eq!(keylink.accounts().unwrap(), vec![account.clone()]);
    keylink.unlink(&account.id).unwrap();
}

#[test]
fn reconnecting_as_someone_else_changes_nothing_and_says_who_signed_in() {
    // SECURITY 45: reconnecting Bob and signing in as Carol used to add Carol silently and
    // leave Bob "needs reconnecting".
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("notes");
    let bob_browser = ScriptedBrowser::new(&idp, dir.path(), "bob");
    let notes = app(&idp, "com.example.notes", &data, bob_browser.clone());
    let bob = link(&notes, &bob_browser).id;
    let before = notes.accounts().unwrap();

    let carol_browser = ScriptedBrowser::new(&idp, dir.path(), "carol");
    let as_carol = app(&idp, "com.example.notes", &data, carol_browser.clone());
    let running = Running::start(&as_carol, LinkStart::reconnect(bob.clone()), |_, _| {});
    let redirect = carol_browser.captured();
    let url = &carol_browser.opened()[0];
    assert_eq!(
        param(url, "login_hint").as_deref(),
        Some("bob@example.test")
    );
    assert_eq!(param(url, "prompt").as_deref(), Some("login"));
    assert!(matches!(
        as_carol.deliver_redirect(&redirect),
        Delivery::ToSession(_)
    ));
    let refused = running.finish().1.unwrap_err();
    let message = refused.to_string();
    assert!(
        message.starts_with("you signed in as carol@example.test, not bob@example.test"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    assert_eq!(
        as_carol.accounts().unwrap(),
        before,
        "Carol was not added, Bob unchanged"
    );

    // Signing in as Bob reconnects Bob.
    let running = Running::start(&notes, LinkStart::reconnect(bob.clone()), |_, _| {});
    notes.deliver_redirect(&bob_browser.captured());
    assert_eq!(running.finish().1.unwrap().id, bob);
    notes.unlink(&bob).unwrap();
}

#[test]
fn api_requests_carry_the_token_only_to_the_providers_api_origins() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser = ScriptedBrowser::new(&idp, dir.path(), "alice");
    let keylink = app(
        &idp,
        "com.example.notes",
        &dir.path().join("data"),
        browser.clone(),
    );
    let account = link(&keylink, &browser);
    let token = keylink
        .access_token(&account.id, Duration::from_secs(60))
        .unwrap();

    // The provider's userinfo endpoint, with the token attached here.
    let userinfo = url::Url::parse(&format!("{}/me", idp.issuer)).unwrap();
    let before = idp.stats().userinfo;
    let answer = keylink
        .api_request(
            &account.id,
            &keylink::api::ApiRequest::get(userinfo.clone()),
        )
        .unwrap();
    assert_eq!(answer.status, 200);
    let claims: serde_json::Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(claims["sub"], account.subject.as_str());
    assert_eq!(idp.stats().userinfo, before + 1);
    let shown = format!(
        "{:?}{}",
        answer.headers,
        String::from_utf8_lossy(&answer.body)
    );
    assert!(
        !shown.contains(token.secret()),
        "the answer carries no token"
    );

    // Anywhere else: refused before anything is sent.
    let elsewhere = url::Url::parse("https://127.0.0.1:9/me").unwrap();
    let refused = keylink
        .api_request(&account.id, &keylink::api::ApiRequest::get(elsewhere))
        .unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotAllowed);
    assert!(refused.to_string().contains("api_origins"), "{refused}");
    // Credentials are Keylink's to set.
    let mut own_auth = keylink::api::ApiRequest::get(userinfo);
    own_auth
        .headers
        .push(("Authorization".into(), "Bearer mine".into()));
    let refused = keylink.api_request(&account.id, &own_auth).unwrap_err();
    assert_eq!(refused.code(), ErrorCode::NotAllowed);
    assert_eq!(idp.stats().userinfo, before + 1, "nothing more was sent");
    keylink.unlink(&account.id).unwrap();
}
