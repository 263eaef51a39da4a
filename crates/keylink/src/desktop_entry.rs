//! The URL-scheme handler on freedesktop systems: a desktop entry that opens `<scheme>:` URLs
//! with a program, written per the Desktop Entry Specification and registered with the real
//! xdg-utils, and the lookup `xdg-open` does to find that program again (`keylink doctor`).
//!
//! Directories and search paths come from the caller, which reads the environment; this module
//! only runs `xdg-mime` (and `update-desktop-database` when it is installed).

use std::ffi::{OsStr, OsString};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Desktop files are a few hundred bytes; this bounds what a planted file can make us read.
const MAX_DESKTOP_FILE_BYTES: u64 = 256 * 1024;

/// Characters the Desktop Entry Specification reserves in `Exec` ("The Exec key"): an argument
/// holding any of them must be quoted.
const RESERVED: &[char] = &[
    ' ', '\t', '\n', '"', '\'', '\\', '>', '<', '~', '|', '&', ';', '$', '*', '?', '#', '(', ')',
    '`',
];

/// A desktop file ID (Desktop Entry Specification, "Desktop File ID"): the file's name in an
/// `applications/` directory, such as `keylink-app-handler.desktop`. This is the name
/// `xdg-mime default` records and `xdg-mime query default` prints.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DesktopFileId(String);

impl DesktopFileId {
    /// Accepts `<name>.desktop` where the name is ASCII letters, digits, `.`, `_` and `-`, not
    /// starting with `.` or `-` (so it is one file name, safe in every tool that handles it).
    pub fn new(id: &str) -> Result<Self, DesktopEntryError> {
        let valid = id.strip_suffix(".desktop").is_some_and(|stem| {
            !stem.is_empty()
                && !stem.starts_with(['.', '-'])
                && stem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        });
        if valid {
            Ok(Self(id.to_owned()))
        } else {
            Err(DesktopEntryError::InvalidDesktopFileId(id.to_owned()))
        }
    }

    /// The ID, `<name>.desktop`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The ID without `.desktop`.
    fn stem(&self) -> &str {
        self.0.strip_suffix(".desktop").unwrap_or(&self.0)
    }
}

impl std::fmt::Display for DesktopFileId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A handler for one URL scheme: the desktop entry that opens `<scheme>:` URLs with a program,
/// which receives the URL as its one argument (`Exec=<program> %u`).
#[derive(Debug, Clone)]
pub struct UrlHandler {
    scheme: String,
    /// Further schemes the same program opens (an app with several deep-link schemes).
    more_schemes: Vec<String>,
    id: DesktopFileId,
    name: String,
    program: PathBuf,
}

/// What [`UrlHandler::install`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct InstalledHandler {
    /// The desktop entry, `<data home>/applications/<id>`.
    pub desktop_file: PathBuf,
    /// The program its `Exec` names: the handler's program, or a symbolic link to it beside the
    /// desktop entry when the program's own path would need quoting (see [`UrlHandler::install`]).
    pub exec: PathBuf,
    /// False when even `exec` holds characters `xdg-open` outside GNOME and KDE cannot start
    /// a program from (a space, quotes, `%`, ..., here in the data home's own path): the
    /// handler then works only through GIO (GNOME, Firefox) and KDE.
    pub xdg_open_can_start: bool,
}

