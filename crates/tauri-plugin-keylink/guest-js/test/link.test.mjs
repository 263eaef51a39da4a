// link/linkWithDevice/reconnect with a signal: aborting cancels the session by its id, rejects
// as an AbortError with code cancelled, and a refused cancel is said, never left unhandled.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup, settle, seen, account, deferred, rejection } from './harness.mjs'

/** A link the fake plugin holds open: the test sends its progress and ends it. */
function holdLink(plugin, command = 'link') {
  const end = deferred()
  let channel
  plugin.handlers[command] = (args) => {
    channel = args.onProgress
    return end.promise
  }
  return { end, progress: (index, message) => plugin.progress(channel, index, message) }
}

test('a signal aborted before the call rejects at once and starts nothing', async () => {
  const { api, plugin } = await setup()
  const e = await rejection(api.link('demo', { signal: AbortSignal.abort() }))
  assert.equal(e.code, 'cancelled')
  assert.equal(e.name, 'AbortError')
  assert.deepEqual(plugin.calls, [])
})

test('an abort before the session has its id cancels that session once it has one', async () => {
  const { api, plugin } = await setup()
  const link = holdLink(plugin)
  plugin.handlers.cancel_link = () => {
    link.end.reject({ code: 'cancelled', message: 'The link was cancelled and nothing was linked.' })
    return true
  }
  const controller = new AbortController()
  const steps = []
  const pending = api.link('demo', { signal: controller.signal, onProgress: (p) => steps.push(p.kind) })
  await settle()
  controller.abort()
  await settle()
  assert.deepEqual(plugin.named('cancel_link'), [], 'no cancel without an id: it could hit another link')
  link.progress(0, { kind: 'starting', session: 's-1' })
  const e = await rejection(pending)
  assert.deepEqual(plugin.named('cancel_link').map((c) => c.args), [{ session: 's-1' }])
  assert.equal(e.code, 'cancelled')
  assert.equal(e.name, 'AbortError')
  assert.equal(e.message, 'The link was cancelled and nothing was linked.')
  assert.deepEqual(steps, ['starting'])
})

test('a sign-in that finished before the abort reached the plugin still resolves with its account', async () => {
  const { api, plugin } = await setup()
  const link = holdLink(plugin, 'reconnect')
  plugin.handlers.cancel_link = () => {
    link.end.resolve(account('a1'))
    return false
  }
  const controller = new AbortController()
  const pending = api.reconnect('a1', { signal: controller.signal })
  await settle()
  link.progress(0, { kind: 'starting', session: 's-2' })
  controller.abort()
  assert.equal((await pending).id, 'a1')
})

test('a cancel the plugin refuses rejects the link with why, and nothing is left unhandled', async () => {
  const { api, plugin } = await setup()
  const link = holdLink(plugin, 'link_with_device')
  plugin.handlers.cancel_link = () => {
    throw 'Command plugin:keylink|cancel_link not allowed by ACL'
  }
  const controller = new AbortController()
  const codes = []
  const pending = api.linkWithDevice('demo', { signal: controller.signal, onCode: (c) => codes.push(c.userCode) })
  await settle()
  link.progress(0, { kind: 'starting', session: 's-3' })
  link.progress(1, { kind: 'codeShown', verificationUri: 'https://id.example.test/device', userCode: 'WXYZ-1234', verificationUriComplete: null, qrSvg: null })
  controller.abort()
  const e = await rejection(pending)
  assert.equal(e.code, 'not_allowed')
  assert.match(e.message, /cancel_link/)
  assert.deepEqual(codes, ['WXYZ-1234'])
  // The session ends later on its own; its rejection is handled too.
  link.end.reject({ code: 'timeout', message: 'No sign-in arrived.' })
  await settle()
  assert.deepEqual(seen.unhandled, [])
})
