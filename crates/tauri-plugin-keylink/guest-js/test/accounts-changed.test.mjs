// onAccountsChanged: a cold-start outcome reaches a listener registered, removed and registered
// again (React StrictMode mounts every effect twice), whatever order the plugin's answers and
// channel messages reach the page in; each change reaches each listener once; nothing is left
// unhandled.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup, settle, seen, account } from './harness.mjs'

const alice = account('acc-alice')

/** The plugin was started by a sign-in before the page loaded: the outcome waits for a listener. */
async function coldStart() {
  const t = await setup()
  t.plugin.change({ accounts: [alice], linked: alice })
  return t
}

function recorder() {
  const heard = []
  const callback = (change) => heard.push(change)
  return { heard, callback }
}

// When the channel messages reach the page: while watch_accounts is still being answered, or
// after every answer.
const orders = { 'messages before answers': true, 'answers before messages': false }

for (const [order, immediate] of Object.entries(orders)) {
  test(`StrictMode, stopped with the function it resolves to (${order}): the second listener gets the cold-start outcome once`, async () => {
    const { api, plugin } = await coldStart()
    plugin.immediate = immediate
    const first = recorder()
    const second = recorder()
    // Mount, unmount, mount again, as React does with each effect in StrictMode.
    api.onAccountsChanged(first.callback).then((stop) => stop())
    const stopSecond = api.onAccountsChanged(second.callback)
    await stopSecond
    await settle()
    plugin.deliver()
    await settle()
    assert.deepEqual(second.heard.map((c) => c.linked?.id), ['acc-alice'])
    assert.deepEqual(second.heard[0].accounts, [alice])
    assert.ok(first.heard.length <= 1, 'the first heard the outcome at most while it was registered')
    // Later changes reach only the listener still mounted.
    plugin.change({ accounts: [] })
    plugin.deliver()
    await settle()
    assert.equal(second.heard.length, 2)
    assert.ok(first.heard.length <= 1)
    assert.equal(plugin.mostWatchers, 1, 'one registration at a time')
    assert.deepEqual(seen.unhandled, [])
  })

  test(`StrictMode, stopped with a signal (${order}): only the second listener gets the outcome, once`, async () => {
    const { api, plugin } = await coldStart()
    plugin.immediate = immediate
    const first = recorder()
    const second = recorder()
    const controller = new AbortController()
    api.onAccountsChanged(first.callback, { signal: controller.signal })
    controller.abort()
    await api.onAccountsChanged(second.callback, { signal: new AbortController().signal })
    await settle()
    plugin.deliver()
    await settle()
    assert.deepEqual(first.heard, [])
    assert.deepEqual(second.heard.map((c) => c.linked?.id), ['acc-alice'])
  })
}

test('an outcome that reaches the page after its last listener stopped waits for the next one', async () => {
  const { api, plugin } = await setup()
  const first = recorder()
  const stop = await api.onAccountsChanged(first.callback)
  // The redirect is handled while the listener is still registered in Rust...
  plugin.change({ accounts: [alice], linked: alice })
  // ...but the message reaches the page only after the listener stopped.
  stop()
  plugin.deliver()
  await settle()
  assert.deepEqual(first.heard, [])
  assert.deepEqual(plugin.watchers, [], 'unregistered in Rust')
  const second = recorder()
  await api.onAccountsChanged(second.callback)
  await settle()
  plugin.deliver()
  await settle()
  assert.deepEqual(second.heard.map((c) => c.linked?.id), ['acc-alice'])
})

test('an outcome while nobody listens is kept by the plugin and reaches the next listener', async () => {
  const { api, plugin } = await setup()
  const stop = await api.onAccountsChanged(() => {})
  stop()
  await settle()
  assert.deepEqual(plugin.watchers, [])
  const error = { code: 'redirect_rejected', message: 'The sign-in was refused.' }
  plugin.change({ accounts: [], error })
  const next = recorder()
  await api.onAccountsChanged(next.callback)
  plugin.deliver()
  await settle()
  assert.deepEqual(next.heard.map((c) => c.error), [error])
})

