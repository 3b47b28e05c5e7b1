// The user's path: `npm install /path/to/redpool/node` into a fresh app (which allows redpool's
// install script, as npm 11 requires), linked (npm's default) and copied (--install-links, which
// builds the addon from source with cargo); a clear failure when cargo is missing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = fileURLToPath(new URL('..', import.meta.url));
const repo = path.resolve(pkg, '..');
const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';

function run(cmd, args, options) {
  const result = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240000, ...options });
  assert.equal(result.status, 0, `${cmd} ${args.join(' ')}:\n${result.stdout}\n${result.stderr}`);
  return result.stdout;
}

function freshApp() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'redpool-app-'));
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, allowScripts: { redpool: true } }));
  fs.writeFileSync(path.join(dir, 'cjs.js'), "const Redis = require('redpool'); console.log(typeof Redis, typeof new Redis({ lazyConnect: true }).get);");
  fs.writeFileSync(path.join(dir, 'esm.mjs'), "import Redis, { ReplyError } from 'redpool'; console.log(typeof Redis, typeof ReplyError);");
  return dir;
}

for (const mode of ['linked', 'copied']) {
  test(`npm install of node/ into a fresh app (${mode}) gives a working require and import`, { timeout: 300000 }, () => {
    const app = freshApp();
    try {
      const args = ['install', '--no-audit', '--no-fund', pkg];
      if (mode === 'copied') args.splice(1, 0, '--install-links');
      run(npm, args, { cwd: app, env: { ...process.env, REDPOOL_SOURCE_DIR: repo } });
      assert.match(run(process.execPath, ['cjs.js'], { cwd: app }), /function function/);
      assert.match(run(process.execPath, ['esm.mjs'], { cwd: app }), /function function/);
    } finally {
      fs.rmSync(app, { recursive: true, force: true });
    }
  });
}

test('without cargo, building from source fails with a clear message', () => {
  const result = spawnSync(process.execPath, [path.join(pkg, 'scripts', 'install.js'), '--force'], {
    encoding: 'utf8',
    env: { PATH: '/nonexistent' },
  });
  assert.equal(result.status, 1);
  assert.match(result.stderr, /cargo was not found to build it from source/);
  assert.match(result.stderr, /rustup\.rs/);
});
