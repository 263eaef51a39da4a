// End to end in the real app: the built keylink-app binary under Xvfb, in a private D-Bus
// session with its own gnome-keyring (run through scripts/test-app.sh), driven through
// tauri-driver + WebKitWebDriver, signing in at the real test provider with the scripted
// browser, the redirect handed to the app binary as the OS would. Screenshots of each state go
// to target/app-screenshots/.

import assert from 'node:assert/strict';
import { existsSync, lstatSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import {
  APP_BIN, CLI_BIN, IPC_SPY, REPO, cleanup, demoProviderToml, keylink, makeCa, run, screenshotPath, startDriver, startIdp, stopAll,
  singleInstancePid, storedTokenSet, storedTokens, tempRoot, userEnv, waitForAppGone,
} from './harness.js';
import { waitFor } from './webdriver.js';

let root;
let idp;
let baseEnv;
const tokens = new Set(); // every token Keylink stored during the run
const ipcResponses = []; // every IPC response body the pages received

async function snapshot(session, name) {
  // The screenshot is of the last painted frame: wait until what was just changed is painted.
  await session.executeAsync('const done = arguments[arguments.length - 1]; requestAnimationFrame(() => requestAnimationFrame(() => done(true)));');
  writeFileSync(screenshotPath(name), await session.screenshot());
}

async function collectIpc(session) {
  const log = await session.execute('return window.__ipcLog || []');
  ipcResponses.push(...log);
  await session.execute('if (window.__ipcLog) window.__ipcLog.length = 0;');
}

async function collectTokens(env) {
  const accounts = JSON.parse(await keylink(env, 'list', '--json'));
  for (const t of await storedTokens(env, accounts.map((a) => a.id))) tokens.add(t);
  for (const account of accounts) {
    if (account.status === 'ok') tokens.add((await keylink(env, 'token', account.id)).trim());
  }
}

/** The environment of one scenario: what the app (and the browser it opens) inherits. */
function scenarioEnv(name, extra = {}) {
  const dir = join(root, name);
  mkdirSync(dir, { recursive: true });
  return {
    ...baseEnv,
    KEYLINK_TEST_GATE: join(dir, 'gate'),
    KEYLINK_UA_LOG: join(dir, 'user-agent.log'),
    ...extra,
  };
}

async function listJson(env) {
  return JSON.parse(await keylink(env, 'list', '--json'));
}

async function accountNames(session) {
  // Only what is on screen: the list is updated while the link screen may still hide it.
  return session.execute('return [...document.querySelectorAll("#accounts .account .name")].filter((e) => !e.closest("[hidden]")).map((e) => e.textContent)');
}

async function launch(driver, args) {
  const session = await driver.launch(args);
  await session.execute(IPC_SPY);
  return session;
}

before(async () => {
  assert.ok(existsSync(APP_BIN), `build the app first: ${APP_BIN} is missing (scripts/test-app.sh does)`);
  root = tempRoot();
  const tls = await makeCa(root);
  idp = await startIdp(tls, join(root, 'idp.log'));
  const home = join(root, 'home');
  mkdirSync(join(home, '.config'), { recursive: true });
  const config = join(root, 'keylink.toml');
  writeFileSync(config, demoProviderToml(idp, tls, [
    'scopes = ["openid", "profile", "email", "offline_access"]',
    'redirect = "deep-link"',
  ]));
  baseEnv = {
    ...userEnv(home),
    KEYLINK_CONFIG: config,
    KEYLINK_DATA_DIR: join(root, 'data'),
    BROWSER: join(REPO, 'tests/app/gated-browser.sh'),
    KEYLINK_UA_HANDLER: APP_BIN,
    NODE_EXTRA_CA_CERTS: tls.ca,
    RUST_LOG: 'keylink=info,keylink_app=debug,tauri_plugin_keylink=debug',
  };
});

after(async () => {
  await stopAll();
  if (root && !process.env.KEYLINK_KEEP_TEST_DIR) await cleanup(root);
});

test('(a) Link → browser sign-in → redirect through xdg-open and a second app instance → the account shows', async () => {
  // xdg-open finds the handler itself; no desktop is named, so it takes xdg-utils' generic
  // path, as on a desktop without GNOME or KDE.
  const env = scenarioEnv('a', { KEYLINK_UA_HANDLER: 'xdg-open' });
  const driver = await startDriver(env, join(root, 'a', 'driver.log'));
  try {
    const session = await launch(driver);
    // The plugin registered the app for dev.keylink: URLs at startup (in the test's HOME).
    const desktop = readFileSync(join(env.XDG_DATA_HOME, 'applications/keylink-app-handler.desktop'), 'utf8');
    assert.match(desktop, /^Exec=.*keylink-app"? %u$/m, 'the URL reaches the app on a cold start');
    assert.match(desktop, /^MimeType=x-scheme-handler\/dev\.keylink/m);
    const defaults = readFileSync(join(env.XDG_CONFIG_HOME, 'mimeapps.list'), 'utf8');
    assert.match(defaults, /x-scheme-handler\/dev\.keylink=keylink-app-handler\.desktop/);
    assert.equal((await run('xdg-mime', ['query', 'default', 'x-scheme-handler/dev.keylink'], { env })).stdout.trim(),
      'keylink-app-handler.desktop');
    const providerTop = 'return document.querySelector(".provider[data-provider=demo]").getBoundingClientRect().top';
    const topBefore = await session.execute(providerTop);
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen with its countdown', async () =>
      /Continue in your browser[^]*stops waiting in/.test(await session.textOf('#linking')));
    const linking = await session.textOf('#linking');
    assert.match(linking, /Demo provider/);
    assert.match(linking, /stops waiting in \d+:\d\d/);
    assert.ok(await session.textOf('#linking-cancel'), 'a Cancel button');
    await snapshot(session, 'a1-continue-in-browser');

    const before = await idp.stats();
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('Alice in the accounts list', async () => (await accountNames(session)).includes('Alice'), 30000);
    const card = await session.textOf('#accounts .account');
    for (const expected of ['Alice', 'alice@example.test', 'Demo provider', 'Sign-in', 'Email address', 'Connected']) {
      assert.ok(card.includes(expected), `the account card shows ${expected}: ${card}`);
    }
    assert.match(await session.textOf('#notices'), /Alice \(alice@example\.test\) is linked/);
    assert.equal(await session.execute(providerTop), topBefore, 'the notice moved nothing on the page');
    await snapshot(session, 'a2-linked');

    const after = await idp.stats();
    assert.equal(after.token_requests.authorization_code, before.token_requests.authorization_code + 1);
    const hops = readFileSync(env.KEYLINK_UA_LOG, 'utf8');
    assert.match(hops, /\/auth/, 'the browser signed in at the provider');

    const accounts = await listJson(env);
    assert.equal(accounts.length, 1);
    assert.equal(accounts[0].email, 'alice@example.test');
    assert.equal(accounts[0].provider, 'demo');
    assert.equal(accounts[0].status, 'ok');

    await collectTokens(env);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(b) cold start: the app closed after the browser opened; the redirect launches it', async () => {
  const captured = join(root, 'b-redirect.txt');
  const env = scenarioEnv('b', { KEYLINK_UA_LOGIN: 'bob', KEYLINK_UA_CAPTURE: captured });
  const driver = await startDriver(env, join(root, 'b', 'driver.log'));
  try {
    let session = await launch(driver);
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('the browser to finish signing in', () => existsSync(captured), 30000);
    await snapshot(session, 'b1-browser-opened');
    await collectIpc(session);
    await session.delete(); // the app is closed before the redirect comes back
    await waitForAppGone();

    const url = readFileSync(captured, 'utf8').trim();
    assert.match(url, /^dev\.keylink:\/callback\/demo\?/);
    session = await launch(driver, [url]); // what the OS runs for dev.keylink: URLs
    await waitFor('Bob in the accounts list', async () => (await accountNames(session)).includes('Bob'), 30000);
    await waitFor('the linked notice', async () => /Bob \(bob@example\.test\) is linked/.test(await session.textOf('#notices')));
    await snapshot(session, 'b2-cold-start-linked');
    const accounts = await listJson(env);
    assert.ok(accounts.some((a) => a.email === 'bob@example.test'), JSON.stringify(accounts));
    await collectTokens(env);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(c) an unsolicited redirect is refused with a clear message, nothing linked; a link times out', async () => {
  const env = scenarioEnv('c', { KEYLINK_LINK_TIMEOUT: '3', GTK_THEME: 'Adwaita:dark' });
  const driver = await startDriver(env, join(root, 'c', 'driver.log'));
  try {
    const session = await launch(driver);
    const before = await listJson(env);
    const forged = `dev.keylink:/callback/demo?code=forged-code&state=forged-state-0123456789abcdef&iss=${encodeURIComponent(idp.issuer)}`;
    const second = await run(APP_BIN, [forged], { env, timeout: 30000 });
    assert.ok(second, 'the second instance forwarded the URL and exited 0');
    await waitFor('the refusal notice', async () => (await session.textOf('#notices .notice.error')).length > 0);
    const notice = await session.textOf('#notices .notice.error');
    assert.match(notice, /refused/i);
    assert.match(notice, /Nothing was linked/);
    assert.doesNotMatch(notice, /forged/, 'no part of the URL is echoed');
    await snapshot(session, 'c1-unsolicited-refused');
    assert.deepEqual(await listJson(env), before, 'nothing was linked');

    // A link nobody finishes: the timeout message.
    await session.clickCss('#notices .notice.error .dismiss');
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the timeout message', async () => /timed out/.test(await session.textOf('#linking')), 20000);
    assert.match(await session.textOf('#linking'), /Nothing was linked|nothing was linked/);
    await snapshot(session, 'c2-link-timed-out');
    writeFileSync(env.KEYLINK_TEST_GATE, 'abandon');
    await session.clickCss('#linking-cancel');
    await waitFor('the home screen', async () => (await session.textOf('#providers')).includes('Demo provider'));
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(d) Check connection shows the userinfo answer; Unlink removes the account', async () => {
  const env = scenarioEnv('d');
  const driver = await startDriver(env, join(root, 'd', 'driver.log'));
  try {
    const session = await launch(driver);
    const [alice] = (await listJson(env)).filter((a) => a.email === 'alice@example.test');
    assert.ok(alice, 'Alice is linked (scenario a)');
    const card = `.account[data-account="${alice.id}"]`;
    await waitFor('Alice in the accounts list', async () => (await accountNames(session)).includes('Alice'));

    const before = await idp.stats();
    await session.clickCss(`${card} button.check`);
    await waitFor('the connection result', async () => (await session.textOf(`${card} .connection.ok`)).length > 0, 20000);
    const result = await session.textOf(`${card} .connection`);
    assert.match(result, /answered as Alice \(alice@example\.test\)/);
    assert.match(result, /valid until/);
    const after = await idp.stats();
    assert.equal(after.userinfo, before.userinfo + 1, 'the provider answered userinfo');
    assert.deepEqual(after.token_requests, before.token_requests, 'the stored tokens were reused');
    await snapshot(session, 'd1-connection-checked');

    // Every command's response, asked directly, for a linked account (SECURITY 30).
    await collectTokens(env);
    await session.executeAsync(`
      const done = arguments[arguments.length - 1];
      const { invoke, Channel } = window.__TAURI__.core;
      const calls = [
        ['providers', {}], ['accounts', {}], ['check_connection', { account: arguments[0] }],
        ['link', { provider: 'nope', onProgress: new Channel() }], ['cancel_link', {}],
        ['unlink', { account: 'nope' }],
      ];
      (async () => { for (const [c, a] of calls) { await invoke('plugin:keylink|' + c, a).catch(() => {}); } done(true); })();
    `, [alice.id]);

    await session.clickCss(`${card} button.unlink`);
    await waitFor('the unlink dialog', () => session.execute('return document.getElementById("unlink-dialog").open'));
    assert.match(await session.textOf('#unlink-title'), /Unlink Alice/);
    await snapshot(session, 'd2-unlink-confirm');
    await session.clickCss('#unlink-confirm');
    await waitFor('Alice to be gone', async () => !(await accountNames(session)).includes('Alice'), 20000);
    assert.match(await session.textOf('#notices'), /was unlinked/);
    await snapshot(session, 'd3-unlinked');
    assert.ok(!(await listJson(env)).some((a) => a.email === 'alice@example.test'));
    assert.equal((await idp.stats()).revocations, after.revocations + 1, 'revoked at the provider');
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(f) an account whose grant died shows "Needs reconnecting"; Reconnect through gio open links it again', async () => {
  // GIO's opener (GNOME, Firefox) hands this sign-in back.
  const env = scenarioEnv('f', { KEYLINK_UA_LOGIN: 'bob', KEYLINK_UA_HANDLER: 'gio open' });
  const driver = await startDriver(env, join(root, 'f', 'driver.log'));
  try {
    const session = await launch(driver);
    const [bob] = (await listJson(env)).filter((a) => a.email === 'bob@example.test');
    assert.ok(bob, 'Bob is linked (scenario b)');
    const card = `.account[data-account="${bob.id}"]`;
    // An answer of Check connection from before, which a relink makes stale.
    await session.clickCss(`${card} button.check`);
    await waitFor('the connection answer', async () => /answered as/.test(await session.textOf(`${card} .connection`)), 20000);
    // Someone else spends the stored refresh token; Keylink's next refresh replays it, the
    // provider revokes the grant, and the account needs linking again.
    const spent = await storedTokenSet(env, bob.id);
    for (const t of Object.values(spent)) if (typeof t === 'string' && t.length >= 16) tokens.add(t);
    assert.equal(await idp.refresh(spent.refresh_token), 200);
    await assert.rejects(keylink(env, 'token', bob.id, '--min-ttl', '999999'), (e) => e.code === 3);
    await waitFor('the Needs reconnecting badge', async () => /Needs reconnecting/.test(await session.textOf(card)));
    assert.ok(await session.textOf(`${card} button.reconnect`), 'a Reconnect button');
    await snapshot(session, 'f1-needs-reconnecting');

    await session.clickCss(`${card} button.reconnect`);
    await waitFor('the "Continue in your browser" screen', async () =>
      /Continue in your browser/.test(await session.textOf('#linking')));
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('Bob connected again', async () => /Connected/.test(await session.textOf(card)), 30000);
    await snapshot(session, 'f2-reconnected');
    assert.equal(await session.textOf(`${card} .connection`), '', 'the answer about the old sign-in is gone');
    const [again] = (await listJson(env)).filter((a) => a.id === bob.id);
    assert.equal(again.status, 'ok');
    await collectTokens(env);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(g) device sign-in: the app shows a code, the person enters it on another device', async () => {
  const env = scenarioEnv('g', { KEYLINK_UA_LOGIN: 'carol' });
  const driver = await startDriver(env, join(root, 'g', 'driver.log'));
  try {
    const session = await launch(driver);
    const button = '.provider[data-provider="demo"] button.device';
    // Offered once discovery found the provider's device authorization endpoint.
    await waitFor('the "Use a code" button', () =>
      session.execute(`const b = document.querySelector('${button}'); return Boolean(b && !b.hidden);`), 20000);
    await session.clickCss(button);
    await waitFor('the code on screen', async () => (await session.textOf('#linking-device-code')).length > 0, 20000);
    const code = (await session.textOf('#linking-device-code')).trim();
    const uri = (await session.textOf('#linking-device-uri')).trim();
    assert.ok(uri.startsWith(`${idp.issuer}/`), `the provider's own page: ${uri}`);
    assert.match(await session.textOf('#linking'), /Enter the code on another device/);
    // The address as a QR code, and the code copied with one click.
    const qr = await session.execute('const i = document.getElementById("linking-device-qr"); return { src: i.src, w: i.naturalWidth, shown: !i.closest("[hidden]") };');
    assert.ok(qr.shown && qr.src.startsWith('data:image/svg+xml') && qr.w > 0, `a QR code is shown: ${JSON.stringify({ ...qr, src: qr.src.slice(0, 40) })}`);
    await session.clickCss('#linking-device-copy');
    await waitFor('the copy to be confirmed', async () => (await session.textOf('#linking-device-copy')) === 'Copied');
    await snapshot(session, 'g1-device-code');

    // The person, on another device, types the code and approves.
    await run(join(REPO, 'tests/idp/user-agent.js'), [uri, code], {
      env: { ...env, KEYLINK_UA_DEVICE: 'confirm' },
    });
    await waitFor('Carol in the accounts list', async () => (await accountNames(session)).includes('Carol'), 40000);
    await snapshot(session, 'g2-device-linked');
    const [carol] = (await listJson(env)).filter((a) => a.email === 'carol@example.test');
    assert.ok(carol, 'keylink list shows the account linked with a code');
    assert.equal(carol.status, 'ok');
    await collectTokens(env);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(h) declining at the provider says the person cancelled the sign-in, nothing linked', async () => {
  const captured = join(root, 'h-redirect.txt');
  const env = scenarioEnv('h', { KEYLINK_UA_LOGIN: 'dave', KEYLINK_UA_CAPTURE: captured });
  const driver = await startDriver(env, join(root, 'h', 'driver.log'));
  try {
    const session = await launch(driver);
    const before = await listJson(env);
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('the browser to reach the redirect', () => existsSync(captured), 30000);
    // What the provider sends when the person clicks Cancel on its consent page: the same
    // state, error=access_denied, through a second app instance.
    const url = new URL(readFileSync(captured, 'utf8').trim());
    const declined = `dev.keylink:/callback/demo?state=${encodeURIComponent(url.searchParams.get('state'))}` +
      `&error=access_denied&iss=${encodeURIComponent(idp.issuer)}`;
    await run(APP_BIN, [declined], { env, timeout: 30000 });
    await waitFor('the cancelled notice', async () =>
      /You cancelled the sign-in at Demo provider/.test(await session.textOf('#notices')));
    assert.doesNotMatch(await session.textOf('#notices'), /refused/i, 'not called a refusal by the provider');
    assert.equal(await session.textOf('#linking'), '', 'back to the providers, no failure panel');
    await snapshot(session, 'h1-declined');
    assert.deepEqual(await listJson(env), before, 'nothing was linked');
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(i) while the app runs it is the token agent: keylink token answers from it; closed, its socket is gone', async () => {
  const env = scenarioEnv('i', { KEYLINK_UA_LOGIN: 'erin' });
  const socket = join(env.XDG_RUNTIME_DIR, 'keylink', 'dev.keylink.sock');
  // Without the session bus the keychain cannot be reached: only an agent can answer.
  const noKeychain = { ...env, DBUS_SESSION_BUS_ADDRESS: `unix:path=${join(root, 'i', 'no-bus')}` };
  const keychainToken = async (id) => (await storedTokenSet(env, id)).access_token;
  const driver = await startDriver(env, join(root, 'i', 'driver.log'));
  try {
    let session = await launch(driver);
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('Erin in the accounts list', async () => (await accountNames(session)).includes('Erin'), 30000);
    const [erin] = (await listJson(env)).filter((a) => a.email === 'erin@example.test');
    assert.ok(erin, 'keylink list shows Erin');

    await waitFor('the agent socket', () => existsSync(socket) && lstatSync(socket).isSocket());
    assert.equal(lstatSync(socket).mode & 0o777, 0o600, 'the socket is the user\'s alone');
    assert.equal(lstatSync(join(env.XDG_RUNTIME_DIR, 'keylink')).mode & 0o777, 0o700, 'in a private directory');
    const fromApp = (await keylink(noKeychain, 'token', 'erin@example.test')).trim();
    assert.equal(fromApp, await keychainToken(erin.id), 'the keychain\'s token, from the app');
    assert.equal((await keylink(env, 'token', erin.id)).trim(), fromApp);
    await assert.rejects(run(CLI_BIN, ['agent'], { env, timeout: 30000 }), (e) => {
      assert.equal(e.code, 1, e.message);
      assert.match(e.stderr, /another Keylink agent already serves/);
      return true;
    });
    tokens.add(fromApp);
    await collectIpc(session);

    // Killed (the WebDriver session's end kills the app): whatever it left, the keychain answers.
    await session.delete();
    await waitForAppGone();
    await assert.rejects(keylink(noKeychain, 'token', erin.id), (e) => e.code !== 0, 'no agent answers');
    assert.equal((await keylink(env, 'token', erin.id)).trim(), await keychainToken(erin.id));

    // Started again, the app serves again; stopped by its PID (SIGTERM), it removes its socket.
    session = await launch(driver);
    await waitFor('the agent to answer', async () =>
      (await keylink(noKeychain, 'token', erin.id).catch(() => '')).trim() === fromApp);
    const pid = await singleInstancePid();
    assert.ok(pid, 'the app owns its D-Bus name');
    process.kill(pid, 'SIGTERM');
    await waitFor('the app to exit', () => !existsSync(`/proc/${pid}/status`) ||
      /^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8')), 15000);
    assert.ok(!existsSync(socket), 'the agent socket is removed');
    await assert.rejects(keylink(noKeychain, 'token', erin.id), (e) => e.code !== 0, 'no agent answers');
    assert.equal((await keylink(env, 'token', erin.id)).trim(), await keychainToken(erin.id), 'the keychain answers');
  } finally {
    await driver.stop();
  }
});

test('(j) an account row shows its permissions; Allow more asks for the optional calendar scope, and a decline changes nothing', async () => {
  // A configuration naming calendar as optional, and accounts of their own.
  const config = join(root, 'j-keylink.toml');
  writeFileSync(config, demoProviderToml(idp, { ca: baseEnv.NODE_EXTRA_CA_CERTS }, [
    'scopes = ["openid", "profile", "email", "offline_access"]',
    'optional_scopes = ["calendar"]',
    'redirect = "deep-link"',
  ]));
  const common = { KEYLINK_UA_LOGIN: 'frank', KEYLINK_CONFIG: config, KEYLINK_DATA_DIR: join(root, 'j-data') };
  const chips = (card) => `return [...document.querySelectorAll('${card} .scopes li')].map((c) => [c.dataset.scope, c.textContent])`;
  const moreShown = (card) => `const b = document.querySelector('${card} button.more'); return Boolean(b && !b.hidden);`;

  // The person declines any consent to calendar.
  const refusing = scenarioEnv('j', { ...common, KEYLINK_UA_REFUSE_SCOPES: 'calendar' });
  let driver = await startDriver(refusing, join(root, 'j', 'driver.log'));
  let frank;
  let card;
  let before;
  try {
    const session = await launch(driver);
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(refusing.KEYLINK_TEST_GATE, 'go');
    await waitFor('Frank in the accounts list', async () => (await accountNames(session)).includes('Frank'), 30000);
    [frank] = await listJson(refusing);
    assert.equal(frank.email, 'frank@example.test');
    assert.ok(!frank.scopes.includes('calendar'), 'calendar is granted only when asked for');
    card = `.account[data-account="${frank.id}"]`;
    // The row says which permissions the account has: exactly its scopes, in words where
    // they are standard.
    before = await session.execute(chips(card));
    assert.deepEqual(before.map(([scope]) => scope), frank.scopes);
    const words = Object.fromEntries(before);
    assert.equal(words.openid, 'Sign-in');
    assert.equal(words.email, 'Email address');
    assert.ok(await session.execute(moreShown(card)), 'Allow more is offered: calendar is optional and missing');
    await snapshot(session, 'j1-permissions');

    await session.clickCss(`${card} button.more`);
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(refusing.KEYLINK_TEST_GATE, 'go');
    await waitFor('the declined notice', async () =>
      /The sign-in at Demo provider was declined, so nothing was changed: frank@example\.test keeps the permissions it had/
        .test(await session.textOf('#notices')), 30000);
    assert.equal(await session.textOf('#linking'), '', 'back to the accounts, no failure panel');
    assert.deepEqual(await session.execute(chips(card)), before, 'the row is as it was');
    assert.ok(await session.execute(moreShown(card)), 'Allow more is still offered');
    const [after] = await listJson(refusing);
    assert.deepEqual(after.scopes, frank.scopes, 'keylink list shows the same scopes');
    assert.equal(after.status, 'ok');
    await snapshot(session, 'j2-declined');
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }

  // The same person allows it.
  const allowing = { ...refusing, KEYLINK_UA_REFUSE_SCOPES: '' };
  driver = await startDriver(allowing, join(root, 'j', 'driver-2.log'));
  try {
    const session = await launch(driver);
    await waitFor('Allow more on Frank\'s row', () => session.execute(moreShown(card)));
    await session.clickCss(`${card} button.more`);
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(allowing.KEYLINK_TEST_GATE, 'go');
    await waitFor('calendar on Frank\'s row', async () =>
      (await session.execute(chips(card))).some(([scope]) => scope === 'calendar'), 30000);
    assert.match(await session.textOf('#notices'), /Frank \(frank@example\.test\) now allows calendar/);
    assert.ok(!(await session.execute(moreShown(card))), 'nothing more to allow');
    const [after] = await listJson(allowing);
    assert.equal(after.id, frank.id, 'the same account');
    assert.ok(after.scopes.includes('calendar'), `keylink list shows calendar: ${after.scopes}`);
    for (const scope of frank.scopes) assert.ok(after.scopes.includes(scope), `${scope} is kept`);
    assert.deepEqual((await session.execute(chips(card))).map(([scope]) => scope), after.scopes);
    // The refresh token still works after the new consent.
    assert.ok((await keylink(allowing, 'token', frank.id, '--min-ttl', '999999')).trim().length >= 16);
    await snapshot(session, 'j3-calendar-allowed');
    await collectTokens(allowing);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(k) Sign out everywhere: the account goes, the provider ends its session, and the app says so when the browser comes back', async () => {
  // Accounts of their own; a browser that keeps its cookies between runs, as a person's does,
  // so the provider's session outlives the sign-in; the provider's confirmation comes back
  // through xdg-open, as a sign-in's redirect does.
  const env = scenarioEnv('k', {
    KEYLINK_UA_LOGIN: 'grace',
    KEYLINK_UA_HANDLER: 'xdg-open',
    KEYLINK_UA_COOKIES: join(root, 'k-cookies.json'),
    KEYLINK_DATA_DIR: join(root, 'k-data'),
  });
  const driver = await startDriver(env, join(root, 'k', 'driver.log'));
  try {
    const session = await launch(driver);
    // Everything onAccountsChanged hands the page, as JSON.
    await session.execute(`
      window.__changes = [];
      window.__TAURI__.keylink.onAccountsChanged((c) => window.__changes.push(JSON.stringify(c)));
    `);
    const signIn = async (what) => {
      await session.clickCss('button.link[data-provider="demo"]');
      await waitFor('the "Continue in your browser" screen', async () =>
        (await session.textOf('#linking')).includes('Continue in your browser'));
      writeFileSync(env.KEYLINK_TEST_GATE, 'go');
      await waitFor(what, async () => (await accountNames(session)).includes('Grace'), 30000);
    };

    const ipcStart = ipcResponses.length;
    const start = await idp.stats();
    await signIn('Grace in the accounts list');
    const first = await idp.stats();
    assert.equal(first.logins, start.logins + 1, 'the first sign-in showed the login page');
    // While the provider's session lasts, signing in again shows no login page (what
    // signing out is to change).
    await session.clickCss('button.link[data-provider="demo"]');
    await waitFor('the "Continue in your browser" screen', async () =>
      (await session.textOf('#linking')).includes('Continue in your browser'));
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('the second sign-in', async () =>
      (await idp.stats()).token_requests.authorization_code === first.token_requests.authorization_code + 1, 30000);
    await waitFor('back to the accounts', async () => (await session.textOf('#linking')) === '', 20000);
    const linked = await idp.stats();
    assert.equal(linked.logins, first.logins, 'the provider knew the browser: no login page');
    const [grace] = await listJson(env);
    assert.equal(grace.email, 'grace@example.test');
    await collectTokens(env);
    const card = `.account[data-account="${grace.id}"]`;

    await session.clickCss(`${card} button.unlink`);
    await waitFor('the unlink dialog', () => session.execute('return document.getElementById("unlink-dialog").open'));
    assert.equal(await session.textOf('#unlink-signout'), 'Sign out everywhere');
    await snapshot(session, 'k1-sign-out-everywhere');
    await session.clickCss('#unlink-signout');
    await waitFor('Grace to be gone', async () => !(await accountNames(session)).includes('Grace'), 20000);
    assert.deepEqual(await listJson(env), [], 'keylink list shows no account');
    const notices = await session.textOf('#notices');
    assert.match(notices, /Grace \(grace@example\.test\) was unlinked/);
    assert.match(notices, /Continue in your browser to sign out\.\s*Your browser opened Demo provider's sign-out page/);
    assert.doesNotMatch(notices, /You are signed out/, 'not before the provider confirms');
    const unlinked = await idp.stats();
    assert.equal(unlinked.revocations, linked.revocations + 1, 'revoked at the provider');
    assert.equal(unlinked.sign_outs, linked.sign_outs, 'the session ends only once the person confirms');

    // The browser confirms at the provider, which sends it back to dev.keylink:/signed-out/demo.
    writeFileSync(env.KEYLINK_TEST_GATE, 'go');
    await waitFor('"You are signed out of Demo provider"', async () =>
      /You are signed out of Demo provider\./.test(await session.textOf('#notices')), 30000);
    assert.equal((await idp.stats()).sign_outs, linked.sign_outs + 1, 'the provider ended the session');
    assert.match(readFileSync(env.KEYLINK_UA_LOG, 'utf8'), /\/session\/end/, 'the browser went to the end_session_endpoint');
    assert.deepEqual(await listJson(env), [], 'the confirmation linked nothing');
    assert.doesNotMatch(await session.textOf('#notices'), /Continue in your browser to sign out/, 'answered, so gone');
    await snapshot(session, 'k2-signed-out');

    // What the page heard: the provider's name, and nothing of the URL or a token.
    const changes = await session.execute('return window.__changes');
    const confirmation = changes.map((c) => JSON.parse(c)).find((c) => c.signedOut);
    assert.deepEqual(confirmation.signedOut, { provider: 'demo', name: 'Demo provider' });
    assert.equal(confirmation.linked, null);
    assert.equal(confirmation.error, null);
    await collectIpc(session);
    const unlinkAnswer = ipcResponses.slice(ipcStart).find((r) => /keylink(%7C|\|)unlink/.test(r.url));
    assert.ok(unlinkAnswer, 'the unlink answer was recorded');
    assert.match(unlinkAnswer.body, /"signOut":"opened"/);
    for (const body of [...changes, unlinkAnswer.body]) {
      assert.doesNotMatch(body, /https?:|id_token|signed-out|session\/end|state=/, body);
      for (const token of tokens) assert.ok(!body.includes(token), 'a token reached the page');
    }

    // The same browser signs in again (the notices dismissed, as a person would, so the Link
    // button is in reach): the provider asks for the login again.
    while (await session.execute('return document.querySelectorAll("#notices .notice").length') > 0) {
      await session.clickCss('#notices .notice .dismiss');
    }
    await signIn('Grace linked again');
    assert.equal((await idp.stats()).logins, linked.logins + 1, 'the next link showed the login page');
    await collectTokens(env);
    await collectIpc(session);
    await session.delete();
  } finally {
    await driver.stop();
  }
});

test('(e) no IPC response during the run contains any of the tokens', () => {
  // Alice's and Bob's access, refresh and ID tokens (Bob's twice).
  assert.ok(tokens.size >= 9, `tokens were collected (${tokens.size})`);
  assert.ok(ipcResponses.length > 10, `IPC responses were recorded (${ipcResponses.length})`);
  assert.ok(ipcResponses.some((r) => r.body.includes('alice@example.test')), 'the recorder saw account data');
  for (const response of ipcResponses) {
    for (const token of tokens) {
      assert.ok(!response.body.includes(token), `an IPC response (${response.url}) contains a token`);
    }
  }
});
