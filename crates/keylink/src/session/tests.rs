//! The link session as an app sees it: one at a time, cancellable from another thread, ended
//! by its deadline, fed only by its own redirect, its progress in order. Against the test
//! provider on 127.0.0.1 with an in-memory keychain and a browser opener that hands the URL
//! back to the test.

use std::sync::mpsc::{Receiver, channel};
use std::thread::JoinHandle;

use serde_json::json;

use super::*;
use crate::callback::RedirectError;

use crate::test_harness::{Fixture, PATIENCE, Reply, Request, TestBrowser, redirect_for};

/// The provider answers a code with tokens and says the person is `subject`.
fn signs_in_as(subject: &'static str) -> impl Fn(&Request, usize) -> Reply + Send + Sync {
    move |request, _| match request.path.as_str() {
        "/token" => Reply::tokens("at-1", Some("rt-1"), 3600),
        "/userinfo" => Reply::json(
            200,
            json!({ "sub": subject, "email": format!("{subject}@example.test") }),
        ),
        _ => Reply::json(404, json!({})),
    }
}

struct Setup {
    f: Fixture,
    sessions: Arc<LinkSessions>,
    browser: Arc<dyn BrowserOpener>,
    opened: Receiver<Url>,
}

fn setup() -> Setup {
    let f = Fixture::new();
    f.server.answer(signs_in_as("alice"));
    let (browser, opened) = TestBrowser::new();
    Setup {
        f,
        sessions: Arc::default(),
        browser,
        opened,
    }
}

impl Setup {
    fn link(&self, start: LinkStart) -> Result<LinkSession, Error> {
        self.sessions.begin(&self.f.ctx, &self.browser, start)
    }

    /// The URL the session opened in the browser.
    fn opened(&self) -> Url {
        self.opened
            .recv_timeout(PATIENCE)
            .expect("the browser was opened")
    }

    fn deliver(&self, url: &str) -> Delivery {
        self.sessions.deliver(&self.f.ctx, url)
    }
}

/// A session running on its own thread, as a GUI runs it.
struct Running {
    progress: Receiver<LinkProgress>,
    thread: JoinHandle<Result<Account, Error>>,
}

impl Running {
    fn start(session: LinkSession, timeout: Duration) -> Running {
        let (tx, progress) = channel();
        let thread = std::thread::spawn(move || {
            session.run(timeout, move |step| {
                let _ = tx.send(step.clone());
            })
        });
        Running { progress, thread }
    }

    /// The next step the session reports.
    fn next_step(&self) -> LinkProgress {
        self.progress
            .recv_timeout(PATIENCE)
            .expect("the session reported a step")
    }

    /// How the session ended, and every step it reported that was not read yet.
    fn end(self) -> (Result<Account, Error>, Vec<&'static str>) {
        let result = self.thread.join().expect("the session did not panic");
        let steps = self.progress.try_iter().map(|p| step_name(&p)).collect();
        (result, steps)
    }
}

fn step_name(step: &LinkProgress) -> &'static str {
    match step {
        LinkProgress::Starting => "Starting",
        LinkProgress::BrowserOpened => "BrowserOpened",
        LinkProgress::OpenInBrowser(_) => "OpenInBrowser",
        LinkProgress::CodeShown(_) => "CodeShown",
        LinkProgress::Waiting { .. } => "Waiting",
        LinkProgress::Exchanging => "Exchanging",
    }
}

fn is_unsolicited(delivery: &Delivery) -> bool {
    matches!(
        delivery,
        Delivery::Completed(Err(Error::Redirect(RedirectError::Unsolicited)))
    )
}

#[test]
fn a_link_reports_starting_browser_opened_waiting_exchanging_then_ends_linked() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    let id = session.id();
    let running = Running::start(session, PATIENCE);
    let url = s.opened();
    let delivery = s.deliver(&redirect_for(&url, "code=c-1"));
    assert!(
        matches!(delivery, Delivery::ToSession(to) if to == id),
        "{delivery:?}"
    );
    let (result, steps) = running.end();
    let account = result.unwrap();
    assert_eq!(
        steps,
        ["Starting", "BrowserOpened", "Waiting", "Exchanging"]
    );
    assert_eq!(account.subject, "alice");
    assert_eq!(s.f.accounts(), vec![account]);
    assert_eq!(s.f.server.token_requests(), 1);
    assert!(s.f.pending_flows().is_empty(), "the flow was used up");
}