impl UrlHandler {
    /// A handler opening `scheme` URLs with `program` (an absolute path), registered under the
    /// desktop file ID `id`. Its display name is the program's file name until [`Self::named`]
    /// sets another.
    pub fn new(
        scheme: &str,
        id: DesktopFileId,
        program: impl Into<PathBuf>,
    ) -> Result<Self, DesktopEntryError> {
        if !is_scheme(scheme) {
            return Err(DesktopEntryError::InvalidScheme(scheme.to_owned()));
        }
        let program = program.into();
        if !program.is_absolute() {
            return Err(DesktopEntryError::RelativeProgram(program));
        }
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| id.stem().to_owned());
        Ok(Self {
            scheme: scheme.to_owned(),
            more_schemes: Vec::new(),
            id,
            name,
            program,
        })
    }

    /// Sets the `Name` shown where a desktop lists applications, such as a browser's "Open
    /// with Keylink?" prompt.
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Makes the same entry the handler of `scheme` too (one entry, every scheme in its
    /// `MimeType`, each made the default).
    pub fn also_handling(mut self, scheme: &str) -> Result<Self, DesktopEntryError> {
        if !is_scheme(scheme) {
            return Err(DesktopEntryError::InvalidScheme(scheme.to_owned()));
        }
        if scheme != self.scheme && !self.more_schemes.iter().any(|s| s == scheme) {
            self.more_schemes.push(scheme.to_owned());
        }
        Ok(self)
    }

    /// Every scheme the handler opens, the first one first.
    fn schemes(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.scheme.as_str()).chain(self.more_schemes.iter().map(String::as_str))
    }

    /// The handler's desktop file ID.
    pub fn id(&self) -> &DesktopFileId {
        &self.id
    }

    /// `x-scheme-handler/<scheme>`, the MIME type a desktop maps the scheme to.
    pub fn mime_type(&self) -> String {
        mime_type(&self.scheme)
    }

    /// The desktop entry running the handler's program itself, with its path quoted per the
    /// Desktop Entry Specification when (and only when) it contains a reserved character.
    pub fn desktop_entry(&self) -> Result<String, DesktopEntryError> {
        self.entry_for(&self.program)
    }

    fn entry_for(&self, exec: &Path) -> Result<String, DesktopEntryError> {
        let exec_str = exec
            .to_str()
            .filter(|s| {
                !s.contains('=')
                    && !s
                        .chars()
                        .any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r'))
            })
            .ok_or_else(|| DesktopEntryError::UnrepresentableProgram(exec.to_owned()))?;
        Ok(format!(
            "[Desktop Entry]\n\
             Type=Application\n\
             Name={name}\n\
             Exec={exec}\n\
             Terminal=false\n\
             NoDisplay=true\n\
             MimeType={mimes}\n",
            name = escape_string(&self.name),
            exec = escape_string(&format!("{} %u", quote_exec_arg(exec_str))),
            mimes = self
                .schemes()
                .map(|scheme| format!("{};", mime_type(scheme)))
                .collect::<String>(),
        ))
    }

    /// Writes the desktop entry to `<data home>/applications/<id>` atomically and makes it the
    /// default for the scheme with `xdg-mime default`, which records it in the user's
    /// `mimeapps.list`. Both go where `env` says: its data home, and `xdg-mime` run with its
    /// variables.
    ///
    /// `xdg-open` outside GNOME and KDE (xdg-utils 1.1) takes the program as everything up to
    /// the first space of `Exec` and does not undo quotes, so it can start no program whose path
    /// needs quoting (a space, parentheses, `~`, ...). For such a path the entry runs a symbolic
    /// link to the program instead, `<data home>/applications/<id without .desktop>`, whose own
    /// path needs none; a stale link from an earlier registration is removed otherwise.
    pub fn install(&self, env: &XdgEnvironment) -> Result<InstalledHandler, DesktopEntryError> {
        let applications = env.data.home.join("applications");
        std::fs::create_dir_all(&applications).map_err(|source| DesktopEntryError::Write {
            path: applications.clone(),
            source,
        })?;
        let link = applications.join(self.id.stem());
        let exec = if runs_under_xdg_open(&self.program) {
            remove_stale_link(&link);
            self.program.clone()
        } else if runs_under_xdg_open(&link) {
            replace_symlink(&self.program, &link)?;
            link
        } else {
            remove_stale_link(&link);
            self.program.clone()
        };
        let entry = self.entry_for(&exec)?;
        let desktop_file = applications.join(self.id.as_str());
        crate::store::write_atomic(&desktop_file, entry.as_bytes()).map_err(|source| {
            DesktopEntryError::Write {
                path: desktop_file.clone(),
                source,
            }
        })?;
        refresh_mime_cache(&applications, env);
        for scheme in self.schemes() {
            run_xdg_mime(&["default", self.id.as_str(), &mime_type(scheme)], env)?;
        }
        Ok(InstalledHandler {
            desktop_file,
            xdg_open_can_start: runs_under_xdg_open(&exec),
            exec,
        })
    }
}

