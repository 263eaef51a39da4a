//! The shell's state: the core (or why it could not start), the one link in progress, and
//! notices about redirects that arrived while nobody was waiting for them. Deep links may
//! arrive before the UI is ready (a cold start), so results are queued here and the UI pulls
//! them (`app_state`) when it loads and while it polls.

use std::collections::HashSet;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use keylink::{Account, Error, Keylink, RedirectError};

use crate::dto::{AccountDto, AppStateDto, DeviceCodeDto, LinkDto, NoticeDto, ProviderDto};
use crate::error::ErrorDto;

/// How long the app waits for a sign-in before giving up (the core keeps a started sign-in
/// for 10 minutes at most).
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(300);

/// The app's state, shared by the commands and the deep-link handlers. Cheap to clone.
#[derive(Clone)]
pub struct Shell(Arc<Inner>);

struct Inner {
    keylink: Result<Arc<Keylink>, ErrorDto>,
    timeout: Duration,
    ui: Mutex<UiState>,
    /// Hashes of the redirect URLs already handed to the core: the same URL may arrive twice
    /// (the single-instance callback and `on_open_url` both see a forwarded one). Hashed with
    /// a per-process random key, so the URLs (which carry codes) are not kept.
    seen: Mutex<HashSet<u64>>,
    hasher: RandomState,
    completing: AtomicUsize,
    /// Providers whose discovered metadata has a device authorization endpoint.
    device_capable: Mutex<HashSet<String>>,
}

#[derive(Default)]
struct UiState {
    link: Option<ActiveLink>,
    notices: Vec<NoticeDto>,
}

struct ActiveLink {
    flow_id: String,
    provider: String,
    provider_name: String,
    deadline: Instant,
    cancel: Arc<AtomicBool>,
    /// For device sign-in: the code to show, once the provider gave it.
    device: Option<DeviceCodeDto>,
    result: Option<Result<AccountDto, ErrorDto>>,
}

impl ActiveLink {
    fn waiting(&self) -> bool {
        self.result.is_none()
    }
}

impl Shell {
    /// The shell over `keylink` (or the reason it could not be set up, shown by the UI).
    pub fn new(keylink: Result<Keylink, Error>, timeout: Duration) -> Self {
        Shell(Arc::new(Inner {
            keylink: keylink.map(Arc::new).map_err(ErrorDto::from),
            timeout,
            ui: Mutex::default(),
            seen: Mutex::default(),
            hasher: RandomState::new(),
            completing: AtomicUsize::new(0),
            device_capable: Mutex::default(),
        }))
    }

    /// The core, or why it is unavailable.
    pub fn keylink(&self) -> Result<&Keylink, ErrorDto> {
        self.0.keylink.as_deref().map_err(Clone::clone)
    }

    fn ui(&self) -> MutexGuard<'_, UiState> {
        self.0.ui.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything the UI shows. Finished links and notices are returned once.
    pub fn app_state(&self) -> AppStateDto {
        let keylink = self.keylink();
        let (providers, accounts, error, config_files) = match keylink {
            Ok(k) => {
                let providers = k
                    .config()
                    .providers
                    .values()
                    .map(|p| {
                        let device = self.device_capable().contains(&p.id);
                        ProviderDto::with_device(p, device)
                    })
                    .collect();
                let files = k
                    .config()
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect();
                match k.accounts() {
                    Ok(list) => (
                        providers,
                        list.iter().map(|a| AccountDto::new(a, Some(k))).collect(),
                        None,
                        files,
                    ),
                    Err(e) => (providers, Vec::new(), Some(ErrorDto::from(e)), files),
                }
            }
            Err(e) => (Vec::new(), Vec::new(), Some(e), Vec::new()),
        };
        let mut ui = self.ui();
        let link = match ui.link.take() {
            None => LinkDto::Idle,
            Some(active) => match &active.result {
                None => {
                    let dto = waiting_dto(&active, self.0.timeout);
                    ui.link = Some(active);
                    dto
                }
                Some(Ok(account)) => LinkDto::Linked {
                    account: account.clone(),
                },
                Some(Err(error)) => LinkDto::Failed {
                    provider: active.provider.clone(),
                    provider_name: active.provider_name.clone(),
                    error: error.clone(),
                },
            },
        };
        AppStateDto {
            providers,
            accounts,
            error,
            link,
            notices: std::mem::take(&mut ui.notices),
            completing: self.0.completing.load(Ordering::SeqCst) > 0,
            config_files,
        }
    }

