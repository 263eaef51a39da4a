// The Linux packages as a distribution and a desktop meet them (run by scripts/test-packages.sh,
// under Xvfb in a private D-Bus session with its own gnome-keyring): the .deb unpacked into a
// temporary root (control fields, files, the desktop entry, the URL-scheme handler as the real
// xdg-utils and GIO resolve it, doctor, the policy example), the .rpm's metadata and file list,
// and, as root, the .deb installed with dpkg: sign-ins handed back through xdg-open (and
// gio open) to the installed app, cold and running, the token agent started through its
// socket the way systemd does, then `dpkg -r` and what stays. Every
// process started here is stopped by its PID.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync, copyFileSync, existsSync, lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, statSync,
  writeFileSync,
} from 'node:fs';
import { join, relative } from 'node:path';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';

import {
  REPO, TARGET, cleanup, demoProviderToml, makeCa, singleInstanceOwned, startIdp, stopAll, storedTokenSet, tempRoot,
  userEnv, waitForAppGone,
} from '../app/harness.js';
import { waitFor } from '../app/webdriver.js';

const execFileP = promisify(execFile);
const IS_ROOT = process.getuid() === 0;
const TAURI_CONF = JSON.parse(readFileSync(join(REPO, 'src-tauri/tauri.conf.json'), 'utf8'));
const VERSION = TAURI_CONF.version;
const USER_AGENT = join(REPO, 'tests/idp/user-agent.js');
const MIME = 'x-scheme-handler/dev.keylink';
const ENTRY = 'Keylink.desktop';
const DOC = 'usr/share/doc/keylink';
const USER_UNITS = 'usr/lib/systemd/user';
const SOCKET_UNIT = 'keylink-agent.socket';
const SERVICE_UNIT = 'keylink-agent.service';
// What `systemctl --global enable` of the socket creates, for every user's manager to read.
const SOCKET_WANTS = `etc/systemd/user/sockets.target.wants/${SOCKET_UNIT}`;

/** Runs a program to completion; resolves with its exit code and output, never throws for a
 * non-zero exit. */
async function run(program, args, options = {}) {
  try {
    const { stdout, stderr } = await execFileP(program, args, {
      maxBuffer: 64 * 1024 * 1024, timeout: 60000, ...options,
    });
    return { code: 0, stdout, stderr };
  } catch (error) {
    if (typeof error.code !== 'number') throw error;
    return { code: error.code, stdout: error.stdout, stderr: error.stderr };
  }
}