/// The variables xdg-utils reads, as the front end captured them: where it looks for desktop
/// entries and `mimeapps.list`, and how it tells which desktop is running (which decides how
/// `xdg-mime` and `xdg-open` work). `xdg-mime` runs with exactly these set and the others of
/// this list removed; the rest of its environment (locale, ...) is this process's.
#[derive(Debug, Clone)]
pub struct XdgEnvironment {
    data: XdgDataDirs,
    vars: Vec<(&'static str, Option<OsString>)>,
}

impl XdgEnvironment {
    /// What xdg-utils 1.1 reads, from `xdg-mime` and `xdg-open` themselves.
    pub const VARIABLES: &'static [&'static str] = &[
        "HOME",
        "PATH",
        "XDG_DATA_HOME",
        "XDG_DATA_DIRS",
        "XDG_CONFIG_HOME",
        "XDG_CONFIG_DIRS",
        "XDG_CURRENT_DESKTOP",
        "XDG_MENU_PREFIX",
        "XDG_RUNTIME_DIR",
        "XDG_UTILS_DEBUG_LEVEL",
        "XDG_UTILS_INSTALL_MODE",
        "DESKTOP_SESSION",
        "DESKTOP",
        "KDE_SESSION_VERSION",
        "KDE_FULL_SESSION",
        "GNOME_DESKTOP_SESSION_ID",
        "MATE_DESKTOP_SESSION_ID",
        "LXQT_SESSION_CONFIG",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "DBUS_SESSION_BUS_ADDRESS",
    ];

    /// The environment as `var` reports each of [`Self::VARIABLES`] (the app and the CLI pass
    /// `std::env::var_os`). `None` when it gives no data home (see [`XdgDataDirs::from_vars`]).
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        let data = XdgDataDirs::from_vars(&var)?;
        let vars = Self::VARIABLES
            .iter()
            .map(|&name| (name, var(name)))
            .collect();
        Some(Self { data, vars })
    }

    /// Where desktop entries are looked up.
    pub fn data_dirs(&self) -> &XdgDataDirs {
        &self.data
    }

    /// The value of one of [`Self::VARIABLES`].
    pub fn var(&self, name: &str) -> Option<&OsStr> {
        self.vars
            .iter()
            .find(|(n, _)| *n == name)
            .and_then(|(_, v)| v.as_deref())
    }

    fn apply(&self, command: &mut Command) {
        for (name, value) in &self.vars {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
    }
}

/// The directories desktop entries are looked up in, in order: `$XDG_DATA_HOME` then each
/// `$XDG_DATA_DIRS` entry (XDG Base Directory Specification), each with `applications/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XdgDataDirs {
    /// `$XDG_DATA_HOME`, by default `$HOME/.local/share`.
    pub home: PathBuf,
    /// `$XDG_DATA_DIRS`, by default `/usr/local/share` and `/usr/share`.
    pub dirs: Vec<PathBuf>,
}

