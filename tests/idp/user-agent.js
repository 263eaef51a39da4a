#!/usr/bin/env node
// Scripted "browser" for Keylink's integration tests, used as $BROWSER.
//
//   user-agent.js <authorization-url>
//
// Follows the provider's redirects (keeping cookies) until the provider
// redirects to the application, i.e. to a non-http(s) URL such as
// dev.keylink:/callback?... or to an http(s) URL on another origin (the
// app's loopback listener). That URL is then delivered:
//   - KEYLINK_UA_CAPTURE=FILE: written atomically to FILE, not delivered;
//   - http(s) URL: fetched once; exit 0 on a 2xx answer, else 1;
//   - other schemes: handed to the command in KEYLINK_UA_HANDLER (split on
//     whitespace, the URL appended as the last argument); its exit code is
//     ours. Without KEYLINK_UA_HANDLER we exit 2.
// Error redirects (?error=...) are delivered like any other.
//
// A sign-out (the provider's end_session_endpoint, RP-Initiated Logout) goes
// the same way: the provider's confirmation page (data-logout-page="confirm")
// is confirmed by posting its form with logout=yes, and the provider's
// redirect to the app (its post_logout_redirect_uri) is delivered as above.
// Without one, the provider's success page (data-logout-page="success") ends
// it with exit 0.
//
// Device mode (RFC 8628), with KEYLINK_UA_DEVICE=confirm or abort:
//
//   user-agent.js <verification-uri-complete>
//   user-agent.js <verification-uri> <user-code>
//
// plays the person on their other device: opens the verification page,
// enters the user code when it is given separately, signs in (the provider's
// automated login, as above) and confirms, or aborts, on the provider's
// confirmation page. Exit 0 once the provider's page shows that outcome, else
// 1 naming the page it got instead.
//
// Other environment:
//   KEYLINK_UA_LOGIN  login name sent as x-test-login (default "alice")
//   KEYLINK_UA_REFUSE_SCOPES  scopes (space-separated) to decline at the consent,
//                     sent as x-test-refuse-scopes
//   KEYLINK_UA_LOG    file to append one line per hop to (method, status, path)
//   KEYLINK_UA_COOKIES  file the cookie jar is read from and kept in, so the
//                     provider's session outlives one run as it does in a
//                     person's browser (without it every run starts with no
//                     cookies)
//
// URLs carry authorization codes and user codes, so only paths (never
// queries or form bodies) are printed or logged.
//
// Keylink starts its browser without any KEYLINK_* variable (SECURITY 51), and
// with its output going nowhere. This program stands in for the person's
// desktop, whose own configuration is, in a test, the test's: the KEYLINK_*
// settings it lacks (its own KEYLINK_UA_*, and KEYLINK_CONFIG and the like for
// the handler it runs) it takes from the process that started it, on Linux
// from /proc/<parent>/environ. A failure is also written to KEYLINK_UA_LOG.

