// fetch(account, url, init) as a web developer calls it: every kind of headers and body the web's
// fetch takes (but streams), the Content-Type each body implies, a Response back, and signal.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setup, settle, seen, deferred, rejection } from './harness.mjs'

const URL_ME = 'https://api.example.test/v1/me'

/** Calls fetch with `init`; what reached the plugin: method, headers (a Map) and body bytes. */
async function sent(init) {
  const { api, plugin } = await setup()
  plugin.handlers.fetch = () => ({ status: 200, headers: [], body: '' })
  await api.fetch('a1', URL_ME, init)
  const [{ args }] = plugin.named('fetch')
  assert.equal(args.account, 'a1')
  assert.equal(args.url, URL_ME)
  const body = args.init.body === null ? null : Buffer.from(args.init.body, 'base64')
  return { method: args.init.method, headers: new Map(args.init.headers), body }
}

test('headers as Headers, an array of pairs or a record all reach the plugin', async () => {
  const expected = new Map([['accept', 'application/json'], ['x-trace', 'abc']])
  for (const headers of [
    new Headers({ Accept: 'application/json', 'X-Trace': 'abc' }),
    [['Accept', 'application/json'], ['X-Trace', 'abc']],
    { Accept: 'application/json', 'X-Trace': 'abc' }
  ]) {
    const { method, headers: got, body } = await sent({ headers })
    assert.equal(method, 'GET')
    assert.deepEqual(got, expected)
    assert.equal(body, null)
  }
})

test('a string body is sent as UTF-8 text/plain, unless the caller set a Content-Type', async () => {
  const plain = await sent({ method: 'post', body: 'héllo' })
  assert.equal(plain.method, 'POST')
  assert.equal(plain.body.toString('utf8'), 'héllo')
  assert.equal(plain.headers.get('content-type'), 'text/plain;charset=UTF-8')
  const json = await sent({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"a":1}' })
  assert.equal(json.headers.get('content-type'), 'application/json')
  assert.equal(json.body.toString('utf8'), '{"a":1}')
})

test('ArrayBuffer, typed arrays and DataView bodies are sent byte for byte (only the viewed bytes)', async () => {
  const buffer = new Uint8Array([0, 1, 2, 250, 251, 252, 253, 254]).buffer
  const cases = [
    [buffer, [0, 1, 2, 250, 251, 252, 253, 254]],
    [new Uint8Array(buffer, 2, 3), [2, 250, 251]],
    [new Uint16Array(buffer, 2, 2), [2, 250, 251, 252]],
    [new DataView(buffer, 5, 3), [252, 253, 254]]
  ]
  for (const [body, bytes] of cases) {
    const got = await sent({ method: 'PUT', body })
    assert.deepEqual([...got.body], bytes, body.constructor.name)
    assert.equal(got.headers.has('content-type'), false)
  }
})

test('a large body is sent whole', async () => {
  const bytes = new Uint8Array(3 * 1024 * 1024).map((_, i) => i % 251)
  const got = await sent({ method: 'PUT', body: bytes })
  assert.equal(got.body.length, bytes.length)
  assert.ok(got.body.equals(Buffer.from(bytes)))
})

test('a Blob body is sent with its type', async () => {
  const got = await sent({ method: 'POST', body: new Blob(['<a/>'], { type: 'application/xml' }) })
  assert.equal(got.body.toString(), '<a/>')
  assert.equal(got.headers.get('content-type'), 'application/xml')
})

test('URLSearchParams is sent form-encoded', async () => {
  const got = await sent({ method: 'POST', body: new URLSearchParams({ name: 'notes 1.txt', tag: 'a&b' }) })
  assert.equal(got.body.toString(), 'name=notes+1.txt&tag=a%26b')
  assert.equal(got.headers.get('content-type'), 'application/x-www-form-urlencoded;charset=UTF-8')
})

test('FormData is sent as multipart with its boundary in the Content-Type', async () => {
  const form = new FormData()
  form.append('name', 'notes.txt')
  form.append('file', new Blob(['hello'], { type: 'text/plain' }), 'notes.txt')
  const got = await sent({ method: 'POST', body: form })
  const type = got.headers.get('content-type')
  const boundary = /^multipart\/form-data; boundary=(.+)$/.exec(type)?.[1]
  assert.ok(boundary, type)
  const text = got.body.toString()
  assert.ok(text.startsWith(`--${boundary}\r\n`), text)
  assert.ok(text.trimEnd().endsWith(`--${boundary}--`), text)
  assert.match(text, /Content-Disposition: form-data; name="name"\r\n\r\nnotes\.txt\r\n/)
  assert.match(text, /Content-Disposition: form-data; name="file"; filename="notes\.txt"\r\nContent-Type: text\/plain\r\n\r\nhello\r\n/)
})

test('any other body rejects with a TypeError that lists the bodies fetch takes, and sends nothing', async () => {
  const { api, plugin } = await setup()
  for (const body of [{ a: 1 }, 42, true, [1, 2], new ReadableStream(), new Map()]) {
    const e = await rejection(api.fetch('a1', URL_ME, { method: 'POST', body }))
    assert.ok(e instanceof TypeError, String(e))
    assert.match(e.message, /^fetch\(\): the body must be a string, ArrayBuffer, typed array, DataView, Blob, URLSearchParams or FormData, not /)
  }
  assert.deepEqual(plugin.calls, [])
})

test('a GET or HEAD with a body, an unknown init key, or a relative URL rejects with a TypeError', async () => {
  const { api, plugin } = await setup()
  const cases = [
    [URL_ME, { body: 'x' }, /a GET request cannot have a body/],
    [URL_ME, { method: 'head', body: 'x' }, /a HEAD request cannot have a body/],
    [URL_ME, { redirect: 'follow' }, /init\.redirect is not supported/],
    ['/v1/me', {}, /the URL is not absolute/],
    [URL_ME, 'POST', /init must be an object/]
  ]
  for (const [url, init, message] of cases) {
    const e = await rejection(api.fetch('a1', url, init))
    assert.ok(e instanceof TypeError, String(e))
    assert.match(e.message, message)
  }
  assert.deepEqual(plugin.calls, [])
})

test('the answer is a Response with its status, headers, body and URL', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.fetch = () => ({
    status: 201,
    headers: [['content-type', 'application/json'], ['x-id', '7']],
    body: Buffer.from('{"ok":true}').toString('base64')
  })
  const response = await api.fetch('a1', new URL(URL_ME), { method: 'POST', body: '{}' })
  assert.ok(response instanceof Response)
  assert.equal(response.status, 201)
  assert.equal(response.ok, true)
  assert.equal(response.url, URL_ME)
  assert.equal(response.headers.get('x-id'), '7')
  assert.deepEqual(await response.json(), { ok: true })

  plugin.handlers.fetch = () => ({ status: 204, headers: [], body: '' })
  const empty = await api.fetch('a1', URL_ME, { method: 'DELETE' })
  assert.equal(empty.status, 204)
  assert.equal(empty.body, null)
})