/// Without a browser the session hands the page to open to its progress callback, and
/// shows it to nothing else: its Debug form hides the query with the state and nonce
/// (SECURITY 50).
#[test]
fn a_link_without_browser_hands_the_url_to_progress_and_opens_nothing() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")).without_browser())
        .unwrap();
    let running = Running::start(session, PATIENCE);
    assert!(matches!(running.next_step(), LinkProgress::Starting));
    let step = running.next_step();
    let LinkProgress::OpenInBrowser(url) = &step else {
        panic!("expected the URL to open, got {step:?}");
    };
    let state = crate::test_harness::query(url, "state").unwrap();
    assert!(!format!("{step:?}").contains(&state), "{step:?}");
    assert!(matches!(running.next_step(), LinkProgress::Waiting { .. }));
    assert!(matches!(
        s.deliver(&redirect_for(url, "code=c-1")),
        Delivery::ToSession(_)
    ));
    let (result, steps) = running.end();
    assert_eq!(result.unwrap().subject, "alice");
    assert_eq!(steps, ["Exchanging"]);
    assert!(s.opened.try_recv().is_err(), "no browser was opened");
}

#[test]
fn a_second_link_while_one_runs_is_refused_and_changes_nothing() {
    let s = setup();
    let first = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    // Refused even before the first one runs: the slot is taken when the link is reserved.
    assert!(matches!(
        s.link(LinkStart::browser(crate::ProviderId::new("other"))),
        Err(Error::LinkInProgress(_))
    ));
    let running = Running::start(first, PATIENCE);
    let url = s.opened();
    let pending = s.f.pending_flows();
    assert_eq!(pending.len(), 1);
    for start in [
        LinkStart::browser(crate::ProviderId::new("other")),
        LinkStart::browser(crate::ProviderId::new("plain")),
        LinkStart::device(crate::ProviderId::new("other")),
    ] {
        let e = s.link(start).unwrap_err();
        assert!(
            matches!(&e, Error::LinkInProgress(name) if name == "Plain Example"),
            "{e:?}"
        );
        assert!(e.to_string().contains("Plain Example"), "{e}");
    }
    assert_eq!(
        s.f.pending_flows(),
        pending,
        "no flow was started or replaced"
    );
    assert!(s.opened.try_recv().is_err(), "no second browser was opened");
    // The running session was not disturbed: its redirect still completes it.
    assert!(matches!(
        s.deliver(&redirect_for(&url, "code=c-1")),
        Delivery::ToSession(_)
    ));
    assert_eq!(running.end().0.unwrap().subject, "alice");
    // Once it has ended, the next link may start.
    assert!(
        s.link(LinkStart::browser(crate::ProviderId::new("other")))
            .is_ok()
    );
}

#[test]
fn dropping_a_reserved_session_without_running_it_frees_the_slot() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    drop(session);
    assert!(
        s.link(LinkStart::browser(crate::ProviderId::new("plain")))
            .is_ok()
    );
    assert!(s.f.pending_flows().is_empty(), "reserving started nothing");
}

#[test]
fn cancel_from_another_thread_ends_run_with_cancelled_and_its_redirect_is_refused() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    let canceller = session.canceller();
    let running = Running::start(session, PATIENCE);
    let url = s.opened();
    let cancel = {
        let canceller = canceller.clone();
        std::thread::spawn(move || canceller.cancel())
    };
    assert!(cancel.join().unwrap(), "the session was in progress");
    let (result, _) = running.end();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(!canceller.cancel(), "it is no longer in progress");
    assert!(s.f.pending_flows().is_empty(), "its flow was removed");
    // The sign-in the person may still finish in the browser is refused before any token
    // request.
    let late = s.deliver(&redirect_for(&url, "code=c-1"));
    assert!(is_unsolicited(&late), "{late:?}");
    assert_eq!(s.f.server.token_requests(), 0);
    assert!(s.f.accounts().is_empty());
    assert!(
        s.link(LinkStart::browser(crate::ProviderId::new("plain")))
            .is_ok(),
        "the slot is free"
    );
}