    /// Starts linking at `provider`: the core starts the flow, the system browser opens, and a
    /// thread waits for the redirect (through the loopback listener, or the outcome another
    /// process or this one's deep-link handler leaves). A link already waiting is cancelled.
    pub fn start_link(&self, provider: &str, account: Option<&str>) -> Result<LinkDto, ErrorDto> {
        let keylink = self.0.keylink.clone()?;
        self.cancel_link();
        let provider_name = keylink.provider(provider)?.name.clone();
        let request = match account {
            Some(account) => keylink.start_reconnect(account)?,
            None => keylink.start_link(provider)?,
        };
        if let Err(e) = keylink.open_browser(&request.authorization_url) {
            keylink.cancel_link(&request.flow_id);
            return Err(e.into());
        }
        let cancel = Arc::new(AtomicBool::new(false));
        let dto = self.activate(&request.flow_id, provider, provider_name, &cancel);
        let shell = self.clone();
        let timeout = self.0.timeout;
        std::thread::spawn(move || {
            let flow_id = request.flow_id.clone();
            let result = keylink.wait_for_link(request, timeout, || cancel.load(Ordering::SeqCst));
            shell.link_finished(&flow_id, result);
        });
        Ok(dto)
    }

    /// Starts linking at `provider` with device sign-in (RFC 8628): a thread asks the
    /// provider for a code, which the UI shows once it is there, and waits while the person
    /// enters it on another device. A link already waiting is cancelled.
    pub fn start_device_link(&self, provider: &str) -> Result<LinkDto, ErrorDto> {
        let keylink = self.0.keylink.clone()?;
        self.cancel_link();
        let provider_name = keylink.provider(provider)?.name.clone();
        let cancel = Arc::new(AtomicBool::new(false));
        // Not a core flow id (device sign-in has no pending flow); it only matches the result
        // to this link.
        let flow_id = format!("device-{:x}", self.0.hasher.hash_one(Instant::now()));
        let dto = self.activate(&flow_id, provider, provider_name, &cancel);
        let (shell, timeout, provider) = (self.clone(), self.0.timeout, provider.to_owned());
        std::thread::spawn(move || {
            let show = |code: &keylink::DeviceAuthorization| {
                if let Some(active) = shell.ui().link.as_mut().filter(|a| a.flow_id == flow_id) {
                    active.device = Some(DeviceCodeDto::from(code));
                }
            };
            let result = keylink
                .link_with_device(&provider, show, timeout, || cancel.load(Ordering::SeqCst));
            shell.link_finished(&flow_id, result);
        });
        Ok(dto)
    }

    /// Makes a started link the one in progress and returns how the UI shows it.
    fn activate(
        &self,
        flow_id: &str,
        provider: &str,
        provider_name: String,
        cancel: &Arc<AtomicBool>,
    ) -> LinkDto {
        let active = ActiveLink {
            flow_id: flow_id.to_owned(),
            provider: provider.to_owned(),
            provider_name,
            deadline: Instant::now() + self.0.timeout,
            cancel: cancel.clone(),
            device: None,
            result: None,
        };
        let dto = waiting_dto(&active, self.0.timeout);
        self.ui().link = Some(active);
        dto
    }

    /// Discovers every provider in the background, remembering which offer device sign-in.
    pub fn discover_providers(&self) {
        let Ok(keylink) = self.0.keylink.clone() else {
            return;
        };
        let shell = self.clone();
        std::thread::spawn(move || {
            for provider in keylink.config().providers.values() {
                match keylink.metadata(provider) {
                    Ok(m) if m.device_authorization_endpoint.is_some() => {
                        shell.device_capable().insert(provider.id.clone());
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(provider = %provider.id, error = %e, "discovery failed")
                    }
                }
            }
        });
    }

