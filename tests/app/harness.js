// Test harness for the app: the real test provider over TLS (CA made per run), tauri-driver
// with a per-scenario environment, the app's D-Bus single-instance name, the `keylink` CLI and
// the keychain. Every process started here is stopped by its PID.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { Session, waitFor } from './webdriver.js';

const execFileAsync = promisify(execFile);

/** Runs a program to its end; a failure says how it ended (exit code or signal) and its stderr. */
export async function run(file, args, options) {
  try {
    return await execFileAsync(file, args, options);
  } catch (error) {
    const how = error.signal ? `killed by ${error.signal}` : `exit code ${error.code}`;
    error.message = `${file} ${args.join(' ')} failed (${how}); stderr: ${error.stderr || '(empty)'}`;
    throw error;
  }
}

export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const TARGET = process.env.CARGO_TARGET_DIR ? resolve(process.env.CARGO_TARGET_DIR) : join(REPO, 'target');
export const APP_BIN = process.env.KEYLINK_APP_BIN || join(TARGET, 'debug/keylink-app');
export const CLI_BIN = process.env.KEYLINK_CLI_BIN || join(TARGET, 'debug/keylink');
export const SCREENSHOTS = join(TARGET, 'app-screenshots');
/** Where diagnostic reports of a test provider that got stuck starting are kept. */
const IDP_REPORTS = join(TARGET, 'idp-reports');
export const SINGLE_INSTANCE_NAME = 'dev.keylink.app.SingleInstance';
/** The example app embedding the plugin (examples/tauri-host). */
export const HOST_BIN = process.env.KEYLINK_HOST_BIN || join(TARGET, 'debug/keylink-example-host');
export const HOST_SINGLE_INSTANCE_NAME = 'com.example.notes.SingleInstance';

const started = new Set();

/** Starts a process and remembers it, so `stopAll` can stop it by PID. */
function start(command, args, options) {
  const child = spawn(command, args, options);
  started.add(child);
  child.once('exit', () => started.delete(child));
  return child;
}

async function stop(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  process.kill(child.pid, 'SIGTERM');
  const timer = setTimeout(() => {
    if (child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
  }, 5000);
  await exited;
  clearTimeout(timer);
}

/**
 * The environment of a person with the home directory `home` (created here) in this test
 * session: its display, its session bus and keyring, a runtime directory of its own (where the
 * app's token agent listens, never the real user's), and nothing else of ours.
 */
export function userEnv(home, path = process.env.PATH) {
  mkdirSync(join(home, '.config'), { recursive: true });
  mkdirSync(join(home, '.local/share'), { recursive: true });
  const runtime = join(home, 'run');
  mkdirSync(runtime, { recursive: true });
  chmodSync(runtime, 0o700); // what the session manager gives; the agent refuses anything laxer
  return {
    PATH: path,
    DISPLAY: process.env.DISPLAY || '',
    XAUTHORITY: process.env.XAUTHORITY || '',
    DBUS_SESSION_BUS_ADDRESS: process.env.DBUS_SESSION_BUS_ADDRESS || '',
    GNOME_KEYRING_CONTROL: process.env.GNOME_KEYRING_CONTROL || '',
    HOME: home,
    XDG_CONFIG_HOME: join(home, '.config'),
    XDG_DATA_HOME: join(home, '.local/share'),
    XDG_CACHE_HOME: join(home, '.cache'),
    XDG_RUNTIME_DIR: runtime,
    NO_AT_BRIDGE: '1',
  };
}

export async function stopAll() {
  await Promise.all([...started].map(stop));
}

// A test file stopped from outside (the runner's timeout, Ctrl-C) runs no `after` hook: its
// processes are stopped here, by PID, as it exits.
process.once('exit', () => {
  for (const child of started) {
    try { process.kill(child.pid, 'SIGKILL'); } catch { /* already gone */ }
  }
});
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => process.exit(1));
}

