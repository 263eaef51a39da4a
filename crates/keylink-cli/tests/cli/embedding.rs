//! Keylink embedded the way another app embeds it: a builder with its own identity,
//! in-memory configuration and a browser opener of its own, against the real test provider
//! and keychain; and apps (and data directories) side by side that cannot see or remove each
//! other's accounts.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use keylink::{AppIdentity, BrowserOpener, Keylink};

use crate::support::{Idp, repo, wait_for};

/// The embedding app's own "browser": the scripted user agent, which signs in and captures
/// the redirect instead of handing it to the OS; the app then completes it itself.
#[derive(Debug)]
struct CapturingBrowser {
    idp_ca: PathBuf,
    capture: PathBuf,
    login: &'static str,
    opened: Mutex<Vec<String>>,
}

impl BrowserOpener for CapturingBrowser {
    fn open(&self, url: &url::Url) -> Result<(), keylink::Error> {
        self.opened.lock().unwrap().push(url.to_string());
        let status = Command::new(repo().join("tests/idp/user-agent.js"))
            .arg(url.as_str())
            .env("KEYLINK_UA_CAPTURE", &self.capture)
            .env("KEYLINK_UA_LOGIN", self.login)
            .env("NODE_EXTRA_CA_CERTS", &self.idp_ca)
            .stdin(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "the user agent failed");
        Ok(())
    }
}

fn config(idp: &Idp) -> keylink::Config {
    keylink::Config::parse(&format!(
        "[providers.demo]\nname = \"Demo\"\nissuer = \"{}\"\nclient_id = \"keylink-demo\"\n\
         scopes = [\"openid\", \"profile\", \"email\", \"offline_access\"]\n\
         [network]\nca_file = \"{}\"\ntimeout_secs = 10\n",
        idp.issuer,
        idp.ca.ca_pem.display()
    ))
    .unwrap()
}

fn app(idp: &Idp, identity: &str, data: &Path, browser: Arc<CapturingBrowser>) -> Keylink {
    Keylink::builder()
        .identity(AppIdentity::new(identity).unwrap())
        .config(config(idp))
        .data_dir(data)
        .browser(browser)
        .build()
        .unwrap()
}

/// Links alice in `keylink` through its own browser and returns the account id.
fn link(keylink: &Keylink, browser: &CapturingBrowser) -> String {
    let _ = std::fs::remove_file(&browser.capture);
    let request = keylink.start_link("demo").unwrap();
    keylink.open_browser(&request.authorization_url).unwrap();
    wait_for("the redirect", Duration::from_secs(30), || {
        browser.capture.exists()
    });
    let url = std::fs::read_to_string(&browser.capture).unwrap();
    let account = keylink.complete_redirect(url.trim()).unwrap();
    // The waiting side sees the same result.
    let waited = keylink
        .wait_for_link(request, Duration::from_secs(10), || false)
        .unwrap();
    assert_eq!(waited.id, account.id);
    account.id
}

#[test]
fn an_app_links_with_its_own_identity_and_others_cannot_see_or_remove_it() {
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser = Arc::new(CapturingBrowser {
        idp_ca: idp.ca.ca_pem.clone(),
        capture: dir.path().join("redirect.url"),
        login: "alice",
        opened: Mutex::default(),
    });
    let notes_data = dir.path().join("notes");
    let notes = app(&idp, "com.example.notes", &notes_data, browser.clone());
    let id = link(&notes, &browser);

    // Its own scheme and provider path; the opener got exactly the authorization request.
    let opened = browser.opened.lock().unwrap().clone();
    assert_eq!(opened.len(), 1);
    let redirect_uri = crate::support::param(&opened[0], "redirect_uri").unwrap();
    assert_eq!(redirect_uri, "com.example.notes:/callback/demo");
    let token = notes.access_token(&id, 60).unwrap();
    assert!(!token.secret().is_empty());

    // Another app in the same keychain sees nothing and can remove nothing.
    let other_data = dir.path().join("other");
    let other = app(&idp, "com.example.other", &other_data, browser.clone());
    assert!(other.accounts().unwrap().is_empty());
    assert!(other.unlink(&id).is_err());
    assert!(other.access_token(&id, 60).is_err());
    // Nor does the Keylink app itself.
    let keylink_app = Keylink::builder()
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
    let same = link(&second, &browser);
    assert_eq!(same, id, "the same person at the same provider");
    second.unlink(&same).unwrap();
    assert!(second.accounts().unwrap().is_empty());
    let fresh = app(&idp, "com.example.notes", &notes_data, browser.clone());
    assert_eq!(fresh.accounts().unwrap().len(), 1);
    assert!(
        fresh.access_token(&id, 60).is_ok(),
        "the first directory's tokens survived"
    );
    fresh.unlink(&id).unwrap();
}

