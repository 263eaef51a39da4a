//! The shell's state: the core (or why it could not start), what the UI shows of the core's
//! link session, and notices about redirects nobody here was waiting for. Deep links may
//! arrive before the UI is ready (a cold start), so results are kept here and the UI pulls
//! them (`app_state`) when it loads and while it polls. The link logic itself (one session
//! at a time, cancel, progress, redirect de-duplication) is the core's.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, mpsc};
use std::time::{Duration, Instant};

use keylink::{Account, Delivery, Error, Keylink, LinkProgress, LinkStart, ProviderId, SessionId};

use crate::dto::{AccountDto, AppStateDto, DeviceCodeDto, LinkDto, NoticeDto, ProviderDto};
use crate::error::ErrorDto;

/// How long the app waits for a sign-in before giving up (the core keeps a started sign-in
/// for 10 minutes at most).
pub const DEFAULT_LINK_TIMEOUT: Duration = Duration::from_secs(300);

/// The app's state, shared by the commands and the deep-link handlers. Cheap to clone.
#[derive(Clone)]
pub struct Shell(Arc<Inner>);

struct Inner {
    keylink: Result<Keylink, ErrorDto>,
    timeout: Duration,
    ui: Mutex<UiState>,
    completing: AtomicUsize,
    /// Providers whose discovered metadata has a device authorization endpoint.
    device_capable: Mutex<HashSet<ProviderId>>,
}

#[derive(Default)]
struct UiState {
    link: Option<ShownLink>,
    notices: Vec<NoticeDto>,
}

/// The core's link session as the UI shows it.
struct ShownLink {
    session: SessionId,
    provider: ProviderId,
    provider_name: String,
    deadline: Instant,
    device: Option<DeviceCodeDto>,
    result: Option<Result<AccountDto, ErrorDto>>,
}

impl Shell {
    /// The shell over `keylink` (or the reason it could not be set up, shown by the UI).
    pub fn new(keylink: Result<Keylink, Error>, timeout: Duration) -> Self {
        Shell(Arc::new(Inner {
            keylink: keylink.map_err(ErrorDto::from),
            timeout,
            ui: Mutex::default(),
            completing: AtomicUsize::new(0),
            device_capable: Mutex::default(),
        }))
    }

    /// The core, or why it is unavailable.
    pub fn keylink(&self) -> Result<&Keylink, ErrorDto> {
        self.0.keylink.as_ref().map_err(Clone::clone)
    }