impl XdgDataDirs {
    /// The directories as the environment variables `var` returns (`HOME`, `XDG_DATA_HOME`,
    /// `XDG_DATA_DIRS`) set them: empty and relative values are ignored, as the specification
    /// says, and the defaults fill in. `None` when neither `XDG_DATA_HOME` nor `HOME` gives an
    /// absolute directory.
    pub fn from_vars(var: impl Fn(&str) -> Option<OsString>) -> Option<Self> {
        let absolute = |v: OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        let home = var("XDG_DATA_HOME").and_then(absolute).or_else(|| {
            var("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local/share"))
        })?;
        let mut dirs: Vec<PathBuf> = var("XDG_DATA_DIRS")
            .map(|v| {
                std::env::split_paths(&v)
                    .filter(|p| p.is_absolute())
                    .collect()
            })
            .unwrap_or_default();
        if dirs.is_empty() {
            dirs = vec!["/usr/local/share".into(), "/usr/share".into()];
        }
        Some(Self { home, dirs })
    }

    /// The `applications/` directories, most important first.
    pub fn applications_dirs(&self) -> impl Iterator<Item = PathBuf> + '_ {
        std::iter::once(&self.home)
            .chain(&self.dirs)
            .map(|d| d.join("applications"))
    }

    /// The desktop file with this ID, as `xdg-open` finds it: `<dir>/<id>`, or `<dir>/<a>/<b>`
    /// for an ID `<a>-<b>`, in the first applications directory that has one.
    pub fn find(&self, id: &str) -> Option<PathBuf> {
        self.applications_dirs().find_map(|dir| {
            let direct = dir.join(id);
            if direct.is_file() {
                return Some(direct);
            }
            let (vendor, rest) = id.split_once('-')?;
            Some(dir.join(vendor).join(rest)).filter(|p| p.is_file())
        })
    }
}

/// Where `xdg-open` would send a `<scheme>:` URL, found the way it finds it outside GNOME and
/// KDE (xdg-utils' generic path, which Chromium and scripts rely on).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandlerResolution {
    /// `xdg-open` runs `program` from `desktop_file` with the URL as its argument.
    Resolved {
        /// The default handler's desktop entry.
        desktop_file: PathBuf,
        /// The executable its `Exec` names.
        program: PathBuf,
    },
    /// `xdg-mime query default` names no handler: nothing registered the scheme (the app was
    /// never started here, or its registration was removed).
    NoDefault,
    /// The default is a desktop file ID found in no applications directory, usually because
    /// the file was deleted while `mimeapps.list` still names it.
    DesktopFileMissing {
        /// The ID `xdg-mime` printed.
        id: String,
    },
    /// The default's desktop file cannot be read or has no usable `Exec`.
    UnusableEntry {
        /// The desktop entry.
        desktop_file: PathBuf,
        /// What is wrong with it.
        problem: EntryProblem,
    },
    /// The program `Exec` names does not exist: the app was moved or deleted after it
    /// registered itself (or the `PATH` lacks it).
    ProgramMissing {
        /// The desktop entry.
        desktop_file: PathBuf,
        /// The program as `Exec` names it.
        program: PathBuf,
    },
    /// The program exists but is not an executable file.
    ProgramNotExecutable {
        /// The desktop entry.
        desktop_file: PathBuf,
        /// The program.
        program: PathBuf,
    },
    /// `Exec` quotes or escapes the program, which the Desktop Entry Specification allows but
    /// `xdg-open` outside GNOME and KDE (xdg-utils 1.1) does not undo, so it never starts it.
    /// Entries written by the Tauri deep-link plugin's `register_all()` look like this.
    QuotedProgram {
        /// The desktop entry.
        desktop_file: PathBuf,
        /// The program, unquoted.
        program: PathBuf,
    },
}

/// Why a desktop entry cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryProblem {
    /// The file could not be read, or is not UTF-8.
    #[error("it cannot be read ({0})")]
    Unreadable(String),
    /// No `Exec` key in the `[Desktop Entry]` group.
    #[error("it has no Exec line")]
    NoExec,
    /// `Exec` holds no program.
    #[error("its Exec line is empty")]
    EmptyExec,
    /// A quote in `Exec` is never closed.
    #[error("its Exec line has a quote that is never closed")]
    UnterminatedQuote,
    /// A backslash inside quotes escapes a character the specification does not allow.
    #[error(
        "its Exec line escapes {0:?} inside quotes, which the Desktop Entry Specification does not allow"
    )]
    InvalidEscape(char),
}

