// unlink(account, { signOut: true }) and onSignedOut: the flag reaches the plugin's command only
// when asked for, the old call form sends none, a malformed flag is refused before anything is
// sent, and the provider's confirmation reaches the listener, also one that started after the
// confirmation arrived (a cold start).

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup, settle, seen, account, rejection } from './harness.mjs'

const opened = {
  account: account('a1'),
  revoked: true,
  warning: null,
  signOut: 'opened',
  signOutMessage: "Your browser opened Demo provider's sign-out page; confirm there to end your session."
}

test('unlink(account, { signOut: true }) asks the plugin to sign out and says what happened', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.unlink = () => opened
  const result = await api.unlink(account('a1'), { signOut: true })
  assert.deepEqual(plugin.named('unlink').map((c) => c.args), [{ account: 'a1', signOut: true }])
  assert.equal(result.signOut, 'opened')
  assert.equal(result.signOutMessage, opened.signOutMessage)
})

test('unlink(account) and { signOut: false } send no sign-out, as before', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.unlink = () => ({ ...opened, signOut: null, signOutMessage: null })
  const plain = await api.unlink('a1')
  await api.unlink('a1', { signOut: false })
  assert.deepEqual(plugin.named('unlink').map((c) => c.args), [{ account: 'a1' }, { account: 'a1' }])
  assert.equal(plain.signOut, null)
  assert.equal(plain.signOutMessage, null)
})

test('an answer of a plugin without sign-out reads as no sign-out, not undefined', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.unlink = () => ({ account: account('a1'), revoked: true, warning: null })
  const result = await api.unlink('a1')
  assert.equal(result.signOut, null)
  assert.equal(result.signOutMessage, null)
})

test('a signOut that is not a boolean, or options that are not an object, are refused and nothing is sent', async () => {
  const { api, plugin } = await setup()
  for (const [options, message] of [
    [{ signOut: 'yes' }, 'unlink(): signOut must be true or false, not a string; nothing was unlinked.'],
    [{ signOut: 1 }, 'unlink(): signOut must be true or false, not a number; nothing was unlinked.'],
    [null, 'unlink(): the options must be an object, not null.']
  ]) {
    const e = await rejection(api.unlink('a1', options))
    assert.ok(e instanceof TypeError, String(e))
    assert.equal(e.message, message)
  }
  assert.deepEqual(plugin.calls, [])
})

test('onSignedOut hears the provider\'s confirmation with its name; other changes are not sign-outs', async () => {
  const { api, plugin } = await setup()
  const heard = []
  const changes = []
  await api.onAccountsChanged((c) => changes.push(c))
  await api.onSignedOut((s) => heard.push(s))
  plugin.change({ accounts: [account('a2')], linked: account('a2') })
  plugin.change({ accounts: [], signedOut: { provider: 'demo', name: 'Demo provider' } })
  plugin.deliver()
  await settle()
  assert.deepEqual(heard, [{ provider: 'demo', name: 'Demo provider' }])
  assert.deepEqual(changes.map((c) => c.signedOut), [null, { provider: 'demo', name: 'Demo provider' }])
  assert.deepEqual(seen.unhandled, [])
})

test('a confirmation that came before the page listened (a cold start) reaches onSignedOut once', async () => {
  const { api, plugin } = await setup()
  plugin.change({ accounts: [], signedOut: { provider: 'demo', name: 'Demo provider' } })
  const heard = []
  const stop = await api.onSignedOut((s) => heard.push(s))
  await settle()
  plugin.deliver()
  await settle()
  assert.deepEqual(heard, [{ provider: 'demo', name: 'Demo provider' }])
  stop()
  await settle()
  plugin.change({ accounts: [], signedOut: { provider: 'demo', name: 'Demo provider' } })
  plugin.deliver()
  await settle()
  assert.equal(heard.length, 1, 'a stopped listener hears no more')
  const e = await rejection(api.onSignedOut('not a function'))
  assert.ok(e instanceof TypeError)
})
