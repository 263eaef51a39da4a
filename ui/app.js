// Keylink's UI: pulls the app state when it loads and polls it (every 2 s, every 0.5 s while a
// sign-in is in progress), so deep links that arrived before the page was ready still show.
// Everything from providers and the network is shown with textContent, never as HTML.

import * as api from './api.js';

const $ = (id) => document.getElementById(id);

const POLL_IDLE_MS = 2000;
const POLL_BUSY_MS = 500;

let linkView = null; // {status: 'starting'|'waiting'|'failed', provider, provider_name, seconds_left, timeout_secs, since, error}
let lastRendered = '';
let completing = false;
let pollTimer = null;
const connections = new Map(); // account id -> {kind, text}
let unlinkTarget = null;

// ---------------------------------------------------------------------------- formatting

function accountLabel(account) {
  if (account.name && account.email) return `${account.name} (${account.email})`;
  return account.name || account.email || account.id;
}

function formatTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  const time = date.toLocaleTimeString(undefined, { timeStyle: 'short' });
  const today = new Date();
  if (date.toDateString() === today.toDateString()) return `today ${time}`;
  return date.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The time alone when it is today, else date and time. */
function shortTime(iso) {
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  if (date.toDateString() === new Date().toDateString()) {
    return date.toLocaleTimeString(undefined, { timeStyle: 'short' });
  }
  return formatTime(iso);
}

function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  if (Number.isNaN(ms)) return '';
  const minutes = Math.round(Math.abs(ms) / 60000);
  const span = minutes < 1 ? 'less than a minute'
    : minutes < 90 ? `${minutes} min`
      : `${Math.round(minutes / 60)} h`;
  return ms >= 0 ? `in ${span}` : `${span} ago`;
}

function clock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

const HEADLINES = {
  redirect_rejected: 'A sign-in response was refused. Nothing was linked.',
  timeout: 'The sign-in timed out.',
  needs_relink: 'This account must be linked again.',
  keychain: 'The keychain is not available.',
  provider: 'The provider did not cooperate.',
  browser: 'Your browser could not be opened.',
  config: 'Keylink\'s settings have a problem.',
  not_found: 'Not found.',
  link_failed: 'Linking failed.',
  cancelled: 'The sign-in was cancelled.',
  internal: 'Something went wrong.',
};

const HELP = {
  keychain: 'Keylink keeps tokens only in your desktop keychain (GNOME Keyring, KWallet or KeePassXC with Secret Service). Unlock or start it, then try again.',
  config: 'Check the file named in the message, then restart Keylink.',
  provider: 'Check your network connection; if it keeps failing, the provider may be down.',
};

// ---------------------------------------------------------------------------- notices

function notify(kind, headline, message) {
  const box = document.createElement('div');
  box.className = `notice ${kind}`;
  box.setAttribute('role', kind === 'error' ? 'alert' : 'status');
  const text = document.createElement('div');
  const strong = document.createElement('strong');
  strong.textContent = headline;
  text.append(strong);
  if (message) {
    const p = document.createElement('p');
    p.textContent = message;
    text.append(p);
  }
  const close = document.createElement('button');
  close.type = 'button';
  close.className = 'dismiss';
  close.setAttribute('aria-label', 'Dismiss');
  close.textContent = '×';
  close.addEventListener('click', () => box.remove());
  box.append(text, close);
  $('notices').append(box);
  if (kind === 'success') setTimeout(() => box.remove(), 15000);
}

function notifyError(error) {
  notify('error', HEADLINES[error.code] || HEADLINES.internal, error.message);
}

function renderCompleting() {
  let line = $('completing');
  if (completing && !line) {
    line = document.createElement('div');
    line.id = 'completing';
    line.className = 'notice info';
    line.setAttribute('role', 'status');
    line.textContent = 'Finishing a sign-in…';
    $('notices').prepend(line);
  } else if (!completing && line) {
    line.remove();
  }
}

// ---------------------------------------------------------------------------- state