/// Resolves the handler of `scheme` the way `xdg-open` does outside GNOME and KDE: the default
/// from `xdg-mime query default x-scheme-handler/<scheme>`, that desktop file in the first of
/// `dirs` that has it, its `Exec` unquoted per the Desktop Entry Specification, and the program
/// it names, looked up in `env`'s `PATH` when it is a bare name. `xdg-mime` runs with `env`, so
/// it sees what this lookup sees.
pub fn resolve_url_handler(
    scheme: &str,
    env: &XdgEnvironment,
) -> Result<HandlerResolution, DesktopEntryError> {
    if !is_scheme(scheme) {
        return Err(DesktopEntryError::InvalidScheme(scheme.to_owned()));
    }
    let out = run_xdg_mime(&["query", "default", &mime_type(scheme)], env)?;
    let Some(id) = out.lines().map(str::trim).find(|l| !l.is_empty()) else {
        return Ok(HandlerResolution::NoDefault);
    };
    let Some(desktop_file) = env.data.find(id) else {
        return Ok(HandlerResolution::DesktopFileMissing { id: id.to_owned() });
    };
    let exec = match read_exec(&desktop_file) {
        Ok(program) => program,
        Err(problem) => {
            return Ok(HandlerResolution::UnusableEntry {
                desktop_file,
                problem,
            });
        }
    };
    let named = PathBuf::from(&exec.text);
    let program = if exec.text.contains('/') {
        Some(named.clone())
    } else {
        env.var("PATH").and_then(|p| {
            std::env::split_paths(p)
                .filter(|d| d.is_absolute())
                .map(|d| d.join(&named))
                .find(|c| is_executable(c))
        })
    };
    Ok(match program {
        None => HandlerResolution::ProgramMissing {
            desktop_file,
            program: named,
        },
        Some(program) if !program.exists() => HandlerResolution::ProgramMissing {
            desktop_file,
            program,
        },
        Some(program) if !is_executable(&program) => HandlerResolution::ProgramNotExecutable {
            desktop_file,
            program,
        },
        Some(program) if exec.quoted => HandlerResolution::QuotedProgram {
            desktop_file,
            program,
        },
        Some(program) => HandlerResolution::Resolved {
            desktop_file,
            program,
        },
    })
}

/// A package's handler of a scheme that per-user leftovers keep from being used (SECURITY 55):
/// a desktop entry written by an app run from a checkout, the `mimeapps.list` default naming
/// it (or a deleted entry), the per-user MIME cache listing it. `xdg-mime` reads the user's
/// files before the system's, so the package's entry is never asked.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShadowedPackageHandler {
    /// The package's desktop entry, in a system applications directory.
    pub package_entry: PathBuf,
    /// Its desktop file ID (what `xdg-mime default` takes).
    pub package_id: String,
    /// The desktop file ID the user's default names instead (none: no default at all).
    pub default_id: Option<String>,
    /// The per-user desktop entries handling the scheme, and the links beside them.
    pub leftovers: Vec<PathBuf>,
    /// The shell command that removes the leftovers, rebuilds the per-user MIME cache and
    /// makes the package's entry the default.
    pub fix: String,
}

