// Bundles the protocol library for the browser: dist/cloister-protocol.js
// (ES module, minified, with a source map). No Node module may be reached
// from src/protocol: the bundle is built for the browser platform and fails
// if one is imported.
import { build } from 'esbuild';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const result = await build({
  absWorkingDir: root,
  entryPoints: ['src/protocol/index.ts'],
  outfile: 'dist/cloister-protocol.js',
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022'],
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  metafile: true,
  logLevel: 'warning',
});
const out = result.metafile.outputs['dist/cloister-protocol.js'];
console.log(`build: dist/cloister-protocol.js ${out.bytes} bytes from ${Object.keys(result.metafile.inputs).length} modules`);
