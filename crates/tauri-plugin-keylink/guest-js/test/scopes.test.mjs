// link/reconnect with scopes (incremental consent): the scopes reach the plugin's command as
// given, the call forms without them send none, and a malformed list is refused before
// anything is sent.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup, account, rejection } from './harness.mjs'

test('link(provider, { scopes }) and reconnect(account, { scopes }) send the scopes to the plugin', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.link = () => ({ ...account('a1'), scopes: ['openid', 'calendar'] })
  plugin.handlers.reconnect = () => ({ ...account('a1'), scopes: ['openid', 'calendar'] })
  const linked = await api.link({ id: 'demo' }, { scopes: ['calendar'] })
  assert.deepEqual(linked.scopes, ['openid', 'calendar'])
  await api.reconnect(account('a1'), { scopes: ['calendar', 'files.read'] })
  const [link] = plugin.named('link')
  assert.equal(link.args.provider, 'demo')
  assert.deepEqual(link.args.scopes, ['calendar'])
  const [reconnect] = plugin.named('reconnect')
  assert.equal(reconnect.args.account, 'a1')
  assert.deepEqual(reconnect.args.scopes, ['calendar', 'files.read'])
})

test('without scopes, link and reconnect send none, as before', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.link = () => account('a1')
  plugin.handlers.reconnect = () => account('a1')
  await api.link('demo')
  await api.link('demo', { onProgress: () => {} })
  await api.reconnect('a1')
  for (const call of plugin.calls) assert.ok(!('scopes' in call.args), JSON.stringify(call))
})

test('scopes that are not a list of strings are refused and nothing is sent', async () => {
  const { api, plugin } = await setup()
  for (const scopes of ['calendar', [42], null]) {
    const e = await rejection(api.reconnect('a1', { scopes }))
    assert.equal(e.code, 'config')
    assert.equal(e.message, 'The scopes must be a list of strings; nothing was sent.')
  }
  assert.deepEqual(plugin.calls, [])
})

test('a declined consent rejects with the plugin\'s sentence and code cancelled', async () => {
  const { api, plugin } = await setup()
  const sentence = 'The sign-in at Demo provider was declined, so nothing was changed: a1@example.test keeps the permissions it had; allow them when you are ready.'
  plugin.handlers.reconnect = () => {
    throw { code: 'cancelled', message: sentence }
  }
  const e = await rejection(api.reconnect('a1', { scopes: ['calendar'] }))
  assert.equal(e.code, 'cancelled')
  assert.equal(e.message, sentence)
})