function apply(state) {
  $('loading').hidden = true;
  completing = state.completing;

  for (const notice of state.notices) {
    if (notice.kind === 'linked') {
      connections.delete(notice.account.id);
      notify('success', `${accountLabel(notice.account)} is linked.`, `Provider: ${notice.account.provider_name}.`);
    } else {
      notifyError(notice.error);
    }
  }

  const link = state.link;
  if (link.state === 'waiting') {
    const byCode = Boolean(linkView && linkView.byCode) || Boolean(link.device);
    linkView = { ...link, status: 'waiting', since: performance.now(), byCode };
  } else if (link.state === 'linked') {
    linkView = null;
    connections.delete(link.account.id); // an answer about the old sign-in is stale now
    notify('success', `${accountLabel(link.account)} is linked.`, `Provider: ${link.account.provider_name}. Apps and scripts can use it now.`);
    focusLater(() => document.querySelector(`.account[data-account="${CSS.escape(link.account.id)}"] .check`));
  } else if (link.state === 'failed') {
    if (link.error.code === 'cancelled') {
      // Declined on the provider's page: the person's choice, said plainly, not a failure.
      linkView = null;
      notify('info', link.error.message);
    } else {
      linkView = { ...link, status: 'failed' };
    }
  } else if (linkView && linkView.status === 'waiting') {
    linkView = null; // cancelled or finished elsewhere
  }

  renderFatal(state);
  renderHome(state);
  renderLinking();
  renderCompleting();
}

async function refresh() {
  clearTimeout(pollTimer);
  try {
    apply(await api.appState());
  } catch (error) {
    notifyError(error);
  }
  schedule();
}

function schedule() {
  clearTimeout(pollTimer);
  const busy = completing || (linkView && linkView.status !== 'failed');
  pollTimer = setTimeout(refresh, busy ? POLL_BUSY_MS : POLL_IDLE_MS);
}

function focusLater(find) {
  requestAnimationFrame(() => {
    const el = find();
    if (el) el.focus();
  });
}

// ---------------------------------------------------------------------------- rendering

function renderFatal(state) {
  const fatal = state.error && state.providers.length === 0 && state.error.code === 'config';
  $('fatal').hidden = !fatal;
  if (fatal) {
    $('fatal-message').textContent = state.error.message;
    $('fatal-help').textContent = HELP.config;
  }
  $('home').hidden = fatal || Boolean(linkView);
}

function renderHome(state) {
  const key = JSON.stringify([state.providers, state.accounts, state.error]);
  if (key === lastRendered) return;
  lastRendered = key;

  const accountsError = $('accounts-error');
  accountsError.hidden = !state.error;
  accountsError.textContent = state.error
    ? `${state.error.message} ${HELP[state.error.code] || ''}`.trim() : '';

  const list = $('accounts');
  list.replaceChildren(...state.accounts.map(renderAccount));
  $('accounts-empty').hidden = state.accounts.length > 0 || Boolean(state.error);

  const providers = $('providers');
  providers.replaceChildren(...state.providers.map(renderProvider));
  $('providers-empty').hidden = state.providers.length > 0;
}

function renderAccount(account) {
  const li = $('account-template').content.firstElementChild.cloneNode(true);
  li.dataset.account = account.id;
  li.querySelector('.avatar').textContent = (account.name || account.email || '?').slice(0, 1).toUpperCase();
  li.querySelector('.name').textContent = account.name || account.email || account.id;
  const email = li.querySelector('.email');
  email.textContent = account.email || '';
  email.hidden = !account.email || !account.name;
  li.querySelector('.meta').textContent = `${account.provider_name} · linked ${formatTime(account.linked_at)}`;
  const scopes = li.querySelector('.scopes');
  for (const scope of account.scopes) {
    const chip = document.createElement('li');
    chip.textContent = scope;
    scopes.append(chip);
  }
  const relink = account.status === 'needs_relink';
  const badge = li.querySelector('.badge');
  badge.textContent = relink ? 'Needs reconnecting' : 'Connected';
  badge.classList.add(relink ? 'warn' : 'ok');
  const reconnect = li.querySelector('.reconnect');
  reconnect.hidden = !relink;
  reconnect.addEventListener('click', () => beginLink(account.provider, { account: account.id }));
  const check = li.querySelector('.check');
  check.hidden = relink;
  check.addEventListener('click', () => checkConnection(account, li));
  li.querySelector('.unlink').addEventListener('click', () => confirmUnlink(account));
  const label = accountLabel(account);
  check.setAttribute('aria-label', `Check connection of ${label}`);
  li.querySelector('.unlink').setAttribute('aria-label', `Unlink ${label}`);
  reconnect.setAttribute('aria-label', `Reconnect ${label}`);
  showConnection(li, connections.get(account.id));
  return li;
}

