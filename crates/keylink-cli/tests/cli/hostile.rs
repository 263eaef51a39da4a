//! A hostile provider on loopback (dribbling, flooding, overflowing, lying about who signed in)
//! and a hostile local user (another uid on the loopback listener, planted files in the data
//! directory): SECURITY 34–43, each attempted for real.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::fake_idp::{self, FakeIdp, Hostile};
use crate::support::{Home, Idp, param, stderr, wait_for, wait_output};

/// The fake provider with a 2 s request deadline.
fn home_with_deadline(idp: &FakeIdp) -> Home {
    let config = format!("{}\n[network]\ntimeout_secs = 2\n", idp.config("fake"));
    Home::with_config(&config, None)
}

/// Starts a link at the fake provider and returns its redirect (state and iss filled in),
/// with the ID token the provider will answer the exchange with.
fn started_redirect(idp: &FakeIdp, home: &Home) -> (std::process::Child, String, String) {
    let (link, auth_url) = home.start_recorded_link("fake");
    let state = param(&auth_url, "state").unwrap();
    let nonce = param(&auth_url, "nonce").unwrap();
    let redirect = format!(
        "dev.keylink:/callback/fake?code=the-code&state={state}&iss={}",
        idp.issuer
    );
    (link, redirect, nonce)
}

/// Links the fake provider's account with a genuine ID token; returns its id.
fn linked_account(idp: &FakeIdp, home: &Home) -> String {
    let (link, redirect, nonce) = started_redirect(idp, home);
    idp.set_token_response(
        200,
        FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
    );
    assert!(home.open_url(&redirect).status.success());
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    home.list()[0]["id"].as_str().unwrap().to_owned()
}