import { spawn } from 'node:child_process';
import { appendFileSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

function takeKeylinkSettingsFromParent() {
  let environ;
  try {
    environ = readFileSync(`/proc/${process.ppid}/environ`, 'utf8');
  } catch {
    return;
  }
  for (const entry of environ.split('\0')) {
    const eq = entry.indexOf('=');
    const name = entry.slice(0, eq);
    if (eq > 0 && name.startsWith('KEYLINK_') && process.env[name] === undefined) {
      process.env[name] = entry.slice(eq + 1);
    }
  }
}

takeKeylinkSettingsFromParent();

const MAX_HOPS = 30;
const BODY_EXCERPT = 500;

function fail(code, message) {
  process.stderr.write(`user-agent: ${message}\n`);
  if (process.env.KEYLINK_UA_LOG) {
    appendFileSync(process.env.KEYLINK_UA_LOG, `failed: ${message}\n`);
  }
  process.exit(code);
}

function logHop(method, status, url) {
  const file = process.env.KEYLINK_UA_LOG;
  if (file) {
    appendFileSync(file, `${method} ${status} ${url.protocol}//${url.host}${url.pathname}\n`);
  }
}

// ---------------------------------------------------------------------------
// Minimal cookie jar: cookies are keyed by host:port (as browsers ignore the
// scheme and, for our purpose, treat ports as distinct) and by name and path.
// Domain, Secure, HttpOnly and SameSite are ignored; Path is honoured because
// oidc-provider scopes its interaction cookies to per-interaction paths.

class CookieJar {
  #hosts = new Map(); // host -> Map("name\tpath" -> {name, value, path})
  #file;

  // With a file, the cookies saved there; every change is written back.
  constructor(file) {
    this.#file = file;
    if (!file) return;
    let saved;
    try {
      saved = JSON.parse(readFileSync(file, 'utf8'));
    } catch (err) {
      if (err.code === 'ENOENT') return;
      fail(1, `cannot read the cookie jar KEYLINK_UA_COOKIES: ${err.message}`);
    }
    for (const [host, cookies] of Object.entries(saved)) {
      this.#hosts.set(host, new Map(cookies.map((c) => [`${c.name}\t${c.path}`, c])));
    }
  }

  #save() {
    if (!this.#file) return;
    const saved = {};
    for (const [host, cookies] of this.#hosts) saved[host] = [...cookies.values()];
    const temporary = join(dirname(this.#file), `.${basename(this.#file)}.${process.pid}.tmp`);
    writeFileSync(temporary, JSON.stringify(saved), { mode: 0o600 });
    renameSync(temporary, this.#file);
  }

  store(url, setCookieHeaders) {
    let cookies = this.#hosts.get(url.host);
    if (!cookies) {
      cookies = new Map();
      this.#hosts.set(url.host, cookies);
    }

    for (const header of setCookieHeaders) {
      const [pair, ...attributes] = header.split(';');
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq).trim();
      const value = pair.slice(eq + 1).trim();

      let path = defaultPath(url.pathname);
      let expired = false;
      for (const attribute of attributes) {
        const [rawKey, ...rest] = attribute.split('=');
        const key = rawKey.trim().toLowerCase();
        const attrValue = rest.join('=').trim();
        if (key === 'path' && attrValue.startsWith('/')) {
          path = attrValue;
        } else if (key === 'max-age') {
          expired = Number(attrValue) <= 0;
        } else if (key === 'expires') {
          expired = Date.parse(attrValue) <= Date.now();
        }
      }

      const id = `${name}\t${path}`;
      if (expired) {
        cookies.delete(id);
      } else {
        cookies.set(id, { name, value, path });
      }
    }
    this.#save();
  }

  header(url) {
    const cookies = this.#hosts.get(url.host);
    if (!cookies) return undefined;
    const matching = [...cookies.values()]
      .filter((cookie) => pathMatches(url.pathname, cookie.path))
      // Most specific path first, as browsers do.
      .sort((a, b) => b.path.length - a.path.length)
      .map(({ name, value }) => `${name}=${value}`);
    return matching.length ? matching.join('; ') : undefined;
  }
}

// RFC 6265 section 5.1.4.
function defaultPath(requestPath) {
  const slash = requestPath.lastIndexOf('/');
  return slash <= 0 ? '/' : requestPath.slice(0, slash);
}

function pathMatches(requestPath, cookiePath) {
  return requestPath === cookiePath
    || (requestPath.startsWith(cookiePath)
      && (cookiePath.endsWith('/') || requestPath[cookiePath.length] === '/'));
}

// ---------------------------------------------------------------------------

function isHttp(url) {
  return url.protocol === 'http:' || url.protocol === 'https:';
}

async function request(url, headers, { method = 'GET', form } = {}) {
  const init = { method, headers, redirect: 'manual' };
  if (form) {
    init.headers = { ...headers, 'content-type': 'application/x-www-form-urlencoded' };
    init.body = new URLSearchParams(form).toString();
  }
  try {
    return await fetch(url, init);
  } catch (err) {
    // fetch() wraps the useful reason (refused, TLS error...) in err.cause.
    const reason = err.cause?.message ?? err.message;
    return fail(1, `${method} ${url.origin}${url.pathname} failed: ${reason}`);
  }
}

// Drives the provider until it redirects to the app; returns that URL. A
// sign-out confirmation page is confirmed on the way; the provider's own
// "signed out" page, when it has no redirect to the app, ends the run (exit 0).
async function followProvider(start) {
  const jar = new CookieJar(process.env.KEYLINK_UA_COOKIES);
  const login = process.env.KEYLINK_UA_LOGIN || 'alice';
  const refuse = process.env.KEYLINK_UA_REFUSE_SCOPES || '';
  let url = start;
  let method = 'GET';
  let form;

  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const headers = { 'x-test-login': login, accept: 'text/html,application/json;q=0.9' };
    if (refuse) headers['x-test-refuse-scopes'] = refuse;
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;

    const response = await request(url, headers, { method, form });
    jar.store(url, response.headers.getSetCookie());
    logHop(method, response.status, url);

    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      const body = await response.text();
      const next = response.status === 200 ? signOutStep(body) : undefined;
      if (next === 'signed-out') {
        process.exit(0);
      }
      if (!next) {
        return fail(1, `provider answered ${response.status} at ${url.pathname}:\n${body.slice(0, BODY_EXCERPT)}`);
      }
      url = new URL(next.action, url);
      method = 'POST';
      form = next.fields;
      continue;
    }
    await response.body?.cancel();

    const next = new URL(location, url);
    if (!isHttp(next) || next.origin !== start.origin) {
      return next;
    }
    url = next;
    method = 'GET';
    form = undefined;
  }

  return fail(1, `no redirect to the application after ${MAX_HOPS} hops`);
}

// What to do with a page of the provider's sign-out: the confirmation form to
// post (with logout=yes), oidc-provider's self-submitting form to its
// confirmation endpoint (shown when there is no session to confirm), or
// 'signed-out' on its success page. Undefined for any other page.
function signOutStep(html) {
  const page = pageMarker(html, 'data-logout-page');
  if (page === 'success') {
    return 'signed-out';
  }
  const form = page === 'confirm' ? findForm(html, 'op.logoutForm') : findForm(html);
  if (!form || form.method !== 'POST' || !form.action) {
    return undefined;
  }
  if (page === 'confirm') {
    form.fields.logout = 'yes';
    return form;
  }
  return form.action.endsWith('/session/end/confirm') ? form : undefined;
}

function capture(file, url) {
  // Write then rename, so a reader polling FILE never sees a partial URL.
  const temporary = join(dirname(file), `.${basename(file)}.${process.pid}.tmp`);
  writeFileSync(temporary, `${url.href}\n`, { mode: 0o600 });
  renameSync(temporary, file);
  process.exit(0);
}

async function deliverHttp(url) {
  const response = await request(url, {});
  await response.body?.cancel();
  logHop('GET', response.status, url);
  if (response.status < 200 || response.status >= 300) {
    fail(1, `application answered ${response.status} at ${url.pathname}`);
  }
  process.exit(0);
}

function deliverToHandler(url) {
  const words = (process.env.KEYLINK_UA_HANDLER ?? '').trim().split(/\s+/).filter(Boolean);
  if (words.length === 0) {
    fail(2, `KEYLINK_UA_HANDLER is not set; cannot deliver a ${url.protocol} URL`);
  }
  const [command, ...args] = words;
  const child = spawn(command, [...args, url.href], { stdio: 'inherit' });
  child.on('error', (err) => fail(1, `cannot run ${command}: ${err.message}`));
  child.on('exit', (code, signal) => {
    if (signal) fail(1, `${command} killed by ${signal}`);
    process.exit(code);
  });
}

// ---------------------------------------------------------------------------
// Device mode: just enough HTML form handling for oidc-provider's device pages
// (its self-submitting form, and the input and confirmation pages server.js
// renders with data-device-page markers).

function decodeEntities(text) {
  const named = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };
  return text.replace(/&(#x[0-9a-f]+|#[0-9]+|[a-z]+);/gi, (whole, entity) => {
    if (entity[0] === '#') {
      const code = entity[1].toLowerCase() === 'x'
        ? Number.parseInt(entity.slice(2), 16)
        : Number.parseInt(entity.slice(1), 10);
      return String.fromCodePoint(code);
    }
    return named[entity.toLowerCase()] ?? whole;
  });
}

function attributes(tag) {
  const found = {};
  for (const [, name, value] of tag.matchAll(/([a-z_:][-a-z0-9_:.]*)\s*=\s*"([^"]*)"/gi)) {
    found[name.toLowerCase()] = decodeEntities(value);
  }
  return found;
}

