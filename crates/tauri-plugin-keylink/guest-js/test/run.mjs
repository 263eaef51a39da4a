// Runs the JS API's tests (node's test runner) against the build npm ships (dist-js/) and the
// IIFE the plugin injects (api-iife.js): `npm run build` first.

import { spawnSync } from 'node:child_process'
import { existsSync, readdirSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const root = join(here, '../..')
for (const file of ['dist-js/index.js', 'api-iife.js']) {
  if (!existsSync(join(root, file))) {
    console.error(`guest-js tests: ${file} is missing; run \`npm run build\` in ${root} first`)
    process.exit(1)
  }
}
const tests = readdirSync(here)
  .filter((f) => f.endsWith('.test.mjs'))
  .sort()
  .map((f) => join(here, f))
const run = spawnSync(process.execPath, ['--test', '--test-reporter=spec', ...tests], { stdio: 'inherit', cwd: root })
process.exit(run.status ?? 1)
