//! Which system policy file Keylink trusts (SECURITY 47). As sudo treats sudoers: only a
//! regular file owned by root that nobody else can write. `KEYLINK_POLICY` may name another
//! such file only where no system policy is deployed, so no environment variable weakens one.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::SYSTEM_POLICY_FILE;

/// The largest policy file Keylink reads; real ones are a few KiB.
const MAX_POLICY_BYTES: u64 = 1 << 20;

/// Why a policy file is not trusted: someone other than root could have written it, or it
/// is not a file at all.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Untrusted {
    /// A directory, a device such as `/dev/null`, a FIFO, a socket.
    NotRegularFile,
    /// Owned by a user other than root, who can rewrite it.
    NotOwnedByRoot {
        /// The owner's user id.
        uid: u32,
    },
    /// Its group or every user may write it.
    WritableByOthers {
        /// The permission bits (e.g. `0o664`).
        mode: u32,
    },
    /// This platform has no owner and mode Keylink knows how to check.
    Unverifiable,
}

impl std::fmt::Display for Untrusted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Untrusted::NotRegularFile => write!(f, "is not a regular file"),
            Untrusted::NotOwnedByRoot { uid } => write!(f, "belongs to user id {uid}, not root"),
            Untrusted::WritableByOthers { mode } => {
                write!(f, "can be written by other users (mode {mode:03o})")
            }
            Untrusted::Unverifiable => write!(f, "has an owner Keylink cannot check here"),
        }
    }
}

/// A file named by `KEYLINK_POLICY` that Keylink did not use; the system policy file applies
/// instead, when there is one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IgnoredPolicy {
    /// The file `KEYLINK_POLICY` names.
    pub file: PathBuf,
    /// Why it was not used.
    pub reason: IgnoredReason,
}

/// Why a file named by `KEYLINK_POLICY` was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IgnoredReason {
    /// It does not exist.
    Missing,
    /// It could not be read (the operating system's reason).
    Unreadable(String),
    /// It is not trusted.
    Untrusted(Untrusted),
    /// It is trusted, but a system policy is deployed, which `KEYLINK_POLICY` cannot replace
    /// (or any empty file owned by root would switch it off).
    SystemPolicyDeployed,
}

impl std::fmt::Display for IgnoredPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.display();
        match &self.reason {
            IgnoredReason::Missing => {
                write!(f, "KEYLINK_POLICY names {file}, which does not exist")
            }
            IgnoredReason::Unreadable(reason) => write!(
                f,
                "KEYLINK_POLICY names {file}, which cannot be read ({reason})"
            ),
            IgnoredReason::Untrusted(why) => write!(
                f,
                "KEYLINK_POLICY names {file}, which {why}, so Keylink does not trust it"
            ),
            IgnoredReason::SystemPolicyDeployed => write!(
                f,
                "KEYLINK_POLICY names {file}, which cannot replace the system policy deployed at {SYSTEM_POLICY_FILE}"
            ),
        }
    }
}

/// A policy file as found.
pub(super) enum PolicyRead {
    /// Nothing at that path.
    Missing,
    /// There, but not trusted: not read.
    Untrusted(Untrusted),
    /// Trusted, with its text.
    Trusted(String),
}

/// Reads `path` if it is trusted. The owner and mode checked are those of the file actually
/// read (of the open file), so replacing the file after the check gains nothing.
pub(super) fn read_trusted(path: &Path) -> std::io::Result<PolicyRead> {
    let meta = match std::fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(PolicyRead::Missing),
        Err(e) => return Err(e),
    };
    // Checked before opening too: opening a device has effects, and a FIFO blocks.
    if !meta.is_file() {
        return Ok(PolicyRead::Untrusted(Untrusted::NotRegularFile));
    }
    let file = open(path)?;
    if let Some(why) = untrusted(&file.metadata()?) {
        return Ok(PolicyRead::Untrusted(why));
    }
    let mut bytes = Vec::new();
    file.take(MAX_POLICY_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_POLICY_BYTES {
        return Err(std::io::Error::other("it is larger than 1 MiB"));
    }
    String::from_utf8(bytes)
        .map(PolicyRead::Trusted)
        .map_err(|_| std::io::Error::other("it is not UTF-8 text"))
}

/// Opens without blocking, in case the path became a FIFO after the check.
#[cfg(unix)]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::NONBLOCK | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    Ok(std::fs::File::from(fd))
}

#[cfg(not(unix))]
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::File::open(path)
}

#[cfg(unix)]
fn untrusted(meta: &std::fs::Metadata) -> Option<Untrusted> {
    use std::os::unix::fs::MetadataExt;
    if !meta.is_file() {
        Some(Untrusted::NotRegularFile)
    } else if meta.uid() != 0 {
        Some(Untrusted::NotOwnedByRoot { uid: meta.uid() })
    } else if meta.mode() & 0o022 != 0 {
        Some(Untrusted::WritableByOthers {
            mode: meta.mode() & 0o7777,
        })
    } else {
        None
    }
}

// The Windows and macOS designs read the policy from the registry and managed preferences.
#[cfg(not(unix))]
fn untrusted(_meta: &std::fs::Metadata) -> Option<Untrusted> {
    Some(Untrusted::Unverifiable)
}
