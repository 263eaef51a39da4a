// End to end in the example app that embeds tauri-plugin-keylink (examples/tauri-host, its
// own identifier and scheme com.example.notes): the plugin registers the host's scheme, and
// sign-ins come back through the real xdg-open (no desktop named: xdg-utils' generic path) and
// `gio open` to a second instance, and through a cold start, fetch() of the provider's userinfo, fetch() refused outside api_origins and
// without keylink:allow-fetch, no token in any IPC message or in the page, and none of the
// Keylink app's accounts visible. Same setting as app.test.js: Xvfb, a private keyring,
// tauri-driver + WebKitWebDriver, the real test provider and the scripted browser.

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  CLI_BIN, EXAMPLE_HOST, HOST_BIN, IPC_SPY, REPO, cleanup, demoProviderToml, keylink, makeCa, run, screenshotPath, startDriver,
  startIdp, stopAll, storedTokens, tempRoot, userEnv,
} from './harness.js';
import { waitFor } from './webdriver.js';

let root;
let idp;
let env;
const hostData = () => join(env.XDG_DATA_HOME, 'com.example.notes');

async function accountNames(session) {
  return session.execute('return [...document.querySelectorAll("#accounts .account")].map((e) => e.textContent)');
}

/** The host's accounts, read with `keylink --app com.example.notes` (its own data dir). */
async function hostAccounts() {
  const { KEYLINK_DATA_DIR, ...rest } = env;
  return JSON.parse(await keylink(rest, '--app', 'com.example.notes', 'list', '--json'));
}

async function launch(driver, args) {
  const session = await driver.launch(args);
  await session.execute(IPC_SPY);
  return session;
}

/** Every IPC response the page received, and its whole text. */
async function whatThePageSaw(session) {
  const ipc = await session.execute('return window.__ipcLog || []');
  const page = await session.execute('return document.documentElement.outerHTML');
  return JSON.stringify(ipc) + page;
}

before(async () => {
  assert.ok(existsSync(HOST_BIN), `build the example first: ${HOST_BIN} is missing (scripts/test-app.sh does)`);
  root = tempRoot();
  const tls = await makeCa(root);
  idp = await startIdp(tls, join(root, 'idp.log'));
  const home = join(root, 'home');
  const configHome = join(home, '.config');
  // The host reads its providers from $APPCONFIG/keylink.toml (tauri.conf.json).
  mkdirSync(join(configHome, 'com.example.notes'), { recursive: true });
  const provider = demoProviderToml(idp, tls, [
    'scopes = ["openid", "profile", "email", "offline_access"]',
    `api_origins = ["${idp.issuer}"]`,
  ]);
  writeFileSync(join(configHome, 'com.example.notes/keylink.toml'), provider);
  // The Keylink app's (and CLI's) own configuration: the same provider.
  const keylinkConfig = join(root, 'keylink.toml');
  writeFileSync(keylinkConfig, provider);
  env = {
    ...userEnv(home),
    KEYLINK_CONFIG: keylinkConfig,
    KEYLINK_DATA_DIR: join(root, 'keylink-data'),
    BROWSER: join(REPO, 'tests/idp/user-agent.js'),
    // The redirect goes where the desktop sends com.example.notes: URLs, found by xdg-open
    // itself (no XDG_CURRENT_DESKTOP: its generic path, as on a desktop without GNOME or KDE).
    KEYLINK_UA_HANDLER: 'xdg-open',
    NODE_EXTRA_CA_CERTS: tls.ca,
    RUST_LOG: 'keylink=info,tauri_plugin_keylink=debug',
  };
});

after(async () => {
  await stopAll();
  if (root && !process.env.KEYLINK_KEEP_TEST_DIR) await cleanup(root);
});