// The form with this id (or the first form when id is undefined): its action
// and hidden fields.
function findForm(html, id) {
  for (const [, tag, inner] of html.matchAll(/<form\b([^>]*)>([\s\S]*?)<\/form>/gi)) {
    const form = attributes(tag);
    if (id !== undefined && form.id !== id) continue;
    const fields = {};
    for (const [input] of inner.matchAll(/<input\b[^>]*>/gi)) {
      const { type, name, value } = attributes(input);
      if (type?.toLowerCase() === 'hidden' && name) fields[name] = value ?? '';
    }
    return { action: form.action, method: (form.method ?? 'get').toUpperCase(), fields };
  }
  return undefined;
}

function pageMarker(html, name) {
  const match = new RegExp(`<body\\b[^>]*\\b${name}="([^"]*)"`, 'i').exec(html);
  return match?.[1];
}

async function playDevicePerson(start, givenUserCode, decision) {
  const jar = new CookieJar();
  const login = process.env.KEYLINK_UA_LOGIN || 'alice';
  const refuse = process.env.KEYLINK_UA_REFUSE_SCOPES || '';
  let userCode = givenUserCode;
  let url = start;
  let method = 'GET';
  let form;

  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const headers = { 'x-test-login': login, accept: 'text/html,application/json;q=0.9' };
    if (refuse) headers['x-test-refuse-scopes'] = refuse;
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;

    const response = await request(url, headers, { method, form });
    jar.store(url, response.headers.getSetCookie());
    logHop(method, response.status, url);

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      await response.body?.cancel();
      url = new URL(location, url);
      method = 'GET';
      form = undefined;
      if (url.origin !== start.origin) {
        return fail(1, `redirected away from the provider, to ${url.protocol}//${url.host}${url.pathname}`);
      }
      continue;
    }

    const html = await response.text();
    const page = pageMarker(html, 'data-device-page');
    const error = pageMarker(html, 'data-device-error');
    let next;
    if (page === 'success' && decision === 'confirm') {
      process.exit(0);
    } else if (page === 'input' && error === 'aborted' && decision === 'abort') {
      process.exit(0);
    } else if (page === 'input' && !error && userCode) {
      next = findForm(html, 'op.deviceInputForm');
      if (next) next.fields.user_code = userCode;
      // Entered once: asked again means the provider did not take it.
      userCode = undefined;
    } else if (page === 'confirm') {
      next = findForm(html, 'op.deviceConfirmForm');
      if (next && decision === 'abort') next.fields.abort = 'yes';
    } else if (page === undefined) {
      // oidc-provider's self-submitting form (verification_uri_complete).
      next = findForm(html);
    }
    if (!next || next.method !== 'POST' || !next.action) {
      const where = page ? `the ${page} page${error ? ` (${error})` : ''}` : `an answer ${response.status}`;
      // The page's text only: its markup holds the form's xsrf value.
      const text = html.replace(/<[^>]*>/g, ' ').replace(/\s+/g, ' ').trim();
      return fail(1, `wanted to ${decision} but got ${where} at ${url.pathname}: ${text.slice(0, BODY_EXCERPT)}`);
    }
    url = new URL(next.action, url);
    method = 'POST';
    form = next.fields;
  }

  return fail(1, `no outcome after ${MAX_HOPS} requests`);
}

async function main() {
  const decision = process.env.KEYLINK_UA_DEVICE;
  if (decision) {
    if (decision !== 'confirm' && decision !== 'abort') {
      fail(2, 'KEYLINK_UA_DEVICE must be confirm or abort');
    }
    if (process.argv.length !== 3 && process.argv.length !== 4) {
      fail(2, 'usage: KEYLINK_UA_DEVICE=confirm|abort user-agent.js <verification-uri> [<user-code>]');
    }
    const start = URL.parse(process.argv[2]);
    if (!start || !isHttp(start)) {
      fail(2, 'the verification URI must be an http(s) URL');
    }
    await playDevicePerson(start, process.argv[3], decision);
    return;
  }

  if (process.argv.length !== 3) {
    fail(2, 'usage: user-agent.js <authorization-url>');
  }
  const start = URL.parse(process.argv[2]);
  if (!start || !isHttp(start)) {
    fail(2, 'the argument must be an http(s) URL');
  }

  const target = await followProvider(start);

  if (process.env.KEYLINK_UA_CAPTURE) {
    capture(process.env.KEYLINK_UA_CAPTURE, target);
  } else if (isHttp(target)) {
    await deliverHttp(target);
  } else {
    deliverToHandler(target);
  }
}

await main();
