// The IIFE (api-iife.js) that apps without a bundler get as window.__TAURI__.keylink: the same
// functions as the npm package, calling the same commands, and nothing outside a Tauri webview.

import { test } from 'node:test'
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import vm from 'node:vm'

const root = join(dirname(fileURLToPath(import.meta.url)), '../..')
const iife = readFileSync(join(root, 'api-iife.js'), 'utf8')

function load(window) {
  window.window = window
  vm.runInNewContext(iife, window)
  return window
}

test('window.__TAURI__.keylink has every function of the npm package', async () => {
  const calls = []
  const window = load({
    __TAURI__: {},
    __TAURI_INTERNALS__: {
      invoke: async (cmd, args) => {
        calls.push([cmd, args])
        return []
      },
      transformCallback: () => 1
    }
  })
  const shipped = await import(pathToFileURL(join(root, 'dist-js/index.js')).href)
  assert.deepEqual(Object.keys(window.__TAURI__.keylink).sort(), Object.keys(shipped).sort())
  // Compared as JSON: the IIFE's objects come from another realm.
  assert.equal(JSON.stringify(await window.__TAURI__.keylink.accounts()), '[]')
  assert.equal(JSON.stringify(calls), '[["plugin:keylink|accounts",{}]]')
})

test('outside a Tauri webview the IIFE defines nothing', () => {
  const window = load({})
  assert.equal(window.__TAURI__, undefined)
  assert.equal(window.__TAURI_PLUGIN_KEYLINK__, undefined)
})
