//! The services every part of Keylink works with: the app identity, configuration, data
//! directory, HTTP client, clock and keychain, and the per-process caches of provider
//! metadata, signing keys and the data directory's keychain id. Owned by [`Keylink`] and
//! lent to the token source, the flows and the link sessions.
//!
//! [`Keylink`]: crate::Keylink

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use url::Url;

use crate::app::AppIdentity;
use crate::clock::{Clock, UnixTime};
use crate::error::Error;
use crate::flow::PendingFlows;
use crate::id_token::Jwks;
use crate::ids::{AccountId, ProviderId};
use crate::provider::{Config, Metadata, ProviderConfig, discover};
use crate::store::{Account, Index, Keychain, SecretStore};
use crate::text::printable;

pub(crate) struct Context {
    pub(crate) identity: AppIdentity,
    pub(crate) config: Config,
    pub(crate) data_dir: PathBuf,
    pub(crate) http: crate::http::Http,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) secrets: Mutex<Option<Arc<dyn SecretStore>>>,
    pub(crate) metadata: Mutex<HashMap<ProviderId, Arc<Metadata>>>,
    pub(crate) jwks: Mutex<HashMap<Url, Arc<Jwks>>>,
    /// The data directory's keychain id, once read (see [`Context::token_key`]).
    pub(crate) keychain_id: Mutex<Option<String>>,
}

impl Context {
    /// The HTTP client (shared, with the configured roots, deadline and size cap).
    pub(crate) fn http(&self) -> &crate::http::Http {
        &self.http
    }

    /// The current time, from the injected clock.
    pub(crate) fn now(&self) -> UnixTime {
        self.clock.now()
    }

    /// The keychain, opened once per process.
    pub(crate) fn secrets(&self) -> Result<Arc<dyn SecretStore>, Error> {
        let mut slot = self.secrets.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(store) = slot.as_ref() {
            return Ok(store.clone());
        }
        let store: Arc<dyn SecretStore> =
            Keychain::open_for_tokens(self.identity.keychain_service())?;
        *slot = Some(store.clone());
        Ok(store)
    }

    /// The keychain key of an account's tokens: `<data dir id>:<account id>`. The id is
    /// random, made once per data directory, so two data directories of one app holding the
    /// same account never share (or delete) each other's tokens.
    pub(crate) fn token_key(&self, account_id: &AccountId) -> Result<String, Error> {
        // Read (or made) once per process: it never changes for a data directory.
        let mut slot = self.keychain_id.lock().unwrap_or_else(|p| p.into_inner());
        let id = match slot.as_ref() {
            Some(id) => id.clone(),
            None => slot.insert(self.load_keychain_id()?).clone(),
        };
        Ok(format!("{id}:{account_id}"))
    }