/// Finds a package's handler of `scheme` (a desktop entry for `x-scheme-handler/<scheme>` in
/// a system applications directory) that the user's own files shadow: `xdg-mime query
/// default` names another entry, or one that does not exist. `None` when no package handles
/// the scheme, or when its entry is the default.
pub fn shadowed_package_handler(
    scheme: &str,
    env: &XdgEnvironment,
) -> Result<Option<ShadowedPackageHandler>, DesktopEntryError> {
    if !is_scheme(scheme) {
        return Err(DesktopEntryError::InvalidScheme(scheme.to_owned()));
    }
    let mime = mime_type(scheme);
    let Some((package_entry, package_id)) = env
        .data
        .dirs
        .iter()
        .map(|d| d.join("applications"))
        .find_map(|dir| entries_for(&dir, &mime).into_iter().next())
    else {
        return Ok(None);
    };
    let out = run_xdg_mime(&["query", "default", &mime], env)?;
    let default_id = out
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .map(str::to_owned);
    if default_id
        .as_deref()
        .and_then(|id| env.data.find(id))
        .is_some_and(|file| file == package_entry)
    {
        return Ok(None);
    }
    let user_applications = env.data.home.join("applications");
    let mut leftovers = Vec::new();
    for (entry, id) in entries_for(&user_applications, &mime) {
        leftovers.push(entry);
        // The link an entry runs when its program's own path needs quoting (see `install`).
        let link = user_applications.join(id.strip_suffix(".desktop").unwrap_or(&id));
        if link.is_symlink() {
            leftovers.push(link);
        }
    }
    let mut fix = Vec::new();
    if !leftovers.is_empty() {
        let files: Vec<String> = leftovers.iter().map(|p| shell_quote(p)).collect();
        fix.push(format!("rm -f {}", files.join(" ")));
    }
    if user_applications.join("mimeinfo.cache").exists() || !leftovers.is_empty() {
        fix.push(format!(
            "update-desktop-database {}",
            shell_quote(&user_applications)
        ));
    }
    fix.push(format!("xdg-mime default {package_id} {mime}"));
    Ok(Some(ShadowedPackageHandler {
        package_entry,
        package_id,
        default_id,
        leftovers,
        fix: fix.join(" && "),
    }))
}

/// The desktop entries directly in `dir` whose `MimeType` lists `mime`, with their IDs, in
/// name order.
fn entries_for(dir: &Path, mime: &str) -> Vec<(PathBuf, String)> {
    let Ok(read) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<(PathBuf, String)> = read
        .filter_map(Result::ok)
        .filter_map(|e| {
            let id = e.file_name().into_string().ok()?;
            let path = e.path();
            (id.ends_with(".desktop") && path.is_file() && lists_mime_type(&path, mime))
                .then_some((path, id))
        })
        .collect();
    found.sort();
    found
}

/// True when the desktop entry at `path` has `mime` in its `MimeType` key.
fn lists_mime_type(path: &Path, mime: &str) -> bool {
    let mut text = String::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DESKTOP_FILE_BYTES).read_to_string(&mut text));
    read.is_ok()
        && text.lines().any(|line| {
            line.strip_prefix("MimeType=")
                .is_some_and(|v| v.split(';').any(|m| m.trim() == mime))
        })
}

/// `path` as one word for a POSIX shell: as it is when it holds only safe characters, else in
/// single quotes.
fn shell_quote(path: &Path) -> String {
    let text = path.to_string_lossy();
    if !text.is_empty()
        && text.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '_' | '-' | '+' | ':' | '@')
        })
    {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// Registering or resolving a URL-scheme handler failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DesktopEntryError {
    /// Not a URL scheme per RFC 3986 §3.1.
    #[error("{0:?} is not a URL scheme (a letter, then letters, digits, +, - or .)")]
    InvalidScheme(String),
    /// Not a usable desktop file ID.
    #[error("{0:?} is not a handler file name (letters, digits, ., _ and -, ending in .desktop)")]
    InvalidDesktopFileId(String),
    /// The program path is relative; a desktop entry needs an absolute one.
    #[error("the handler program {0:?} is not an absolute path")]
    RelativeProgram(PathBuf),
    /// The path is not UTF-8, or contains `=` or a control character, which a desktop entry
    /// cannot hold.
    #[error(
        "the path {0:?} cannot be written in a desktop entry (it is not UTF-8, or contains '=' or a control character); move the program to a plain path"
    )]
    UnrepresentableProgram(PathBuf),
    /// The desktop entry, its directory or the link could not be written.
    #[error("could not write {path:?} ({source}); check that the directory is yours and writable")]
    Write {
        /// What was being written.
        path: PathBuf,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// `xdg-mime` is not installed (Debian package `xdg-utils`).
    #[error(
        "xdg-mime was not found, so URL schemes can be neither registered nor checked; install xdg-utils (Debian and Ubuntu: apt install xdg-utils)"
    )]
    XdgMimeMissing,
    /// `xdg-mime` ran and failed.
    #[error("`xdg-mime {args}` failed ({status}){stderr}")]
    XdgMimeFailed {
        /// Its arguments.
        args: String,
        /// How it exited.
        status: String,
        /// Its error output, `: ` and the first line, or nothing.
        stderr: String,
    },
}

