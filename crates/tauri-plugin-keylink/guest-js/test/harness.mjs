// The plugin's Rust side, faked at the IPC boundary (@tauri-apps/api/mocks): every command
// is recorded, answers come from per-test handlers, and watch_accounts/unwatch_accounts
// behave as State::watch/unwatch/send_change in src/lib.rs do. Channel messages wait in a
// queue until the test delivers them, so each test picks the order in which answers and
// messages reach the page. Each test gets a fresh copy of the API module (its own listeners).

import assert from 'node:assert/strict'
import { mockIPC, clearMocks } from '@tauri-apps/api/mocks'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { dirname, join } from 'node:path'

globalThis.window ??= globalThis

const shipped = pathToFileURL(join(dirname(fileURLToPath(import.meta.url)), '../../dist-js/index.js')).href
let copies = 0

/** Everything a page would see: unhandled rejections and errors listeners reported. */
export const seen = { unhandled: [], reported: [] }
process.on('unhandledRejection', (e) => seen.unhandled.push(e))
globalThis.reportError = (e) => seen.reported.push(e)

/** A fresh copy of the JS API as npm ships it (dist-js/index.js), and a fake plugin under it. */
export async function setup() {
  clearMocks()
  globalThis.window = globalThis
  seen.unhandled.length = 0
  seen.reported.length = 0
  const plugin = new FakePlugin()
  mockIPC((cmd, args) => plugin.invoke(cmd, args))
  const api = await import(`${shipped}?copy=${++copies}`)
  return { api, plugin }
}

/** Lets every promise and queued callback that can run, run (all IPC here is promise-based). */
export async function settle() {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve))
}

/** A Rust-side channel: numbers its messages from 0, as tauri::ipc::Channel does. */
class RustChannel {
  constructor(plugin, id) {
    this.plugin = plugin
    this.id = id
    this.next = 0
  }

  send(message) {
    this.plugin.queue.push({ id: this.id, data: { index: this.next++, message } })
    if (this.plugin.immediate) this.plugin.deliver()
  }
}

export class FakePlugin {
  constructor() {
    /** Every command, in order: { name, args }. */
    this.calls = []
    /** Per command: (args) => answer, or throws/rejects what the command rejects with. */
    this.handlers = {}
    /** Listener channels as State::watchers.channels. */
    this.watchers = []
    /** Outcomes kept for the next listener, as State::watchers.pending. */
    this.pending = []
    /** Channel messages not yet delivered to the page. */
    this.queue = []
    /** The most listener channels registered at once. */
    this.mostWatchers = 0
    /** Hand channel messages to the page as soon as they are sent, before the command answers. */
    this.immediate = false
  }

  async invoke(cmd, args) {
    const prefix = 'plugin:keylink|'
    if (!cmd.startsWith(prefix)) throw new Error(`unexpected command ${cmd}`)
    const name = cmd.slice(prefix.length)
    this.calls.push({ name, args })
    if (this.handlers[name]) return await this.handlers[name](args)
    if (name === 'watch_accounts') return this.watch(args.channel)
    if (name === 'unwatch_accounts') return this.unwatch(args.channel)
    throw new Error(`no answer set for ${name}`)
  }

  /** The commands called, by name. */
  named(name) {
    return this.calls.filter((c) => c.name === name)
  }

  watch(channel) {
    if (typeof channel?.id !== 'number') throw new Error('watch_accounts takes a Channel')
    const rust = new RustChannel(this, channel.id)
    for (const change of this.pending.splice(0)) rust.send(change)
    this.watchers.push(rust)
    this.mostWatchers = Math.max(this.mostWatchers, this.watchers.length)
    return null
  }

  unwatch(id) {
    if (typeof id !== 'number') throw new Error('unwatch_accounts takes a channel id')
    this.watchers = this.watchers.filter((w) => w.id !== id)
    return null
  }

  /** A change as State::send_change makes it: to every listener, else kept if an outcome. */
  change({ accounts = [], linked = null, error = null, signedOut = null }) {
    const change = { accounts, linked, error, signedOut }
    for (const w of this.watchers) w.send(change)
    if (this.watchers.length === 0 && (linked !== null || error !== null || signedOut !== null)) {
      this.pending.push(change)
    }
  }

  /** A progress message on a command's channel, delivered at once. */
  progress(channel, index, message) {
    window.__TAURI_INTERNALS__.runCallback(channel.id, { index, message })
  }

  /** Hands the page every queued channel message. */
  deliver() {
    for (const { id, data } of this.queue.splice(0)) {
      window.__TAURI_INTERNALS__.runCallback(id, data)
    }
  }
}

/** An account as the plugin sends it. */
export function account(id, email = `${id}@example.test`) {
  return {
    id,
    provider: 'demo',
    email,
    name: null,
    scopes: ['openid'],
    linkedAt: '2026-01-01T00:00:00Z',
    expiresAt: null,
    status: 'ok'
  }
}

/** A promise and the functions that settle it. */
export function deferred() {
  let resolve
  let reject
  const promise = new Promise((res, rej) => {
    resolve = res
    reject = rej
  })
  return { promise, resolve, reject }
}

/** What `promise` rejects with; fails the test when it resolves. */
export async function rejection(promise) {
  try {
    await promise
  } catch (e) {
    return e
  }
  assert.fail('the call resolved')
}
