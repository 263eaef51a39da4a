//! Linking through the Device Authorization Grant (RFC 8628), for machines without a
//! browser: the sign-in around the protocol in [`crate::device`] (showing the code,
//! polling at the provider's pace, cancelling, storing the approved account).

use std::time::{Duration, Instant};

use crate::context::Context;
use crate::device::{
    DEVICE_CODE_GRANT_TYPE, DeviceError, Polling, Step, Stop, request_device_authorization,
};
use crate::error::Error;
use crate::exchange;
use crate::provider::ProviderConfig;
use crate::session::LinkProgress;
use crate::store::Account;

/// How often a wait between polls checks `cancelled` and the time limit.
const WAKE_UP: Duration = Duration::from_millis(100);

impl From<Stop> for Error {
    fn from(stop: Stop) -> Self {
        match stop {
            Stop::Device(e) => e.into(),
            Stop::Exchange(e) => e.into(),
        }
    }
}

/// Links an account at `provider` through the Device Authorization Grant (RFC 8628): for
/// machines without a browser. Keylink asks the provider for a code, shows it through
/// `progress` ([`LinkProgress::CodeShown`]), then polls the token endpoint at the
/// provider's pace until the person approves or declines on another device, the code
/// expires, `deadline` passes, or `cancelled` returns true. The approved account is stored
/// like any other link; nothing is stored otherwise, also when the link is cancelled
/// while the approval is being checked.
pub(crate) fn link(
    ctx: &Context,
    provider: &ProviderConfig,
    deadline: Instant,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
    progress: &mut dyn FnMut(&LinkProgress),
    scopes: &[String],
) -> Result<Account, Error> {
    // Without a usable keychain the tokens could not be kept: say so before the person
    // signs in, not after.
    ctx.check_keychain()?;
    let metadata = ctx.metadata(provider)?;
    let endpoint = metadata
        .device_authorization_endpoint
        .as_ref()
        .ok_or_else(|| DeviceError::Unsupported(provider.id.to_string()))?;
    if cancelled() {
        return Err(Error::Cancelled);
    }
    let (device_code, authorization, interval) =
        request_device_authorization(ctx.http(), provider, endpoint, scopes)?;
    let mut polling = Polling::new(interval, authorization.expires_in, ctx.now());
    tracing::info!(
        provider = %provider.id,
        expires_in = authorization.expires_in.as_secs(),
        interval = polling.interval.as_secs(),
        "device authorization started"
    );
    let code_deadline = crate::clock::deadline_after(authorization.expires_in).min(deadline);
    progress(&LinkProgress::CodeShown(authorization));
    if cancelled() {
        return Err(Error::Cancelled);
    }
    progress(&LinkProgress::Waiting {
        deadline: code_deadline,
    });

    let mut form = vec![
        ("grant_type", DEVICE_CODE_GRANT_TYPE),
        ("device_code", device_code.secret()),
        ("client_id", provider.client_id.as_str()),
    ];
    if let Some(secret) = &provider.client_secret {
        form.push(("client_secret", secret.secret()));
    }
    let mut wait = polling.interval;
    loop {
        pause(wait, deadline, timeout, cancelled)?;
        if polling.is_expired(ctx.now()) {
            return Err(polling.expired().into());
        }
        let answer =
            exchange::post_token_form(ctx.http(), &metadata.token_endpoint, &form, ctx.now());
        match polling.step(answer) {
            Step::Wait(next) => wait = next,
            Step::Done(tokens) => {
                tracing::info!(provider = %provider.id, "device sign-in approved");
                progress(&LinkProgress::Exchanging);
                if cancelled() {
                    tracing::info!("the link was cancelled after approval; nothing stored");
                    return Err(Error::Cancelled);
                }
                return crate::identity::store_link(
                    ctx,
                    provider,
                    &metadata,
                    tokens,
                    None,
                    None,
                    scopes,
                    ctx.now(),
                );
            }
            Step::Fail(e) => return Err(e.into()),
        }
    }
}

/// Sleeps `wait`, waking up regularly to honour `cancelled` and the overall deadline.
fn pause(
    wait: Duration,
    deadline: Instant,
    timeout: Duration,
    cancelled: &dyn Fn() -> bool,
) -> Result<(), Error> {
    let until = crate::clock::deadline_after(wait);
    loop {
        if cancelled() {
            return Err(Error::Cancelled);
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(Error::LinkTimedOut(timeout));
        }
        if now >= until {
            return Ok(());
        }
        std::thread::sleep((until.min(deadline) - now).min(WAKE_UP));
    }
}