fn kill(mut child: std::process::Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs `keylink ARGS` under GNU time; returns its output and its peak resident set in KiB.
fn run_measured(home: &Home, args: &[&str]) -> (Output, u64) {
    let time = std::path::Path::new("/usr/bin/time");
    assert!(
        time.exists(),
        "GNU time is missing: run scripts/install-deps.sh (make test does)"
    );
    let report = home.dir.path().join("time.txt");
    let mut inner = home.keylink();
    inner.args(args);
    let mut time = Command::new(time);
    time.arg("-f").arg("%M").arg("-o").arg(&report);
    let mut cmd = crate::support::wrapping(time, &inner);
    let out = wait_output(cmd.spawn().unwrap(), Duration::from_secs(60));
    let text = std::fs::read_to_string(&report).unwrap();
    let kib = text
        .lines()
        .rev()
        .find_map(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no peak RSS in {text:?}"));
    (out, kib)
}

/// Peak memory that shows a body was not read into memory: a 1 GiB answer would need 1 GiB.
const SMALL_RSS_KIB: u64 = 100 * 1024;

#[test]
fn a_dribbling_token_endpoint_is_cut_off_at_the_deadline() {
    // SECURITY 34: one byte every 1.5 s used to stretch a 2 s timeout to the whole answer.
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let (link, redirect, _) = started_redirect(&idp, &home);
    idp.set_hostile("/token", Hostile::Dribble);
    let started = Instant::now();
    let out = home.open_url(&redirect);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no complete answer within 2 s"),
        "{}",
        stderr(&out)
    );
    assert!(took < Duration::from_secs(8), "open-url took {took:?}");
    assert!(home.list().is_empty(), "nothing was linked");
    kill(link);
}

#[test]
fn two_token_callers_behind_a_dribbling_refresh_both_end_soon_and_keep_the_tokens() {
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let id = linked_account(&idp, &home);
    home.expire_access_token(&id);
    let before = home.keychain_entry(&id).unwrap();
    idp.set_hostile("/token", Hostile::Dribble);

    let started = Instant::now();
    let callers: Vec<_> = (0..2)
        .map(|_| {
            home.keylink()
                .args(["token", &id])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for caller in callers {
        let out = wait_output(caller, Duration::from_secs(60));
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(out.stdout.is_empty(), "no token was printed");
    }
    // Each caller's refresh is cut at 2 s; the second waits for the first's lock at most.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(12), "the callers took {took:?}");
    assert_eq!(
        home.keychain_entry(&id).unwrap(),
        before,
        "tokens untouched"
    );
    assert_eq!(home.list()[0]["status"], "ok");
}

#[test]
fn gigabyte_answers_are_refused_without_reading_them_into_memory() {
    // SECURITY 35: discovery (doctor), the key set and the token answer (open-url).
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    idp.set_hostile("/.well-known/openid-configuration", Hostile::Huge);
    let (out, kib) = run_measured(&home, &["doctor"]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("discovery document") && text.contains("larger than 1 MiB"),
        "{text}"
    );
    assert!(kib < SMALL_RSS_KIB, "doctor peaked at {kib} KiB");

    for (path, named) in [("/jwks", "signing keys"), ("/token", "token endpoint")] {
        let idp = FakeIdp::start();
        let home = home_with_deadline(&idp);
        let (link, redirect, nonce) = started_redirect(&idp, &home);
        idp.set_token_response(
            200,
            FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
        );
        idp.set_hostile(path, Hostile::Huge);
        let (out, kib) = run_measured(&home, &["open-url", &redirect]);
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(stderr(&out).contains(named), "{}", stderr(&out));
        assert!(stderr(&out).contains("1 MiB"), "{}", stderr(&out));
        assert!(
            kib < SMALL_RSS_KIB,
            "open-url peaked at {kib} KiB for {path}"
        );
        assert!(home.list().is_empty());
        kill(link);
    }
}

#[test]
fn an_absurd_device_polling_interval_is_a_clear_error_not_a_panic() {
    // SECURITY 40: `interval: u64::MAX` used to panic adding the wait to the clock (exit 101).
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    idp.set_discovery(json!({"device_authorization_endpoint": format!("{}/device", idp.issuer)}));
    idp.set_hostile(
        "/device",
        Hostile::Json(
            200,
            json!({"device_code": "dc", "user_code": "ABCD-EFGH",
                   "verification_uri": format!("{}/activate", idp.issuer),
                   "expires_in": 600, "interval": 18446744073709551615u64}),
        ),
    );
    let out = home.run(&["link", "fake", "--device", "--timeout", "10"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("polling interval"),
        "{}",
        stderr(&out)
    );
    assert!(!stderr(&out).contains("panicked"));
    assert_eq!(idp.token_requests(), 0);
}

#[test]
fn escape_sequences_in_an_email_never_reach_the_terminal() {
    // SECURITY 39: an OSC 52 clipboard write and a screen clear in the email, a bidi override
    // in the name.
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let (link, redirect, nonce) = started_redirect(&idp, &home);
    let mut claims = idp.claims(&nonce);
    claims["email"] = json!("\u{1b}]52;c;aGFja2Vk\u{7}\u{1b}[2Jmallory@example.test");
    claims["name"] = json!("Mal\u{202e}lory\u{9b}31m");
    idp.set_token_response(200, FakeIdp::token_body(&fake_idp::sign_rs256(&claims)));
    let delivered = home.open_url(&redirect);
    assert!(delivered.status.success(), "{}", stderr(&delivered));
    let linked = wait_output(link, Duration::from_secs(30));
    assert!(linked.status.success(), "{}", stderr(&linked));
    for args in [&["list"][..], &["list", "--json"][..]] {
        let out = home.run(args);
        let all = [out.stdout.as_slice(), out.stderr.as_slice()].concat();
        assert!(
            !all.contains(&0x1b),
            "ESC reached the terminal via {args:?}"
        );
        let text = String::from_utf8_lossy(&all);
        assert!(
            !text.contains('\u{202e}') && !text.contains('\u{9b}'),
            "{text}"
        );
    }
    for stream in [&delivered.stderr, &linked.stderr, &linked.stdout] {
        assert!(!stream.contains(&0x1b));
    }
    let account = &home.list()[0];
    assert_eq!(account["email"], "]52;c;aGFja2Vk[2Jmallory@example.test");
    assert_eq!(account["name"], "Mallory31m");
}

#[test]
fn a_refreshed_id_token_for_another_subject_is_refused_and_the_tokens_stay() {
    // SECURITY 42 (OIDC Core §12.2).
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let id = linked_account(&idp, &home);
    home.expire_access_token(&id);
    let before = home.keychain_entry(&id).unwrap();

    let mut other = idp.claims("unused");
    other.as_object_mut().unwrap().remove("nonce");
    other["sub"] = json!("someone-else");
    let mut body = FakeIdp::token_body(&fake_idp::sign_rs256(&other));
    body["access_token"] = json!("access-token-of-someone-else");
    idp.push_refresh_response(200, body);
    let out = home.run(&["token", &id]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("different account"),
        "{}",
        stderr(&out)
    );
    assert!(out.stdout.is_empty());
    assert_eq!(
        home.keychain_entry(&id).unwrap(),
        before,
        "the stored tokens stay"
    );

    // The control: a refreshed ID token for the same person is accepted.
    let mut same = idp.claims("unused");
    same.as_object_mut().unwrap().remove("nonce");
    let mut body = FakeIdp::token_body(&fake_idp::sign_rs256(&same));
    body["access_token"] = json!("refreshed-access-token");
    idp.push_refresh_response(200, body);
    assert_eq!(home.ok(&["token", &id]).trim(), "refreshed-access-token");
}

#[test]
fn unlink_waits_for_a_refresh_in_flight() {
    // SECURITY 41: a refresh holding the account lock finishes before unlink deletes, so it
    // cannot store the tokens again afterwards.
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let id = linked_account(&idp, &home);

    // Hold the lock as a refreshing process would.
    let lock_path = home.data.join("locks").join(format!("{id}.lock"));
    std::fs::create_dir_all(lock_path.parent().unwrap()).unwrap();
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .unwrap();
    lock.lock().unwrap();
    let mut unlink = home
        .keylink()
        .args(["unlink", &id])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It is waiting on the lock (its lock file is open), not deleting.
    let pid = unlink.id();
    wait_for(
        "unlink to wait on the account lock",
        Duration::from_secs(20),
        || {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.flatten().any(|fd| {
                        std::fs::read_link(fd.path()).is_ok_and(|target| target == lock_path)
                    })
                })
                .unwrap_or(false)
        },
    );
    assert!(unlink.try_wait().unwrap().is_none(), "unlink did not wait");
    assert!(
        home.keychain_entry(&id).is_some(),
        "nothing deleted while the lock is held"
    );
    drop(lock);
    let out = wait_output(unlink, Duration::from_secs(30));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(home.keychain_entry(&id).is_none());
    assert!(home.list().is_empty());
}

#[test]
fn http_proxy_never_carries_requests_to_a_loopback_provider() {
    // A proxy that records whoever connects to it.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy_url = format!("http://{}", proxy.local_addr().unwrap());
    proxy.set_nonblocking(true).unwrap();
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let (link, auth_url) = {
        let opened = home.opened_url_file();
        let _ = std::fs::remove_file(&opened);
        let child = home
            .keylink()
            .args(["link", "fake", "--json", "--timeout", "30"])
            .env("BROWSER", home.recording_browser())
            .env("HTTP_PROXY", &proxy_url)
            .env("http_proxy", &proxy_url)
            .env("HTTPS_PROXY", &proxy_url)
            .env("ALL_PROXY", &proxy_url)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        wait_for("the browser to be opened", Duration::from_secs(30), || {
            opened.exists()
        });
        (child, std::fs::read_to_string(&opened).unwrap())
    };
    // Discovery reached the provider directly, not the proxy.
    assert!(proxy.accept().is_err(), "a request went to the proxy");
    assert!(idp.request_count() >= 1);
    kill(link);
    assert!(param(&auth_url, "state").is_some());
}

#[test]
fn a_redirect_on_another_providers_redirect_uri_is_refused() {
    // SECURITY 37 (RFC 9700 §4.4.2): each provider has its own redirect URI, so a code sent
    // to provider B's URI cannot complete provider A's flow.
    let idp = Idp::start();
    let config = format!(
        "[providers.demo]\nissuer = \"{i}\"\nclient_id = \"keylink-demo\"\n\
         [providers.demo-b]\nissuer = \"{i}\"\nclient_id = \"keylink-demo\"\n\
         [network]\nca_file = \"{ca}\"\ntimeout_secs = 10\n",
        i = idp.issuer,
        ca = idp.ca.ca_pem.display()
    );
    let home = Home::with_config(&config, Some(idp.ca.ca_pem.clone()));
    let providers: serde_json::Value =
        serde_json::from_str(&home.ok(&["providers", "--json"])).unwrap();
    let uris: Vec<&str> = providers
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["redirect_uri"].as_str().unwrap())
        .collect();
    assert_eq!(
        uris,
        ["dev.keylink:/callback/demo", "dev.keylink:/callback/demo-b"]
    );

    let (link, url) = home.link_captured("demo");
    assert!(url.starts_with("dev.keylink:/callback/demo?"), "{url}");
    let crossed = url.replacen("/callback/demo?", "/callback/demo-b?", 1);
    let out = home.open_url(&crossed);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(idp.stats().token_requests.authorization_code, 0);
    // The genuine redirect still completes A's flow.
    assert!(home.open_url(&url).status.success());
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    assert_eq!(home.list()[0]["provider"], "demo");
}

#[test]
fn a_slowloris_client_does_not_delay_the_genuine_redirect_or_the_deadline() {
    // SECURITY 36: clients that send a byte every second, beside the browser.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo-loopback");
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(url.contains("/callback/demo-loopback?"), "{url}");
    let port: u16 = url::Url::parse(&url).unwrap().port().unwrap();
    let slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"G").unwrap();
            s
        })
        .collect();
    let dribbler = {
        let mut streams: Vec<TcpStream> = slow.iter().map(|s| s.try_clone().unwrap()).collect();
        std::thread::spawn(move || {
            for _ in 0..20 {
                for s in &mut streams {
                    let _ = s.write_all(b"E");
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        })
    };
    let started = Instant::now();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let genuine = http.get(&url).send().unwrap();
    assert_eq!(genuine.status().as_u16(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
    // The slow clients were dropped without an answer.
    for mut s in slow {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut answer = Vec::new();
        let _ = s.read_to_end(&mut answer);
        assert!(answer.is_empty(), "a slowloris client got an answer");
    }
    let _ = dribbler.join();

    // With only slow clients, the link still ends at its own deadline.
    let mut waiting = home
        .keylink()
        .args(["link", "demo-loopback", "--timeout", "4"])
        .env("BROWSER", home.recording_browser())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let opened = home.opened_url_file();
    wait_for("the browser to be opened", Duration::from_secs(30), || {
        opened.exists()
    });
    let auth = std::fs::read_to_string(&opened).unwrap();
    let redirect_uri = param(&auth, "redirect_uri").unwrap();
    let port = url::Url::parse(&redirect_uri).unwrap().port().unwrap();
    let started = Instant::now();
    let _slow: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /").unwrap();
            s
        })
        .collect();
    wait_for("the link to give up", Duration::from_secs(20), || {
        waiting.try_wait().unwrap().is_some()
    });
    let out = wait_output(waiting, Duration::from_secs(1));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn another_local_user_cannot_use_the_loopback_listener() {
    // SECURITY 36: another uid can read the state from the browser's argv; its connection is
    // closed before it is read. Needs root to act as another user (CI runs as root).
    if rustix_uid() != 0 {
        eprintln!(
            "SKIPPED another_local_user_cannot_use_the_loopback_listener: needs root to run a client as `nobody`"
        );
        return;
    }
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let (link, url) = home.link_captured("demo-loopback");
    let parsed = url::Url::parse(&url).unwrap();
    let port = parsed.port().unwrap();
    let target = format!("{}?{}", parsed.path(), parsed.query().unwrap());
    // The genuine redirect itself, sent by `nobody`: bash's /dev/tcp, the answer printed.
    let script = format!(
        "exec 3<>/dev/tcp/127.0.0.1/{port} || exit 7; printf 'GET {target} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\n\\r\\n' >&3; cat <&3"
    );
    let out = Command::new("runuser")
        .args(["-u", "nobody", "--", "bash", "-c", &script])
        .stdin(Stdio::null())
        .output()
        .expect("runuser");
    assert_ne!(
        out.status.code(),
        Some(7),
        "nobody could not connect at all"
    );
    assert!(
        out.stdout.is_empty(),
        "another user got an answer: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        idp.stats().token_requests.authorization_code,
        0,
        "nothing was exchanged"
    );
    // The same request from this user completes the link.
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    assert_eq!(http.get(&url).send().unwrap().status().as_u16(), 200);
    assert!(wait_output(link, Duration::from_secs(30)).status.success());
}

fn rustix_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just created is its effective uid.
    let probe = tempfile::NamedTempFile::new().unwrap();
    probe.as_file().metadata().unwrap().uid()
}

#[test]
fn a_flow_planted_in_a_world_writable_data_dir_is_refused() {
    // SECURITY 38: the pending flow is genuine, but the directory lets anyone plant one.
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let (link, redirect, nonce) = started_redirect(&idp, &home);
    kill(link);
    idp.set_token_response(
        200,
        FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
    );
    let pending = home.data.join("pending");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pending, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = home.open_url(&redirect);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("can be written by other users"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("chmod 700"), "{}", stderr(&out));
    assert_eq!(idp.token_requests(), 0, "no token request");
    // Keylink changed nothing: the directory is as it was, no account was stored.
    let mode = std::fs::metadata(&pending).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o777);
    assert!(!home.data.join("accounts.json").exists());
}

