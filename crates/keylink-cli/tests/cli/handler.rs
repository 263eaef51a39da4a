//! SECURITY 55: a package's URL-scheme handler wins over what a Keylink run from a checkout
//! left in the user's own files. `doctor` names the exact files and the command, and after
//! that command the real `xdg-mime` resolves the scheme to the package's entry.

use std::path::Path;
use std::process::Command;

use crate::support::{Home, stderr};

const MIME: &str = "x-scheme-handler/dev.keylink";

/// `program` with the home's XDG directories and `system` as the only system data directory,
/// as the person's shell runs it.
fn in_home(home: &Home, system: &Path, program: &str) -> Command {
    let mut cmd = Command::new(program);
    cmd.env("HOME", home.dir.path())
        .env("XDG_CONFIG_HOME", home.dir.path().join("config"))
        .env("XDG_DATA_HOME", home.dir.path().join("xdg-data"))
        .env("XDG_DATA_DIRS", system)
        .env("XDG_CONFIG_DIRS", system)
        .env_remove("XDG_CURRENT_DESKTOP");
    cmd
}

fn succeed(mut cmd: Command) -> String {
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "{cmd:?}: {}", stderr(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn url_scheme_check(home: &Home, system: &Path) -> serde_json::Value {
    let out = home
        .keylink()
        .args(["doctor", "--json"])
        .env("XDG_DATA_DIRS", system)
        .env("XDG_CONFIG_DIRS", system)
        .output()
        .unwrap();
    let report: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stderr(&out)));
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "url_scheme")
        .cloned()
        .unwrap()
}

#[test]
fn a_checkout_s_leftovers_are_named_by_doctor_and_its_fix_hands_the_scheme_to_the_package() {
    let home = Home::with_config(
        "[providers.demo]\nissuer = \"https://127.0.0.1:9\"\nclient_id = \"x\"\n",
        None,
    );
    // The package's entry, as the .deb installs it in /usr/share/applications.
    let system = home.dir.path().join("system");
    std::fs::create_dir_all(system.join("applications")).unwrap();
    std::fs::write(
        system.join("applications/keylink.desktop"),
        "[Desktop Entry]\nType=Application\nName=Keylink\nExec=keylink-app %u\n\
         MimeType=x-scheme-handler/dev.keylink;\n",
    )
    .unwrap();
    // What the app run from a checkout left: its per-user entry, made the default, in the
    // per-user MIME cache.
    let user_apps = home.dir.path().join("xdg-data/applications");
    std::fs::create_dir_all(&user_apps).unwrap();
    let leftover = user_apps.join("keylink-app-handler.desktop");
    std::fs::write(
        &leftover,
        "[Desktop Entry]\nType=Application\nName=Keylink\n\
         Exec=/home/ann/src/keylink/target/debug/keylink-app %u\nNoDisplay=true\n\
         MimeType=x-scheme-handler/dev.keylink;\n",
    )
    .unwrap();
    let mut default = in_home(&home, &system, "xdg-mime");
    default.args(["default", "keylink-app-handler.desktop", MIME]);
    succeed(default);
    let mut cache = in_home(&home, &system, "update-desktop-database");
    cache.arg(&user_apps);
    succeed(cache);
    let query = || {
        let mut q = in_home(&home, &system, "xdg-mime");
        q.args(["query", "default", MIME]);
        succeed(q).trim().to_owned()
    };
    assert_eq!(query(), "keylink-app-handler.desktop");

    // Deleting the entry alone (what a person would try first) leaves the default and the
    // cache naming it: still not the package's.
    std::fs::remove_file(&leftover).unwrap();
    let check = url_scheme_check(&home, &system);
    assert_eq!(check["status"], "warn", "{check}");
    assert!(
        check["message"].as_str().unwrap().contains(&format!(
            "installed package's {}",
            system.join("applications/keylink.desktop").display()
        )),
        "{check}"
    );
    // With the entry back, doctor names it, and the fix is the whole of it.
    std::fs::write(
        &leftover,
        "[Desktop Entry]\nType=Application\nName=Keylink\n\
         Exec=/home/ann/src/keylink/target/debug/keylink-app %u\n\
         MimeType=x-scheme-handler/dev.keylink;\n",
    )
    .unwrap();
    let check = url_scheme_check(&home, &system);
    assert_eq!(check["status"], "warn", "{check}");
    let message = check["message"].as_str().unwrap();
    assert!(message.contains(&leftover.display().to_string()), "{check}");
    let fix = check["fix"].as_str().unwrap().to_owned();
    assert!(
        !message.contains(&fix),
        "the fix is in fix, not in message: {check}"
    );
    assert!(
        fix.contains("xdg-mime default keylink.desktop x-scheme-handler/dev.keylink"),
        "{fix}"
    );

    // The person runs the command doctor printed, in their shell.
    let mut run_fix = in_home(&home, &system, "sh");
    run_fix.args(["-c", &fix]);
    succeed(run_fix);
    assert!(!leftover.exists());
    assert_eq!(
        query(),
        "keylink.desktop",
        "xdg-mime resolves to the package's entry"
    );
    let cached = std::fs::read_to_string(user_apps.join("mimeinfo.cache")).unwrap_or_default();
    assert!(!cached.contains("keylink-app-handler"), "{cached}");
    let check = url_scheme_check(&home, &system);
    assert!(
        !check["message"]
            .as_str()
            .unwrap()
            .contains("installed package's"),
        "{check}"
    );
}