async function freePort() {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

/** A temporary directory for the whole run. */
export function tempRoot() {
  return mkdtempSync(join(tmpdir(), 'keylink-app-e2e-'));
}

/** A CA made for this run and a certificate for 127.0.0.1 signed by it (openssl). */
export async function makeCa(dir) {
  const path = (name) => join(dir, name);
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  await run('openssl', ['req', '-x509', ...ec, '-keyout', path('ca-key.pem'), '-out', path('ca.pem'),
    '-days', '2', '-subj', '/CN=Keylink app test CA',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
  await run('openssl', ['req', '-new', ...ec, '-keyout', path('server-key.pem'), '-out', path('server.csr'),
    '-subj', '/CN=127.0.0.1']);
  writeFileSync(path('server.ext'), [
    'subjectAltName=IP:127.0.0.1',
    'basicConstraints=critical,CA:FALSE',
    'keyUsage=critical,digitalSignature',
    'extendedKeyUsage=serverAuth',
  ].join('\n'));
  await run('openssl', ['x509', '-req', '-in', path('server.csr'), '-CA', path('ca.pem'), '-CAkey', path('ca-key.pem'),
    '-CAcreateserial', '-out', path('server.pem'), '-days', '2', '-extfile', path('server.ext')]);
  return { ca: path('ca.pem'), cert: path('server.pem'), key: path('server-key.pem') };
}

/**
 * Keylink's TOML for the test provider `idp` as `[providers.demo]` ("Demo provider"), with
 * `lines` added to its table, and the test CA as `[network] ca_file`.
 */
export function demoProviderToml(idp, tls, lines = []) {
  return [
    '[providers.demo]',
    'name = "Demo provider"',
    `issuer = "${idp.issuer}"`,
    'client_id = "keylink-demo"',
    ...lines,
    '',
    '[network]',
    `ca_file = "${tls.ca}"`,
    '',
  ].join('\n');
}

/** Starts tests/idp/server.js; `line` is its handshake, or null when none came in 30 s. */
async function startIdpProcess(tls, logFile, attempt) {
  const reports = IDP_REPORTS;
  mkdirSync(reports, { recursive: true });
  const child = start('node', [
    '--report-on-signal', '--report-signal=SIGUSR2', `--report-directory=${reports}`,
    join(REPO, 'tests/idp/server.js'), '--tls-cert', tls.cert, '--tls-key', tls.key,
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  const log = [];
  const file = logFile && attempt > 1 ? `${logFile}.${attempt}` : logFile;
  child.stderr.on('data', (chunk) => {
    log.push(chunk);
    if (file) writeFileSync(file, Buffer.concat(log));
  });
  const lines = createInterface({ input: child.stdout });
  let timer;
  const result = await Promise.race([
    once(lines, 'line').then(([line]) => line),
    once(child, 'exit').then(() => { throw new Error(`the test provider did not start:\n${Buffer.concat(log)}`); }),
    new Promise((resolve) => { timer = setTimeout(() => resolve(null), 30000); }),
  ]).finally(() => clearTimeout(timer));
  if (result === null) {
    process.kill(child.pid, 'SIGUSR2');
    await waitFor('the diagnostic report of the stuck provider', () =>
      readdirSync(reports).some((f) => f.startsWith('report.') && f.includes(`.${child.pid}.`)), 5000).catch(() => {});
    await stop(child);
  }
  return { child, line: result, stderr: Buffer.concat(log).toString() };
}

/** The real test identity provider (tests/idp/server.js) over TLS. */
export async function startIdp(tls, logFile) {
  // Once in a long while the provider's Node process stops before it listens (seen once: no
  // CPU used, no output after its first warning). Such a start is given up after 30 s: a
  // diagnostic report (JS stack, libuv handles) is kept in target/idp-reports/, the process is
  // killed by PID, and a second one is started; a second failure fails the test.
  let idpStart = await startIdpProcess(tls, logFile, 1);
  if (!idpStart.line) {
    console.error(`the test provider did not start within 30 s (its diagnostic report is in ${IDP_REPORTS}); starting it again`);
    idpStart = await startIdpProcess(tls, logFile, 2);
  }
  if (!idpStart.line) {
    throw new Error(`the test provider did not start within 30 s, twice:\n${idpStart.stderr}`);
  }
  const { child, line } = idpStart;
  const { issuer } = JSON.parse(line);
  const ca = readFileSync(tls.ca);
  return {
    issuer,
    child,
    /** GET /__test/stats (through curl: Node's fetch cannot take an extra CA per request). */
    async stats() {
      const { stdout } = await run('curl', ['-sS', '--cacert', tls.ca, `${issuer}/__test/stats`]);
      return JSON.parse(stdout);
    },
    ca,
    /** Uses a refresh token directly at the provider (it rotates: the old one is now spent). */
    async refresh(refreshToken) {
      const { stdout } = await run('curl', ['-sS', '--cacert', tls.ca, '-o', '/dev/null', '-w', '%{http_code}',
        '--data-urlencode', 'grant_type=refresh_token', '--data-urlencode', `refresh_token=${refreshToken}`,
        '--data-urlencode', 'client_id=keylink-demo', `${issuer}/token`]);
      return Number(stdout);
    },
  };
}

/** True while some process owns the app's single-instance D-Bus name. */
export async function singleInstanceOwned(name = SINGLE_INSTANCE_NAME) {
  const { stdout } = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus', 'org.freedesktop.DBus.NameHasOwner', `string:${name}`]);
  return /boolean true/.test(stdout);
}

/** The PID of the process owning the app's single-instance D-Bus name, or null. */
export async function singleInstancePid(name = SINGLE_INSTANCE_NAME) {
  try {
    const { stdout } = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
      '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetConnectionUnixProcessID', `string:${name}`]);
    const match = /uint32 (\d+)/.exec(stdout);
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

/**
 * Waits until the previous app instance has released its D-Bus name (DESIGN: a new instance
 * started before that forwards to the dying one). If it does not go in 15 s, the process
 * owning the name is stopped by its PID.
 */
export async function waitForAppGone(name = SINGLE_INSTANCE_NAME) {
  try {
    await waitFor('the previous app instance to release its D-Bus name', async () => !(await singleInstanceOwned(name)), 15000);
  } catch (error) {
    const pid = await singleInstancePid(name);
    if (!pid) throw error;
    process.kill(pid, 'SIGKILL');
    await waitFor('the killed app instance to release its D-Bus name', async () => !(await singleInstanceOwned(name)), 10000);
  }
}

/** Children of `pid` (from /proc). */
function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

const KEYLINK_APP = {
  bin: APP_BIN,
  singleInstance: SINGLE_INSTANCE_NAME,
  ready: 'return document.getElementById("loading").hidden',
};

/** The example host app: its binary, D-Bus name, and when its page is ready. */
export const EXAMPLE_HOST = {
  bin: HOST_BIN,
  singleInstance: HOST_SINGLE_INSTANCE_NAME,
  ready: 'return document.body.dataset.ready === "true"',
};

/**
 * tauri-driver (and through it WebKitWebDriver) with `env`, which the app inherits; `app` is
 * the Keylink app unless given (`EXAMPLE_HOST`).
 */
export async function startDriver(env, logFile, app = KEYLINK_APP) {
  const port = await freePort();
  const nativePort = await freePort();
  const child = start('tauri-driver', ['--port', String(port), '--native-port', String(nativePort)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const log = [];
  const keep = (chunk) => {
    log.push(chunk);
    if (logFile) writeFileSync(logFile, Buffer.concat(log));
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const base = `http://127.0.0.1:${port}`;
  const sessions = [];
  await waitFor('tauri-driver to listen', async () => {
    if (child.exitCode !== null) throw new Error(`tauri-driver exited:\n${Buffer.concat(log)}`);
    const response = await fetch(`${base}/status`, { signal: AbortSignal.timeout(2000) }).catch(() => null);
    return response !== null;
  }, 20000);
  return {
    base,
    log: () => Buffer.concat(log).toString(),
    /** Starts the app with `args` in a new WebDriver session; resolves once the UI has loaded. */
    async launch(args = []) {
      await waitForAppGone(app.singleInstance);
      let session;
      try {
        session = await Session.create(base, {
          'tauri:options': { application: app.bin, args },
        });
      } catch (error) {
        throw new Error(`${error.message}\ntauri-driver and app output:\n${Buffer.concat(log).toString().slice(-3000)}`);
      }
      sessions.push(session);
      await waitFor('the UI to load', () => session.execute(app.ready));
      return session;
    },
    /** Stops tauri-driver and the WebKitWebDriver it started, by PID. */
    async stop() {
      // Close what a failed test left open, so the next scenario starts with no instance.
      for (const session of sessions) await session.delete().catch(() => {});
      await waitForAppGone(app.singleInstance).catch(() => {});
      const natives = childrenOf(child.pid);
      await stop(child);
      for (const pid of natives) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    },
  };
}

/** Runs the `keylink` CLI with `env`. */
export async function keylink(env, ...args) {
  const { stdout } = await run(CLI_BIN, args, { env });
  return stdout;
}

async function keychainLookup(key, service = 'dev.keylink') {
  const { stdout } = await run('secret-tool', ['lookup', 'service', service, 'username', key])
    .catch(() => ({ stdout: '' }));
  return stdout;
}

/**
 * The keychain key of account `id`'s tokens in the data directory of `env`: that
 * directory's keychain id, a colon, the account id.
 */
function tokenKey(env, id, dataDir = env.KEYLINK_DATA_DIR) {
  const dataId = readFileSync(join(dataDir, 'keychain-id'), 'utf8').trim();
  return `${dataId}:${id}`;
}

/** The token set stored for account `id` (inline entries only: small token sets). */
export async function storedTokenSet(env, id) {
  const value = await keychainLookup(tokenKey(env, id));
  assert(value.startsWith('kl1:i:'), `an inline keychain entry for ${id}`);
  return JSON.parse(value.slice(6));
}

/**
 * The tokens Keylink keeps for the accounts `ids`, read back from the keychain with
 * `secret-tool` (an entry is `kl1:i:<json>` inline, or chunks named by a
 * `kl1:c:<generation>:<count>:...` header).
 */
export async function storedTokens(env, ids, { service = 'dev.keylink', dataDir = env.KEYLINK_DATA_DIR } = {}) {
  const tokens = new Set();
  for (const account of ids) {
    const id = tokenKey(env, account, dataDir);
    const value = await keychainLookup(id, service);
    let json = null;
    if (value.startsWith('kl1:i:')) {
      json = value.slice(6);
    } else if (value.startsWith('kl1:c:')) {
      const [generation, count] = value.slice(6).split(':');
      const parts = [];
      for (let i = 0; i < Number(count); i += 1) parts.push(await keychainLookup(`${id}.${generation}.${i}`, service));
      json = parts.join('');
    } else if (value.startsWith('{')) {
      json = value;
    }
    if (!json) continue;
    const stored = JSON.parse(json);
    for (const name of ['access_token', 'refresh_token', 'id_token']) {
      if (typeof stored[name] === 'string' && stored[name].length >= 16) tokens.add(stored[name]);
    }
  }
  return tokens;
}

/**
 * Records every IPC response in the page (at the transport: Tauri's IPC goes through fetch to
 * the ipc: protocol), so the test can check none carries a token.
 */
export const IPC_SPY = `
  if (!window.__ipcLog) {
    window.__ipcLog = [];
    const original = window.fetch;
    window.fetch = async function (input, init) {
      const response = await original.call(this, input, init);
      const url = typeof input === 'string' ? input : (input && input.url) || '';
      if (url.startsWith('ipc:') || url.includes('ipc.localhost')) {
        response.clone().text().then((body) => window.__ipcLog.push({ url, body }));
      }
      return response;
    };
  }
  return typeof window.fetch;
`;

export function screenshotPath(name) {
  mkdirSync(SCREENSHOTS, { recursive: true });
  return join(SCREENSHOTS, `${name}.png`);
}

/** Whether `pid` is still a running process (a zombie has stopped writing anything). */
function alive(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

/**
 * The processes whose home directory is `dir` or inside it: what the tests started there,
 * directly or through xdg-open, an app, or WebKit's helper processes that outlive the app by a
 * moment.
 */
function processesLivingIn(dir) {
  const pids = [];
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    let environ;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue; // gone, or another user's
    }
    const home = environ.split('\0').find((v) => v.startsWith('HOME='))?.slice(5);
    if (home && (home === dir || home.startsWith(`${dir}/`)) && alive(pid)) pids.push(pid);
  }
  return pids;
}

/**
 * Stops, by PID, every process still living in `dir` (SIGTERM, then SIGKILL after 5 s), waits
 * until none runs, and removes `dir`.
 */
export async function cleanup(dir) {
  const signal = (pids, name) => pids.forEach((pid) => { try { process.kill(pid, name); } catch { /* gone */ } });
  let pids = processesLivingIn(dir);
  signal(pids, 'SIGTERM');
  try {
    await waitFor('the processes left in the test directory to exit', () => pids.every((pid) => !alive(pid)), 5000);
  } catch {
    signal(pids.filter(alive), 'SIGKILL');
    await waitFor('the killed processes to exit', () => pids.every((pid) => !alive(pid)), 5000);
  }
  // Anything those started while they stopped.
  pids = processesLivingIn(dir);
  signal(pids, 'SIGKILL');
  await waitFor('the last processes in the test directory to exit', () => pids.every((pid) => !alive(pid)), 5000);
  rmSync(dir, { recursive: true, force: true });
}