function renderProvider(provider) {
  const li = $('provider-template').content.firstElementChild.cloneNode(true);
  li.dataset.provider = provider.id;
  li.querySelector('.provider-name').textContent = provider.name;
  const where = provider.host ? `Sign in at ${provider.host}` : '';
  li.querySelector('.provider-host').textContent = provider.from_policy
    ? `${where}${where ? ' · ' : ''}Set up by your administrator`
    : where;
  const button = li.querySelector('.link');
  button.dataset.provider = provider.id;
  button.setAttribute('aria-label', `Link an account at ${provider.name}`);
  button.addEventListener('click', () => beginLink(provider.id));
  const device = li.querySelector('.device');
  device.hidden = !provider.device;
  device.setAttribute('aria-label', `Link an account at ${provider.name} with a code entered on another device`);
  device.addEventListener('click', () => beginLink(provider.id, { device: true }));
  return li;
}

function renderLinking() {
  const panel = $('linking');
  panel.hidden = !linkView;
  $('home').hidden = Boolean(linkView) || !$('fatal').hidden;
  if (!linkView) return;
  const failed = linkView.status === 'failed';
  const timedOut = failed && linkView.error.code === 'timeout';
  $('linking-spinner').hidden = failed;
  $('linking-title').textContent = timedOut ? 'The sign-in timed out'
    : failed ? 'Linking did not work' : 'Continue in your browser';
  const code = !failed && linkView.device;
  $('linking-text').hidden = failed || Boolean(linkView.byCode);
  $('linking-provider').textContent = linkView.provider_name || linkView.provider;
  $('linking-device').hidden = !code;
  if (code) {
    // Shown as text only: the window never loads a provider's page.
    $('linking-device-uri').textContent = code.verification_uri;
    $('linking-device-code').textContent = code.user_code;
    const qr = $('linking-device-qr');
    const src = code.qr_svg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qr_svg)}` : '';
    if (qr.dataset.src !== src) {
      qr.dataset.src = src;
      qr.src = src;
      qr.alt = `QR code of ${code.verification_uri_complete || code.verification_uri}`;
    }
    qr.closest('figure').hidden = !src;
    $('linking-device-provider').textContent = linkView.provider_name || linkView.provider;
  }
  if (!failed && linkView.byCode) {
    $('linking-title').textContent = code ? 'Enter the code on another device' : 'Asking for a code…';
  }
  const error = $('linking-error');
  error.hidden = !failed;
  if (failed) {
    const help = HELP[linkView.error.code];
    error.textContent = help ? `${linkView.error.message} ${help}` : linkView.error.message;
  }
  $('linking-retry').hidden = !failed;
  $('linking-cancel').textContent = failed ? 'Back' : 'Cancel';
  renderCountdown();
}

function renderCountdown() {
  const line = $('linking-countdown');
  if (!linkView || linkView.status === 'failed') {
    line.textContent = '';
    return;
  }
  if (completing) {
    line.textContent = 'Signed in. Finishing the link…';
  } else if (linkView.status === 'starting') {
    line.textContent = linkView.byCode ? 'Asking the provider for a code…' : 'Opening your browser…';
  } else {
    const left = linkView.seconds_left - (performance.now() - linkView.since) / 1000;
    line.textContent = linkView.byCode
      ? `Waiting for you to enter the code. Keylink stops waiting in ${clock(left)}.`
      : `Waiting for you to sign in. Keylink stops waiting in ${clock(left)}; nothing is linked unless you finish in the browser.`;
  }
}

function showConnection(li, result) {
  const line = li.querySelector('.connection');
  line.hidden = !result;
  line.className = `connection ${result ? result.kind : ''}`;
  line.textContent = result ? result.text : '';
}

// ---------------------------------------------------------------------------- actions

async function beginLink(provider, { device = false, account = null } = {}) {
  const known = (document.querySelector(`.provider[data-provider="${CSS.escape(provider)}"] .provider-name`) || {}).textContent;
  linkView = { status: 'starting', provider, provider_name: known || provider, byCode: device };
  renderLinking();
  focusLater(() => $('linking-cancel'));
  try {
    const link = device ? await api.startDeviceLink(provider) : await api.startLink(provider, account);
    if (link.state === 'waiting') {
      linkView = { ...link, status: 'waiting', since: performance.now(), byCode: device };
    }
  } catch (error) {
    linkView = { status: 'failed', provider, provider_name: known || provider, error, byCode: device };
  }
  renderLinking();
  schedule();
}

async function cancelLinking() {
  const wasWaiting = linkView && linkView.status !== 'failed';
  linkView = null;
  renderLinking();
  if (wasWaiting) {
    try {
      await api.cancelLink();
    } catch (error) {
      notifyError(error);
    }
  }
  focusLater(() => document.querySelector('.link'));
  refresh();
}

async function checkConnection(account, li) {
  const button = li.querySelector('.check');
  button.disabled = true;
  button.textContent = 'Checking…';
  try {
    const c = await api.checkConnection(account.id);
    const who = c.name && c.email ? `${c.name} (${c.email})` : (c.name || c.email || c.subject);
    const expiry = c.expires_at
      ? `The access token is valid until ${shortTime(c.expires_at)} (${relative(c.expires_at)}).`
      : 'The access token does not expire.';
    connections.set(account.id, {
      kind: 'ok',
      text: `Connected: ${c.answered_by} answered as ${who} at ${shortTime(c.checked_at)}. ${expiry}`,
    });
  } catch (error) {
    connections.set(account.id, { kind: 'error', text: error.message });
    if (error.code === 'needs_relink' || error.code === 'not_found') lastRendered = '';
  }
  button.disabled = false;
  button.textContent = 'Check connection';
  const current = document.querySelector(`.account[data-account="${CSS.escape(account.id)}"]`) || li;
  showConnection(current, connections.get(account.id));
  refresh();
}

function confirmUnlink(account) {
  unlinkTarget = account;
  $('unlink-title').textContent = `Unlink ${accountLabel(account)}?`;
  $('unlink-dialog').returnValue = '';
  $('unlink-dialog').showModal();
  $('unlink-cancel').focus();
}

async function unlinkConfirmed() {
  const account = unlinkTarget;
  unlinkTarget = null;
  if (!account) return;
  try {
    const report = await api.unlink(account.id);
    connections.delete(account.id);
    notify('success', `${accountLabel(account)} was unlinked.`,
      report.warning || (report.revoked ? 'The provider revoked Keylink\'s access.' : 'The tokens were removed from this computer.'));
  } catch (error) {
    notifyError(error);
  }
  lastRendered = '';
  await refresh();
  focusLater(() => document.querySelector('.account .check') || document.querySelector('.link'));
}

// ---------------------------------------------------------------------------- start

$('linking-cancel').addEventListener('click', cancelLinking);

/** Copies the device code, with the system clipboard where the webview offers it. */
async function copyDeviceCode() {
  const button = $('linking-device-copy');
  const code = $('linking-device-code').textContent;
  let copied = false;
  try {
    await navigator.clipboard.writeText(code);
    copied = true;
  } catch {
    // Older WebKitGTK: copy through a selection.
    const field = document.createElement('textarea');
    field.value = code;
    field.setAttribute('readonly', '');
    field.className = 'offscreen';
    document.body.append(field);
    field.select();
    copied = document.execCommand('copy');
    field.remove();
  }
  button.textContent = copied ? 'Copied' : 'Select the code to copy it';
  setTimeout(() => { button.textContent = 'Copy code'; }, 3000);
}
$('linking-device-copy').addEventListener('click', copyDeviceCode);
$('linking-retry').addEventListener('click', () => linkView && beginLink(linkView.provider));
$('unlink-dialog').addEventListener('close', () => {
  if ($('unlink-dialog').returnValue === 'unlink') {
    unlinkConfirmed();
  } else {
    unlinkTarget = null;
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && linkView && !$('unlink-dialog').open) cancelLinking();
});
window.addEventListener('focus', refresh);
setInterval(renderCountdown, 1000);
refresh();