/// One argument of an `Exec` line, unquoted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExecWord {
    pub(crate) text: String,
    /// It was quoted or escaped in the file (or holds a `%` that was doubled there).
    pub(crate) quoted: bool,
}

impl ExecWord {
    fn empty() -> Self {
        Self {
            text: String::new(),
            quoted: false,
        }
    }
}

fn mime_type(scheme: &str) -> String {
    format!("x-scheme-handler/{scheme}")
}

/// RFC 3986 §3.1: `ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`.
fn is_scheme(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
}

pub(crate) fn needs_quoting(arg: &str) -> bool {
    arg.is_empty() || arg.chars().any(|c| RESERVED.contains(&c) || c.is_control())
}

/// True when xdg-utils' generic `xdg-open` starts this program: it splits `Exec` at white
/// space, undoes no quotes, doubled `%` or `=`, and passes the word unquoted to `which`.
fn runs_under_xdg_open(program: &Path) -> bool {
    program.to_str().is_some_and(|s| {
        !needs_quoting(s)
            && !s
                .chars()
                .any(|c| c.is_whitespace() || matches!(c, '%' | '=' | '[' | ']'))
    })
}

/// One `Exec` argument per the Desktop Entry Specification: quoted only when it holds a
/// reserved character, with `"`, `` ` ``, `$` and `\` escaped inside the quotes, and `%`
/// doubled so it is not read as a field code. The string-value escaping (see
/// [`escape_string`]) is applied to the whole line afterwards.
fn quote_exec_arg(arg: &str) -> String {
    let quote = needs_quoting(arg);
    let mut out = String::with_capacity(arg.len() + 2);
    if quote {
        out.push('"');
    }
    for c in arg.chars() {
        match c {
            '"' | '`' | '$' | '\\' if quote => {
                out.push('\\');
                out.push(c);
            }
            '%' => out.push_str("%%"),
            _ => out.push(c),
        }
    }
    if quote {
        out.push('"');
    }
    out
}

/// A value of type string (Desktop Entry Specification, "Possible value types"): backslash,
/// newline, tab and carriage return escaped, so the value stays on its line and the
/// specification's unescaping gives it back. Other control characters are dropped.
fn escape_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Undoes [`escape_string`]: `\s`, `\n`, `\t`, `\r` and `\\`; any other backslash is kept as
/// it is for the `Exec` unquoting to see.
fn unescape_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('s') => out.push(' '),
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('\\') => out.push('\\'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    out
}

