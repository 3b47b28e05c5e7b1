#!/usr/bin/env node
'use strict';
/**
 * npm's `install` step: keeps a native addon that loads, otherwise builds it from source with
 * cargo (`cargo build --release -p redpool-node` in the redpool checkout this package lives in)
 * and copies it next to package.json under napi-rs's file name. Fails with a clear message when
 * cargo or the Rust sources are missing.
 *
 *   node scripts/install.js [--force] [--debug]
 *
 * Environment: REDPOOL_SOURCE_DIR (the checkout, when the package was copied out of it),
 * CARGO_TARGET_DIR (cargo's own), REDPOOL_NATIVE_LIBRARY_PATH (use a built addon, build nothing).
 */
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { addonFile, platformTriple } = require('../lib/native');

const force = process.argv.includes('--force');
const debug = process.argv.includes('--debug');

function fail(message) {
  console.error(`\nredpool: ${message}\n`);
  process.exit(1);
}

function loads(file) {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(file)}).version()`], {
    stdio: 'ignore',
  });
  return probe.status === 0;
}

/** The redpool checkout holding the Rust sources, or undefined. */
function sourceDir() {
  const candidates = [process.env.REDPOOL_SOURCE_DIR, path.resolve(__dirname, '..', '..')];
  return candidates.find((dir) => dir && fs.existsSync(path.join(dir, 'bindings', 'node', 'Cargo.toml')));
}

function main() {
  if (process.env.REDPOOL_NATIVE_LIBRARY_PATH) {
    if (!loads(process.env.REDPOOL_NATIVE_LIBRARY_PATH)) {
      fail(`REDPOOL_NATIVE_LIBRARY_PATH=${process.env.REDPOOL_NATIVE_LIBRARY_PATH} does not load as a Node addon`);
    }
    return;
  }
  const target = addonFile();
  if (!force && fs.existsSync(target) && loads(target)) {
    console.log(`redpool: using the native addon ${path.basename(target)}`);
    return;
  }
  const triple = platformTriple();
  const cargo = spawnSync('cargo', ['--version'], { encoding: 'utf8' });
  if (cargo.error || cargo.status !== 0) {
    fail(
      `no prebuilt native addon for ${triple}, and cargo was not found to build it from source.\n` +
        'Install Rust (https://rustup.rs) and run npm install again, or set ' +
        'REDPOOL_NATIVE_LIBRARY_PATH to a built addon.',
    );
  }
  const src = sourceDir();
  if (!src) {
    fail(
      `no prebuilt native addon for ${triple}, and the Rust sources were not found next to this ` +
        `package (${path.resolve(__dirname, '..', '..')}). Install it from a redpool checkout ` +
        '(npm install /path/to/redpool/node) or set REDPOOL_SOURCE_DIR to the checkout.',
    );
  }
  console.log(`redpool: building the native addon from source (${src}, ${debug ? 'debug' : 'release'})`);
  const args = ['build', '-p', 'redpool-node', '--manifest-path', path.join(src, 'Cargo.toml')];
  if (!debug) args.push('--release');
  args.push('--message-format=json-render-diagnostics');
  const build = spawnSync('cargo', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 28 });
  if (build.status !== 0) fail(`cargo build failed (exit ${build.status}); see the messages above`);
  const built = build.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line))
    .filter((m) => m.reason === 'compiler-artifact' && m.target?.name === 'redpool_node')
    .flatMap((m) => m.filenames)
    .find((f) => /\.(so|dylib|dll)$/.test(f));
  if (!built) fail('cargo build succeeded but reported no redpool_node library');
  const staging = `${target}.${process.pid}.tmp`;
  fs.copyFileSync(built, staging);
  fs.renameSync(staging, target);
  if (!loads(target)) fail(`the built addon ${target} does not load`);
  console.log(`redpool: built ${path.basename(target)}`);
}

main();
