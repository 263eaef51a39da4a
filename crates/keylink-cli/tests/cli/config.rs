use crate::support::{Home, stderr};

#[test]
fn a_bad_configuration_file_is_named_with_its_key_and_exits_2() {
    let home = Home::with_config(
        "[providers.demo]\nissuer = \"http://login.example.com\"\nclient_id = \"x\"\n",
        None,
    );
    let out = home.run(&["providers"]);
    assert_eq!(out.status.code(), Some(2));
    let message = stderr(&out);
    assert!(
        message.contains(&home.config.display().to_string()),
        "{message}"
    );
    assert!(message.contains("providers.demo.issuer"), "{message}");
    assert!(message.contains("https://"), "{message}");
}

#[test]
fn a_missing_keylink_config_file_is_a_configuration_error() {
    let home = Home::with_config("", None);
    let out = home
        .keylink()
        .arg("list")
        .env("KEYLINK_CONFIG", home.dir.path().join("nope.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("KEYLINK_CONFIG"), "{}", stderr(&out));
}

#[test]
fn usage_errors_and_unknown_names_exit_2() {
    let home = Home::with_config("", None);
    assert_eq!(home.run(&["frobnicate"]).status.code(), Some(2));
    assert_eq!(home.run(&["link"]).status.code(), Some(2));
    let unknown = home.run(&["link", "nowhere"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("keylink providers"),
        "{}",
        stderr(&unknown)
    );
    assert_eq!(
        home.run(&["token", "nobody@example.test"]).status.code(),
        Some(2)
    );
}

#[test]
fn list_prints_an_empty_json_array_when_nothing_is_linked() {
    let home = Home::with_config("", None);
    assert_eq!(home.ok(&["list", "--json"]).trim(), "[]");
}

#[test]
fn without_a_keychain_linking_refuses_to_start() {
    let home = Home::with_config(
        "[providers.demo]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    let out = home
        .keylink()
        .args(["link", "demo", "--no-browser", "--timeout", "5"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_refused_for_want_of_a_keychain(&out, &home);
}

#[test]
fn without_a_display_or_browser_link_says_what_to_do_and_leaves_no_flow() {
    let home = crate::support::Home::with_config("", None);
    // A provider the flow can start against: the fake one answers discovery.
    let idp = crate::support::fake_idp::FakeIdp::start();
    std::fs::write(&home.config, idp.config("fake")).unwrap();
    let out = home
        .keylink()
        .args(["link", "fake", "--timeout", "5"])
        .env_remove("BROWSER")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let message = stderr(&out);
    assert!(
        message.contains("no display")
            && message.contains("--device")
            && message.contains("--no-browser"),
        "{message}"
    );
    let pending = home.data.join("pending");
    assert!(
        !pending.exists() || std::fs::read_dir(&pending).unwrap().next().is_none(),
        "a flow was left behind"
    );
}

#[test]
fn a_session_without_a_secret_service_is_named_as_the_cause() {
    let home = Home::with_config(
        "[providers.demo]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    let bus_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/support/no-secret-service.conf");
    let mut cmd = home.keylink();
    cmd.args(["link", "demo", "--no-browser", "--timeout", "5"]);
    let out = crate::support::run_in_private_bus(&cmd, &bus_config);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_refused_for_want_of_a_keychain(&out, &home);
}

#[test]
fn a_locked_keyring_is_reported_as_locked_and_nothing_is_stored() {
    // A keyring session of its own, so locking it does not disturb the other tests; no
    // display, so the unlock prompt cannot appear.
    let home = Home::with_config(
        "[providers.demo]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    let script = format!(
        "dbus-send --session --print-reply --dest=org.freedesktop.secrets /org/freedesktop/secrets \
         org.freedesktop.Secret.Service.Lock array:objpath:/org/freedesktop/secrets/collection/login >/dev/null \
         && exec '{}' link demo --no-browser --timeout 5",
        crate::support::keylink_bin().display()
    );
    let mut cmd =
        std::process::Command::new(crate::support::repo().join("scripts/with-keyring.sh"));
    cmd.args(["sh", "-c", &script])
        .envs(
            home.keylink()
                .get_envs()
                .filter_map(|(k, v)| v.map(|v| (k.to_owned(), v.to_owned()))),
        )
        .env_remove("KEYLINK_IN_TEST_SESSION")
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("DISPLAY")
        .env_remove("WAYLAND_DISPLAY")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let out = crate::support::wait_output(cmd.spawn().unwrap(), std::time::Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let message = stderr(&out);
    assert!(message.contains("locked"), "{message}");
    assert!(!home.data.join("pending").exists(), "a flow was started");
}

/// Exit 1, a message naming the cause and the fix, and no sign-in started.
fn assert_refused_for_want_of_a_keychain(out: &std::process::Output, home: &Home) {
    assert_eq!(out.status.code(), Some(1), "{}", stderr(out));
    let message = stderr(out);
    assert!(
        message.contains("no keychain") && message.contains("gnome-keyring"),
        "{message}"
    );
    assert!(!home.data.join("pending").exists(), "a flow was started");
}
