// Keylink's UI over the Keylink plugin (window.__TAURI__.keylink): a link reports its steps as
// they happen; what a redirect nobody here waited for did (a cold start) arrives through
// onAccountsChanged; providers and accounts are read again every 2 s, since the keylink CLI and
// other apps change them too. Everything from providers and the network is shown with
// textContent, never as HTML.

import * as api from './api.js';

const $ = (id) => document.getElementById(id);

const POLL_MS = 2000;
const MAX_NOTICES = 3;

// {status: 'starting'|'waiting'|'failed', provider, providerName, byCode, account (Reconnect),
//  secondsLeft, since, device, exchanging, error, controller, done}
let linkView = null;
let state = { providers: [], accounts: [], error: null };
let lastRendered = '';
let pollTimer = null;
const connections = new Map(); // account id -> {kind, text}
let unlinkTarget = null;

// ---------------------------------------------------------------------------- formatting

function accountLabel(account) {
  if (account.name && account.email) return `${account.name} (${account.email})`;
  return account.name || account.email || account.id;
}

// The standard OpenID Connect scopes, in words; any other scope is shown as the provider
// spells it, since only the provider knows what it means.
const SCOPE_WORDS = {
  openid: 'Sign-in',
  profile: 'Name and profile',
  email: 'Email address',
  address: 'Postal address',
  phone: 'Phone number',
  offline_access: 'Stays connected',
};

function scopeWords(scope) {
  return SCOPE_WORDS[scope] || scope;
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
  busy: 'Another link is in progress.',
  wrong_account: 'You signed in as someone else.',
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
  const notices = $('notices');
  notices.append(box);
  // A few at most, so they never pile up over the page: the oldest goes first.
  while (notices.children.length > MAX_NOTICES) notices.firstElementChild.remove();
  if (kind === 'success') setTimeout(() => box.remove(), 15000);
  return box;
}

function notifyError(error) {
  notify('error', HEADLINES[error.code] || HEADLINES.internal, error.message);
}

function providerName(id) {
  const provider = state.providers.find((p) => p.id === id);
  return provider ? provider.name : id;
}

function notifyLinked(account, extra) {
  connections.delete(account.id); // an answer about an old sign-in is stale now
  lastRendered = '';
  notify('success', `${accountLabel(account)} is linked.`, `Provider: ${providerName(account.provider)}.${extra}`);
}

/** After "Allow more": what the provider granted of what was asked, in words. */
function notifyMore(account, asked) {
  connections.delete(account.id);
  lastRendered = '';
  const granted = asked.filter((s) => account.scopes.includes(s));
  const refused = asked.filter((s) => !account.scopes.includes(s));
  const words = (list) => list.map(scopeWords).join(', ');
  if (granted.length === 0) {
    notify('info', `${providerName(account.provider)} granted none of the permissions asked for.`,
      `${accountLabel(account)} keeps the permissions it had.`);
    return;
  }
  notify('success', `${accountLabel(account)} now allows ${words(granted)}.`,
    refused.length ? `${providerName(account.provider)} did not grant ${words(refused)}.` : '');
}

// ---------------------------------------------------------------------------- state

/** What a redirect nobody here waited for did, and the accounts after any change. */
function accountsChanged(change) {
  if (change.linked) notifyLinked(change.linked, '');
  if (change.error) {
    if (change.error.code === 'cancelled') notify('info', change.error.message);
    else notifyError(change.error);
  }
  if (change.signedOut) {
    // The "continue in your browser" notice of this provider has had its answer.
    for (const waiting of document.querySelectorAll(`.notice[data-signing-out="${CSS.escape(change.signedOut.provider)}"]`)) {
      waiting.remove();
    }
    notify('success', `You are signed out of ${change.signedOut.name}.`,
      'The provider ended your session in the browser; signing in there again asks for your password.');
  }
  // Read again rather than take the list: a change kept since a cold start may be older than
  // what the page has already read.
  refresh();
}

function render() {
  $('loading').hidden = true;
  renderFatal();
  renderHome();
  renderLinking();
}

