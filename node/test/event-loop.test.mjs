// The event loop never waits on Redis: timers tick and fs completes while the server is stopped
// and commands wait; a pending command keeps the process alive, an idle client does not.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import Redis from 'redpool';
import { startServer, waitStopped, sleep } from './helpers.mjs';

test('timers and fs.readFile keep running while the server is SIGSTOPped and commands wait', async () => {
  const server = await startServer();
  try {
    // Timeouts far above the loop's deadline below: the calls must still be waiting when it ends.
    const redis = new Redis(server.port, '127.0.0.1', { maxConnections: 8, minIdle: 8, enableAutoPipelining: false, commandTimeout: 30000, acquireTimeout: 30000, maxRetriesPerRequest: 0 });
    await Promise.all(Array.from({ length: 16 }, () => redis.ping())); // warm: 8 open connections
    server.stopProcess();
    await waitStopped(server.pid);
    // More waiting calls than libuv has threads (4): 8 reading a reply, 8 waiting for a connection.
    const waiting = Array.from({ length: 16 }, (_, i) => redis.get(`k${i}`));
    // Progress, not rate: a blocked event loop gets 0-1 timer ticks and no fs completion at all,
    // so a few of each, counted once all 16 calls are inside the pool (8 waiting for a
    // connection), prove the loop runs while they wait. A loaded machine may starve threads for
    // 100s of ms, so the loop runs until then, bounded by a generous deadline.
    const MIN_TICKS = 10;
    const MIN_READS = 10;
    let ticks = 0;
    const timer = setInterval(() => ticks++, 10);
    let reads = 0;
    let allWaiting = false;
    const self = fileURLToPath(import.meta.url);
    const deadline = Date.now() + 15000;
    for (let i = 0; i < 10000 && Date.now() < deadline; i++) {
      await fs.readFile(self);
      reads++;
      await sleep(5);
      if (!allWaiting && redis.stats().waiting === 8) {
        allWaiting = true;
        ticks = 0; // count from here on
        reads = 0;
      }
      if (allWaiting && ticks >= MIN_TICKS && reads >= MIN_READS) break;
    }
    clearInterval(timer);
    assert.ok(allWaiting, `stats().waiting never reached 8 (now ${redis.stats().waiting})`);
    assert.ok(ticks >= MIN_TICKS, `only ${ticks} timer ticks while the calls waited`);
    assert.ok(reads >= MIN_READS, `only ${reads} fs.readFile completions while the calls waited`);
    assert.equal(redis.stats().waiting, 8);
    server.continueProcess();
    const replies = await Promise.all(waiting);
    assert.deepStrictEqual(replies, Array(16).fill(null));
    await redis.quit();
  } finally {
    await server.stop();
  }
});

function runScript(source) {
  const started = Date.now();
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', source], { encoding: 'utf8', timeout: 20000, cwd: fileURLToPath(new URL('..', import.meta.url)) });
  return { ...child, elapsed: Date.now() - started };
}

test('a pending command keeps the process alive; an idle client without quit() does not', async () => {
  const server = await startServer();
  try {
    const pending = runScript(`import Redis from 'redpool';
      const r = new Redis(${server.port}, '127.0.0.1', { minIdle: 2 });
      r.blpop('nothing', 1).then((v) => console.log('reply', v));`);
    assert.equal(pending.status, 0, pending.stderr);
    assert.match(pending.stdout, /reply null/);
    assert.ok(pending.elapsed >= 900, `exited after ${pending.elapsed} ms`);
    const idle = runScript(`import Redis from 'redpool';
      const r = new Redis(${server.port}, '127.0.0.1', { minIdle: 2 });
      console.log(await r.ping()); // no quit()`);
    assert.equal(idle.status, 0, idle.stderr);
    assert.match(idle.stdout, /PONG/);
    assert.ok(idle.elapsed < 10000, `an idle client kept the process alive for ${idle.elapsed} ms`);
  } finally {
    await server.stop();
  }
});

test('worker threads settle their own promises, and one ending with calls in flight harms no other', async () => {
  const server = await startServer();
  try {
    const ran = runScript(`import Redis from 'redpool';
      import { Worker } from 'node:worker_threads';
      const worker = (end) => new Promise((resolve, reject) => {
        const w = new Worker(\`
          const Redis = require('redpool');
          const { parentPort } = require('node:worker_threads');
          const r = new Redis(${server.port}, '127.0.0.1');
          Promise.all(Array.from({ length: 200 }, (_, i) => r.incr('w'))).then((v) => {
            parentPort.postMessage(v.length);
            // Calls still in flight when the thread ends (its queue closes with its environment).
            for (let i = 0; i < 50; i++) r.blpop('nothing', 1).catch(() => {});
            ${'${end}'};
          });\`, { eval: true, execArgv: [] });
        w.on('message', resolve);
        w.on('error', reject);
      });
      const main = new Redis(${server.port}, '127.0.0.1');
      const counts = await Promise.all([worker('process.exit(0)'), worker('setTimeout(() => process.exit(0), 5)'), worker(''),
        Promise.all(Array.from({ length: 200 }, () => main.incr('m'))).then((v) => v.length)]);
      console.log(counts.join(','), await main.get('w'), await main.get('m'));
      await main.quit();`);
    assert.equal(ran.status, 0, ran.stderr);
    assert.match(ran.stdout, /^200,200,200,200 600 200$/m);
  } finally {
    await server.stop();
  }
});
