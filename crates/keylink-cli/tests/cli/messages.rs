//! Messages a person can trust: an error is one sentence on stderr, log lines only when
//! `RUST_LOG` asks and never colour codes into a pipe, and `doctor --json` with each fix in
//! `fix` and a check it could not make said as `skip`.

use crate::support::{Home, Idp, stderr};

/// Ends the grant at the provider (its refresh token revoked), so the next refresh is refused.
fn end_grant(idp: &Idp, home: &Home, account: &str) {
    let entry = home.keychain_entry(account).unwrap();
    let refresh_token = entry["refresh_token"].as_str().unwrap();
    let revoked = idp
        .http()
        .post(format!("{}/token/revocation", idp.issuer))
        .form(&[("token", refresh_token), ("client_id", "keylink-demo")])
        .send()
        .unwrap();
    assert!(revoked.status().is_success());
}

/// The review saw `keylink token` print coloured `WARN keylink::tokens: refresh refused` lines
/// before its error, escape codes included although stderr was a pipe.
#[test]
fn an_error_is_one_sentence_with_log_lines_only_when_rust_log_asks() {
    let idp = Idp::start();
    let home = Home::for_idp(&idp);
    let id = home.link("demo")["id"].as_str().unwrap().to_owned();
    end_grant(&idp, &home, &id);
    let out = home.run(&["token", &id, "--min-ttl", "999999"]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.starts_with("keylink: ") && err.contains("must be linked again"),
        "{err}"
    );
    assert!(!err.contains("WARN") && !err.contains('\x1b'), "{err:?}");

    // Asked for with RUST_LOG, the log line comes, without colour codes into the pipe.
    home.link("demo");
    end_grant(&idp, &home, &id);
    let out = home
        .keylink()
        .args(["token", &id, "--min-ttl", "999999"])
        .env("RUST_LOG", "keylink=warn")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("WARN") && err.contains("refresh refused"),
        "{err}"
    );
    assert!(
        !err.contains('\x1b'),
        "no escape codes into a pipe: {err:?}"
    );
    assert!(
        err.lines().last().unwrap().starts_with("keylink: "),
        "{err}"
    );
}

#[test]
fn doctor_json_keeps_each_fix_in_fix_and_skips_the_clock_of_an_unreachable_provider() {
    let home = Home::with_config(
        "[providers.gone]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    // No handler anywhere: the URL-scheme check warns, with its fix.
    let empty = home.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = home
        .keylink()
        .args(["doctor", "--json"])
        .env("XDG_DATA_DIRS", &empty)
        .env("XDG_CONFIG_DIRS", &empty)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = report["checks"].as_array().unwrap();
    let check = |id: &str| {
        checks
            .iter()
            .find(|c| c["id"] == id)
            .cloned()
            .unwrap_or_else(|| panic!("no {id} check in {report}"))
    };

    let scheme = check("url_scheme");
    assert_eq!(scheme["status"], "warn", "{scheme}");
    let message = scheme["message"].as_str().unwrap();
    let fix = scheme["fix"].as_str().unwrap();
    assert_eq!(
        message,
        "URL scheme: nothing handles dev.keylink, so browsers cannot hand sign-ins back"
    );
    assert!(
        fix.starts_with("start the Keylink app once") && fix.contains("keylink open-url"),
        "{scheme}"
    );

    // The provider could not be reached, so its clock was not compared: said, not left out.
    assert_eq!(check("provider.gone")["status"], "fail");
    let clock = check("clock.gone");
    assert_eq!(clock["status"], "skip", "{clock}");
    assert!(
        clock["message"]
            .as_str()
            .unwrap()
            .contains("because the provider could not be reached"),
        "{clock}"
    );
    assert_eq!(clock["fix"], serde_json::Value::Null);
    assert_eq!(report["failed"], 1, "a skipped check is no failure");

    // In every check, what to do is in `fix` alone.
    for check in checks {
        let message = check["message"].as_str().unwrap();
        if let Some(fix) = check["fix"].as_str() {
            assert!(!message.contains(fix), "{check}");
        }
        for verb in ["; run ", "; start ", "; set ", "; check "] {
            assert!(!message.contains(verb), "a fix inside the message: {check}");
        }
    }
}