async function refresh() {
  clearTimeout(pollTimer);
  let providers = [];
  let accounts = [];
  let error = null;
  try {
    providers = await api.providers();
  } catch (e) {
    error = e;
  }
  if (!error) {
    try {
      accounts = await api.accounts();
    } catch (e) {
      error = e;
    }
  }
  state = { providers, accounts, error };
  render();
  pollTimer = setTimeout(refresh, POLL_MS);
}

function focusLater(find) {
  requestAnimationFrame(() => {
    const el = find();
    if (el) el.focus();
  });
}

// ---------------------------------------------------------------------------- rendering

function renderFatal() {
  const fatal = state.error && state.providers.length === 0 && state.error.code === 'config';
  $('fatal').hidden = !fatal;
  if (fatal) {
    $('fatal-message').textContent = state.error.message;
    $('fatal-help').textContent = HELP.config;
  }
  $('home').hidden = fatal || Boolean(linkView);
}

function renderHome() {
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
  li.querySelector('.meta').textContent = `${providerName(account.provider)} · linked ${formatTime(account.linkedAt)}`;
  const scopes = li.querySelector('.scopes');
  for (const scope of account.scopes) {
    const chip = document.createElement('li');
    chip.textContent = scopeWords(scope);
    chip.dataset.scope = scope;
    chip.title = scope;
    scopes.append(chip);
  }
  const relink = account.status === 'needs_relink';
  // What the configuration says an app may ask for later, and this account does not have.
  const provider = state.providers.find((p) => p.id === account.provider);
  const missing = ((provider && provider.optionalScopes) || []).filter((s) => !account.scopes.includes(s));
  const more = li.querySelector('.more');
  more.hidden = relink || missing.length === 0;
  more.dataset.scopes = missing.join(' ');
  more.title = `Ask ${providerName(account.provider)} for: ${missing.map(scopeWords).join(', ')}`;
  more.addEventListener('click', () => beginLink(account.provider, { account: account.id, scopes: missing }));
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
  more.setAttribute('aria-label', `Allow more for ${label}: ${missing.map(scopeWords).join(', ')}`);
  showConnection(li, connections.get(account.id));
  return li;
}

