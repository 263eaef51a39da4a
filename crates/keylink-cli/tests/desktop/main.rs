//! The `dev.keylink` URL-scheme handler against the real xdg-utils (Debian `xdg-utils`): the
//! entry Keylink writes is the one `xdg-mime` names and `xdg-open` runs with the redirect
//! intact, and `keylink doctor` reports what `xdg-open` would do, in a private desktop with no
//! desktop environment detected (the path Chromium takes outside GNOME and KDE).
#![cfg(target_os = "linux")]
#![allow(clippy::unwrap_used)]

#[path = "../support/mod.rs"]
mod support;

// Registering the handler, opening redirects through it, and doctor's verdicts.
mod handler;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use keylink::platform::XdgEnvironment;
use tempfile::TempDir;

/// The redirect every test opens: a query with `&`, which a shell would split.
pub(crate) const REDIRECT: &str = "dev.keylink:/callback/demo?code=x&state=y";

/// A private desktop session: its own HOME, data and config directories (the machine's
/// `/usr/share/applications` and `/etc/xdg` hidden behind empty ones), no desktop environment
/// (`XDG_CURRENT_DESKTOP` and the other hints unset, a D-Bus address nobody listens on), and a
/// Wayland display name so that `xdg-open` considers scheme handlers at all.
pub(crate) struct Desktop {
    pub(crate) dir: TempDir,
    vars: BTreeMap<&'static str, OsString>,
    recorders: std::cell::Cell<u32>,
}

impl Desktop {
    pub(crate) fn new() -> Desktop {
        let path_var = std::env::var_os("PATH").unwrap_or_default();
        for tool in ["xdg-mime", "xdg-open"] {
            let found = std::env::split_paths(&path_var).any(|d| d.join(tool).is_file());
            assert!(
                found,
                "`{tool}` is not on PATH: these tests need the real xdg-utils; run scripts/install-app-deps.sh (Debian package xdg-utils)"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let path = |p: &str| dir.path().join(p).into_os_string();
        for sub in [
            "home",
            "data",
            "config",
            "system-data",
            "system-config",
            "run",
        ] {
            std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        }
        let mut vars = BTreeMap::new();
        vars.insert("HOME", path("home"));
        vars.insert("XDG_DATA_HOME", path("data"));
        vars.insert("XDG_CONFIG_HOME", path("config"));
        vars.insert("XDG_DATA_DIRS", path("system-data"));
        vars.insert("XDG_CONFIG_DIRS", path("system-config"));
        vars.insert("XDG_RUNTIME_DIR", path("run"));
        vars.insert("PATH", path_var);
        vars.insert("WAYLAND_DISPLAY", "keylink-test-no-compositor".into());
        let mut bus = OsString::from("unix:path=");
        bus.push(path("run/no-bus"));
        vars.insert("DBUS_SESSION_BUS_ADDRESS", bus);
        Desktop {
            dir,
            vars,
            recorders: std::cell::Cell::new(0),
        }
    }

    /// `$XDG_DATA_HOME/applications`.
    pub(crate) fn applications(&self) -> PathBuf {
        self.dir.path().join("data/applications")
    }

    /// The environment as the app would capture it in this session.
    pub(crate) fn env(&self) -> XdgEnvironment {
        XdgEnvironment::from_vars(|name| self.vars.get(name).cloned()).unwrap()
    }

    /// `program` with this session's environment and nothing else.
    pub(crate) fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .envs(&self.vars)
            .env("LANG", "C.UTF-8")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// Runs `program ARGS` in this session, at most 30 s.
    pub(crate) fn run(&self, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
        let child = self.command(program).args(args).spawn().unwrap();
        support::wait_output(child, Duration::from_secs(30))
    }

    /// What the real `xdg-mime query default x-scheme-handler/dev.keylink` prints.
    pub(crate) fn query_default(&self) -> String {
        let out = self.run(
            "xdg-mime",
            &["query", "default", "x-scheme-handler/dev.keylink"],
        );
        assert!(out.status.success(), "xdg-mime query default: {out:?}");
        String::from_utf8(out.stdout).unwrap().trim().to_owned()
    }

    /// The real `xdg-open URL`.
    pub(crate) fn xdg_open(&self, url: &str) -> Output {
        self.run("xdg-open", &[url])
    }

    /// The URL-scheme line of `keylink doctor` in this session.
    pub(crate) fn doctor_url_line(&self) -> String {
        let out = self.run(support::keylink_bin(), &["doctor"]);
        let stdout = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.contains("URL scheme:"))
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "one URL-scheme line expected; doctor printed:\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        lines[0].to_owned()
    }

    /// An executable at `path` that records each time it runs: its argument count, then each
    /// argument on a line of its own, appended to its log.
    pub(crate) fn recorder(&self, path: &Path) -> Recorder {
        let n = self.recorders.get() + 1;
        self.recorders.set(n);
        let log = self.dir.path().join(format!("recorder-{n}.log"));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(
            path,
            format!(
                "#!/bin/sh\n# Records how it was started.\nprintf '%s\\n' \"$#\" \"$@\" >> '{}'\n",
                log.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        Recorder {
            program: path.to_owned(),
            log,
        }
    }
}

/// A program that records its invocations (see [`Desktop::recorder`]).
pub(crate) struct Recorder {
    pub(crate) program: PathBuf,
    log: PathBuf,
}

impl Recorder {
    /// The argument lists it has been started with, complete records only.
    pub(crate) fn invocations(&self) -> Vec<Vec<String>> {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let mut lines = text.lines();
        let mut calls = Vec::new();
        while let Some(count) = lines.next() {
            let Ok(count) = count.parse::<usize>() else {
                break;
            };
            let args: Vec<String> = lines.by_ref().take(count).map(str::to_owned).collect();
            if args.len() < count {
                break;
            }
            calls.push(args);
        }
        calls
    }

    /// Waits (at most 10 s) until it has been started once, and returns its arguments.
    pub(crate) fn wait_for_call(&self) -> Vec<String> {
        support::wait_for("the handler to be started", Duration::from_secs(10), || {
            !self.invocations().is_empty()
        });
        let calls = self.invocations();
        assert_eq!(calls.len(), 1, "started more than once: {calls:?}");
        calls.into_iter().next().unwrap()
    }
}
