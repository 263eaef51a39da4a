//! The desktop platform: registering the app's URL scheme as a freedesktop desktop entry
//! ([`UrlHandler`]) and resolving which program `xdg-open` hands a `<scheme>:` URL to
//! ([`resolve_url_handler`]), as `keylink doctor` and the Tauri plugin do.
//!
//! ```no_run
//! use keylink::platform::{DesktopFileId, UrlHandler};
//! # fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let entry = DesktopFileId::new("com.example.notes-handler.desktop")?;
//! let handler = UrlHandler::new("com.example.notes", entry, "/usr/local/bin/notes")?
//!     .named("Notes");
//! # let _ = handler;
//! # Ok(()) }
//! ```

pub use crate::desktop_entry::{
    DesktopEntryError, DesktopFileId, EntryProblem, HandlerResolution, InstalledHandler,
    ShadowedPackageHandler, UrlHandler, XdgDataDirs, XdgEnvironment, resolve_url_handler,
    shadowed_package_handler,
};
