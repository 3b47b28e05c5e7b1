// The user's path: the tarball `npm pack` makes (its prepack builds the release addon with the
// napi CLI) installed into a fresh app whose PATH has no cargo and no rustc. The addon comes
// prebuilt inside the package, no install script runs, and `require` and `import` both work
// against a real server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer } from './helpers.mjs';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(fs.readFileSync(path.join(pkg, 'package.json'), 'utf8'));
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const MINUTE = 60000;

/** Runs a command to its end (within `timeout`); fails the test with its output unless it exits 0. */
function run(cmd, args, { timeout, ...options }) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', timeout, maxBuffer: 1 << 26, ...options });
  assert.equal(result.status, 0, `${cmd} ${args.join(' ')} (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

/** Where `name` is found on `PATH`, or undefined. */
function which(name, PATH) {
  return PATH.split(path.delimiter).map((dir) => path.join(dir, name)).find((file) => fs.existsSync(file));
}

/**
 * An environment without Rust: PATH without every directory that holds cargo or rustc, after a
 * directory of its own with links to this node and npm (which may live next to cargo).
 */
function envWithoutRust(shims) {
  const npmCli = fs.realpathSync(which(npm, process.env.PATH));
  fs.mkdirSync(shims);
  fs.symlinkSync(process.execPath, path.join(shims, 'node'));
  fs.symlinkSync(npmCli, path.join(shims, npm));
  const dirs = process.env.PATH.split(path.delimiter).filter(
    (dir) => dir && !['cargo', 'rustc'].some((tool) => fs.existsSync(path.join(dir, tool))),
  );
  const env = { ...process.env, PATH: [shims, ...dirs].join(path.delimiter) };
  // The addon must be the package's own, not one this run points the loader at.
  delete env.NAPI_RS_NATIVE_LIBRARY_PATH;
  return env;
}

const CJS = `
const Redis = require('redpool');
const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.PORT) });
(async () => {
  await redis.set('install:cjs', 'from require');
  console.log(await redis.get('install:cjs'));
  await redis.quit();
})().catch((err) => { console.error(err); process.exit(1); });
`;

const ESM = `
import Redis, { ReplyError } from 'redpool';
if (typeof ReplyError !== 'function') throw new Error('no ReplyError export');
const redis = new Redis({ host: '127.0.0.1', port: Number(process.env.PORT) });
await redis.set('install:esm', 'from import');
console.log(await redis.get('install:esm'));
await redis.quit();
`;

test('npm pack, then npm install of the tarball in a fresh app without cargo: require and import run commands', { timeout: 40 * MINUTE }, async () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'redpool-pack-'));
  const server = await startServer();
  try {
    // The tarball: prepack runs `npm run build` (napi build --release; cargo's cache makes it quick
    // after the suite's own build, a full build can take many minutes on a loaded machine).
    run(npm, ['pack', '--pack-destination', tmp], { cwd: pkg, timeout: 30 * MINUTE });
    const tarball = path.join(tmp, `redpool-${version}.tgz`);
    assert.ok(fs.existsSync(tarball), `npm pack made no ${tarball}`);

    const entries = run('tar', ['-tzf', tarball], { timeout: MINUTE }).split('\n');
    assert.ok(entries.some((e) => /^package\/redpool\.[\w-]+\.node$/.test(e)), `no prebuilt addon in the tarball:\n${entries.join('\n')}`);
    for (const file of ['native.js', 'native.d.ts', 'index.js', 'index.mjs', 'index.d.ts', 'lib/redis.js']) {
      assert.ok(entries.includes(`package/${file}`), `${file} is missing from the tarball`);
    }
    const packed = JSON.parse(run('tar', ['-xzOf', tarball, 'package/package.json'], { timeout: MINUTE }));
    for (const script of ['preinstall', 'install', 'postinstall']) {
      assert.equal(packed.scripts?.[script], undefined, `the packed package.json has a ${script} script`);
    }

    const app = path.join(tmp, 'app');
    fs.mkdirSync(app);
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    fs.writeFileSync(path.join(app, 'cjs.js'), CJS);
    fs.writeFileSync(path.join(app, 'esm.mjs'), ESM);
    const env = envWithoutRust(path.join(tmp, 'bin'));
    assert.equal(which('cargo', env.PATH), undefined, 'cargo is still on the app\'s PATH');
    assert.equal(which('rustc', env.PATH), undefined, 'rustc is still on the app\'s PATH');

    run(npm, ['install', '--no-audit', '--no-fund', tarball], { cwd: app, env, timeout: 10 * MINUTE });
    assert.ok(
      fs.readdirSync(path.join(app, 'node_modules', 'redpool')).some((f) => f.endsWith('.node')),
      'the installed package has no addon',
    );
    const appEnv = { ...env, PORT: String(server.port) };
    assert.equal(run(process.execPath, ['cjs.js'], { cwd: app, env: appEnv, timeout: 2 * MINUTE }).trim(), 'from require');
    assert.equal(run(process.execPath, ['esm.mjs'], { cwd: app, env: appEnv, timeout: 2 * MINUTE }).trim(), 'from import');
  } finally {
    await server.stop();
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
