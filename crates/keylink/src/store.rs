//! Storage: tokens in the OS keychain (Secret Service, macOS Keychain, Windows Credential
//! Manager through the `keyring-core` stores), non-secret account metadata in an index file
//! written atomically, and the private data directory itself.
//!
//! There is no plaintext fallback: without a keychain, Keylink says so and stores nothing.
//! Token sets go through [`Chunked`] (entries small enough for every platform, torn writes
//! impossible to read as a mix) and [`Timed`] (a locked keychain cannot hang the caller).
//!
//! ```no_run
//! use keylink::store::AccountStatus;
//! # fn run(keylink: &keylink::Keylink) -> Result<(), keylink::Error> {
//! for account in keylink.accounts()? {
//!     let status = match account.status {
//!         AccountStatus::Ok => "linked",
//!         AccountStatus::NeedsRelink => "needs reconnecting",
//!     };
//!     println!("{} {} ({status})", account.id, account.label());
//! }
//! # Ok(()) }
//! ```

use crate::ids::{AccountId, IssuerUrl, ProviderId};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::clock::UnixTime;
use crate::exchange::TokenSet;
use crate::secret::{AccessToken, IdToken, RefreshToken, SecretString};

mod chunked;
#[cfg(test)]
mod tests;
mod timed;

pub use chunked::{Chunked, MAX_ENTRY_BYTES, MAX_VALUE_BYTES};
pub use timed::Timed;

/// The keychain service of the Keylink app and CLI (`dev.keylink`); other apps' entries
/// live under their own identifier.
pub const KEYCHAIN_SERVICE: &str = crate::app::KEYLINK_APP;

/// Why storage failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// There is no keychain to talk to.
    #[error("no keychain is available ({reason})")]
    NoKeychain {
        /// What the platform said.
        reason: String,
        /// What the user can do.
        fix: &'static str,
    },
    /// The keychain is locked and could not be unlocked.
    #[error("the keychain is locked ({0})")]
    Locked(String),
    /// The keychain refused or failed an operation.
    #[error("the keychain failed ({0})")]
    Keychain(String),
    /// A stored token set cannot be read (written by an incompatible version or damaged, or
    /// one of its chunks is missing or does not match the digest in its header).
    #[error("the stored tokens of {0} are unreadable")]
    Corrupt(String),
    /// A keychain call did not return in time; usually the keychain is locked and waiting for
    /// the user to answer an unlock prompt (or the keychain daemon hangs).
    #[error("the keychain did not answer within {after:?}")]
    Timeout {
        /// How long Keylink waited.
        after: Duration,
    },
    /// A value is larger than the keychain layer can store (a bug: token sets are far smaller).
    #[error("a value of {bytes} bytes is too large for the keychain (at most {max})")]
    TooLarge {
        /// The value's size.
        bytes: usize,
        /// The largest size supported.
        max: usize,
    },
    /// The data directory or the index could not be read or written.
    #[error("cannot use Keylink's data directory {path} ({reason})")]
    DataDir {
        /// The path involved.
        path: PathBuf,
        /// The operating system's reason.
        reason: String,
    },
    /// The data directory (or a directory in it) belongs to another user or other users may
    /// write to it, so a file in it could have been planted (SECURITY 38).
    #[error(
        "Keylink's data directory {path} {problem}, so its contents cannot be trusted and it was not used"
    )]
    UntrustedDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// How to fix it.
        fix: String,
    },
}

impl StoreError {
    /// What the person can do about it, where that is the same in every front end (the
    /// message says only what happened); a front end may say something better of its own.
    pub fn remedy(&self) -> Option<String> {
        Some(match self {
            StoreError::NoKeychain { fix, .. } => (*fix).to_owned(),
            StoreError::Locked(..) => "unlock it (e.g. log in to the desktop session) and try again".to_owned(),
            StoreError::Corrupt(..) => "unlink and link the account again".to_owned(),
            StoreError::Timeout { .. } => "it may be locked and waiting for an unlock prompt: unlock it (answer the prompt, or log in to the desktop session) and try again".to_owned(),
            StoreError::TooLarge { .. } => "please report this as a bug".to_owned(),
            StoreError::UntrustedDir { fix, .. } => fix.clone(),
            _ => return None,
        })
    }
}

/// Where secrets are kept. The real implementation is [`Keychain`]; tests may use others.
pub trait SecretStore: Send + Sync + std::fmt::Debug {
    /// The secret under `key`, if any.
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError>;
    /// Stores `value` under `key`, replacing what was there.
    fn set(&self, key: &str, value: &str) -> Result<(), StoreError>;
    /// Deletes `key`; deleting a missing key succeeds.
    fn delete(&self, key: &str) -> Result<(), StoreError>;
}