/** Like `run`, and the exit code must be 0. */
async function ok(program, args, options) {
  const result = await run(program, args, options);
  assert.equal(result.code, 0, `${program} ${args.join(' ')} exited ${result.code}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** The one package file in `dir` ending in `ext`. */
function onePackage(dir, ext) {
  const found = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)) : [];
  assert.equal(found.length, 1, `exactly one ${ext} in ${dir} (scripts/package.sh builds it): ${found}`);
  return join(dir, found[0]);
}

/** Every file and symlink under `dir`, relative to it. */
function filesUnder(dir) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isDirectory()) out.push(relative(dir, join(entry.parentPath, entry.name)));
  }
  return out.sort();
}

/** `[Desktop Entry]` keys of a desktop file. */
function desktopKeys(path) {
  const keys = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([A-Za-z0-9-]+)=(.*)$/.exec(line);
    if (m) keys[m[1]] = m[2];
  }
  return keys;
}

const started = new Set();

/** Starts a process and remembers it, so `after` can stop what a failed test left running. */
function start(program, args, options) {
  const child = spawn(program, args, { stdio: ['ignore', 'pipe', 'pipe'], ...options });
  started.add(child);
  const output = { stdout: [], stderr: [] };
  child.stdout?.on('data', (chunk) => output.stdout.push(chunk));
  child.stderr?.on('data', (chunk) => output.stderr.push(chunk));
  const exited = once(child, 'exit').then(([code, signal]) => {
    started.delete(child);
    return { code, signal };
  });
  return {
    child,
    pid: child.pid,
    running: () => child.exitCode === null && child.signalCode === null,
    stdout: () => Buffer.concat(output.stdout).toString(),
    stderr: () => Buffer.concat(output.stderr).toString(),
    /** Resolves with `{code, signal}` once it exits; rejects after `ms`. */
    async exit(ms, what) {
      let timer;
      const deadline = new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what} did not exit within ${ms} ms`)), ms);
      });
      try {
        return await Promise.race([exited, deadline]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

function kill(pid, signal = 'SIGTERM') {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

/** The PID owning the app's single-instance D-Bus name, or null. */
async function appPid() {
  const { code, stdout } = await run('dbus-send', ['--session', '--print-reply', '--dest=org.freedesktop.DBus',
    '/org/freedesktop/DBus', 'org.freedesktop.DBus.GetConnectionUnixProcessID', 'string:dev.keylink.app.SingleInstance']);
  const m = code === 0 ? /uint32 (\d+)/.exec(stdout) : null;
  return m ? Number(m[1]) : null;
}

/** The parent PIDs of `pid`, nearest first (from /proc). */
function ancestors(pid) {
  const chain = [];
  for (let p = pid; p > 1;) {
    let stat;
    try {
      stat = readFileSync(`/proc/${p}/stat`, 'utf8');
    } catch {
      break;
    }
    p = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    chain.push(p);
  }
  return chain;
}

/** A systemd unit file as `{section: {key: [values]}}` (a key may repeat). */
function unitKeys(path) {
  const sections = {};
  let section = null;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const header = /^\[(.+)\]$/.exec(line);
    const entry = /^([A-Za-z]+)=(.*)$/.exec(line);
    if (header) {
      section = header[1];
      sections[section] = {};
    } else if (entry && section) {
      (sections[section][entry[1]] ??= []).push(entry[2]);
    }
  }
  return sections;
}

/** The symlink at `path`'s target, or null when there is none (a dangling link counts). */
function symlinkTarget(path) {
  try {
    return lstatSync(path).isSymbolicLink() ? readlinkSync(path) : null;
  } catch {
    return null;
  }
}

let root; // temporary directory of the run
let unpacked; // the .deb extracted with dpkg-deb -x
let debFilesList; // its files as unpacked, before any test adds a MIME cache
let deb;
let rpm;
let emptyDir;
let homes = 0;

/**
 * A clean desktop user's environment: a fresh HOME (no per-user handler, no mimeapps.list),
 * no desktop environment detected, and the given system data directories. `/etc/xdg` is
 * hidden behind an empty directory unless `systemConfig` is true.
 */
function cleanUser({ dataDirs, path = process.env.PATH, systemConfig = false } = {}) {
  homes += 1;
  const env = { ...userEnv(join(root, `home-${homes}`), path), LANG: 'C.UTF-8' };
  if (dataDirs) env.XDG_DATA_DIRS = dataDirs;
  if (!systemConfig) env.XDG_CONFIG_DIRS = emptyDir;
  return env;
}

/** What handles dev.keylink for `env`: the real xdg-mime, then the real GIO. */
async function resolveHandler(env) {
  const xdgMime = (await ok('xdg-mime', ['query', 'default', MIME], { env })).trim();
  const gio = await run('gio', ['mime', MIME], { env });
  return { xdgMime, gio: `${gio.stdout}${gio.stderr}` };
}

/** `keylink doctor --json` run from `cli` with `env` (any exit code): the parsed report. */
async function doctor(cli, env) {
  const { code, stdout, stderr } = await run(cli, ['doctor', '--json'], { env });
  let report;
  try {
    report = JSON.parse(stdout);
  } catch {
    assert.fail(`doctor --json printed no JSON (exit ${code}):\n${stdout}\n${stderr}`);
  }
  return { code, report, check: (id) => report.checks.find((c) => c.id === id) };
}

let scriptRoots = 0;

/**
 * A stand-in for a machine the package was unpacked on: a root holding the package's user
 * units, and `script(path, args)`, which runs a maintainer script with /bin/sh as dpkg and rpm
 * do, its `systemctl` acting on that root (`systemctl --root`), or with no systemctl at all.
 */
function scriptRoot() {
  scriptRoots += 1;
  const dir = join(root, `script-root-${scriptRoots}`);
  mkdirSync(join(dir, USER_UNITS), { recursive: true });
  for (const unit of [SOCKET_UNIT, SERVICE_UNIT]) copyFileSync(join(unpacked, USER_UNITS, unit), join(dir, USER_UNITS, unit));
  const shim = join(root, `script-root-${scriptRoots}-bin`);
  mkdirSync(shim);
  writeFileSync(join(shim, 'systemctl'), `#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin exec systemctl --root='${dir}' "$@"\n`);
  chmodSync(join(shim, 'systemctl'), 0o755);
  return {
    link: () => symlinkTarget(join(dir, SOCKET_WANTS)),
    async script(path, args, { systemctl = true } = {}) {
      const PATH = systemctl ? `${shim}:/usr/sbin:/usr/bin:/sbin:/bin` : emptyDir;
      const result = await run('/bin/sh', [path, ...args], { env: { PATH } });
      assert.equal(result.code, 0, `${path} ${args.join(' ')} exited ${result.code}:\n${result.stderr}`);
    },
  };
}

before(async () => {
  root = tempRoot();
  emptyDir = join(root, 'empty');
  mkdirSync(emptyDir);
  deb = onePackage(join(TARGET, 'release/bundle/deb'), '.deb');
  rpm = onePackage(join(TARGET, 'release/bundle/rpm'), '.rpm');
  unpacked = join(root, 'unpacked');
  await ok('dpkg-deb', ['-x', deb, unpacked]);
  debFilesList = filesUnder(unpacked);
});

after(async () => {
  for (const entry of started) kill(entry.pid, 'SIGKILL');
  await stopAll();
  if (root && !process.env.KEYLINK_KEEP_TEST_DIR) await cleanup(root);
});

describe('the .deb, unpacked', () => {
  test('its control fields: name, version, section, maintainer, description, and the runtime libraries it depends on, not -dev packages', async () => {
    const fields = {};
    for (const name of ['Package', 'Version', 'Architecture', 'Section', 'Priority', 'Maintainer', 'Depends', 'Recommends', 'Description', 'Installed-Size']) {
      fields[name] = (await ok('dpkg-deb', ['-f', deb, name])).trim();
    }
    const arch = (await ok('dpkg', ['--print-architecture'])).trim();
    assert.equal(fields.Package, 'keylink');
    assert.equal(fields.Version, VERSION);
    assert.equal(fields.Architecture, arch);
    assert.equal(fields.Section, 'utils');
    assert.equal(fields.Priority, 'optional');
    assert.ok(fields.Maintainer, 'a Maintainer');
    assert.match(fields.Description, /^Link cloud accounts to desktop apps and scripts\n .+/);
    const depends = fields.Depends.split(',').map((d) => d.trim().split(' ')[0]);
    for (const lib of ['libc6', 'libgtk-3-0', 'libwebkit2gtk-4.1-0', 'libsoup-3.0-0', 'libglib2.0-0', 'desktop-file-utils']) {
      assert.ok(depends.includes(lib), `Depends names ${lib}: ${fields.Depends}`);
    }
    assert.equal(new Set(depends).size, depends.length, `no package named twice: ${fields.Depends}`);
    assert.deepEqual(depends.filter((d) => d.endsWith('-dev')), [], `no -dev package in Depends: ${fields.Depends}`);
    assert.match(fields.Recommends, /xdg-utils/);
    assert.match(fields.Recommends, /gnome-keyring/);
    assert.ok(Number(fields['Installed-Size']) > 1000, `Installed-Size in KiB: ${fields['Installed-Size']}`);
  });

  test('its files: the three programs in /usr/bin (stripped), the desktop entry, icons, docs, licences and the policy example; nothing in /etc', async () => {
    const files = debFilesList;
    const expected = [
      'usr/bin/keylink',
      'usr/bin/keylink-app',
      'usr/bin/docker-credential-keylink',
      `usr/share/applications/${ENTRY}`,
      'usr/share/icons/hicolor/32x32/apps/keylink-app.png',
      'usr/share/icons/hicolor/128x128/apps/keylink-app.png',
      'usr/share/icons/hicolor/1024x1024/apps/keylink-app.png',
      `${DOC}/CHANGELOG.md`,
      `${DOC}/LICENSE-APACHE`,
      `${DOC}/LICENSE-MIT`,
      `${DOC}/README.md`,
      `${DOC}/copyright`,
      `${DOC}/deployment.md`,
      `${DOC}/examples/keylink.toml`,
    ];
    for (const file of expected) assert.ok(files.includes(file), `the package has /${file}; it has:\n${files.join('\n')}`);
    assert.deepEqual(files.filter((f) => f.startsWith('etc/')), [], 'no file in /etc: an active policy is the admin\'s to write');
    assert.deepEqual(files.filter((f) => !f.startsWith('usr/')), [], 'everything under /usr');
    for (const bin of ['keylink', 'keylink-app', 'docker-credential-keylink']) {
      const path = join(unpacked, 'usr/bin', bin);
      assert.equal(statSync(path).mode & 0o777, 0o755, `/usr/bin/${bin} is 0755`);
      const sections = await ok('readelf', ['-S', '-W', path]);
      assert.doesNotMatch(sections, /\.symtab|\.debug_/, `/usr/bin/${bin} is stripped`);
    }
    assert.match(await ok(join(unpacked, 'usr/bin/keylink'), ['--help']), /providers/);
    for (const doc of ['README.md', 'CHANGELOG.md', 'copyright', 'LICENSE-MIT']) {
      assert.equal(statSync(join(unpacked, DOC, doc)).mode & 0o777, 0o644, `${doc} is 0644`);
    }
  });

  test('its desktop entry is valid and runs keylink-app with the URL (%u) for x-scheme-handler/dev.keylink', async () => {
    const entry = join(unpacked, 'usr/share/applications', ENTRY);
    const validated = await run('desktop-file-validate', [entry]);
    assert.equal(validated.code, 0, `desktop-file-validate:\n${validated.stdout}${validated.stderr}`);
    assert.equal(`${validated.stdout}${validated.stderr}`.trim(), '', 'not even a hint from desktop-file-validate');
    const keys = desktopKeys(entry);
    assert.equal(keys.Exec, 'keylink-app %u', 'a bare program name, found on PATH, with the URL as its argument');
    assert.equal(keys.Type, 'Application');
    assert.equal(keys.Name, 'Keylink');
    assert.equal(keys.MimeType, `${MIME};`);
    // The template names the scheme the deep-link plugin is configured with.
    const { schemes } = TAURI_CONF.plugins['deep-link'].desktop;
    assert.equal(keys.MimeType, schemes.map((s) => `x-scheme-handler/${s};`).join(''));
    assert.equal(keys.Icon, 'keylink-app');
    assert.ok(keys.Comment, 'a Comment');
    assert.equal(keys.Terminal, 'false');
  });

  test('xdg-mime and GIO resolve dev.keylink to the packaged entry (clean HOME; XDG_DATA_DIRS the unpacked root) once the dpkg trigger has built the MIME cache', async () => {
    const share = join(unpacked, 'usr/share');
    const env = cleanUser({ dataDirs: share, path: `${join(unpacked, 'usr/bin')}:${process.env.PATH}` });
    let found = await resolveHandler(env);
    assert.equal(found.xdgMime, ENTRY, 'xdg-mime scans the entries when there is no cache');
    // GIO (gio open, Firefox) reads only the cache: why the package depends on
    // desktop-file-utils, whose dpkg trigger builds it when a package adds a desktop entry.
    assert.match(found.gio, /No default applications/, found.gio);
    const applications = join(share, 'applications');
    await ok('update-desktop-database', [applications]);
    const cache = readFileSync(join(applications, 'mimeinfo.cache'), 'utf8');
    assert.match(cache, new RegExp(`^${MIME.replace('/', '\\/')}=${ENTRY};$`, 'm'));
    found = await resolveHandler(env);
    assert.equal(found.xdgMime, ENTRY, 'xdg-mime reads the cache');
    assert.match(found.gio, new RegExp(`Default application for .*: ${ENTRY}`), found.gio);
    // GIO also needs the program on PATH.
    const withoutProgram = await resolveHandler({ ...env, PATH: process.env.PATH });
    assert.match(withoutProgram.gio, /No default applications/, withoutProgram.gio);
  });

  test('keylink doctor finds the packaged handler the way xdg-open does: the system entry and keylink-app on PATH', async () => {
    const share = join(unpacked, 'usr/share');
    const bin = join(unpacked, 'usr/bin');
    const env = cleanUser({ dataDirs: share, path: `${bin}:${process.env.PATH}` });
    const { check } = await doctor(join(bin, 'keylink'), env);
    const scheme = check('url_scheme');
    assert.equal(scheme.status, 'ok', JSON.stringify(scheme));
    assert.ok(scheme.message.includes(join(share, 'applications', ENTRY)), scheme.message);
    assert.ok(scheme.message.includes(join(bin, 'keylink-app')), scheme.message);
    assert.equal(scheme.fix, null);
  });

  test('the token agent\'s systemd user units: the socket listens, private, where keylink agent and keylink token meet, for sockets.target; the service runs the packaged keylink agent', async () => {
    for (const unit of [SOCKET_UNIT, SERVICE_UNIT]) {
      assert.equal(statSync(join(unpacked, USER_UNITS, unit)).mode & 0o777, 0o644, `/${USER_UNITS}/${unit} is 0644`);
    }
    const socket = unitKeys(join(unpacked, USER_UNITS, SOCKET_UNIT));
    assert.ok(socket.Unit.Description && socket.Unit.Documentation, 'a Description and a Documentation');
    assert.deepEqual(socket.Socket.ListenStream, ['%t/keylink/dev.keylink.sock']);
    assert.deepEqual(socket.Socket.SocketMode, ['0600']);
    assert.deepEqual(socket.Socket.DirectoryMode, ['0700']);
    assert.deepEqual(socket.Install.WantedBy, ['sockets.target']);
    // The path is the agent's own: started without systemd, it binds exactly there (%t is
    // the user's XDG_RUNTIME_DIR).
    const env = cleanUser();
    const agent = start(join(unpacked, 'usr/bin/keylink'), ['agent'], { env });
    const serving = await waitFor('keylink agent to say where it serves',
      () => / on (\/\S+) until stopped/.exec(agent.stderr()) ?? (agent.running() ? null : 'exited'), 20000);
    kill(agent.pid);
    await agent.exit(10000, 'keylink agent');
    assert.notEqual(serving, 'exited', `keylink agent stopped:\n${agent.stderr()}`);
    assert.equal(serving[1], socket.Socket.ListenStream[0].replace('%t', env.XDG_RUNTIME_DIR));

    const service = unitKeys(join(unpacked, USER_UNITS, SERVICE_UNIT));
    assert.ok(service.Unit.Description && service.Unit.Documentation, 'a Description and a Documentation');
    assert.deepEqual(service.Service.ExecStart, ['/usr/bin/keylink agent']);
    assert.ok(debFilesList.includes('usr/bin/keylink'), 'the program it runs is in the package');
    assert.deepEqual(service.Unit.Requires, [SOCKET_UNIT]);
    assert.equal(service.Install, undefined, 'no [Install]: the socket starts it');
  });

  test('its maintainer scripts enable the agent\'s socket for every user on a first installation, keep the administrator\'s choice on upgrades, disable it on removal, and skip all that without systemctl', async () => {
    const control = join(root, 'deb-control');
    await ok('dpkg-deb', ['-e', deb, control]);
    const postinst = join(control, 'postinst');
    const prerm = join(control, 'prerm');
    for (const script of [postinst, prerm]) assert.equal(statSync(script).mode & 0o777, 0o755, `${script} is 0755`);
    const machine = scriptRoot();
    const target = `/${USER_UNITS}/${SOCKET_UNIT}`;
    await machine.script(postinst, ['configure', '']);
    assert.equal(machine.link(), target, `a first installation links /${SOCKET_WANTS}`);
    await machine.script(prerm, ['upgrade', '0.2.0']);
    assert.equal(machine.link(), target, 'an upgrade leaves it');
    await machine.script(prerm, ['remove']);
    assert.equal(machine.link(), null, 'removal unlinks it');
    await machine.script(postinst, ['configure', VERSION]);
    assert.equal(machine.link(), null, 'an upgrade does not enable what the administrator disabled');
    await machine.script(postinst, ['abort-remove']);
    assert.equal(machine.link(), target, 'a removal rolled back enables it again');

    const bare = scriptRoot();
    await bare.script(postinst, ['configure', ''], { systemctl: false });
    await bare.script(prerm, ['remove'], { systemctl: false });
    assert.equal(bare.link(), null, 'nothing without systemctl, and no failure');
  });

  test('the policy example changes nothing as shipped, and is a valid locked policy once its settings are uncommented', async () => {
    const cli = join(unpacked, 'usr/bin/keylink');
    const example = join(unpacked, DOC, 'examples/keylink.toml');
    const env = { ...cleanUser(), KEYLINK_POLICY: example };
    const shipped = JSON.parse(await ok(cli, ['providers', '--json'], { env }));
    assert.deepEqual(shipped.filter((p) => p.source === 'policy'), [], 'no provider comes from the commented example');

    // "#key = value" lines are settings; "# text" lines explain.
    const dir = join(root, 'policy');
    mkdirSync(dir);
    const policy = join(dir, 'keylink.toml');
    const text = readFileSync(example, 'utf8').split('\n').map((l) => (/^#[^\s#]/.test(l) ? l.slice(1) : l));
    writeFileSync(policy, text.join('\n'));
    const tls = await makeCa(dir);
    writeFileSync(join(dir, 'corp-root.pem'), readFileSync(tls.ca));
    const result = await run(cli, ['providers', '--json'], { env: { ...env, KEYLINK_POLICY: policy } });
    assert.equal(result.code, 0, `the uncommented example is a valid policy:\n${result.stderr}`);
    const providers = JSON.parse(result.stdout);
    for (const id of ['corp', 'sso']) {
      const provider = providers.find((p) => p.id === id);
      assert.ok(provider, `provider ${id}: ${result.stdout}`);
      assert.equal(provider.source, 'policy');
      assert.equal(provider.locked, true);
    }
  });
});

describe('the .rpm', () => {
  test('its metadata, library requirements and file list match the .deb', async () => {
    const info = await ok('rpm', ['-qp', '--queryformat', '%{NAME}|%{VERSION}|%{LICENSE}|%{SUMMARY}\n', rpm]);
    const [name, version, license, summary] = info.trim().split('|');
    assert.equal(name, 'keylink');
    assert.equal(version, VERSION);
    assert.equal(license, 'MIT OR Apache-2.0');
    assert.equal(summary, 'Link cloud accounts to desktop apps and scripts');
    const requires = (await ok('rpm', ['-qp', '--requires', rpm])).split('\n').map((r) => r.trim());
    for (const lib of ['libwebkit2gtk-4.1.so.0()(64bit)', 'libgtk-3.so.0()(64bit)', 'libc.so.6()(64bit)', 'desktop-file-utils']) {
      assert.ok(requires.includes(lib), `requires ${lib}:\n${requires.join('\n')}`);
    }
    assert.deepEqual(requires.filter((r) => /-devel\b/.test(r)), []);
    // A scriptlet's interpreter is required once for each scriptlet (Requires(post) and
    // Requires(preun): /bin/sh, as rpmbuild writes them); everything else once.
    const kinds = (await ok('rpm', ['-qp', '--queryformat', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]', rpm])).trim().split('\n');
    assert.equal(new Set(kinds).size, kinds.length, `no requirement twice:\n${kinds.join('\n')}`);
    const rpmFiles = (await ok('rpm', ['-qlp', rpm])).trim().split('\n')
      .filter((f) => !f.startsWith('/usr/share/licenses/')).map((f) => f.slice(1));
    const debFiles = debFilesList
      .filter((f) => !['copyright', 'LICENSE-MIT', 'LICENSE-APACHE'].some((l) => f === `${DOC}/${l}`));
    // rpm -ql lists directories too; every file of the .deb is in it, and nothing else but
    // directories and the licences (in /usr/share/licenses on RPM systems).
    for (const file of debFiles) assert.ok(rpmFiles.includes(file), `the .rpm has /${file}`);
    const licences = (await ok('rpm', ['-qlp', rpm])).split('\n').filter((f) => f.startsWith('/usr/share/licenses/keylink/'));
    assert.deepEqual(licences.sort(), ['/usr/share/licenses/keylink/LICENSE-APACHE', '/usr/share/licenses/keylink/LICENSE-MIT']);
  });

  test('its agent units are the .deb\'s; its %post enables the socket for every user on a first installation only, and %preun disables it on the last removal only', async () => {
    // rpm --dump: path size mtime sha256 mode ...
    const dump = (await ok('rpm', ['-qp', '--dump', rpm])).split('\n').map((l) => l.split(' '));
    for (const unit of [SOCKET_UNIT, SERVICE_UNIT]) {
      const entry = dump.find((f) => f[0] === `/${USER_UNITS}/${unit}`);
      assert.ok(entry, `the .rpm has /${USER_UNITS}/${unit}`);
      const debDigest = createHash('sha256').update(readFileSync(join(unpacked, USER_UNITS, unit))).digest('hex');
      assert.equal(entry[3], debDigest, `${unit} as in the .deb`);
      assert.equal(entry[4], '0100644', `${unit} is 0644`);
    }
    // The scriptlets as rpm runs them: /bin/sh with $1 the number of installed versions
    // afterwards (1 first install, 2 upgrade; for %preun 1 upgrade, 0 last removal).
    const scriptlet = async (tag) => {
      const path = join(root, `rpm-${tag}.sh`);
      writeFileSync(path, await ok('rpm', ['-qp', '--queryformat', `%{${tag}}`, rpm]));
      return path;
    };
    const kinds = (await ok('rpm', ['-qp', '--queryformat', '[%{REQUIRENAME} %{REQUIREFLAGS:deptype}\n]', rpm])).split('\n');
    for (const kind of ['/bin/sh post,interp', '/bin/sh preun,interp']) assert.ok(kinds.includes(kind), `Requires ${kind}:\n${kinds.join('\n')}`);
    const post = await scriptlet('POSTIN');
    const preun = await scriptlet('PREUN');
    const machine = scriptRoot();
    const target = `/${USER_UNITS}/${SOCKET_UNIT}`;
    await machine.script(post, ['1']);
    assert.equal(machine.link(), target, `a first installation links /${SOCKET_WANTS}`);
    await machine.script(preun, ['1']);
    assert.equal(machine.link(), target, 'an upgrade leaves it');
    await machine.script(preun, ['0']);
    assert.equal(machine.link(), null, 'the last removal unlinks it');
    await machine.script(post, ['2']);
    assert.equal(machine.link(), null, 'an upgrade does not enable what the administrator disabled');
    const bare = scriptRoot();
    await bare.script(post, ['1'], { systemctl: false });
    await bare.script(preun, ['0'], { systemctl: false });
    assert.equal(bare.link(), null, 'nothing without systemctl, and no failure');
  });
});

describe('the .deb, installed with dpkg', { skip: !IS_ROOT && 'SKIPPED: not root, so the .deb is not installed (CI runs this as root)' }, () => {
  let idp;
  let env; // the desktop user: clean HOME, the machine's own XDG data directories
  let dataDir;
  const linked = [];

  before(async () => {
    const status = await run('dpkg-query', ['-W', '-f', '${Status} ${Version}', 'keylink']);
    if (status.code === 0 && status.stdout.startsWith('install ok installed')) {
      console.log(`# a keylink package is installed already (${status.stdout}); the one under test replaces it and is removed afterwards`);
    }
    await ok('dpkg', ['-i', deb]);
    const tls = await makeCa(root);
    idp = await startIdp(tls, join(root, 'idp.log'));
    const config = join(root, 'keylink.toml');
    writeFileSync(config, demoProviderToml(idp, tls, ['redirect = "deep-link"']));
    dataDir = join(root, 'data');
    env = {
      ...cleanUser({ systemConfig: true }),
      KEYLINK_CONFIG: config,
      KEYLINK_DATA_DIR: dataDir,
      NODE_EXTRA_CA_CERTS: tls.ca,
      RUST_LOG: 'keylink=info,keylink_app=info,tauri_plugin_keylink=info',
    };
  });

  after(async () => {
    const pid = await appPid().catch(() => null);
    if (pid) kill(pid);
    await waitForAppGone().catch(() => {});
    const status = await run('dpkg-query', ['-W', '-f', '${Status}', 'keylink']);
    if (status.code === 0 && status.stdout.startsWith('install ok installed')) await run('dpkg', ['-r', 'keylink']);
  });

  /** `keylink link demo` as `login`, the browser (the scripted user agent) stopping at the
   * redirect like a browser handing it to the OS; resolves with the redirect URL and a
   * function that waits for the linked account. */
  async function startLink(login) {
    const captured = join(root, `${login}.redirect`);
    const link = start('/usr/bin/keylink', ['link', 'demo', '--json', '--timeout', '90'], {
      env: { ...env, BROWSER: USER_AGENT, KEYLINK_UA_CAPTURE: captured, KEYLINK_UA_LOGIN: login },
    });
    await waitFor(`${login}'s sign-in at the provider`, () => existsSync(captured) || !link.running(), 30000);
    assert.ok(existsSync(captured), `keylink link stopped before the redirect:\n${link.stderr()}`);
    const url = readFileSync(captured, 'utf8').trim();
    assert.match(url, /^dev\.keylink:\/callback\/demo\?/);
    return {
      url,
      async account() {
        const { code } = await link.exit(60000, 'keylink link');
        assert.equal(code, 0, `keylink link:\n${link.stderr()}`);
        const account = JSON.parse(link.stdout());
        assert.equal(account.email, `${login}@example.test`);
        linked.push(account.id);
        return account;
      },
    };
  }

  /** `program url` as the browser runs it, with the user's environment (no BROWSER, so
   * xdg-open cannot fall back to it). */
  function open(program, args) {
    const openEnv = { ...env };
    delete openEnv.BROWSER;
    return start(program, args, { env: openEnv });
  }

  async function listedEmails(cli = '/usr/bin/keylink') {
    return JSON.parse(await ok(cli, ['list', '--json'], { env })).map((a) => a.email).sort();
  }

  function assertNoPerUserHandler() {
    const applications = join(env.XDG_DATA_HOME, 'applications');
    const written = existsSync(applications) ? readdirSync(applications) : [];
    assert.deepEqual(written, [], 'the installed app wrote no per-user handler entry');
    assert.ok(!existsSync(join(env.XDG_CONFIG_HOME, 'mimeapps.list')), 'and no per-user default (mimeapps.list)');
  }

  test('dpkg put the programs in /usr/bin and the entry in /usr/share/applications; xdg-mime and doctor name the system entry', async () => {
    for (const path of ['/usr/bin/keylink-app', '/usr/bin/keylink', `/usr/share/applications/${ENTRY}`, `/${DOC}/examples/keylink.toml`]) {
      assert.ok(existsSync(path), `${path} is installed`);
    }
    assert.ok(!existsSync('/etc/keylink/keylink.toml') || (await run('dpkg', ['-S', '/etc/keylink/keylink.toml'])).code !== 0,
      'the package ships no active policy');
    const cache = readFileSync('/usr/share/applications/mimeinfo.cache', 'utf8');
    assert.match(cache, new RegExp(`^${MIME.replace('/', '\\/')}=(.*;)?${ENTRY};`, 'm'), 'desktop-file-utils\' trigger added the entry to the MIME cache');
    const found = await resolveHandler(env);
    assert.equal(found.xdgMime, ENTRY);
    assert.match(found.gio, new RegExp(`Default application for .*: ${ENTRY}`), found.gio);
    const { code, report, check } = await doctor('/usr/bin/keylink', env);
    const scheme = check('url_scheme');
    assert.equal(scheme.status, 'ok', JSON.stringify(scheme));
    assert.ok(scheme.message.includes(`/usr/share/applications/${ENTRY}`), scheme.message);
    assert.ok(scheme.message.includes('/usr/bin/keylink-app'), scheme.message);
    assert.equal(code, 0, `doctor passes on a good installation: ${JSON.stringify(report.checks)}`);
  });

  test('dpkg put the agent\'s units in /usr/lib/systemd/user and enabled the socket for every user; systemd-analyze verifies them', async () => {
    for (const unit of [SOCKET_UNIT, SERVICE_UNIT]) assert.ok(existsSync(`/${USER_UNITS}/${unit}`), `/${USER_UNITS}/${unit} is installed`);
    assert.equal(symlinkTarget(`/${SOCKET_WANTS}`), `/${USER_UNITS}/${SOCKET_UNIT}`, `the postinst linked /${SOCKET_WANTS}`);
    assert.equal((await ok('systemctl', ['--global', 'is-enabled', SOCKET_UNIT])).trim(), 'enabled');
    // As a user's manager loads them (%t needs XDG_RUNTIME_DIR); ExecStart's program must exist.
    const verified = await run('systemd-analyze', ['--user', 'verify', `/${USER_UNITS}/${SOCKET_UNIT}`, `/${USER_UNITS}/${SERVICE_UNIT}`], { env });
    assert.equal(verified.code, 0, `systemd-analyze --user verify:\n${verified.stdout}${verified.stderr}`);
    assert.equal(`${verified.stdout}${verified.stderr}`.trim(), '', 'not even a warning from systemd-analyze');
  });

  test('cold: the app is not running; xdg-open starts the installed app with the redirect and the link completes', async () => {
    await waitForAppGone();
    assert.equal(await singleInstanceOwned(), false, 'no app instance before the redirect');
    const link = await startLink('bob');
    const opener = open('xdg-open', [link.url]);
    const pid = await waitFor('xdg-open to start keylink-app', async () => appPid(), 30000);
    assert.equal(readlinkSync(`/proc/${pid}/exe`), '/usr/bin/keylink-app', 'the installed program runs');
    assert.ok(ancestors(pid).includes(opener.pid), 'started by xdg-open (a new process, not one of ours)');
    const account = await link.account();
    assert.ok((await listedEmails()).includes('bob@example.test'));
    assert.equal(await appPid(), pid, 'the cold-started app is still the running instance');
    await waitFor('the app\'s log line', () => /installed by a package/.test(opener.stderr()), 10000);
    assertNoPerUserHandler();
    assert.equal(account.provider, 'demo');
    kill(pid);
    // xdg-open waits for the app it started; stopped by a signal, the app makes it exit 4.
    await opener.exit(20000, 'xdg-open');
    await waitForAppGone();
  });

  test('running: the app is open; xdg-open and gio open hand redirects to it through a second instance that exits', async () => {
    await waitForAppGone();
    const app = start('/usr/bin/keylink-app', [], { env });
    await waitFor('the app to own its single-instance name', async () => (await appPid()) === app.pid, 30000);

    const carol = await startLink('carol');
    const xdgOpen = open('xdg-open', [carol.url]);
    const { code } = await xdgOpen.exit(30000, 'xdg-open (the second instance forwards and exits)');
    assert.equal(code, 0, `xdg-open:\n${xdgOpen.stderr()}`);
    await carol.account();

    const dave = await startLink('dave');
    const gioOpen = open('gio', ['open', dave.url]);
    assert.equal((await gioOpen.exit(30000, 'gio open')).code, 0, `gio open:\n${gioOpen.stderr()}`);
    await dave.account();

    assert.ok(app.running(), 'the first instance still runs');
    assert.equal(await appPid(), app.pid, 'and is still the one instance');
    assert.deepEqual(await listedEmails(), ['bob@example.test', 'carol@example.test', 'dave@example.test']);
    assertNoPerUserHandler();
    kill(app.pid);
    await app.exit(20000, 'keylink-app');
    await waitForAppGone();
  });

  test('socket activation as the user manager does it: the installed keylink agent starts on the first keylink token and answers it on the socket the unit names', async () => {
    assert.ok(linked.length > 0, 'an account linked by the tests above');
    const account = linked[0];
    // A private XDG_RUNTIME_DIR, and the socket's directory as the unit's DirectoryMode makes it.
    const runtime = join(root, 'agent-run');
    const listen = unitKeys(`/${USER_UNITS}/${SOCKET_UNIT}`).Socket.ListenStream[0];
    const socket = listen.replace('%t', runtime);
    mkdirSync(join(socket, '..'), { recursive: true });
    chmodSync(runtime, 0o700);
    chmodSync(join(socket, '..'), 0o700);
    const userEnv = { ...env, XDG_RUNTIME_DIR: runtime };
    const [program, ...args] = unitKeys(`/${USER_UNITS}/${SERVICE_UNIT}`).Service.ExecStart[0].split(' ');
    // Like a service's, the agent's environment is only what is handed to it (-E): here the
    // test user's session, as the user manager has it.
    const agentEnv = { ...userEnv, RUST_LOG: 'keylink=debug' };
    const pass = Object.keys(agentEnv).flatMap((name) => ['-E', name]);
    const activator = start('systemd-socket-activate', [...pass, '-l', socket, program, ...args], { env: agentEnv });
    try {
      await waitFor('the socket', () => {
        assert.ok(activator.running(), `systemd-socket-activate exited:\n${activator.stderr()}`);
        return existsSync(socket) && statSync(socket).isSocket();
      }, 20000);
      // Like systemd, it starts the service only when the first connection comes.
      assert.equal(readlinkSync(`/proc/${activator.pid}/exe`), '/usr/bin/systemd-socket-activate', 'no agent before a request');

      const token = await run('/usr/bin/keylink', ['token', account], { env: userEnv });
      assert.equal(token.code, 0, `keylink token:\n${token.stderr}`);
      await waitFor('the agent\'s answer in its log', () => activator.stderr().includes('the agent answered a token request'), 20000);
      assert.equal(readlinkSync(`/proc/${activator.pid}/exe`), '/usr/bin/keylink', 'the installed keylink agent took over the socket');
      assert.ok(activator.stderr().includes(`serving the tokens of dev.keylink on ${socket} until`), activator.stderr());
      assert.equal(token.stdout.trim(), (await storedTokenSet(env, account)).access_token, 'the account\'s access token');
    } finally {
      kill(activator.pid);
      await activator.exit(10000, 'keylink agent');
    }
  });

  test('a checkout\'s leftovers: the app run from the checkout shadows the package; doctor names the files and the command, and after it xdg-mime resolves to the package\'s entry', async () => {
    // Nothing of the installed app may be running, or the checkout's app would only forward.
    const running = await appPid();
    if (running) kill(running);
    await waitForAppGone();
    // A user who ran the app from a checkout first: it registered itself for dev.keylink.
    const user = cleanUser({ systemConfig: true });
    const leftover = join(user.XDG_DATA_HOME, 'applications/keylink-app-handler.desktop');
    const checkoutApp = start(join(TARGET, 'debug/keylink-app'), [], { env: user });
    try {
      await waitFor('the checkout app to register itself', async () => existsSync(leftover) && (await appPid()) === checkoutApp.pid, 60000);
    } finally {
      kill(checkoutApp.pid);
      await checkoutApp.exit(20000, 'the checkout app');
      await waitForAppGone();
    }
    assert.notEqual((await resolveHandler(user)).xdgMime, ENTRY, 'the checkout\'s entry shadows the package\'s');

    // doctor of the installed package says so, naming the file and the whole fix.
    const { check } = await doctor('/usr/bin/keylink', user);
    const scheme = check('url_scheme');
    assert.equal(scheme.status, 'warn', JSON.stringify(scheme));
    assert.ok(scheme.message.includes(leftover), scheme.message);
    assert.ok(scheme.message.includes(`/usr/share/applications/${ENTRY}`), scheme.message);
    assert.match(scheme.fix, new RegExp(`xdg-mime default ${ENTRY} ${MIME}$`), scheme.fix);

    // The person runs it, as the README says.
    await ok('sh', ['-c', scheme.fix], { env: user });
    const found = await resolveHandler(user);
    assert.equal(found.xdgMime, ENTRY, 'xdg-mime resolves to the package\'s entry');
    assert.match(found.gio, new RegExp(`Default application for .*: ${ENTRY}`), found.gio);
    const after = (await doctor('/usr/bin/keylink', user)).check('url_scheme');
    assert.equal(after.status, 'ok', JSON.stringify(after));
    assert.ok(after.message.includes('/usr/bin/keylink-app'), after.message);
  });

  test('dpkg -r removes the programs and the entry; the accounts, their keychain entries and the data directory stay', async () => {
    await waitForAppGone();
    await ok('dpkg', ['-r', 'keylink']);
    for (const path of ['/usr/bin/keylink-app', '/usr/bin/keylink', `/usr/share/applications/${ENTRY}`, `/${DOC}`,
      `/${USER_UNITS}/${SOCKET_UNIT}`, `/${USER_UNITS}/${SERVICE_UNIT}`]) {
      assert.ok(!existsSync(path), `${path} is gone`);
    }
    assert.equal(symlinkTarget(`/${SOCKET_WANTS}`), null, `the prerm removed /${SOCKET_WANTS} (no dangling link left)`);
    assert.equal((await resolveHandler(env)).xdgMime, '', 'nothing handles dev.keylink any more');
    assert.ok(existsSync(join(dataDir, 'keychain-id')), 'the data directory stays');
    // The same CLI, from the unpacked package: what a reinstall finds.
    const cli = join(unpacked, 'usr/bin/keylink');
    assert.deepEqual(await listedEmails(cli), ['bob@example.test', 'carol@example.test', 'dave@example.test']);
    for (const id of linked) {
      const tokens = await storedTokenSet(env, id);
      assert.ok(tokens.access_token, `the keychain still holds ${id}'s tokens`);
    }
    const token = await run(cli, ['token', linked[0]], { env });
    assert.equal(token.code, 0, `a token for ${linked[0]} after removal and reinstall:\n${token.stderr}`);
  });
});