    fn device_capable(&self) -> MutexGuard<'_, HashSet<String>> {
        self.0
            .device_capable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    fn link_finished(&self, flow_id: &str, result: Result<Account, Error>) {
        let keylink = self.keylink().ok();
        let mut ui = self.ui();
        match ui.link.as_mut() {
            Some(active) if active.flow_id == flow_id => {
                active.result = Some(
                    result
                        .map(|a| AccountDto::new(&a, keylink))
                        .map_err(ErrorDto::from),
                );
            }
            // Cancelled or replaced meanwhile: nobody is interested any more.
            _ => {}
        }
    }

    /// Cancels the link in progress: its redirect will be refused from now on.
    pub fn cancel_link(&self) -> LinkDto {
        let active = self.ui().link.take();
        if let Some(active) = active.filter(ActiveLink::waiting) {
            active.cancel.store(true, Ordering::SeqCst);
            if let Ok(k) = self.keylink() {
                k.cancel_link(&active.flow_id);
            }
        }
        LinkDto::Idle
    }

    /// Hands a redirect URL (from the OS: a cold start's argument, a forwarded second
    /// instance, `on_open_url`) to the core, once, on a worker thread. The result is queued for
    /// the UI unless the waiting link reports it.
    pub fn deliver_redirect(&self, url: String) {
        let key = self.0.hasher.hash_one(&url);
        if !self
            .0
            .seen
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(key)
        {
            tracing::debug!("redirect already handled; ignoring the second delivery");
            return;
        }
        let keylink = match self.0.keylink.clone() {
            Ok(k) => k,
            Err(e) => {
                self.ui().notices.push(NoticeDto::Error { error: e });
                return;
            }
        };
        self.0.completing.fetch_add(1, Ordering::SeqCst);
        let shell = self.clone();
        std::thread::spawn(move || {
            let result = keylink.complete_redirect(&url);
            drop(url);
            shell.redirect_finished(result);
            shell.0.completing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Queues a notice for a completed redirect, unless the link this app is waiting for will
    /// report it (the core hands a claimed flow's outcome to its waiter).
    pub(crate) fn redirect_finished(&self, result: Result<Account, Error>) {
        let keylink = self.keylink().ok();
        let mut ui = self.ui();
        let waiting = ui.link.as_ref().is_some_and(ActiveLink::waiting);
        match result {
            Ok(account) if !waiting => {
                tracing::info!(account = %account.id, "linked through a redirect");
                ui.notices.push(NoticeDto::Linked {
                    account: AccountDto::new(&account, keylink),
                });
            }
            Ok(_) => {}
            Err(e) if !waiting || refused_before_claim(&e) => {
                tracing::warn!(error = %e, "redirect refused");
                ui.notices.push(NoticeDto::Error { error: e.into() });
            }
            Err(_) => {}
        }
    }
}

fn waiting_dto(active: &ActiveLink, timeout: Duration) -> LinkDto {
    LinkDto::Waiting {
        provider: active.provider.clone(),
        provider_name: active.provider_name.clone(),
        seconds_left: active
            .deadline
            .saturating_duration_since(Instant::now())
            .as_secs(),
        timeout_secs: timeout.as_secs(),
        device: active.device.clone(),
    }
}

/// Refusals that happen before a pending flow is claimed: no waiter will ever hear of them.
fn refused_before_claim(e: &Error) -> bool {
    matches!(
        e,
        Error::Redirect(
            RedirectError::TooLong
                | RedirectError::Malformed
                | RedirectError::UnexpectedPart
                | RedirectError::RedirectMismatch
                | RedirectError::DuplicateParameter(_)
                | RedirectError::MissingState
                | RedirectError::Unsolicited
                | RedirectError::Expired
        )
    )
}
