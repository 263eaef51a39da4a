// Builds the JS API: ESM and CJS with type declarations in dist-js/ (the npm package), and
// the IIFE the plugin injects as window.__TAURI__.keylink in apps with withGlobalTauri
// (api-iife.js, kept in the repository so building the plugin needs no JS toolchain).

import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const root = join(dirname(fileURLToPath(import.meta.url)), '..')
const entry = join(root, 'guest-js/index.ts')
const common = { entryPoints: [entry], bundle: true, target: 'es2021', logLevel: 'warning' }

await build({ ...common, format: 'esm', external: ['@tauri-apps/api'], outfile: join(root, 'dist-js/index.js') })
await build({ ...common, format: 'cjs', external: ['@tauri-apps/api'], outfile: join(root, 'dist-js/index.cjs') })
await build({
  ...common,
  format: 'iife',
  globalName: '__TAURI_PLUGIN_KEYLINK__',
  minify: true,
  legalComments: 'none',
  footer: { js: "Object.defineProperty(window.__TAURI__,'keylink',{value:__TAURI_PLUGIN_KEYLINK__})" },
  banner: { js: "if('__TAURI__'in window){" },
  outfile: join(root, 'api-iife.js')
})
// esbuild puts the footer after the IIFE; close the guard it opened.
const { readFileSync, writeFileSync } = await import('node:fs')
const iife = join(root, 'api-iife.js')
writeFileSync(iife, readFileSync(iife, 'utf8').trimEnd() + '}\n')
execFileSync(join(root, 'node_modules/.bin/tsc'), ['-p', join(root, 'guest-js')], { stdio: 'inherit' })