test('the example host links through its own scheme, calls the API with fetch, and never sees a token', async () => {
  // An account of the Keylink app itself (the CLI shares its identity): the host must not see it.
  const keylinkAccount = JSON.parse(await keylink({ ...env, KEYLINK_UA_LOGIN: 'bob', KEYLINK_UA_HANDLER: `${CLI_BIN} open-url` },
    'link', 'demo', '--json'));
  assert.equal(keylinkAccount.email, 'bob@example.test');

  const driver = await startDriver(env, join(root, 'driver-a.log'), EXAMPLE_HOST);
  const tokens = new Set();
  let seen = '';
  try {
    const session = await launch(driver);
    assert.deepEqual(await accountNames(session), [], "the Keylink app's accounts are not the host's");
    // The plugin made the host the handler of its scheme (the host has no code of its own
    // for it), in the test's HOME, the way xdg-open finds it.
    const desktop = readFileSync(join(env.XDG_DATA_HOME, 'applications/keylink-example-host-handler.desktop'), 'utf8');
    assert.match(desktop, /^Exec=\S*keylink-example-host %u$/m, 'unquoted, as xdg-utils 1.1 can run it');
    assert.match(desktop, /^MimeType=x-scheme-handler\/com\.example\.notes;$/m);
    assert.equal((await run('xdg-mime', ['query', 'default', 'x-scheme-handler/com.example.notes'], { env })).stdout.trim(),
      'keylink-example-host-handler.desktop');
    // Link: the browser signs in, the provider redirects to com.example.notes:/callback/demo,
    // which runs a second instance of the host; it hands the URL to the first and exits.
    const exchangesBefore = (await idp.stats()).token_requests.authorization_code;
    await session.clickCss('#link');
    await waitFor('Alice in the host', async () => (await accountNames(session)).some((n) => n.includes('alice@example.test')), 30000);
    assert.match(await session.textOf('#status'), /Linked alice@example\.test\./);
    assert.equal((await idp.stats()).token_requests.authorization_code, exchangesBefore + 1);
    // The host did not turn the token agent on (Builder::token_agent): nothing listens.
    assert.ok(!existsSync(join(env.XDG_RUNTIME_DIR, 'keylink')), 'no token agent unless the host asks for one');
    writeFileSync(screenshotPath('host-1-linked'), await session.screenshot());
    const accounts = await hostAccounts();
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0].email, 'alice@example.test');

    // fetch() of the provider's userinfo: the claims of the account, with the token attached
    // in Rust.
    const userinfoBefore = (await idp.stats()).userinfo;
    await session.execute('document.getElementById("api-url").value = arguments[0]', [`${idp.issuer}/me`]);
    await session.clickCss('#api button');
    await waitFor('the API answer', async () => /^200\n/.test(await session.textOf('#answer')));
    const claims = JSON.parse((await session.textOf('#answer')).replace(/^200\n/, ''));
    assert.equal(claims.email, 'alice@example.test');
    assert.equal((await idp.stats()).userinfo, userinfoBefore + 1);

    // An origin not in api_origins: rejected with its code, nothing sent.
    await session.execute('document.getElementById("api-url").value = "https://127.0.0.1:9/me"');
    await session.clickCss('#api button');
    await waitFor('the refusal', async () => /^not_allowed: /.test(await session.textOf('#answer')));
    assert.match(await session.textOf('#answer'), /api_origins/);
    assert.equal((await idp.stats()).userinfo, userinfoBefore + 1);

    // The host's own async command asks the plugin's Rust API for a token that must be
    // refreshed first: one refresh at the provider, an answer, no panic (a debug build, where
    // a blocking HTTP client inside tokio would panic).
    const refreshesBefore = (await idp.stats()).token_requests.refresh_token;
    await session.clickCss('#rust-token');
    await waitFor("the Rust command's answer", async () => (await session.textOf('#rust-answer')) !== '', 30000);
    assert.match(await session.textOf('#rust-answer'), /^The app's Rust code has a fresh token \(\d+ characters\)\.$/);
    assert.equal((await idp.stats()).token_requests.refresh_token, refreshesBefore + 1);
    // Again: the host still answers after a refresh (a year of lifetime is more than any
    // token has, so each call refreshes).
    await session.execute('document.getElementById("rust-answer").textContent = ""');
    await session.clickCss('#rust-token');
    await waitFor("the Rust command's second answer", async () => (await session.textOf('#rust-answer')) !== '', 30000);
    assert.match(await session.textOf('#rust-answer'), /fresh token/);
    assert.equal((await idp.stats()).token_requests.refresh_token, refreshesBefore + 2);

    // The other windows: one without keylink:allow-fetch, where the capability denies the
    // call; one whose keylink:allow-fetch scope allows only the userinfo path of api_origins.
    const handles = await session.windowHandles();
    assert.equal(handles.length, 3, 'the main, the restricted and the scoped window');
    const main = await session.cmd('GET', '/window');
    const callFetch = (url) => session.executeAsync(`
      const done = arguments[arguments.length - 1];
      const k = window.__TAURI__.keylink;
      k.accounts()
        .then(([a]) => k.fetch(a.id, arguments[0]))
        .then((r) => done({ status: r.status }), (e) => done({ code: e.code, message: String(e.message) }));
    `, [url]);
    const windows = {};
    for (const handle of handles.filter((h) => h !== main)) {
      await session.switchToWindow(handle);
      windows[await session.execute('return window.__TAURI_INTERNALS__.metadata.currentWindow.label')] = handle;
    }
    await session.switchToWindow(windows.restricted);
    const denied = await callFetch(`${idp.issuer}/me`);
    assert.equal(denied.code, 'not_allowed', JSON.stringify(denied));
    assert.match(denied.message, /fetch/);
    assert.equal((await idp.stats()).userinfo, userinfoBefore + 1, 'the denied call sent nothing');

    await session.switchToWindow(windows.scoped);
    const inScope = await callFetch(`${idp.issuer}/me`);
    assert.equal(inScope.status, 200, JSON.stringify(inScope));
    assert.equal((await idp.stats()).userinfo, userinfoBefore + 2);
    // In api_origins, but outside the window's scope: refused before anything is sent.
    const outOfScope = await callFetch(`${idp.issuer}/me?claims=all`);
    assert.equal(outOfScope.code, 'not_allowed', JSON.stringify(outOfScope));
    assert.match(outOfScope.message, /scope of keylink:allow-fetch/);
    assert.equal((await idp.stats()).userinfo, userinfoBefore + 2, 'the out-of-scope call sent nothing');
    await session.switchToWindow(main);

    seen += await whatThePageSaw(session);
    for (const t of await storedTokens(env, accounts.map((a) => a.id), { service: 'com.example.notes', dataDir: hostData() })) tokens.add(t);
    await session.delete();
  } finally {
    await driver.stop();
  }

  // GIO's opener (GNOME, Firefox) finds the same registration: Dave's sign-in comes back
  // through `gio open`.
  const gio = await startDriver({ ...env, KEYLINK_UA_LOGIN: 'dave', KEYLINK_UA_HANDLER: 'gio open' }, join(root, 'driver-gio.log'), EXAMPLE_HOST);
  try {
    const session = await launch(gio);
    await session.clickCss('#link');
    await waitFor('Dave in the host', async () => (await accountNames(session)).some((n) => n.includes('dave@example.test')), 30000);
    seen += await whatThePageSaw(session);
    await session.delete();
  } finally {
    await gio.stop();
  }

  // Cold start: the host is closed when the redirect comes; the OS starts it with the URL.
  const captured = join(root, 'cold-redirect.txt');
  const cold = await startDriver({ ...env, KEYLINK_UA_LOGIN: 'carol', KEYLINK_UA_CAPTURE: captured }, join(root, 'driver-b.log'), EXAMPLE_HOST);
  try {
    let session = await launch(cold);
    await session.clickCss('#link');
    await waitFor('the captured redirect', () => existsSync(captured), 30000);
    const redirect = readFileSync(captured, 'utf8').trim();
    assert.match(redirect, /^com\.example\.notes:\/callback\/demo\?/);
    await session.delete();
    session = await launch(cold, [redirect]);
    await waitFor('Carol after the cold start', async () => (await accountNames(session)).some((n) => n.includes('carol@example.test')), 30000);
    const accounts = await hostAccounts();
    assert.deepEqual(accounts.map((a) => a.email).sort(), ['alice@example.test', 'carol@example.test', 'dave@example.test']);
    writeFileSync(screenshotPath('host-2-cold-start'), await session.screenshot());
    seen += await whatThePageSaw(session);
    for (const t of await storedTokens(env, accounts.map((a) => a.id), { service: 'com.example.notes', dataDir: hostData() })) tokens.add(t);
    await session.delete();
  } finally {
    await cold.stop();
  }

  // No token anywhere the page could see; and the Keylink app still has only Bob.
  assert.ok(tokens.size >= 4, `tokens were collected from the keychain (${tokens.size})`);
  for (const token of tokens) assert.ok(!seen.includes(token), 'no IPC message or page text holds a token');
  const own = JSON.parse(await keylink(env, 'list', '--json'));
  assert.deepEqual(own.map((a) => a.email), ['bob@example.test']);
});