impl<S: SecretStore + ?Sized> SecretStore for Arc<S> {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        (**self).get(key)
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        (**self).set(key, value)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        (**self).delete(key)
    }
}

/// How long [`Keychain::open_for_tokens`] waits for the keychain to open, and then for each
/// read, write or delete of a value, before giving up with [`StoreError::Timeout`].
pub const DEFAULT_KEYCHAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens the platform keychain for token sets: [`Keychain`] wrapped in [`Chunked`] (entries of
/// at most [`MAX_ENTRY_BYTES`], for Windows Credential Manager's 2560-byte cap) and in
/// [`Timed`] (each operation, and opening itself, gives up after `timeout` with
/// [`StoreError::Timeout`]).
pub(crate) fn open_token_store(
    service: &str,
    timeout: Duration,
) -> Result<Arc<dyn SecretStore>, StoreError> {
    let service = service.to_owned();
    let keychain = timed::run_with_timeout(timeout, move || Keychain::open(&service))?;
    Ok(Arc::new(Timed::new(Chunked::new(keychain), timeout)))
}

/// The OS keychain, one entry per key under one service (the app's keychain namespace),
/// values stored as given.
///
/// Token sets should not go here directly: use [`Keychain::open_for_tokens`], which adds
/// chunking (Windows caps an entry at 2560 bytes) and a timeout (a locked keychain may wait
/// on an unlock prompt forever).
pub struct Keychain {
    store: Arc<keyring_core::CredentialStore>,
    service: String,
}

impl std::fmt::Debug for Keychain {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Keychain")
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const NO_KEYCHAIN_FIX: &str = "Keylink stores tokens only in the Secret Service: install and start gnome-keyring or KeePassXC (with its Secret Service integration) in your desktop session";
#[cfg(target_os = "macos")]
const NO_KEYCHAIN_FIX: &str =
    "Keylink stores tokens only in the macOS Keychain: check that your login keychain is available";
#[cfg(target_os = "windows")]
const NO_KEYCHAIN_FIX: &str =
    "Keylink stores tokens only in Windows Credential Manager: check that it is available";
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
const NO_KEYCHAIN_FIX: &str = "this platform has no supported keychain";

impl Keychain {
    /// Connects to the platform keychain for entries under `service` (one connection per
    /// process: keep the value).
    pub fn open(service: &str) -> Result<Self, StoreError> {
        let store = platform_store().map_err(|e| StoreError::NoKeychain {
            reason: describe_keyring_error(&e),
            fix: NO_KEYCHAIN_FIX,
        })?;
        Ok(Self {
            store,
            service: service.to_owned(),
        })
    }

    /// The keychain as token sets should be stored: wrapped in [`Chunked`] (entries of at
    /// most [`MAX_ENTRY_BYTES`], for Windows Credential Manager's 2560-byte cap) and in
    /// [`Timed`] (opening, and each operation, gives up after [`DEFAULT_KEYCHAIN_TIMEOUT`]
    /// with [`StoreError::Timeout`]).
    pub fn open_for_tokens(service: &str) -> Result<Arc<dyn SecretStore>, StoreError> {
        open_token_store(service, DEFAULT_KEYCHAIN_TIMEOUT)
    }

    fn entry(&self, key: &str) -> Result<keyring_core::Entry, StoreError> {
        keyring_core::Entry::new_in_store(&self.store, &self.service, key)
            .map_err(map_keyring_error)
    }
}

#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none()
        && std::env::var_os("XDG_RUNTIME_DIR").is_none()
    {
        return Err(keyring_core::Error::NoStorageAccess(
            "there is no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set)".into(),
        ));
    }
    let store: Arc<keyring_core::CredentialStore> =
        zbus_secret_service_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "macos")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> =
        apple_native_keyring_store::keychain::Store::new()?;
    Ok(store)
}

#[cfg(target_os = "windows")]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    let store: Arc<keyring_core::CredentialStore> = windows_native_keyring_store::Store::new()?;
    Ok(store)
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
fn platform_store() -> keyring_core::Result<Arc<keyring_core::CredentialStore>> {
    Err(keyring_core::Error::NoDefaultStore)
}

