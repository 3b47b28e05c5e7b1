// The typings compile against code written for ioredis's API, list every command, and the npm,
// Cargo and addon versions agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { version, nativeVersion } from 'redpool';

const root = fileURLToPath(new URL('..', import.meta.url));

test('tsc --noEmit compiles a TypeScript example against index.d.ts, and the generated native.d.ts', () => {
  execFileSync(process.execPath, [`${root}/node_modules/typescript/bin/tsc`, '-p', `${root}/test/fixtures/tsconfig.json`], { stdio: 'pipe' });
});

test('index.d.ts names every command of the table (scripts/gen-types.js --check)', () => {
  execFileSync(process.execPath, [`${root}/scripts/gen-types.js`, '--check'], { stdio: 'pipe' });
});

test('package.json, the Cargo workspace and the addon have one version', () => {
  const cargo = fs.readFileSync(`${root}/../Cargo.toml`, 'utf8');
  const workspaceVersion = /\[workspace\.package\][^[]*?\nversion = "([^"]+)"/.exec(cargo)[1];
  assert.equal(version, workspaceVersion);
  assert.equal(nativeVersion, workspaceVersion);
});