#[test]
fn a_symlinked_index_is_not_followed() {
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    std::fs::create_dir_all(&home.data).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&home.data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let elsewhere = home.dir.path().join("planted.json");
    std::fs::write(&elsewhere, r#"{"accounts": []}"#).unwrap();
    std::os::unix::fs::symlink(&elsewhere, home.data.join("accounts.json")).unwrap();
    let out = home.run(&["list", "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("accounts.json"), "{}", stderr(&out));
    // Linking does not write through the link either.
    let (link, redirect, nonce) = started_redirect(&idp, &home);
    idp.set_token_response(
        200,
        FakeIdp::token_body(&fake_idp::sign_rs256(&idp.claims(&nonce))),
    );
    let _ = home.open_url(&redirect);
    kill(link);
    assert_eq!(
        std::fs::read_to_string(&elsewhere).unwrap(),
        r#"{"accounts": []}"#
    );
}

#[test]
fn without_home_keylink_refuses_rather_than_using_the_current_directory() {
    let idp = FakeIdp::start();
    let home = home_with_deadline(&idp);
    let cwd = home.dir.path().join("cwd");
    std::fs::create_dir(&cwd).unwrap();
    let out = home
        .keylink()
        .args(["link", "fake", "--timeout", "5"])
        .env_remove("HOME")
        .env_remove("XDG_DATA_HOME")
        .env_remove("KEYLINK_DATA_DIR")
        .env("BROWSER", "/bin/true")
        .current_dir(&cwd)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("KEYLINK_DATA_DIR"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_dir(&cwd).unwrap().count(),
        0,
        "nothing created in the cwd"
    );
}

#[test]
fn a_token_the_provider_has_forgotten_gets_one_refresh_then_needs_relink() {
    // SECURITY 44: after the provider dropped the grant, Check connection used to say "HTTP
    // 401 ... the account stays linked" and `keylink token` kept printing the dead token.
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    let entry = home.keychain_entry(&id).unwrap();
    let refresh_token = entry["refresh_token"].as_str().unwrap().to_owned();
    // The provider forgets the grant (its refresh token revoked, which ends the grant).
    let revoked = idp
        .http()
        .post(format!("{}/token/revocation", idp.issuer))
        .form(&[
            ("token", refresh_token.as_str()),
            ("client_id", "keylink-demo"),
        ])
        .send()
        .unwrap();
    assert!(revoked.status().is_success());
    assert!(!idp.refresh_accepted(&refresh_token));
    let refreshes = idp.stats().token_requests.refresh_token;

    // "Check connection", through the library as the app calls it.
    let config = keylink::Config::from_files(std::slice::from_ref(&home.config)).unwrap();
    let keylink = keylink::Keylink::builder(keylink::AppIdentity::keylink())
        .config(config)
        .data_dir(home.data.clone())
        .build()
        .unwrap();
    let checked = keylink.check_connection(&keylink::AccountId::new(id.clone()));
    assert!(
        matches!(checked, Err(keylink::Error::NeedsRelink(_))),
        "{checked:?}"
    );
    assert_eq!(
        idp.stats().token_requests.refresh_token,
        refreshes + 1,
        "exactly one refresh attempt"
    );
    assert_eq!(home.list()[0]["status"], "needs_relink");
    let token = home.run(&["token", &id]);
    assert_eq!(token.status.code(), Some(3), "{}", stderr(&token));
    assert!(token.stdout.is_empty(), "the dead token is not printed");
}
