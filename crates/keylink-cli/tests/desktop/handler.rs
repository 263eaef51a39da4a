use std::path::Path;

use keylink::{
    platform::DesktopFileId, platform::HandlerResolution, platform::UrlHandler,
    platform::resolve_url_handler,
};

use crate::{Desktop, REDIRECT, Recorder};

/// The file name the Tauri deep-link plugin used for the app, so its old entry is replaced.
const ID: &str = "keylink-app-handler.desktop";

fn handler(program: &Path) -> UrlHandler {
    UrlHandler::new("dev.keylink", DesktopFileId::new(ID).unwrap(), program)
        .unwrap()
        .named("Keylink")
}

fn exec_line(desktop: &Desktop) -> String {
    std::fs::read_to_string(desktop.applications().join(ID))
        .unwrap()
        .lines()
        .find(|l| l.starts_with("Exec="))
        .unwrap()
        .to_owned()
}

/// Registers `recorder`, then checks each step a browser's hand-off takes through xdg-utils.
fn register_and_open(desktop: &Desktop, recorder: &Recorder) {
    let installed = handler(&recorder.program).install(&desktop.env()).unwrap();
    assert_eq!(installed.desktop_file, desktop.applications().join(ID));
    assert!(installed.xdg_open_can_start, "{installed:?}");

    assert_eq!(desktop.query_default(), ID);
    let out = desktop.xdg_open(REDIRECT);
    assert!(
        out.status.success(),
        "xdg-open failed ({:?}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(recorder.wait_for_call(), [REDIRECT]);

    let line = desktop.doctor_url_line();
    assert!(line.starts_with("ok "), "{line}");
    assert!(
        line.contains(&format!(
            "dev.keylink opens with {}",
            installed.desktop_file.display()
        )),
        "{line}"
    );
    assert!(
        line.contains(&recorder.program.display().to_string()),
        "{line}"
    );
}

#[test]
fn xdg_open_hands_the_redirect_to_a_handler_at_a_plain_path() {
    let desktop = Desktop::new();
    let recorder = desktop.recorder(&desktop.dir.path().join("bin/keylink-app"));
    register_and_open(&desktop, &recorder);
    // No quotes: the path needs none, and xdg-open would not undo them.
    assert_eq!(
        exec_line(&desktop),
        format!("Exec={} %u", recorder.program.display())
    );
    assert!(!desktop.applications().join("keylink-app-handler").exists());
}

#[test]
fn xdg_open_hands_the_redirect_to_a_handler_at_a_path_with_a_space() {
    let desktop = Desktop::new();
    let recorder = desktop.recorder(&desktop.dir.path().join("My Apps/keylink-app"));
    register_and_open(&desktop, &recorder);
    // xdg-open cannot run a quoted path, so the entry runs a link to it whose path needs no
    // quoting.
    let link = desktop.applications().join("keylink-app-handler");
    assert_eq!(exec_line(&desktop), format!("Exec={} %u", link.display()));
    assert_eq!(std::fs::read_link(&link).unwrap(), recorder.program);

    // Moved to a plain path and registered again: the link goes, the entry runs it directly.
    let moved = desktop.recorder(&desktop.dir.path().join("bin/keylink-app"));
    handler(&moved.program).install(&desktop.env()).unwrap();
    assert!(std::fs::symlink_metadata(&link).is_err());
    assert_eq!(
        exec_line(&desktop),
        format!("Exec={} %u", moved.program.display())
    );
}

/// Regression: the deep-link plugin's `register_all()` wrote `Exec="<path>" %u` and a
/// `MimeType` without the closing `;`. xdg-utils 1.1.3 then named no handler at all, so
/// Chromium's hand-off went nowhere, while `doctor` could not tell why.
#[test]
fn the_deep_link_plugins_quoted_entry_is_replaced() {
    let desktop = Desktop::new();
    let recorder = desktop.recorder(&desktop.dir.path().join("bin/keylink-app"));
    std::fs::create_dir_all(desktop.applications()).unwrap();
    std::fs::write(
        desktop.applications().join(ID),
        format!(
            "[Desktop Entry]\nType=Application\nName=Keylink\nExec=\"{}\" %u\nTerminal=false\n\
             MimeType=x-scheme-handler/dev.keylink\nNoDisplay=true\n",
            recorder.program.display()
        ),
    )
    .unwrap();
    let out = desktop.run("xdg-mime", &["default", ID, "x-scheme-handler/dev.keylink"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(desktop.query_default(), "", "the measured xdg-utils bug");
    let line = desktop.doctor_url_line();
    assert!(line.starts_with("warn "), "{line}");

    register_and_open(&desktop, &recorder);
}

/// A quoted program path that xdg-mime does name (the entry lists the type with its `;`):
/// xdg-open still cannot start it, and doctor says so rather than "ok".
#[test]
fn doctor_warns_about_a_quoted_program_xdg_open_cannot_start() {
    let desktop = Desktop::new();
    let recorder = desktop.recorder(&desktop.dir.path().join("bin/keylink-app"));
    std::fs::create_dir_all(desktop.applications()).unwrap();
    std::fs::write(
        desktop.applications().join(ID),
        format!(
            "[Desktop Entry]\nType=Application\nName=Keylink\nExec=\"{}\" %u\n\
             MimeType=x-scheme-handler/dev.keylink;\nNoDisplay=true\n",
            recorder.program.display()
        ),
    )
    .unwrap();
    let out = desktop.run("xdg-mime", &["default", ID, "x-scheme-handler/dev.keylink"]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(desktop.query_default(), ID);
    assert!(!desktop.xdg_open(REDIRECT).status.success());
    assert!(recorder.invocations().is_empty());

    assert_eq!(
        resolve_url_handler("dev.keylink", &desktop.env()).unwrap(),
        HandlerResolution::QuotedProgram {
            desktop_file: desktop.applications().join(ID),
            program: recorder.program.clone(),
        }
    );
    let line = desktop.doctor_url_line();
    assert!(line.starts_with("warn "), "{line}");
    assert!(line.contains("start the Keylink app once"), "{line}");
}

#[test]
fn doctor_warns_with_a_fix_when_nothing_is_registered() {
    let desktop = Desktop::new();
    assert_eq!(desktop.query_default(), "");
    assert_eq!(
        resolve_url_handler("dev.keylink", &desktop.env()).unwrap(),
        HandlerResolution::NoDefault
    );
    let line = desktop.doctor_url_line();
    assert!(line.starts_with("warn "), "{line}");
    assert!(line.contains("nothing handles dev.keylink"), "{line}");
    assert!(line.contains("start the Keylink app once"), "{line}");
    assert!(line.contains("keylink open-url"), "{line}");
}

#[test]
fn doctor_warns_when_the_registered_program_is_gone() {
    let desktop = Desktop::new();
    let recorder = desktop.recorder(&desktop.dir.path().join("bin/keylink-app"));
    handler(&recorder.program).install(&desktop.env()).unwrap();
    std::fs::remove_file(&recorder.program).unwrap();
    assert_eq!(
        resolve_url_handler("dev.keylink", &desktop.env()).unwrap(),
        HandlerResolution::ProgramMissing {
            desktop_file: desktop.applications().join(ID),
            program: recorder.program.clone(),
        }
    );
    let line = desktop.doctor_url_line();
    assert!(line.starts_with("warn "), "{line}");
    assert!(line.contains("does not exist"), "{line}");

    // Deleted by hand, and the MIME cache rebuilt without it: mimeapps.list still names it,
    // but xdg-mime skips a missing file there. (A stale mimeinfo.cache naming it is the
    // "default names a missing desktop file" case.)
    std::fs::remove_file(desktop.applications().join(ID)).unwrap();
    let _ = std::fs::remove_file(desktop.applications().join("mimeinfo.cache"));
    assert_eq!(
        resolve_url_handler("dev.keylink", &desktop.env()).unwrap(),
        HandlerResolution::NoDefault
    );
}

#[test]
fn doctor_warns_when_the_default_names_a_missing_desktop_file() {
    let desktop = Desktop::new();
    // defaults.list is read without checking that the file exists.
    std::fs::create_dir_all(desktop.applications()).unwrap();
    std::fs::write(
        desktop.applications().join("defaults.list"),
        "[Default Applications]\nx-scheme-handler/dev.keylink=gone.desktop\n",
    )
    .unwrap();
    assert_eq!(desktop.query_default(), "gone.desktop");
    assert_eq!(
        resolve_url_handler("dev.keylink", &desktop.env()).unwrap(),
        HandlerResolution::DesktopFileMissing {
            id: "gone.desktop".into()
        }
    );
    let line = desktop.doctor_url_line();
    assert!(line.starts_with("warn "), "{line}");
    assert!(
        line.contains("gone.desktop, which is in no applications directory"),
        "{line}"
    );
}
