//! A time limit on keychain operations: a locked keychain can wait on an unlock prompt
//! forever, and whoever asked for a token (often a script) must not hang with it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use super::{SecretStore, StoreError};
use crate::secret::SecretString;

/// A [`SecretStore`] whose operations each give up after a time limit with
/// [`StoreError::Timeout`].
///
/// Each operation runs on a worker thread. One that times out is abandoned, not cancelled (a
/// platform keychain call cannot be interrupted): it may still finish once the keychain
/// answers, e.g. after the user unlocks it, so a timed-out `set` may yet take effect. While an
/// abandoned operation is still running, later operations wait for it within their own time
/// limit instead of piling more blocked threads onto the keychain.
///
/// Wrap the whole [`Chunked`](super::Chunked) store rather than the keychain under it, so a
/// chunked read or write has one time limit in all.
pub struct Timed<S> {
    inner: Arc<S>,
    timeout: Duration,
    stuck: Arc<Stuck>,
}

/// Abandoned operations still running.
#[derive(Default)]
struct Stuck {
    count: Mutex<usize>,
    cleared: Condvar,
}

/// One operation, shared by the caller and its worker thread.
struct Call<T> {
    state: Mutex<State<T>>,
    done: Condvar,
}

enum State<T> {
    Running,
    Finished(Result<T, StoreError>),
    Abandoned,
}

impl<S> std::fmt::Debug for Timed<S>
where
    S: std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timed")
            .field("inner", &self.inner)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl<S: SecretStore + 'static> Timed<S> {
    /// Wraps `inner`; each operation gives up after `timeout`.
    pub fn new(inner: S, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(inner),
            timeout,
            stuck: Arc::default(),
        }
    }

    fn call<T: Send + 'static>(
        &self,
        operation: impl FnOnce(&S) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let inner = Arc::clone(&self.inner);
        run(&self.stuck, self.timeout, move || operation(&inner))
    }
}

impl<S: SecretStore + 'static> SecretStore for Timed<S> {
    fn get(&self, key: &str) -> Result<Option<SecretString>, StoreError> {
        let key = key.to_owned();
        self.call(move |store| store.get(&key))
    }

    fn set(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        let value = Zeroizing::new(value.to_owned());
        self.call(move |store| store.set(&key, &value))
    }

    fn delete(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.call(move |store| store.delete(&key))
    }
}

/// Runs `operation` on a worker thread and waits for it at most `timeout`.
pub(super) fn run_with_timeout<T: Send + 'static>(
    timeout: Duration,
    operation: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    run(&Arc::default(), timeout, operation)
}

fn run<T: Send + 'static>(
    stuck: &Arc<Stuck>,
    timeout: Duration,
    operation: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    let started = Instant::now();
    let timed_out = StoreError::Timeout { after: timeout };

    // A keychain that left an earlier call hanging would most likely hang this one too.
    let count = lock(&stuck.count);
    let (count, _) = stuck
        .cleared
        .wait_timeout_while(count, timeout, |n| *n > 0)
        .unwrap_or_else(PoisonError::into_inner);
    if *count > 0 {
        return Err(timed_out);
    }
    drop(count);

    let call = Arc::new(Call {
        state: Mutex::new(State::Running),
        done: Condvar::new(),
    });
    let worker_call = Arc::clone(&call);
    let worker_stuck = Arc::clone(stuck);
    std::thread::Builder::new()
        .name("keylink-keychain".into())
        .spawn(move || {
            // A panic would otherwise leave the call "running" and every later call waiting.
            let result = catch_unwind(AssertUnwindSafe(operation)).unwrap_or_else(|_| {
                Err(StoreError::Keychain(
                    "the keychain library failed unexpectedly".into(),
                ))
            });
            let mut state = lock(&worker_call.state);
            if matches!(*state, State::Abandoned) {
                drop(state);
                let mut count = lock(&worker_stuck.count);
                *count = count.saturating_sub(1);
                worker_stuck.cleared.notify_all();
            } else {
                *state = State::Finished(result);
                worker_call.done.notify_all();
            }
        })
        .map_err(|e| StoreError::Keychain(format!("cannot start a thread for it: {e}")))?;

    let remaining = timeout.saturating_sub(started.elapsed());
    let state = lock(&call.state);
    let (mut state, _) = call
        .done
        .wait_timeout_while(state, remaining, |s| matches!(s, State::Running))
        .unwrap_or_else(PoisonError::into_inner);
    match std::mem::replace(&mut *state, State::Abandoned) {
        State::Finished(result) => result,
        State::Running | State::Abandoned => {
            // Counted while the call's state is still locked, so the worker, which looks at the
            // state before it uncounts itself, cannot finish in between.
            *lock(&stuck.count) += 1;
            Err(timed_out)
        }
    }
}

/// Locks `mutex`; a panic elsewhere while holding it leaves nothing half-updated here.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
