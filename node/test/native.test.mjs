// The generated addon bindings (`napi build` writes native.js, the loader, and native.d.ts, the
// addon's declarations; both are committed) agree with the addon that is built: the same exports,
// the same class members. And every export or member of the addon the JS layer uses is declared.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const STALE = 'native.js / native.d.ts are out of date with the addon: run `npm run build` (napi build regenerates them) and commit them';

/** The loader's own export, not the addon's. */
const LOADER_EXPORT = '__napiBindingTarget';

/** The `.node` file the generated loader loaded in this process. */
function loadedAddonFile() {
  require('../native.js');
  const files = Object.keys(require.cache).filter((file) => file.endsWith('.node'));
  assert.equal(files.length, 1, `expected one loaded addon, got ${files.join(', ')}`);
  return files[0];
}

/**
 * What the addon itself exports, read in a fresh process that loads the `.node` file directly (the
 * loader adds its own names to the object it returns): top-level names, and for each class its
 * prototype's and its own (static) members.
 */
function addonExports(file) {
  const script = `
    const addon = require(${JSON.stringify(file)});
    const classes = {};
    for (const [name, value] of Object.entries(addon)) {
      if (typeof value === 'function' && value.prototype && Object.getOwnPropertyNames(value.prototype).length > 1) {
        classes[name] = {
          members: Object.getOwnPropertyNames(value.prototype).filter((m) => m !== 'constructor').sort(),
          statics: Object.getOwnPropertyNames(value).filter((m) => !['length', 'name', 'prototype', 'arguments', 'caller'].includes(m)).sort(),
        };
      }
    }
    console.log(JSON.stringify({ names: Object.keys(addon).sort(), classes }));`;
  return JSON.parse(execFileSync(process.execPath, ['-e', script], { encoding: 'utf8' }));
}

/** What native.d.ts declares: top-level value names, and each class's members and statics. */
function declared() {
  const dts = fs.readFileSync(path.join(root, 'native.d.ts'), 'utf8');
  const names = [...dts.matchAll(/^export declare (?:function|class|const|let|enum|const enum) (\w+)/gm)]
    .map((m) => m[1])
    .filter((name) => name !== LOADER_EXPORT)
    .sort();
  const classes = {};
  for (const [, name, body] of dts.matchAll(/^export declare class (\w+)[^{]*\{\n([\s\S]*?)\n\}/gm)) {
    const members = new Set();
    const statics = new Set();
    for (const [, isStatic, member] of body.matchAll(/^ {2}(static )?(?:get |set )?(\w+)\s*[(<]/gm)) {
      if (member === 'constructor') continue;
      (isStatic ? statics : members).add(member);
    }
    classes[name] = { members: [...members].sort(), statics: [...statics].sort() };
  }
  return { names, classes };
}

/** The names native.js re-exports from the addon (`module.exports.X = nativeBinding.X`). */
function loaderNames() {
  const js = fs.readFileSync(path.join(root, 'native.js'), 'utf8');
  return [...js.matchAll(/^module\.exports\.(\w+) = nativeBinding\.\1$/gm)].map((m) => m[1]).sort();
}

test('native.d.ts and native.js name exactly what the built addon exports', () => {
  const actual = addonExports(loadedAddonFile());
  const dts = declared();
  assert.ok(actual.names.includes('NativePool') && actual.names.includes('version'), 'the addon exports were not read');
  assert.deepEqual(dts.names, actual.names, `${STALE} (native.d.ts exports)`);
  assert.deepEqual(loaderNames(), actual.names, `${STALE} (native.js exports)`);
  assert.deepEqual(dts.classes, actual.classes, `${STALE} (class members)`);
});

/** JS source without comments (a `//` after `:` or in a word, as in `redis://`, is kept). */
function code(file) {
  return fs
    .readFileSync(file, 'utf8')
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .replace(/(^|\s)\/\/.*$/gm, '$1');
}

test('every addon export and member the JS layer uses is declared in native.d.ts', () => {
  const { names, classes } = declared();
  const files = ['index.js', 'prometheus.js', ...fs.readdirSync(path.join(root, 'lib')).map((f) => `lib/${f}`)];
  const used = { exports: new Set(), NativePool: new Set(), NativeConnection: new Set() };
  for (const file of files) {
    const src = code(path.join(root, file));
    // `const native = require('../native')` then `native.X`, or `require('./native').X`.
    for (const [, binding] of src.matchAll(/\b(?:const|let|var)\s+(\w+)\s*=\s*require\('\.\.?\/native(?:\.js)?'\)/g)) {
      for (const [, name] of src.matchAll(new RegExp(`\\b${binding}\\.(\\w+)`, 'g'))) used.exports.add(name);
    }
    for (const [, name] of src.matchAll(/require\('\.\.?\/native(?:\.js)?'\)\.(\w+)/g)) used.exports.add(name);
    // The pool the client holds (`this.#pool`, a NativePool) and a session's checked-out
    // connection (`conn`, a NativeConnection).
    for (const [, name] of src.matchAll(/#pool\.(\w+)/g)) used.NativePool.add(name);
    for (const [, name] of src.matchAll(/\bconn\.(\w+)\(/g)) used.NativeConnection.add(name);
  }
  assert.ok(used.exports.has('NativePool') && used.NativePool.has('pipeline') && used.NativeConnection.has('release'), 'the JS layer\'s uses of the addon were not found');
  const missing = [
    ...[...used.exports].filter((n) => !names.includes(n)),
    ...[...used.NativePool].filter((n) => !classes.NativePool.members.includes(n)).map((n) => `NativePool#${n}`),
    ...[...used.NativeConnection].filter((n) => !classes.NativeConnection.members.includes(n)).map((n) => `NativeConnection#${n}`),
  ];
  assert.deepEqual(missing, [], 'the JS layer uses addon names native.d.ts does not declare');
});
