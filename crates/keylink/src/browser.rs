//! The external user agent (RFC 8252 §8.12: the system browser, never a webview) that shows
//! the provider's sign-in page. Apps and tests may supply their own opener, as AppAuth's
//! external user agents; Keylink checks every URL before any opener sees it.
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use keylink::browser::BrowserOpener;
//!
//! /// Shows the sign-in page in a browser of the app's choosing (here: remembers it).
//! #[derive(Debug, Default)]
//! struct Remember(Mutex<Option<url::Url>>);
//!
//! impl BrowserOpener for Remember {
//!     fn open(&self, url: &url::Url) -> Result<(), keylink::Error> {
//!         *self.0.lock().unwrap() = Some(url.clone());
//!         Ok(())
//!     }
//! }
//! # fn main() -> Result<(), keylink::Error> {
//! let keylink = keylink::Keylink::builder(keylink::AppIdentity::new("com.example.notes")?)
//!     .config(keylink::Config::default())
//!     .data_dir("/tmp/notes-example")
//!     .browser(Arc::new(Remember::default()))
//!     .build()?;
//! # let _ = keylink;
//! # Ok(()) }
//! ```

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use url::Url;

use crate::app::Environment;
use crate::error::Error;

/// Opens an authorization URL for the person. Called only with URLs Keylink has checked
/// (`https`, or `http` on loopback).
pub trait BrowserOpener: Send + Sync + std::fmt::Debug {
    /// Opens `url`; an error says why no browser could be started. The URL carries the
    /// request's state and nonce: an error must not contain it.
    fn open(&self, url: &Url) -> Result<(), Error>;
}

/// The system browser: `$BROWSER <url>` when the environment sets `BROWSER` (one program,
/// the URL its one argument), else the platform opener (`xdg-open` and its fallbacks,
/// `open`, the Windows shell).
///
/// The program starts without any `KEYLINK_*` variable of this process (SECURITY 51): an
/// app the browser starts in turn (the redirect's handler) reads the person's own
/// configuration, not the one this process was given. Its output goes nowhere, and a
/// failure is reported without the URL (SECURITY 50): openers print the URL they failed on.
#[derive(Debug, Clone, Default)]
pub struct SystemBrowser {
    browser: Option<OsString>,
    display: bool,
}

impl SystemBrowser {
    /// The system browser as `env` describes it (`BROWSER`, and on Linux whether there is a
    /// display at all).
    pub fn from_environment(env: &Environment) -> Self {
        Self {
            browser: env.var("BROWSER").map(OsString::from),
            display: env.var("DISPLAY").is_some() || env.var("WAYLAND_DISPLAY").is_some(),
        }
    }
}

/// How long a started opener is watched for an early failure before it counts as handed
/// over (the `open` crate's choice): `xdg-open` without a handler fails within it, a
/// browser that starts keeps running.
const LAUNCH_CHECK: Duration = Duration::from_millis(250);

/// Whether a failed platform opener is followed by the next one. The Linux and BSD
/// launchers (`xdg-open`, `gio`, ...) say reliably when they failed; the Windows shell's
/// exit status does not, and retrying could open the page twice.
const NEXT_OPENER_ON_FAILURE: bool = cfg!(all(unix, not(target_os = "macos")));

impl BrowserOpener for SystemBrowser {
    fn open(&self, url: &Url) -> Result<(), Error> {
        #[cfg(all(unix, not(target_os = "macos")))]
        if self.browser.is_none() && !self.display {
            return Err(Error::Browser(
                "there is no display, so no browser can be started here".into(),
            ));
        }
        match &self.browser {
            Some(browser) => {
                let mut command = Command::new(browser);
                command.arg(url.as_str());
                let shown = format!(
                    "the program in BROWSER ({})",
                    crate::text::printable(&Path::new(browser).display().to_string(), 200)
                );
                match launch(command)
                    .map_err(|e| Error::Browser(format!("{shown} could not be started: {e}")))?
                {
                    Launched::Running => Ok(()),
                    Launched::Failed(status) => {
                        Err(Error::Browser(format!("{shown} failed ({status})")))
                    }
                }
            }
            None => open_with_platform_opener(url),
        }
    }
}

/// Opens `url` with the platform's openers, in the `open` crate's order, each started here
/// so its environment and output are ours to set.
fn open_with_platform_opener(url: &Url) -> Result<(), Error> {
    let mut missing = Vec::new();
    let mut failures = Vec::new();
    for command in open::commands(url.as_str()) {
        let name = program_name(command.get_program());
        match launch(command) {
            Ok(Launched::Running) => return Ok(()),
            Ok(Launched::Failed(status)) => {
                failures.push(format!("{name} failed ({status})"));
                if !NEXT_OPENER_ON_FAILURE {
                    break;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => missing.push(name),
            Err(e) => failures.push(format!("{name} could not be started: {e}")),
        }
    }
    Err(Error::Browser(if failures.is_empty() {
        format!(
            "no program to open it is installed (looked for {})",
            missing.join(", ")
        )
    } else {
        failures.join("; ")
    }))
}

/// What became of a started opener within [`LAUNCH_CHECK`].
enum Launched {
    /// Still running, or done successfully: the page is the browser's now.
    Running,
    /// It exited unsuccessfully.
    Failed(ExitStatus),
}

/// Starts `command` with stdin, stdout and stderr closed and without Keylink's variables,
/// and watches it for [`LAUNCH_CHECK`]; one still running then is reaped when it exits. A
/// spawn error holds no argument of the command (std reports only the OS error).
fn launch(mut command: Command) -> std::io::Result<Launched> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (name, _) in std::env::vars_os() {
        if is_keylink_variable(&name) {
            command.env_remove(name);
        }
    }
    // Out of the terminal's foreground process group: Ctrl-C on the CLI that waits for the
    // sign-in does not close the browser the person is signing in with.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    #[cfg(windows)]
    {
        use std::os::windows::process::CommandExt;
        const CREATE_NEW_PROCESS_GROUP: u32 = 0x0000_0200;
        const CREATE_NO_WINDOW: u32 = 0x0800_0000;
        command.creation_flags(CREATE_NEW_PROCESS_GROUP | CREATE_NO_WINDOW);
    }
    let mut child = command.spawn()?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(Launched::Running),
            Ok(Some(status)) => return Ok(Launched::Failed(status)),
            Ok(None) if started.elapsed() < LAUNCH_CHECK => {
                std::thread::sleep(Duration::from_millis(10));
            }
            // Running (or not observable, which is no sign that it failed): the browser has
            // it. Reap it when it exits, without waiting for it.
            Ok(None) | Err(_) => {
                reap(child);
                return Ok(Launched::Running);
            }
        }
    }
}

fn reap(mut child: Child) {
    std::thread::spawn(move || child.wait());
}

/// True for a variable Keylink does not pass to the browser: any `KEYLINK_*` (SECURITY
/// 51). Upper-cased first: Windows variable names are case-insensitive.
fn is_keylink_variable(name: &OsStr) -> bool {
    name.to_string_lossy()
        .to_ascii_uppercase()
        .starts_with("KEYLINK_")
}

/// The program's file name, as plain text, for errors.
fn program_name(program: &OsStr) -> String {
    let name = Path::new(program)
        .file_name()
        .unwrap_or(program)
        .to_string_lossy();
    crate::text::printable(&name, 60)
}

/// `url` without its query and fragment (which carry the state, nonce and PKCE challenge of
/// an authorization request), for errors that must name it (SECURITY 50).
pub(crate) fn shown_without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.set_fragment(None);
    crate::text::printable(shown.as_str(), 200)
}

#[cfg(test)]
mod tests;