test('each registration is a new channel, unregistered by its id', async () => {
  const { api, plugin } = await setup()
  const stop1 = await api.onAccountsChanged(() => {})
  stop1()
  await settle()
  const stop2 = await api.onAccountsChanged(() => {})
  const watched = plugin.named('watch_accounts').map((c) => c.args.channel.id)
  const unwatched = plugin.named('unwatch_accounts').map((c) => c.args.channel)
  assert.equal(watched.length, 2)
  assert.notEqual(watched[0], watched[1])
  assert.deepEqual(unwatched, [watched[0]])
  stop2()
  stop2()
  await settle()
  assert.equal(plugin.named('unwatch_accounts').length, 2, 'a second stop() does nothing')
})

test('every listener hears each change once; a stopped one hears no more', async () => {
  const { api, plugin } = await setup()
  const a = recorder()
  const b = recorder()
  const stopA = await api.onAccountsChanged(a.callback)
  await api.onAccountsChanged(b.callback)
  assert.equal(plugin.named('watch_accounts').length, 1, 'one registration for the page')
  plugin.change({ accounts: [alice] })
  plugin.deliver()
  stopA()
  plugin.change({ accounts: [] })
  plugin.deliver()
  await settle()
  assert.deepEqual(a.heard.map((c) => c.accounts.length), [1])
  assert.deepEqual(b.heard.map((c) => c.accounts.length), [1, 0])
})

test('a listener that throws is reported, and the others still hear the change', async () => {
  const { api, plugin } = await setup()
  const boom = new Error('listener bug')
  await api.onAccountsChanged(() => {
    throw boom
  })
  const b = recorder()
  await api.onAccountsChanged(b.callback)
  plugin.change({ accounts: [alice] })
  plugin.deliver()
  await settle()
  assert.equal(b.heard.length, 1)
  assert.deepEqual(seen.reported, [boom])
})

test('a refused registration rejects with not_allowed, and a later one registers', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.watch_accounts = () => {
    throw 'Command plugin:keylink|watch_accounts not allowed by ACL'
  }
  const heard = recorder()
  let e
  try {
    await api.onAccountsChanged(heard.callback)
  } catch (error) {
    e = error
  }
  assert.equal(e?.code, 'not_allowed')
  delete plugin.handlers.watch_accounts
  plugin.change({ accounts: [alice], linked: alice })
  await api.onAccountsChanged(heard.callback)
  plugin.deliver()
  await settle()
  assert.deepEqual(heard.heard.map((c) => c.linked?.id), ['acc-alice'])
  assert.deepEqual(seen.unhandled, [])
})

test('a refused unregistration is left unhandled nowhere, and no outcome is lost by it', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.unwatch_accounts = () => {
    throw 'Command plugin:keylink|unwatch_accounts not allowed by ACL'
  }
  const stop = await api.onAccountsChanged(() => {})
  stop()
  await settle()
  assert.deepEqual(seen.unhandled, [])
  // Still registered in Rust: an outcome comes to the page and waits there.
  plugin.change({ accounts: [alice], linked: alice })
  plugin.deliver()
  const next = recorder()
  await api.onAccountsChanged(next.callback)
  await settle()
  assert.deepEqual(next.heard.map((c) => c.linked?.id), ['acc-alice'])
  assert.equal(plugin.named('watch_accounts').length, 1, 'the registration still standing is used')
})

test('a signal aborted before the call registers nothing', async () => {
  const { api, plugin } = await setup()
  const stop = await api.onAccountsChanged(() => {}, { signal: AbortSignal.abort() })
  stop()
  await settle()
  assert.deepEqual(plugin.calls, [])
})

test('a callback that is not a function rejects with a TypeError', async () => {
  const { api, plugin } = await setup()
  await assert.rejects(api.onAccountsChanged('accounts'), TypeError)
  assert.deepEqual(plugin.calls, [])
})