function renderProvider(provider) {
  const li = $('provider-template').content.firstElementChild.cloneNode(true);
  li.dataset.provider = provider.id;
  li.querySelector('.provider-name').textContent = provider.name;
  const where = provider.host ? `Sign in at ${provider.host}` : '';
  li.querySelector('.provider-host').textContent = provider.fromPolicy
    ? `${where}${where ? ' · ' : ''}Set up by your administrator`
    : where;
  const button = li.querySelector('.link');
  button.dataset.provider = provider.id;
  button.setAttribute('aria-label', `Link an account at ${provider.name}`);
  button.addEventListener('click', () => beginLink(provider.id));
  const device = li.querySelector('.device');
  device.hidden = !provider.deviceSignIn;
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
  $('linking-provider').textContent = linkView.providerName;
  $('linking-device').hidden = !code;
  if (code) {
    // Shown as text only: the window never loads a provider's page.
    $('linking-device-uri').textContent = code.verificationUri;
    $('linking-device-code').textContent = code.userCode;
    const qr = $('linking-device-qr');
    const src = code.qrSvg ? `data:image/svg+xml;charset=utf-8,${encodeURIComponent(code.qrSvg)}` : '';
    if (qr.dataset.src !== src) {
      qr.dataset.src = src;
      qr.src = src;
      qr.alt = `QR code of ${code.verificationUriComplete || code.verificationUri}`;
    }
    qr.closest('figure').hidden = !src;
    $('linking-device-provider').textContent = linkView.providerName;
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
  if (linkView.exchanging) {
    line.textContent = 'Signed in. Finishing the link…';
  } else if (linkView.status === 'starting') {
    line.textContent = linkView.byCode ? 'Asking the provider for a code…' : 'Opening your browser…';
  } else {
    const left = linkView.secondsLeft - (performance.now() - linkView.since) / 1000;
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

/** Ends the link on screen, if any, and waits until the plugin has let go of it. */
async function stopLinking() {
  const current = linkView;
  linkView = null;
  renderLinking();
  if (current && current.controller) {
    current.controller.abort();
    await current.done;
  }
}

async function beginLink(provider, { device = false, account = null, scopes = null } = {}) {
  await stopLinking();
  const controller = new AbortController();
  const view = { status: 'starting', provider, providerName: providerName(provider), byCode: device, account, scopes, controller };
  linkView = view;
  renderLinking();
  focusLater(() => $('linking-cancel'));
  const onProgress = (step) => {
    if (linkView !== view || view.status === 'failed') return;
    if (step.kind === 'codeShown') view.device = step;
    if (step.kind === 'waiting') Object.assign(view, { status: 'waiting', secondsLeft: step.secondsLeft, since: performance.now() });
    if (step.kind === 'exchanging') view.exchanging = true;
    renderLinking();
  };
  view.done = api.link(provider, { device, account, scopes, onProgress, signal: controller.signal }).then(
    (linked) => {
      // Said even when the person cancelled a moment too late: the account is linked.
      if (scopes) notifyMore(linked, scopes);
      else notifyLinked(linked, ' Apps and scripts can use it now.');
      if (linkView !== view) return;
      linkView = null;
      focusLater(() => document.querySelector(`.account[data-account="${CSS.escape(linked.id)}"] .check`));
    },
    (error) => {
      if (linkView !== view) return; // cancelled here, or replaced by another link
      if (error.code === 'cancelled') {
        // Declined on the provider's page: the person's choice, said plainly, not a failure.
        linkView = null;
        notify('info', error.message);
      } else {
        Object.assign(view, { status: 'failed', error, controller: null });
      }
    },
  ).then(refresh);
  await view.done;
}

async function cancelLinking() {
  focusLater(() => document.querySelector('.link'));
  await stopLinking();
}

async function checkConnection(account, li) {
  const button = li.querySelector('.check');
  button.disabled = true;
  button.textContent = 'Checking…';
  try {
    const c = await api.checkConnection(account.id);
    const who = c.name && c.email ? `${c.name} (${c.email})` : (c.name || c.email || c.subject);
    const expiry = c.expiresAt
      ? `The access token is valid until ${shortTime(c.expiresAt)} (${relative(c.expiresAt)}).`
      : 'The access token does not expire.';
    connections.set(account.id, {
      kind: 'ok',
      text: `Connected: ${c.answeredBy} answered as ${who} at ${shortTime(c.checkedAt)}. ${expiry}`,
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

async function unlinkConfirmed({ signOut = false } = {}) {
  const account = unlinkTarget;
  unlinkTarget = null;
  if (!account) return;
  try {
    const report = await api.unlink(account.id, { signOut });
    connections.delete(account.id);
    notify('success', `${accountLabel(account)} was unlinked.`,
      report.warning || (report.revoked ? 'The provider revoked Keylink\'s access.' : 'The tokens were removed from this computer.'));
    // Whether the browser opened the provider's sign-out page, or why not: the person
    // must know when they are still signed in there.
    if (report.signOutMessage) {
      const box = notify(report.signOut === 'failed' ? 'error' : 'info',
        report.signOut === 'opened' ? 'Continue in your browser to sign out.' : 'You are still signed in at the provider.',
        report.signOutMessage);
      if (report.signOut === 'opened') box.dataset.signingOut = account.provider;
    }
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
$('linking-retry').addEventListener('click', () => linkView && beginLink(linkView.provider, { device: linkView.byCode, account: linkView.account }));
$('unlink-dialog').addEventListener('close', () => {
  if ($('unlink-dialog').returnValue === 'unlink') {
    unlinkConfirmed();
  } else if ($('unlink-dialog').returnValue === 'signout') {
    unlinkConfirmed({ signOut: true });
  } else {
    unlinkTarget = null;
  }
});
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape' && linkView && !$('unlink-dialog').open) cancelLinking();
});
window.addEventListener('focus', refresh);
setInterval(renderCountdown, 1000);
// Listening only once the providers are known, so a cold start's notice names its provider
// (what happened before anyone listened is kept for the first listener).
refresh().then(() => api.onAccountsChanged(accountsChanged)).catch(notifyError);