test('an already aborted signal rejects with cancelled/AbortError and sends nothing', async () => {
  const { api, plugin } = await setup()
  const reason = new Error('the page moved on')
  const e = await rejection(api.fetch('a1', URL_ME, { signal: AbortSignal.abort(reason) }))
  assert.ok(e instanceof api.KeylinkError)
  assert.equal(e.code, 'cancelled')
  assert.equal(e.name, 'AbortError')
  assert.equal(e.cause, reason)
  assert.deepEqual(plugin.calls, [])
})

test('aborting while the request is out rejects at once; the late answer or error is dropped, unhandled nowhere', async () => {
  for (const outcome of ['answer', 'error']) {
    const { api, plugin } = await setup()
    const answer = deferred()
    plugin.handlers.fetch = () => answer.promise
    const controller = new AbortController()
    const pending = api.fetch('a1', URL_ME, { signal: controller.signal })
    await settle()
    assert.equal(plugin.named('fetch').length, 1)
    controller.abort()
    const e = await rejection(pending)
    assert.equal(e.code, 'cancelled')
    assert.equal(e.name, 'AbortError')
    assert.equal(e.cause.name, 'AbortError', 'the signal’s default reason, a DOMException')
    if (outcome === 'answer') answer.resolve({ status: 200, headers: [], body: '' })
    else answer.reject({ code: 'provider', message: 'The provider failed.' })
    await settle()
    assert.deepEqual(seen.unhandled, [], outcome)
  }
})

test('a signal that is never aborted changes nothing', async () => {
  const got = await sent({ signal: new AbortController().signal })
  assert.equal(got.method, 'GET')
})

test('scopes and resource reach the plugin as given, and are left out unless given', async () => {
  const { api, plugin } = await setup()
  plugin.handlers.fetch = () => ({ status: 200, headers: [], body: '' })
  await api.fetch('a1', URL_ME, { scopes: ['calendar.read', 'files'], resource: 'https://calendar.example.test' })
  await api.fetch('a1', URL_ME, { resource: 'urn:example:files' })
  await api.fetch('a1', URL_ME)
  const [both, resourceOnly, neither] = plugin.named('fetch').map(({ args }) => args.init)
  assert.deepEqual(both.scopes, ['calendar.read', 'files'])
  assert.equal(both.resource, 'https://calendar.example.test')
  assert.equal('scopes' in resourceOnly, false)
  assert.equal(resourceOnly.resource, 'urn:example:files')
  assert.equal('scopes' in neither, false)
  assert.equal('resource' in neither, false)
})

test('scopes that are not a list of strings, or a resource that is not an absolute URL, reject with a TypeError and send nothing', async () => {
  const { api, plugin } = await setup()
  const cases = [
    [{ scopes: 'calendar' }, /init\.scopes must be an array of scope names \(non-empty strings\), not a string/],
    [{ scopes: ['calendar', 7] }, /init\.scopes must be .*, not an array holding a number/],
    [{ scopes: [''] }, /init\.scopes must be .*, not an array holding a string/],
    [{ resource: 'calendar' }, /init\.resource must be the API's absolute URL without a fragment, .*, not "calendar"/],
    [{ resource: 'https://calendar.example.test/#top' }, /init\.resource must be the API's absolute URL without a fragment/],
    [{ resource: new URL('https://calendar.example.test') }, /init\.resource must be .*, not a URL/]
  ]
  for (const [init, message] of cases) {
    const e = await rejection(api.fetch('a1', URL_ME, init))
    assert.ok(e instanceof TypeError, String(e))
    assert.match(e.message, message)
  }
  assert.deepEqual(plugin.calls, [])
})