/// A cancel that arrives while the code is being exchanged wins: the tokens the provider
/// already sent are not stored and no account appears.
#[test]
fn cancel_during_the_exchange_stores_nothing() {
    let s = setup();
    let (reached, token_request) = channel();
    let (release, released) = channel::<()>();
    let (reached, released) = (Mutex::new(reached), Mutex::new(released));
    s.f.server.answer(move |request, n| {
        if request.path == "/token" {
            let _ = reached.lock().unwrap().send(());
            let _ = released.lock().unwrap().recv_timeout(PATIENCE);
        }
        signs_in_as("alice")(request, n)
    });
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    let canceller = session.canceller();
    let running = Running::start(session, PATIENCE);
    let redirect = redirect_for(&s.opened(), "code=c-1");
    let delivering = {
        let (sessions, ctx) = (s.sessions.clone(), s.f.ctx.clone());
        std::thread::spawn(move || sessions.deliver(&ctx, &redirect))
    };
    token_request
        .recv_timeout(PATIENCE)
        .expect("the code reached the token endpoint");
    assert!(canceller.cancel());
    release.send(()).unwrap();
    let delivery = delivering.join().unwrap();
    assert!(matches!(delivery, Delivery::ToSession(_)), "{delivery:?}");
    let (result, _) = running.end();
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert!(s.f.accounts().is_empty(), "no account was stored");
    assert_eq!(s.f.store.snapshot(), vec![], "no token was stored");
}

#[test]
fn a_session_whose_deadline_passes_ends_timed_out_and_its_redirect_is_refused() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    let running = Running::start(session, Duration::ZERO);
    let url = s.opened();
    let (result, steps) = running.end();
    assert!(matches!(result, Err(Error::LinkTimedOut(_))), "{result:?}");
    assert_eq!(steps, ["Starting", "BrowserOpened", "Waiting"]);
    assert!(s.f.pending_flows().is_empty(), "its flow was removed");
    let late = s.deliver(&redirect_for(&url, "code=c-1"));
    assert!(is_unsolicited(&late), "{late:?}");
    assert_eq!(s.f.server.token_requests(), 0);
    assert!(
        s.link(LinkStart::browser(crate::ProviderId::new("plain")))
            .is_ok(),
        "the slot is free"
    );
}

/// A redirect nobody here asked for is refused before any token request (SECURITY 7).
#[test]
fn a_redirect_with_no_session_is_refused() {
    let s = setup();
    let unsolicited = "com.example.tests:/callback/plain?code=c-1&state=made-up-state";
    let delivery = s.deliver(unsolicited);
    assert!(is_unsolicited(&delivery), "{delivery:?}");
    assert_eq!(s.f.server.token_requests(), 0);
    assert!(s.f.accounts().is_empty());
}

/// While a session waits, a redirect with a state it did not issue is refused and the
/// session keeps waiting for its own (SECURITY 7); its own redirect delivered twice is used
/// once (SECURITY 8).
#[test]
fn a_redirect_with_a_foreign_state_is_refused_and_the_session_keeps_waiting() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")))
        .unwrap();
    let running = Running::start(session, PATIENCE);
    let url = s.opened();
    let foreign = "com.example.tests:/callback/plain?code=c-evil&state=not-the-sessions-state";
    let refused = s.deliver(foreign);
    assert!(is_unsolicited(&refused), "{refused:?}");
    assert_eq!(s.f.server.token_requests(), 0);
    assert_eq!(
        s.f.pending_flows().len(),
        1,
        "the session's flow is untouched"
    );
    let genuine = redirect_for(&url, "code=c-1");
    assert!(matches!(s.deliver(&genuine), Delivery::ToSession(_)));
    assert!(matches!(s.deliver(&genuine), Delivery::Duplicate));
    // The same state with another code: the flow is used up.
    let replay = s.deliver(&redirect_for(&url, "code=c-2"));
    assert!(is_unsolicited(&replay), "{replay:?}");
    let (result, _) = running.end();
    assert_eq!(result.unwrap().subject, "alice");
    assert_eq!(s.f.server.token_requests(), 1);
    let sent = &s.f.server.requests("/token")[0];
    assert_eq!(sent.form("code").as_deref(), Some("c-1"));
}