    /// The data directory's keychain id, from `<data dir>/keychain-id`, created on first use.
    fn load_keychain_id(&self) -> Result<String, Error> {
        let path = self.data_dir.join("keychain-id");
        crate::store::check_trusted_dir(&self.data_dir)?;
        let io = |e: std::io::Error| crate::store::StoreError::DataDir {
            path: path.clone(),
            reason: e.to_string(),
        };
        let read = |bytes: &[u8]| {
            std::str::from_utf8(bytes)
                .ok()
                .map(str::trim)
                .filter(|id| id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()))
                .map(str::to_owned)
        };
        let id = match crate::store::read_private(&path) {
            Ok(bytes) => read(&bytes),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                crate::store::create_private_dir(&self.data_dir).map_err(io)?;
                let fresh = format!("{:016x}", rand::random::<u64>());
                // Created exclusively: of two processes creating it at once, one wins and
                // both use its id.
                match crate::store::create_new_private(&path, fresh.as_bytes()) {
                    Ok(()) => Some(fresh),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        read(&crate::store::read_private(&path).map_err(io)?)
                    }
                    Err(e) => return Err(io(e).into()),
                }
            }
            Err(e) => return Err(io(e).into()),
        };
        Ok(id.ok_or_else(|| io(std::io::Error::other("it is not a Keylink keychain id")))?)
    }

    /// Checks that the keychain is reachable, unlocked and writable, with a probe entry that
    /// is written, read back and deleted.
    pub(crate) fn check_keychain(&self) -> Result<(), Error> {
        // Unique per check: concurrent checks (other processes, other threads of this one)
        // must not delete each other's probe.
        let probe = format!(
            "keylink-probe-{}-{:016x}",
            std::process::id(),
            rand::random::<u64>()
        );
        let store = self.secrets()?;
        store.set(&probe, "probe")?;
        let read = store.get(&probe);
        store.delete(&probe)?;
        match read? {
            Some(value) if value.secret() == "probe" => Ok(()),
            _ => Err(
                crate::store::StoreError::Keychain("a probe entry did not read back".into()).into(),
            ),
        }
    }

    /// `dir`, under the data directory, after checking that nobody else could have planted
    /// anything in it.
    pub(crate) fn trusted_dir(&self, sub: &str) -> Result<PathBuf, Error> {
        crate::store::check_trusted_dir(&self.data_dir)?;
        let dir = self.data_dir.join(sub);
        crate::store::check_trusted_dir(&dir)?;
        Ok(dir)
    }

    pub(crate) fn index(&self) -> Result<Index, Error> {
        crate::store::check_trusted_dir(&self.data_dir)?;
        Ok(Index::new(&self.data_dir))
    }

    pub(crate) fn pending(&self) -> Result<PendingFlows, Error> {
        self.trusted_dir("pending")?;
        Ok(PendingFlows::new(&self.data_dir))
    }

    /// The configured provider `id`.
    pub(crate) fn provider(&self, id: &ProviderId) -> Result<&ProviderConfig, Error> {
        self.config
            .provider(id)
            .ok_or_else(|| Error::UnknownProvider(printable(id.as_str(), 64)))
    }

    /// The provider's metadata, discovered once per process.
    pub(crate) fn metadata(&self, provider: &ProviderConfig) -> Result<Arc<Metadata>, Error> {
        if let Some(m) = self
            .metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&provider.id)
        {
            return Ok(m.clone());
        }
        let m = Arc::new(discover(&self.http, provider)?);
        self.metadata
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(provider.id.clone(), m.clone());
        Ok(m)
    }

    pub(crate) fn jwks_for(&self, uri: &Url) -> Arc<Jwks> {
        self.jwks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(uri.clone())
            .or_insert_with(|| Arc::new(Jwks::new(uri.clone())))
            .clone()
    }

    /// All linked accounts.
    pub(crate) fn accounts(&self) -> Result<Vec<Account>, Error> {
        Ok(self.index()?.accounts()?)
    }

    /// The linked account `id`.
    pub(crate) fn account_by_id(&self, id: &AccountId) -> Result<Account, Error> {
        self.accounts()?
            .into_iter()
            .find(|a| a.id == *id)
            .ok_or_else(|| Error::UnknownAccount(printable(id.as_str(), 100)))
    }

    /// The account with this id, or the only one with this email.
    pub(crate) fn account(&self, query: &str) -> Result<Account, Error> {
        find_account(&self.accounts()?, query).cloned()
    }
}

/// The account with this id, or the only one with this email, among `accounts`.
pub(crate) fn find_account<'a>(accounts: &'a [Account], query: &str) -> Result<&'a Account, Error> {
    if let Some(a) = accounts.iter().find(|a| a.id.as_str() == query) {
        return Ok(a);
    }
    let mut by_email = accounts
        .iter()
        .filter(|a| a.email.as_deref() == Some(query));
    match (by_email.next(), by_email.next()) {
        (Some(a), None) => Ok(a),
        (Some(_), Some(_)) => Err(Error::AmbiguousAccount(printable(query, 100))),
        _ => Err(Error::UnknownAccount(printable(query, 100))),
    }
}