#[test]
fn keylink_app_option_reaches_another_apps_accounts() {
    let idp = Idp::start();
    let home = crate::support::Home::for_idp(&idp);
    let browser = Arc::new(CapturingBrowser {
        idp_ca: idp.ca.ca_pem.clone(),
        capture: home.dir.path().join("redirect.url"),
        login: "alice",
        opened: Mutex::default(),
    });
    // The embedding app keeps its data where its identity says, under XDG_DATA_HOME.
    let xdg_data = home.dir.path().join("xdg-data");
    let notes = app(
        &idp,
        "com.example.notes",
        &xdg_data.join("com.example.notes"),
        browser.clone(),
    );
    let id = link(&notes, &browser);
    let list = |args: &[&str]| -> serde_json::Value {
        let out = home
            .keylink()
            .env_remove("KEYLINK_DATA_DIR")
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", crate::support::stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let theirs = list(&["--app", "com.example.notes", "list", "--json"]);
    assert_eq!(theirs[0]["id"], id.as_str());
    let ours = list(&["list", "--json"]);
    assert_eq!(
        ours,
        serde_json::json!([]),
        "the Keylink app's own accounts are apart"
    );
    let out = home
        .keylink()
        .env_remove("KEYLINK_DATA_DIR")
        .args(["--app", "com.example.notes", "token", &id])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", crate::support::stderr(&out));
    let bad = home.run(&["--app", "Not An Id", "list"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(crate::support::stderr(&bad).contains("reverse-domain"));
    notes.unlink(&id).unwrap();
}

#[test]
fn reconnecting_as_someone_else_changes_nothing_and_says_who_signed_in() {
    // SECURITY 45: reconnecting Bob and signing in as Carol used to add Carol silently and
    // leave Bob "needs reconnecting".
    let idp = Idp::start();
    let dir = tempfile::tempdir().unwrap();
    let browser_as = |login: &'static str| {
        Arc::new(CapturingBrowser {
            idp_ca: idp.ca.ca_pem.clone(),
            capture: dir.path().join("redirect.url"),
            login,
            opened: Mutex::default(),
        })
    };
    let data = dir.path().join("notes");
    let bob_browser = browser_as("bob");
    let notes = app(&idp, "com.example.notes", &data, bob_browser.clone());
    let bob = link(&notes, &bob_browser);
    let before = notes.accounts().unwrap();

    let carol_browser = browser_as("carol");
    let as_carol = app(&idp, "com.example.notes", &data, carol_browser.clone());
    let _ = std::fs::remove_file(&carol_browser.capture);
    let request = as_carol.start_reconnect(&bob).unwrap();
    let url = request.authorization_url.to_string();
    assert_eq!(
        crate::support::param(&url, "login_hint").as_deref(),
        Some("bob@example.test")
    );
    assert_eq!(
        crate::support::param(&url, "prompt").as_deref(),
        Some("login")
    );
    as_carol.open_browser(&request.authorization_url).unwrap();
    wait_for("the redirect", Duration::from_secs(30), || {
        carol_browser.capture.exists()
    });
    let redirect = std::fs::read_to_string(&carol_browser.capture).unwrap();
    let refused = as_carol.complete_redirect(redirect.trim()).unwrap_err();
    let message = refused.to_string();
    assert!(
        matches!(refused, keylink::Error::WrongAccount { .. }),
        "{message}"
    );
    assert!(
        message.starts_with("you signed in as carol@example.test, not bob@example.test"),
        "{message}"
    );
    assert!(message.contains("nothing was changed"), "{message}");
    drop(request);
    assert_eq!(
        as_carol.accounts().unwrap(),
        before,
        "Carol was not added, Bob unchanged"
    );

    // Signing in as Bob reconnects Bob.
    let _ = std::fs::remove_file(&bob_browser.capture);
    let request = notes.start_reconnect(&bob).unwrap();
    notes.open_browser(&request.authorization_url).unwrap();
    wait_for("the redirect", Duration::from_secs(30), || {
        bob_browser.capture.exists()
    });
    let redirect = std::fs::read_to_string(&bob_browser.capture).unwrap();
    assert_eq!(notes.complete_redirect(redirect.trim()).unwrap().id, bob);
    notes.unlink(&bob).unwrap();
}
