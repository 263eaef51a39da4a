//! The external user agent (RFC 8252 §8.12: the system browser, never a webview) that shows
//! the provider's sign-in page. Apps and tests may supply their own opener, as AppAuth's
//! external user agents; Keylink checks every URL before any opener sees it.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use url::Url;

use crate::app::Environment;
use crate::error::Error;

/// Opens an authorization URL for the person. Called only with URLs Keylink has checked
/// (`https`, or `http` on loopback).
pub trait BrowserOpener: Send + Sync + std::fmt::Debug {
    /// Opens `url`; an error says why no browser could be started.
    fn open(&self, url: &Url) -> Result<(), Error>;
}

/// The system browser: `$BROWSER <url>` when the environment sets `BROWSER` (one program,
/// the URL its one argument), else the platform opener (`xdg-open`, `open`, the Windows
/// shell).
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
                let mut child = Command::new(browser)
                    .arg(url.as_str())
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .spawn()
                    .map_err(|e| {
                        Error::Browser(format!("{}: {e}", PathBuf::from(browser).display()))
                    })?;
                // Reap it when it exits, without waiting for it.
                std::thread::spawn(move || child.wait());
                Ok(())
            }
            None => open::that_detached(url.as_str()).map_err(|e| Error::Browser(e.to_string())),
        }
    }
}