/// Describes a keyring error without any payload it carries (some variants hold secret bytes).
fn describe_keyring_error(e: &keyring_core::Error) -> String {
    use keyring_core::Error as E;
    match e {
        E::PlatformFailure(inner) | E::NoStorageAccess(inner) => {
            crate::text::printable(&inner.to_string(), 200)
        }
        E::NoEntry => "no such entry".into(),
        E::BadEncoding(_) | E::BadDataFormat(..) => {
            "an entry holds data in an unexpected format".into()
        }
        E::BadStoreFormat(_) => "the store is in an unexpected format".into(),
        E::TooLong(what, max) => format!("{what} is longer than {max}"),
        E::Invalid(what, why) => format!("{what} {why}"),
        E::Ambiguous(_) => "more than one entry matches".into(),
        E::NoDefaultStore => "no keychain store for this platform".into(),
        E::NotSupportedByStore(what) => format!("not supported: {what}"),
        _ => "unknown keychain error".into(),
    }
}

fn map_keyring_error(e: keyring_core::Error) -> StoreError {
    let text = describe_keyring_error(&e);
    match e {
        // A locked keychain, or one whose unlock prompt was dismissed or could not be shown
        // (Secret Service: "object locked", "prompt dismissed"), exists: it is not missing.
        keyring_core::Error::NoStorageAccess(_)
            if ["lock", "prompt"]
                .iter()
                .any(|w| text.to_lowercase().contains(w)) =>
        {
            StoreError::Locked(text)
        }
        keyring_core::Error::NoStorageAccess(_) => StoreError::NoKeychain {
            reason: text,
            fix: NO_KEYCHAIN_FIX,
        },
        _ => StoreError::Keychain(text),
    }
}

impl SecretStore for Keychain {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        match self.entry(key)?.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                let text =
                    std::str::from_utf8(&bytes).map_err(|_| StoreError::Corrupt(key.to_owned()))?;
                Ok(Some(SecretString::new(text)))
            }
            Err(keyring_core::Error::NoEntry) => Ok(None),
            Err(e) => Err(map_keyring_error(e)),
        }
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.entry(key)?
            .set_secret(value.as_bytes())
            .map_err(map_keyring_error)
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        match self.entry(key)?.delete_credential() {
            Ok(()) | Err(keyring_core::Error::NoEntry) => Ok(()),
            Err(e) => Err(map_keyring_error(e)),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct StoredTokens<'a> {
    v: u8,
    access_token: &'a str,
    refresh_token: Option<&'a str>,
    id_token: Option<&'a str>,
    expires_at: Option<UnixTime>,
}

/// Serialises a token set for the keychain. The buffer is wiped on drop.
pub(crate) fn encode_tokens(tokens: &TokenSet) -> Zeroizing<String> {
    let stored = StoredTokens {
        v: 1,
        access_token: tokens.access_token.secret(),
        refresh_token: tokens.refresh_token.as_ref().map(|t| t.secret()),
        id_token: tokens.id_token.as_ref().map(|t| t.secret()),
        expires_at: tokens.expires_at,
    };
    // Serialising plain strings and numbers cannot fail.
    Zeroizing::new(serde_json::to_string(&stored).unwrap_or_default())
}

/// Reads a token set back from the keychain.
pub(crate) fn decode_tokens(
    account: &AccountId,
    raw: &SecretString,
) -> Result<TokenSet, StoreError> {
    let stored: StoredTokens<'_> =
        serde_json::from_str(raw.secret()).map_err(|_| StoreError::Corrupt(account.to_string()))?;
    if stored.v != 1 {
        return Err(StoreError::Corrupt(account.to_string()));
    }
    Ok(TokenSet {
        access_token: AccessToken::new(stored.access_token),
        refresh_token: stored.refresh_token.map(RefreshToken::new),
        id_token: stored.id_token.map(IdToken::new),
        expires_at: stored.expires_at,
        scopes: None,
    })
}

/// Whether an account's tokens are usable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountStatus {
    /// Tokens are stored and the grant is believed valid.
    Ok,
    /// The provider refused the refresh token: the user must link again.
    NeedsRelink,
}

/// Non-secret metadata of a linked account, as kept in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Stable id: provider id and a hash of (issuer, subject).
    pub id: AccountId,
    /// Provider id.
    pub provider: ProviderId,
    /// Issuer.
    pub issuer: IssuerUrl,
    /// Subject at the issuer.
    pub subject: String,
    /// Email, when the provider shared it.
    pub email: Option<String>,
    /// Display name, when the provider shared it.
    pub name: Option<String>,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// When the account was linked.
    pub linked_at: UnixTime,
    /// When the stored access token expires.
    pub expires_at: Option<UnixTime>,
    /// Status.
    pub status: AccountStatus,
}

