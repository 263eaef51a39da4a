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
// Other environment:
//   KEYLINK_UA_LOGIN  login name sent as x-test-login (default "alice")
//   KEYLINK_UA_LOG    file to append one line per hop to (method, status, path)
//
// URLs carry authorization codes, so only paths (never queries) are printed
// or logged.

import { spawn } from 'node:child_process';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';

const MAX_HOPS = 30;
const BODY_EXCERPT = 500;

function fail(code, message) {
  process.stderr.write(`user-agent: ${message}\n`);
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

async function request(url, headers) {
  try {
    return await fetch(url, { method: 'GET', headers, redirect: 'manual' });
  } catch (err) {
    // fetch() wraps the useful reason (refused, TLS error...) in err.cause.
    const reason = err.cause?.message ?? err.message;
    return fail(1, `GET ${url.origin}${url.pathname} failed: ${reason}`);
  }
}

// Drives the provider until it redirects to the app; returns that URL.
async function followProvider(start) {
  const jar = new CookieJar();
  const login = process.env.KEYLINK_UA_LOGIN || 'alice';
  let url = start;

  for (let hop = 0; hop < MAX_HOPS; hop += 1) {
    const headers = { 'x-test-login': login, accept: 'text/html,application/json;q=0.9' };
    const cookie = jar.header(url);
    if (cookie) headers.cookie = cookie;

    const response = await request(url, headers);
    jar.store(url, response.headers.getSetCookie());
    logHop('GET', response.status, url);

    const location = response.headers.get('location');
    if (response.status < 300 || response.status >= 400 || !location) {
      const body = await response.text();
      return fail(1, `provider answered ${response.status} at ${url.pathname}:\n${body.slice(0, BODY_EXCERPT)}`);
    }
    await response.body?.cancel();

    const next = new URL(location, url);
    if (!isHttp(next) || next.origin !== start.origin) {
      return next;
    }
    url = next;
  }

  return fail(1, `no redirect to the application after ${MAX_HOPS} hops`);
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

async function main() {
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
