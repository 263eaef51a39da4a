// The npm package tauri-plugin-keylink-api as `npm pack` makes it: exactly the files
// package.json lists, its types found by a TypeScript project that installs it, the crate's
// version, @tauri-apps/api as ^2, and a lockfile `npm ci` can install from the registry.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
const expected = ['README.md', 'dist-js/index.cjs', 'dist-js/index.d.ts', 'dist-js/index.js', 'package.json']

function npm(...args) {
  return execFileSync('npm', args, { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

test('npm pack ships exactly the files package.json lists', () => {
  const [packed] = JSON.parse(npm('pack', '--dry-run', '--json', '--ignore-scripts'))
  assert.equal(packed.name, 'tauri-plugin-keylink-api')
  assert.deepEqual(packed.files.map((f) => f.path).sort(), expected)
  assert.deepEqual([...pkg.files, 'package.json'].sort(), expected)
  for (const file of packed.files) assert.ok(file.size > 0, `${file.path} is empty`)
})

test('the types are in the package, where types and exports point', () => {
  assert.equal(pkg.types, './dist-js/index.d.ts')
  assert.equal(pkg.exports.types, './dist-js/index.d.ts')
  assert.equal(Object.keys(pkg.exports)[0], 'types', 'types first, or TypeScript never reads it')
  const types = readFileSync(join(root, 'dist-js/index.d.ts'), 'utf8')
  for (const fn of ['providers', 'accounts', 'link', 'linkWithDevice', 'reconnect', 'checkConnection', 'unlink', 'onAccountsChanged', 'fetch']) {
    assert.match(types, new RegExp(`export declare function ${fn}\\(`), fn)
  }
  assert.match(types, /export declare class KeylinkError extends Error/)
  assert.match(types, /@example/, 'JSDoc examples are kept in the declarations')
})

test('a TypeScript app that installs the packed tarball type-checks against it', () => {
  const app = mkdtempSync(join(tmpdir(), 'keylink-npm-'))
  try {
    const [{ filename }] = JSON.parse(npm('pack', '--json', '--ignore-scripts', '--pack-destination', app))
    const installed = join(app, 'node_modules/tauri-plugin-keylink-api')
    mkdirSync(installed, { recursive: true })
    execFileSync('tar', ['-xzf', join(app, filename), '-C', installed, '--strip-components=1'])
    mkdirSync(join(app, 'node_modules/@tauri-apps'), { recursive: true })
    symlinkSync(join(root, 'node_modules/@tauri-apps/api'), join(app, 'node_modules/@tauri-apps/api'))
    writeFileSync(join(app, 'package.json'), '{"type": "module"}')
    writeFileSync(join(app, 'app.ts'), `
import { accounts, fetch, onAccountsChanged, KeylinkError, type Account, type ErrorCode } from 'tauri-plugin-keylink-api'
const [first]: Account[] = await accounts()
const response: Response = await fetch(first, 'https://api.example.com/me', { headers: [['accept', 'application/json']], body: null })
const stop: () => void = await onAccountsChanged((change) => change.accounts.map((a) => a.id))
stop()
export const code: ErrorCode | null = response.ok ? null : new KeylinkError('internal', 'x').code
// @ts-expect-error a body fetch does not take
await fetch(first.id, 'https://api.example.com/me', { body: { a: 1 } })
`)
    const tsc = join(root, 'node_modules/.bin/tsc')
    for (const resolution of [['--module', 'esnext', '--moduleResolution', 'bundler'], ['--module', 'node16', '--moduleResolution', 'node16']]) {
      execFileSync(tsc, ['--noEmit', '--strict', '--target', 'es2022', '--lib', 'es2022,dom,dom.iterable', ...resolution, join(app, 'app.ts')], { cwd: app, stdio: 'inherit' })
    }
  } finally {
    rmSync(app, { recursive: true, force: true })
  }
})

test("the package's version is the crate's", () => {
  const cargo = readFileSync(join(root, '../../Cargo.toml'), 'utf8')
  const version = /\[workspace\.package\][^[]*?\nversion = "([^"]+)"/.exec(cargo)?.[1]
  assert.ok(version, 'the workspace version in Cargo.toml')
  assert.equal(pkg.version, version)
})

test('@tauri-apps/api is a dependency as ^2, and the lockfile installs from the registry', () => {
  assert.deepEqual(pkg.dependencies, { '@tauri-apps/api': '^2' })
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8'))
  assert.deepEqual(lock.packages[''].dependencies, pkg.dependencies)
  assert.deepEqual(lock.packages[''].devDependencies, pkg.devDependencies)
  assert.equal(lock.packages[''].version, pkg.version)
  const api = lock.packages['node_modules/@tauri-apps/api']
  assert.match(api.version, /^2\./)
  // Every package by name, version and checksum from whichever npm registry is configured:
  // none from git, a path or a tarball URL elsewhere.
  for (const [path, entry] of Object.entries(lock.packages)) {
    if (path === '') continue
    assert.match(path, /^node_modules\//, path)
    assert.match(entry.version, /^\d+\.\d+\.\d+$/, path)
    assert.match(entry.integrity, /^sha512-/, path)
    if (entry.resolved !== undefined) assert.match(entry.resolved, /^https:\/\/registry\.npmjs\.org\//, path)
  }
})
