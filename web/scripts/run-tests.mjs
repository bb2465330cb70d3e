// Runs the compiled tests (build/test/*.test.js) with node's test runner.
// --no-interop leaves out the test against a real cloisterd.
import { readdirSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dir = join(root, 'build', 'test');
const noInterop = process.argv.includes('--no-interop');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.test.js'))
  .filter((f) => !(noInterop && f.startsWith('interop')))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error('run-tests: no compiled tests in build/test (run `npm run build:test`)');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--test', ...files], { stdio: 'inherit', cwd: root });
process.exit(r.status ?? 1);
