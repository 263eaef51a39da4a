// What each function rejects with: Keylink's own {code, message} as a KeylinkError, Tauri's
// permission refusal as not_allowed, anything else as internal; and which arguments it takes.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { setup, account, settle, seen, rejection } from './harness.mjs'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')

test("Keylink's {code, message} is a KeylinkError with that code and message", async () => {
  const { api, plugin } = await setup()
  plugin.handlers.accounts = () => {
    throw { code: 'keychain', message: 'The keychain failed; try again.' }
  }
  const e = await rejection(api.accounts())
  assert.ok(e instanceof api.KeylinkError)
  assert.ok(e instanceof Error)
  assert.equal(e.name, 'KeylinkError')
  assert.equal(e.code, 'keychain')
  assert.equal(e.message, 'The keychain failed; try again.')
})

test('every code the core can send is passed on as itself, and the types list each', async () => {
  const core = readFileSync(join(root, '../keylink/src/error.rs'), 'utf8')
  const asStr = core.slice(core.indexOf('pub fn as_str(self)'))
  const codes = [...asStr.slice(0, asStr.indexOf('\n    }\n')).matchAll(/ErrorCode::\w+ => "(\w+)"/g)].map((m) => m[1])
  assert.ok(codes.includes('internal') && codes.length > 10, `codes read from the core: ${codes}`)
  const types = readFileSync(join(root, 'dist-js/index.d.ts'), 'utf8')
  const declared = /export type ErrorCode = ([^;]+);/.exec(types)[1].split('|').map((c) => c.trim().replace(/'/g, ''))
  assert.deepEqual([...declared].sort(), [...codes].sort())
  const { api, plugin } = await setup()
  for (const code of codes) {
    plugin.handlers.accounts = () => {
      throw { code, message: `A ${code} failure.` }
    }
    const e = await rejection(api.accounts())
    assert.equal(e.code, code)
    assert.equal(e.message, `A ${code} failure.`)
  }
})

// The strings Tauri 2.12 rejects with (tauri/src/webview/mod.rs and ipc/authority.rs).
const refusals = {
  'a release build': 'Command plugin:keylink|fetch not allowed by ACL',
  'a debug build, no permission':
    'keylink.fetch not allowed. Permissions associated with this command: keylink:allow-fetch',
  'a debug build, another window':
    'keylink.fetch not allowed on window "restricted", webview "restricted", URL: local\n\nallowed on: [windows: "main", URL: local]\n\nreferenced by: capability: main, permission: allow-fetch',
  'a debug build, another origin':
    'keylink.fetch not allowed on origin [https://example.test/]. Please create a capability that has this origin on the context field.\n\nFound matches for: - context: [local], referenced by: capability: main, permission: allow-fetch\n\nPermissions associated with this command: keylink:allow-fetch',
  'a debug build, a deny permission':
    'keylink.fetch explicitly denied on origin local\n\nreferenced by: capability: main, permission: deny-fetch'
}

for (const [where, refusal] of Object.entries(refusals)) {
  test(`Tauri's permission refusal in ${where} is not_allowed and names the permission`, async () => {
    const { api, plugin } = await setup()
    plugin.handlers.fetch = () => {
      throw refusal
    }
    const e = await rejection(api.fetch('a1', 'https://api.example.test/me'))
    assert.ok(e instanceof api.KeylinkError)
    assert.equal(e.code, 'not_allowed')
    assert.match(e.message, /fetch/)
    assert.match(e.message, /keylink:allow-fetch/)
    assert.equal(e.cause, refusal)
  })
}

test('a refusal of a default command names keylink:default', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.check_connection = () => {
    throw 'Command plugin:keylink|check_connection not allowed by ACL'
  }
  const e = await rejection(api.checkConnection('a1'))
  assert.equal(e.code, 'not_allowed')
  assert.match(e.message, /keylink:default \(or keylink:allow-check-connection\)/)
})

const notRefusals = {
  'a command the plugin does not have': 'Command plugin:keylink|accounts not found',
  'a debug build without the command': 'keylink.accounts not allowed. Command not found',
  'a debug build without the plugin': 'keylink.accounts not allowed. Plugin not found',
  "another command's refusal": 'Command plugin:keylink|fetch not allowed by ACL',
  'arguments Rust could not read': 'invalid args `account` for command `accounts`: invalid type: integer `1`, expected a string',
  'a string that says "not allowed" elsewhere': 'the value is not allowed here',
  'an Error': new TypeError('Failed to fetch'),
  'an unknown code': { code: 'mystery', message: 'Something.' },
  'a code without a message': { code: 'not_found' },
  'null': null
}

for (const [what, thrown] of Object.entries(notRefusals)) {
  test(`${what} is internal, with what was thrown as the cause`, async () => {
    const { api, plugin } = await setup()
    plugin.handlers.accounts = () => {
      throw thrown
    }
    const e = await rejection(api.accounts())
    assert.ok(e instanceof api.KeylinkError)
    assert.equal(e.code, 'internal')
    assert.match(e.message, /accounts command failed unexpectedly/)
    assert.equal(e.cause, thrown)
  })
}

test('account parameters take an Account or its id', async () => {
  const { api, plugin } = await setup()
  const alice = account('acc-alice')
  plugin.handlers.check_connection = ({ account: id }) => ({ account: account(id) })
  plugin.handlers.unlink = ({ account: id }) => ({ account: account(id), revoked: true, warning: null })
  plugin.handlers.reconnect = ({ account: id }) => account(id)
  plugin.handlers.fetch = () => ({ status: 200, headers: [], body: '' })
  for (const given of [alice, 'acc-alice']) {
    await api.checkConnection(given)
    await api.unlink(given)
    await api.reconnect(given)
    await api.fetch(given, 'https://api.example.test/me')
  }
  for (const name of ['check_connection', 'unlink', 'reconnect', 'fetch']) {
    assert.deepEqual(plugin.named(name).map((c) => c.args.account), ['acc-alice', 'acc-alice'], name)
  }
})

test('provider parameters take a Provider or its id', async () => {
  const { api, plugin } = await setup()
  const demo = { id: 'demo', name: 'Demo', redirect: 'loopback', redirectUri: 'http://127.0.0.1/callback', host: null, deviceSignIn: true, fromPolicy: false }
  plugin.handlers.link = () => account('a1')
  plugin.handlers.link_with_device = () => account('a1')
  for (const given of [demo, 'demo']) {
    await api.link(given)
    await api.linkWithDevice(given)
  }
  assert.deepEqual(plugin.named('link').map((c) => c.args.provider), ['demo', 'demo'])
  assert.deepEqual(plugin.named('link_with_device').map((c) => c.args.provider), ['demo', 'demo'])
})

test('an account that is neither an Account nor an id rejects with a TypeError and calls nothing', async () => {
  const { api, plugin } = await setup()
  for (const bad of [undefined, null, '', 42, {}, { id: 7 }, ['acc-alice']]) {
    for (const call of [
      () => api.checkConnection(bad),
      () => api.unlink(bad),
      () => api.reconnect(bad),
      () => api.fetch(bad, 'https://api.example.test/me')
    ]) {
      const e = await rejection(call())
      assert.ok(e instanceof TypeError, String(e))
      assert.match(e.message, /the account must be an Account or its id/)
    }
  }
  const e = await rejection(api.link(undefined))
  assert.match(e.message, /^link\(\): the provider must be a Provider or its id/)
  assert.deepEqual(plugin.calls, [])
  await settle()
  assert.deepEqual(seen.unhandled, [])
})