/// Incremental consent: a reconnect with extra scopes asks for the configured ones, those
/// the account has and the new ones; the account then has what the provider says it
/// granted, or what was asked for when the token response names no scope.
#[test]
fn a_reconnect_with_extra_scopes_asks_for_what_was_granted_too_and_keeps_what_is_granted() {
    let s = setup();
    let account = s.f.seed(
        "alice",
        &crate::test_harness::token_set("at-0", Some("rt-0"), None),
    );
    let reconnect = |extra: &[&str]| {
        let session = s
            .link(LinkStart::reconnect(account.id.clone()).scopes(extra.iter().copied()))
            .unwrap();
        let running = Running::start(session, PATIENCE);
        let url = s.opened();
        s.deliver(&redirect_for(&url, "code=c-1"));
        let (result, _) = running.end();
        (url, result.unwrap())
    };
    // The response names no scope: the account has what was asked for.
    let (url, linked) = reconnect(&["calendar", "contacts"]);
    assert_eq!(
        crate::test_harness::query(&url, "scope").as_deref(),
        Some("read calendar contacts")
    );
    assert_eq!(linked.scopes, ["read", "calendar", "contacts"]);
    assert_eq!(s.f.accounts()[0].scopes, linked.scopes);
    // The provider says what it granted: that is what the account has.
    s.f.server.answer(|request, n| match request.path.as_str() {
        "/token" => Reply::json(
            200,
            json!({ "access_token": "at-2", "token_type": "Bearer", "expires_in": 3600,
                    "refresh_token": "rt-2", "scope": "read contacts" }),
        ),
        _ => signs_in_as("alice")(request, n),
    });
    let (url, linked) = reconnect(&[]);
    assert_eq!(
        crate::test_harness::query(&url, "scope").as_deref(),
        Some("read calendar contacts")
    );
    assert_eq!(linked.scopes, ["read", "contacts"]);
    assert_eq!(s.f.accounts()[0].scopes, ["read", "contacts"]);
}

/// A new link asks for the configured scopes and the extra ones.
#[test]
fn a_new_link_with_extra_scopes_asks_for_them() {
    let s = setup();
    let session = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")).scopes(["calendar"]))
        .unwrap();
    let running = Running::start(session, PATIENCE);
    let url = s.opened();
    assert_eq!(
        crate::test_harness::query(&url, "scope").as_deref(),
        Some("read calendar")
    );
    s.deliver(&redirect_for(&url, "code=c-1"));
    assert_eq!(running.end().0.unwrap().scopes, ["read", "calendar"]);
}

/// An extra scope that is not a scope-token is refused before anything is started, saved
/// or requested.
#[test]
fn an_invalid_extra_scope_is_refused_and_nothing_is_requested() {
    let s = setup();
    let e = s
        .link(LinkStart::browser(crate::ProviderId::new("plain")).scopes(["calendar", "a b"]))
        .unwrap_err();
    assert!(
        matches!(&e, Error::InvalidScope(scope) if scope == "a b"),
        "{e:?}"
    );
    assert!(s.f.pending_flows().is_empty());
    assert_eq!(
        s.f.server.requests("/token").len() + s.f.server.requests("/authorize").len(),
        0
    );
    assert!(s.opened.try_recv().is_err(), "no browser was opened");
    // The slot was not taken.
    assert!(
        s.link(LinkStart::browser(crate::ProviderId::new("plain")))
            .is_ok()
    );
}