/// Parses an `Exec` value as written in the file: string unescaping, then the specification's
/// quoting rules, then `%%` to `%` (other field codes stay as they are). Never empty.
pub(crate) fn parse_exec(value: &str) -> Result<Vec<ExecWord>, EntryProblem> {
    let line = unescape_string(value);
    let mut words: Vec<ExecWord> = Vec::new();
    let mut word: Option<ExecWord> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\n' => words.extend(word.take()),
            '"' => {
                let w = word.get_or_insert_with(ExecWord::empty);
                w.quoted = true;
                loop {
                    match chars.next() {
                        None => return Err(EntryProblem::UnterminatedQuote),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '`' | '$' | '\\')) => w.text.push(e),
                            Some(other) => return Err(EntryProblem::InvalidEscape(other)),
                            None => return Err(EntryProblem::UnterminatedQuote),
                        },
                        Some(other) => w.text.push(other),
                    }
                }
            }
            c => {
                let w = word.get_or_insert_with(ExecWord::empty);
                w.quoted |= c == '\\';
                w.text.push(c);
            }
        }
    }
    words.extend(word);
    for w in &mut words {
        if w.text.contains("%%") {
            w.text = w.text.replace("%%", "%");
            w.quoted = true;
        }
    }
    if words.is_empty() {
        return Err(EntryProblem::EmptyExec);
    }
    Ok(words)
}

/// The program of the `Exec` in a desktop file's `[Desktop Entry]` group.
fn read_exec(path: &Path) -> Result<ExecWord, EntryProblem> {
    let mut text = String::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_DESKTOP_FILE_BYTES).read_to_string(&mut text))
        .map_err(|e| EntryProblem::Unreadable(e.to_string()))?;
    entry_exec(&text)
}

/// The program of the `Exec` in a desktop entry's text, from its `[Desktop Entry]` group.
pub(crate) fn entry_exec(text: &str) -> Result<ExecWord, EntryProblem> {
    let mut in_entry = false;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with('[') {
            in_entry = line.trim_end() == "[Desktop Entry]";
        } else if in_entry
            && let Some((key, value)) = line.split_once('=')
            && key.trim_end() == "Exec"
        {
            let mut words = parse_exec(value.trim_start())?;
            return Ok(words.swap_remove(0));
        }
    }
    Err(EntryProblem::NoExec)
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Points `link` at `target`, replacing an earlier link in one rename.
fn replace_symlink(target: &Path, link: &Path) -> Result<(), DesktopEntryError> {
    let tmp = link.with_file_name(format!(
        ".{}.{}.link",
        link.file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default(),
        std::process::id()
    ));
    let _ = std::fs::remove_file(&tmp);
    std::os::unix::fs::symlink(target, &tmp)
        .and_then(|()| std::fs::rename(&tmp, link))
        .map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            DesktopEntryError::Write {
                path: link.to_owned(),
                source,
            }
        })
}

/// Removes a link an earlier registration made; anything else at that path is not ours.
fn remove_stale_link(link: &Path) {
    if std::fs::symlink_metadata(link).is_ok_and(|m| m.file_type().is_symlink()) {
        let _ = std::fs::remove_file(link);
    }
}

/// `update-desktop-database` refreshes `mimeinfo.cache`, which some desktops read instead of
/// the files; it is an optimisation and not installed everywhere, so failing is fine.
fn refresh_mime_cache(applications: &Path, env: &XdgEnvironment) {
    let mut command = Command::new("update-desktop-database");
    command.arg(applications).stdin(std::process::Stdio::null());
    env.apply(&mut command);
    match command.output() {
        Ok(out) if !out.status.success() => tracing::debug!(
            status = %out.status,
            "update-desktop-database failed; the MIME cache stays as it was"
        ),
        Ok(_) | Err(_) => {}
    }
}

fn run_xdg_mime(args: &[&str], env: &XdgEnvironment) -> Result<String, DesktopEntryError> {
    let mut command = Command::new("xdg-mime");
    command.args(args).stdin(std::process::Stdio::null());
    env.apply(&mut command);
    let out = command.output().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DesktopEntryError::XdgMimeMissing,
        _ => DesktopEntryError::XdgMimeFailed {
            args: args.join(" "),
            status: e.to_string(),
            stderr: String::new(),
        },
    })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let first = stderr.lines().map(str::trim).find(|l| !l.is_empty());
        return Err(DesktopEntryError::XdgMimeFailed {
            args: args.join(" "),
            status: out.status.to_string(),
            stderr: first.map(|l| format!(": {l}")).unwrap_or_default(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests;