impl Account {
    /// Who the account is, as plain text to show: the email, else the name, else the
    /// subject, cleaned of control and markup characters (an index written by an older
    /// version may hold text as the provider sent it).
    pub fn label(&self) -> String {
        let who = self
            .email
            .as_deref()
            .or(self.name.as_deref())
            .unwrap_or(&self.subject);
        crate::text::printable(who, 320)
    }
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct IndexFile {
    accounts: Vec<Account>,
}

/// The account index, `<data dir>/accounts.json`.
#[derive(Debug, Clone)]
pub(crate) struct Index {
    path: PathBuf,
    lock_path: PathBuf,
}

impl Index {
    /// The index under `data_dir`.
    pub(crate) fn new(data_dir: &Path) -> Self {
        Self {
            path: data_dir.join("accounts.json"),
            lock_path: data_dir.join("accounts.lock"),
        }
    }

    /// The index file.
    #[cfg(unix)]
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    fn err(&self, e: impl std::fmt::Display) -> StoreError {
        StoreError::DataDir {
            path: self.path.clone(),
            reason: e.to_string(),
        }
    }

    /// All accounts.
    pub(crate) fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        match read_private(&self.path) {
            Ok(bytes) => Ok(serde_json::from_slice::<IndexFile>(&bytes)
                .map_err(|e| self.err(e))?
                .accounts),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(self.err(e)),
        }
    }

    /// Applies `change` to the account list under an exclusive lock and writes it atomically.
    pub(crate) fn update<T>(
        &self,
        change: impl FnOnce(&mut Vec<Account>) -> T,
    ) -> Result<T, StoreError> {
        if let Some(dir) = self.path.parent() {
            create_private_dir(dir).map_err(|e| self.err(e))?;
        }
        let lock = open_private(&self.lock_path, false).map_err(|e| self.err(e))?;
        lock.lock().map_err(|e| self.err(e))?;
        let mut accounts = self.accounts()?;
        let result = change(&mut accounts);
        let bytes = serde_json::to_vec_pretty(&IndexFile { accounts }).map_err(|e| self.err(e))?;
        write_atomic(&self.path, &bytes).map_err(|e| self.err(e))?;
        Ok(result)
    }
}

/// Creates `dir` (and parents) readable by the owner only.
pub(crate) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)
}

/// Refuses a directory that belongs to another user or that other users may write to, the
/// way ssh's StrictModes treats `~/.ssh` (SECURITY 38): a pending flow or an index planted
/// there would be believed. A directory that does not exist yet is fine: Keylink creates it
/// private.
pub(crate) fn check_trusted_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let meta = match std::fs::metadata(dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(StoreError::DataDir {
                    path: dir.to_owned(),
                    reason: e.to_string(),
                });
            }
        };
        let untrusted = |problem: String, fix: String| StoreError::UntrustedDir {
            path: dir.to_owned(),
            problem,
            fix,
        };
        if !meta.is_dir() {
            return Err(untrusted(
                "is not a directory".into(),
                "remove it, or use a data directory of your own".into(),
            ));
        }
        let me = rustix::process::geteuid().as_raw();
        if meta.uid() != me {
            return Err(untrusted(
                format!("belongs to user id {}, not to you ({me})", meta.uid()),
                "use a data directory of your own".into(),
            ));
        }
        let mode = meta.mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(untrusted(
                format!("can be written by other users (mode {mode:03o})"),
                format!(
                    "run `chmod 700 {}` after checking its contents",
                    dir.display()
                ),
            ));
        }
    }
    Ok(())
}

/// Opens `path` for reading without following a symlink at its last component; anything but
/// a regular file is refused.
pub(crate) fn read_private(path: &Path) -> std::io::Result<Zeroizing<Vec<u8>>> {
    use std::io::Read;
    let mut options = OpenOptions::new();
    options.read(true);
    no_follow(&mut options);
    let mut file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut bytes = Zeroizing::new(Vec::new());
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Opens (creating when missing, `0600`) a file for writing without following a symlink;
/// used for lock files.
pub(crate) fn open_private(path: &Path, truncate: bool) -> std::io::Result<File> {
    private_write_options()
        .create(true)
        .truncate(truncate)
        .open(path)
}

/// Write access to a `0600` file, never through a symlink at its last component.
fn private_write_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    no_follow(&mut options);
    options
}

fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    );
    #[cfg(not(unix))]
    let _ = options;
}

/// Creates `path` with `bytes`, `0600`, only if it does not exist yet (never through a
/// symlink); `AlreadyExists` otherwise.
pub(crate) fn create_new_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = private_write_options().create_new(true).open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Writes `bytes` to `path` atomically: a new 0600 temporary file in the same directory
/// (created exclusively, never through a symlink), fsync, rename over the target, fsync of
/// the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = dir.join(format!(
        ".{}.{}-{:08x}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("file"),
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        create_new_private(&tmp, bytes)?;
        std::fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