    fn ui(&self) -> MutexGuard<'_, UiState> {
        self.0.ui.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything the UI shows. Finished links and notices are returned once.
    pub fn app_state(&self) -> AppStateDto {
        let (providers, accounts, error, config_files) = match self.keylink() {
            Ok(k) => {
                let device_capable = self.device_capable().clone();
                let providers = k
                    .config()
                    .providers
                    .values()
                    .map(|p| ProviderDto::with_device(p, device_capable.contains(&p.id)))
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
            Some(shown) => match &shown.result {
                None => {
                    let dto = waiting_dto(&shown, self.0.timeout);
                    ui.link = Some(shown);
                    dto
                }
                Some(Ok(account)) => LinkDto::Linked {
                    account: account.clone(),
                },
                Some(Err(error)) => LinkDto::Failed {
                    provider: shown.provider.to_string(),
                    provider_name: shown.provider_name.clone(),
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

    /// Starts linking at `provider` in the system browser, or with `account` signs in again
    /// as that account (Reconnect). Returns once the browser is open; a worker thread runs
    /// the core's session. A link still waiting is cancelled first: the person clicked Link
    /// again.
    pub fn start_link(&self, provider: &str, account: Option<&str>) -> Result<LinkDto, ErrorDto> {
        let start = match account {
            Some(account) => LinkStart::reconnect(account),
            None => LinkStart::browser(provider),
        };
        self.start(start)
    }

    /// Starts linking at `provider` with device sign-in (RFC 8628): the UI shows the code
    /// once the provider gave it. A link still waiting is cancelled first.
    pub fn start_device_link(&self, provider: &str) -> Result<LinkDto, ErrorDto> {
        self.start(LinkStart::device(provider))
    }

    fn start(&self, start: LinkStart) -> Result<LinkDto, ErrorDto> {
        let keylink = self.keylink()?.clone();
        keylink.cancel_link();
        let device = start.method() == keylink::SignIn::Device;
        let session = keylink.link(start)?;
        let id = session.id();
        let provider = session.provider().to_owned();
        let provider_name = keylink.provider(&provider)?.name.clone();
        self.ui().link = Some(ShownLink {
            session: id,
            provider,
            provider_name,
            deadline: Instant::now() + self.0.timeout,
            device: None,
            result: None,
        });
        // Browser sign-in answers once the browser is open (or opening it failed), so the
        // UI says "Continue in your browser" only when there is a browser to continue in.
        let (opened, ready) = mpsc::channel();
        let (shell, timeout) = (self.clone(), self.0.timeout);
        std::thread::spawn(move || {
            let result = session.run(timeout, |progress| {
                shell.progress(id, progress);
                if matches!(progress, LinkProgress::Waiting { .. }) {
                    let _ = opened.send(());
                }
            });
            shell.link_finished(id, result);
            // Only now: a session that ended early has its result in place when the
            // waiting command hears of it.
            drop(opened);
        });
        if !device && ready.recv().is_err() {
            // The session ended before it waited: report its failure here, not later.
            let failed = self.ui().link.take_if(|l| l.session == id);
            if let Some(Some(Err(error))) = failed.map(|l| l.result) {
                return Err(error);
            }
        }
        let ui = self.ui();
        Ok(ui
            .link
            .as_ref()
            .filter(|l| l.session == id)
            .map_or(LinkDto::Idle, |l| waiting_dto(l, self.0.timeout)))
    }

    fn progress(&self, id: SessionId, progress: &LinkProgress) {
        let mut ui = self.ui();
        let Some(shown) = ui.link.as_mut().filter(|l| l.session == id) else {
            return;
        };
        match progress {
            LinkProgress::CodeShown(code) => shown.device = Some(DeviceCodeDto::from(code)),
            LinkProgress::Waiting { deadline } => shown.deadline = *deadline,
            _ => {}
        }
    }

    fn link_finished(&self, id: SessionId, result: Result<Account, Error>) {
        let keylink = self.keylink().ok();
        let mut ui = self.ui();
        // Cancelled or replaced meanwhile: nobody is interested any more.
        if let Some(shown) = ui.link.as_mut().filter(|l| l.session == id) {
            shown.result = Some(
                result
                    .map(|a| AccountDto::new(&a, keylink))
                    .map_err(ErrorDto::from),
            );
        }
    }

    /// Discovers every provider in the background, remembering which offer device sign-in.
    pub fn discover_providers(&self) {
        let Ok(keylink) = self.keylink().cloned() else {
            return;
        };
        let shell = self.clone();
        std::thread::spawn(move || {
            for provider in keylink.config().providers.values() {
                match keylink.supports_device_sign_in(provider) {
                    Ok(true) => {
                        shell.device_capable().insert(provider.id.clone());
                    }
                    Ok(false) => {}
                    Err(e) => {
                        tracing::warn!(provider = %provider.id, error = %e, "discovery failed")
                    }
                }
            }
        });
    }

    fn device_capable(&self) -> MutexGuard<'_, HashSet<ProviderId>> {
        self.0
            .device_capable
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Cancels the link in progress: its redirect will be refused from now on.
    pub fn cancel_link(&self) -> LinkDto {
        self.ui().link = None;
        if let Ok(k) = self.keylink() {
            k.cancel_link();
        }
        LinkDto::Idle
    }

    /// Hands a redirect URL (from the OS: a cold start's argument, a forwarded second
    /// instance, `on_open_url`) to the core on a worker thread. Its result is queued for the
    /// UI unless the link session waiting here reports it.
    pub fn deliver_redirect(&self, url: String) {
        let keylink = match self.keylink() {
            Ok(k) => k.clone(),
            Err(e) => {
                self.ui().notices.push(NoticeDto::Error { error: e });
                return;
            }
        };
        self.0.completing.fetch_add(1, Ordering::SeqCst);
        let shell = self.clone();
        std::thread::spawn(move || {
            let delivery = keylink.deliver_redirect(&url);
            drop(url);
            if let Delivery::Completed(result) = delivery {
                shell.redirect_finished(result);
            }
            shell.0.completing.fetch_sub(1, Ordering::SeqCst);
        });
    }

    /// Queues a notice for a redirect no link session here reported.
    pub(crate) fn redirect_finished(&self, result: Result<Account, Error>) {
        let keylink = self.keylink().ok();
        let notice = match result {
            Ok(account) => {
                tracing::info!(account = %account.id, "linked through a redirect");
                NoticeDto::Linked {
                    account: AccountDto::new(&account, keylink),
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "redirect refused");
                NoticeDto::Error { error: e.into() }
            }
        };
        self.ui().notices.push(notice);
    }
}

fn waiting_dto(shown: &ShownLink, timeout: Duration) -> LinkDto {
    LinkDto::Waiting {
        provider: shown.provider.to_string(),
        provider_name: shown.provider_name.clone(),
        seconds_left: shown
            .deadline
            .saturating_duration_since(Instant::now())
            .as_secs(),
        timeout_secs: timeout.as_secs(),
        device: shown.device.clone(),
    }
}
