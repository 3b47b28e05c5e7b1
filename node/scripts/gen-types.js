#!/usr/bin/env node
'use strict';
/**
 * Regenerates the command-name list in index.d.ts (between the GENERATED markers) from
 * @ioredis/commands, so the typings name every command method the client has.
 * `node scripts/gen-types.js --check` fails when the file is out of date (the tests run it).
 */
const fs = require('node:fs');
const path = require('node:path');
const { NAMES } = require('../lib/commands');

const file = path.join(__dirname, '..', 'index.d.ts');
const BEGIN = '// GENERATED: command names (node scripts/gen-types.js)\n';
const END = '// END GENERATED\n';

const text = fs.readFileSync(file, 'utf8');
const start = text.indexOf(BEGIN);
const end = text.indexOf(END);
if (start < 0 || end < start) throw new Error(`index.d.ts lacks the GENERATED markers`);
const lines = [];
for (let i = 0; i < NAMES.length; i += 8) {
  lines.push(`  | ${NAMES.slice(i, i + 8).map((n) => `'${n}'`).join(' | ')}`);
}
const block = `${BEGIN}export type CommandName =\n${lines.join('\n')};\n${END}`;
const updated = text.slice(0, start) + block + text.slice(end + END.length);
if (process.argv.includes('--check')) {
  if (updated !== text) {
    console.error('index.d.ts is out of date: run node scripts/gen-types.js');
    process.exit(1);
  }
} else {
  fs.writeFileSync(file, updated);
}
