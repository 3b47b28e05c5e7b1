// Node never aborts: every public option and method that takes a number refuses NaN, ±Infinity,
// negative, too large and (where a whole number is meant) fractional values with a coded error,
// the process lives on and the client keeps working. The addon checks the numbers it is given
// even when the JS checks are bypassed, and a panic in the addon is a coded error, not an abort.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import util from 'node:util';
import Redis, { ReplyError } from 'redpool';
import { startServer } from './helpers.mjs';

const require = createRequire(import.meta.url);
const native = require('../native.js');
const { fromNative } = require('../lib/errors.js');

/** The bad values of every number; `0.5` only where a whole number is meant. */
const BAD = [NaN, Infinity, -Infinity, -1, 1e20, 2 ** 53];
const BAD_WHOLE = [...BAD, 0.5];
const DAY_MS = 24 * 3600 * 1000;

let server;
let redis;
before(async () => {
  server = await startServer();
  redis = new Redis(server.port, '127.0.0.1');
  await redis.ping();
});
after(async () => {
  await redis.quit();
  await server.stop();
});

const show = (value) => (Object.is(value, -0) ? '-0' : String(value));

/** Runs `call` (sync or async); returns the error it throws or rejects with, which must be coded. */
async function coded(label, call) {
  let error;
  try {
    await call();
  } catch (err) {
    error = err;
  }
  assert.ok(error, `${label}: no error`);
  assert.equal(typeof error.code, 'string', `${label}: no .code: ${util.inspect(error)}`);
  assert.match(error.code, /^ERR_/, `${label}: ${error.code}: ${error.message}`);
  return error;
}

/** The client works: a set/get round trip with a fresh key. */
async function stillWorks(client = redis) {
  const key = `alive:${Math.random()}`;
  assert.equal(await client.set(key, 'yes'), 'OK');
  assert.equal(await client.get(key), 'yes');
}

// ---------------------------------------------------------------------------------------------
// Options: [label, options from a value, bad values, what the message names]. Each is refused by
// the constructor with ERR_INVALID_ARGUMENT naming the option (or the core knob it sets).
const OPTIONS = [
  ['port', (v) => [{ port: v }], BAD_WHOLE, /\bport\b/],
  ['new Redis(port)', (v) => [v], BAD_WHOLE, /\bport\b/],
  ['new Redis(port, host)', (v) => [v, '127.0.0.1'], BAD_WHOLE, /\bport\b/],
  ['db', (v) => [{ db: v }], BAD_WHOLE, /\bdb\b/],
  ['connectTimeout', (v) => [{ connectTimeout: v }], BAD, /connectTimeout|connect_timeout/],
  ['commandTimeout', (v) => [{ commandTimeout: v }], BAD, /commandTimeout|socket_timeout/],
  ['keepAlive', (v) => [{ keepAlive: v }], BAD, /keepAlive/],
  ['maxRetriesPerRequest', (v) => [{ maxRetriesPerRequest: v }], BAD_WHOLE, /maxRetriesPerRequest|retries/],
  ['maxConnections', (v) => [{ maxConnections: v }], BAD_WHOLE, /maxConnections|max_connections/],
  ['minIdle', (v) => [{ minIdle: v }], BAD_WHOLE, /minIdle|min_idle/],
  ['acquireTimeout', (v) => [{ acquireTimeout: v }], BAD, /acquireTimeout|acquire_timeout/],
  ['healthCheckInterval', (v) => [{ healthCheckInterval: v }], BAD, /healthCheckInterval/],
  ['leakDetectionThreshold', (v) => [{ leakDetectionThreshold: v }], BAD, /leakDetectionThreshold/],
  ['breaker.failureThreshold', (v) => [{ breaker: { failureThreshold: v } }], BAD_WHOLE, /breaker\.failureThreshold|breaker_failure_threshold/],
  ['breaker.failureRate', (v) => [{ breaker: { failureRate: v } }], BAD_WHOLE, /breaker\.failureRate|breaker_failure_rate/],
  ['breaker.window', (v) => [{ breaker: { window: v } }], BAD, /breaker\.window|breaker_window/],
  ['breaker.minCalls', (v) => [{ breaker: { minCalls: v } }], BAD_WHOLE, /breaker\.minCalls/],
  ['breaker.recoveryTimeout', (v) => [{ breaker: { recoveryTimeout: v } }], BAD, /breaker\.recoveryTimeout|breaker_recovery_timeout/],
  ['breaker.halfOpenProbes', (v) => [{ breaker: { halfOpenProbes: v } }], BAD_WHOLE, /breaker\.halfOpenProbes|breaker_half_open_probes/],
  ['breaker.successThreshold', (v) => [{ breaker: { successThreshold: v } }], BAD_WHOLE, /breaker\.successThreshold|breaker_success_threshold/],
  ['breaker.probeTimeout', (v) => [{ breaker: { probeTimeout: v } }], BAD, /breaker\.probeTimeout|breaker_probe_timeout/],
  ['retryStrategy(1)', (v) => [{ retryStrategy: () => v }], BAD, /retryStrategy\(1\)/],
  ['retryStrategy(10)', (v) => [{ retryStrategy: (times) => (times === 1 ? 100 : v) }], BAD, /retryStrategy\(10\)/],
  ['knobs.idle_timeout', (v) => [{ knobs: { idle_timeout: v } }], BAD, /idle_timeout/],
  ['knobs.max_connections', (v) => [{ knobs: { max_connections: v } }], BAD_WHOLE, /max_connections/],
  ['knobs.breaker_failure_threshold', (v) => [{ knobs: { breaker_failure_threshold: v } }], BAD_WHOLE, /breaker_failure_threshold/],
  ['knobs.max_reply_bytes', (v) => [{ knobs: { max_reply_bytes: v } }], BAD_WHOLE, /max_reply_bytes/],
];

test('every numeric option refuses NaN, ±Infinity, negative, too large and fractional values', async () => {
  let cases = 0;
  for (const [label, args, values, names] of OPTIONS) {
    for (const value of values) {
      const what = `new Redis(${label} = ${show(value)})`;
      const err = await coded(what, () => new Redis(...args(value), { lazyConnect: true }));
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${what}: ${err.message}`);
      assert.match(err.message, names, `${what}: the message names the option`);
      cases++;
    }
  }
  // duplicate() takes the same options.
  for (const value of BAD_WHOLE) {
    const err = await coded(`duplicate({ maxConnections: ${value} })`, () => redis.duplicate({ maxConnections: value, lazyConnect: true }));
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
    cases++;
  }
  assert.ok(cases > 150, `${cases} cases`);
  await stillWorks();
});

test('options in range but beyond what the native side holds are refused, not wrapped or clamped', async () => {
  const cases = [
    [{ port: 65536 }, /port = "65536": must be a number between 1 and 65535/],
    [{ port: 2 ** 32 + 6379 }, /port/],
    [{ connectTimeout: 366 * DAY_MS }, /connectTimeout = \d+s: must be at most 1h/],
    [{ leakDetectionThreshold: 366 * DAY_MS }, /leakDetectionThreshold/],
    [{ breaker: { failureThreshold: 2 ** 32 } }, /breaker\.failureThreshold = "4294967296": must be at most 4294967295/],
    [{ maxRetriesPerRequest: 2 ** 32 } , /maxRetriesPerRequest/],
    // Text knobs are the core's to parse; a count too large for its 32-bit field is refused.
    [{ knobs: { retries: '4294967296' } }, /retries = "4294967296": must be at most 4294967295/],
    [{ knobs: { breaker_min_calls: '99999999999999999999999' } }, /breaker_min_calls/],
    [{ knobs: { idle_timeout: `${366 * 24}h` } }, /idle_timeout/],
  ];
  for (const [options, message] of cases) {
    const err = await coded(util.inspect(options), () => new Redis({ ...options, lazyConnect: true }));
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
    assert.match(err.message, message);
  }
  // The limits themselves are accepted.
  for (const options of [{ port: 65535 }, { leakDetectionThreshold: 365 * DAY_MS }, { breaker: { failureThreshold: 2 ** 32 - 1 } }]) {
    new Redis({ ...options, lazyConnect: true }).disconnect();
  }
});

// ---------------------------------------------------------------------------------------------
// Methods. resize() takes counts; a blocking command's timeout is a Redis argument and the block
// time its reply timeout is computed from. What the server refuses (NaN, Infinity, negative, a
// fraction where it takes milliseconds) is sent, and the server's error is a ReplyError, as with
// ioredis; what it would take but is longer than 365 days (1e20, 2^53) is ERR_INVALID_ARGUMENT.

test('resize() refuses bad counts', async () => {
  const client = new Redis(server.port, '127.0.0.1', { maxConnections: 4 });
  for (const value of BAD_WHOLE) {
    for (const [label, call] of [
      [`resize(${show(value)})`, () => client.resize(value)],
      [`resize(${show(value)}, 0)`, () => client.resize(value, 0)],
      [`resize(4, ${show(value)})`, () => client.resize(4, value)],
    ]) {
      const err = await coded(label, call);
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${label}: ${err.message}`);
      assert.match(err.message, /maxConnections|minIdle/);
    }
  }
  const err = await coded('resize(70000)', () => client.resize(70000, 0));
  assert.match(err.message, /maxConnections = 70000/);
  assert.equal(client.stats().maxConnections, 4);
  await stillWorks(client);
  await client.quit();
});

/** Blocking commands, with the bad value as their timeout; `whole` for millisecond timeouts. */
const BLOCKING = [
  ['blpop', (v) => ['bad:list', v], false],
  ['brpop', (v) => ['bad:list', v], false],
  ['bzpopmin', (v) => ['bad:zset', v], false],
  ['brpoplpush', (v) => ['bad:list', 'bad:dest', v], false],
  ['blmove', (v) => ['bad:list', 'bad:dest', 'LEFT', 'RIGHT', v], false],
  ['blmpop', (v) => [v, 1, 'bad:list', 'LEFT'], false],
  ['bzmpop', (v) => [v, 1, 'bad:zset', 'MIN'], false],
  ['wait', (v) => [0, v], true],
  ['xread', (v) => ['BLOCK', v, 'STREAMS', 'bad:stream', '$'], true],
  ['xreadgroup', (v) => ['GROUP', 'g', 'c', 'BLOCK', v, 'STREAMS', 'bad:stream', '>'], true],
];

async function checkBlocking(client, via) {
  let cases = 0;
  for (const [name, args, whole] of BLOCKING) {
    for (const value of whole ? BAD_WHOLE : BAD) {
      const label = `${via}: ${name}(${args(value).map(show).join(', ')})`;
      const err = await coded(label, () => client[name](...args(value)));
      if (Number.isFinite(value) && value > 365 * 24 * 3600) {
        assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${label}: ${err.message}`);
        assert.match(err.message, new RegExp(`${name.toUpperCase()} timeout = .*: must be at most 365 days`));
      } else {
        assert.ok(err instanceof ReplyError, `${label}: ${err.code} ${err.message}`);
        assert.match(err.message, /timeout/);
      }
      cases++;
    }
  }
  return cases;
}

test('blocking commands: bad timeouts are refused, by the server or by redpool', async () => {
  const cases = await checkBlocking(redis, 'pooled');
  assert.equal(cases, 7 * 6 + 3 * 7);
  // The same through call()/callBuffer() and without auto-pipelining.
  const plain = new Redis(server.port, '127.0.0.1', { enableAutoPipelining: false });
  await checkBlocking(plain, 'no auto-pipelining');
  for (const value of BAD) {
    await coded(`call('blpop', ${value})`, () => redis.call('blpop', 'bad:list', value));
    await coded(`callBuffer('blpop', ${value})`, () => redis.callBuffer('blpop', 'bad:list', value));
  }
  await stillWorks(plain);
  await plain.quit();
  await stillWorks();
});

test('blocking commands in a watch() session (a checked-out connection)', async () => {
  const client = new Redis(server.port, '127.0.0.1');
  await client.watch('bad:watched');
  await checkBlocking(client, 'watch session');
  assert.deepEqual(await client.multi().set('bad:watched', 1).exec(), [[null, 'OK']]);
  await stillWorks(client);
  await client.quit();
});

test('a block time within 365 days is still a blocking command (the limits are not off by one)', async () => {
  // Values the server takes: they block (for 50 ms here), nothing is refused.
  assert.equal(await redis.blpop('bad:list', 0.05), null);
  assert.equal(await redis.xread('BLOCK', 50, 'STREAMS', 'bad:stream', '$'), null);
  // 365 days exactly passes redpool's check; the reply timeout is capped, the command is sent.
  const pending = redis.duplicate({ maxConnections: 1 });
  const popped = pending.blpop('bad:year', 365 * 24 * 3600);
  await redis.rpush('bad:year', 'x');
  assert.deepEqual(await popped, ['bad:year', 'x']);
  await pending.quit();
});

test('defineCommand: a bad numberOfKeys is the server\'s error', async () => {
  for (const value of BAD_WHOLE) {
    const name = `badKeys${String(value).replace(/\W/g, '_')}`;
    redis.defineCommand(name, { lua: 'return 1', numberOfKeys: value });
    const err = await coded(`${name}()`, () => redis[name]('k'));
    assert.ok(err instanceof ReplyError, `${name}: ${err.code} ${err.message}`);
  }
  await stillWorks();
});

// ---------------------------------------------------------------------------------------------
// The addon itself, below the JS checks: a bad number is ERR_INVALID_ARGUMENT, never a panic
// (`Duration::from_secs_f64(NaN)` and `Instant + huge` panic) and never Node-API's wrapped u32.

test('the addon refuses bad numbers even when the JS checks are bypassed', async () => {
  // The port is knob text, checked by the core like every knob.
  const options = (port) => ({
    knobs: [
      { knob: 'host', value: '127.0.0.1', writtenAs: 'host' },
      { knob: 'port', value: port, writtenAs: 'port' },
    ],
  });
  for (const port of [...BAD_WHOLE, 0, 65536, 2 ** 32 + server.port]) {
    const err = await coded(`NativePool port ${port}`, () => new native.NativePool(options(port)));
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
    assert.match(err.message, /invalid port[ :=]/);
  }
  const pool = new native.NativePool(options(server.port));
  const ping = [['PING']];
  const sync = (label, call) => {
    assert.throws(call, (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${label}: ${err.message}`);
      return true;
    }, label);
  };
  for (const v of BAD_WHOLE) {
    sync(`resize(${v}, 0)`, () => pool.resize(v, 0));
    sync(`resize(1, ${v})`, () => pool.resize(1, v));
  }
  for (const v of BAD) {
    sync(`pipeline timeout ${v}`, () => pool.pipeline(ping, [false], v));
    sync(`transaction timeout ${v}`, () => pool.transaction(ping, [false], v));
    sync(`blocking timeout ${v}`, () => pool.blocking(['BLPOP', 'bad:list', '1'], false, v));
    sync(`close ${v}`, () => pool.close(v));
  }
  const conn = await pool.acquire();
  sync('connection blocking 1e20', () => conn.blocking(['BLPOP', 'bad:list', '1e20'], false));
  assert.deepEqual(await conn.pipeline(ping, [false]), ['PONG']);
  await conn.release();
  assert.deepEqual(await pool.pipeline(ping, [false], 1000), ['PONG']);
  await pool.close(0);
});

// ---------------------------------------------------------------------------------------------
// Panics. In a child process (so that their messages on stderr stay out of this run's output, and
// the process's survival is what is checked): the reviewer's crash, every bad-number call shape,
// and panics on purpose at each boundary of the addon.

test('the process survives: BLPOP 1e20 and panics in the addon are coded errors', () => {
  const script = `
    const Redis = require('redpool');
    const native = require(${JSON.stringify(fileURLToPath(new URL('../native.js', import.meta.url)))});
    const { fromNative } = require(${JSON.stringify(fileURLToPath(new URL('../lib/errors.js', import.meta.url)))});
    const code = async (call) => { try { await call(); return 'no error'; } catch (err) { return err.code; } };
    (async () => {
      const redis = new Redis(${server.port}, '127.0.0.1');
      const out = {
        blpop: await code(() => redis.blpop('q', 1e20)),
        blpopSession: await code(async () => { await redis.watch('w'); try { return await redis.blpop('q', 1e20); } finally { await redis.unwatch(); } }),
        resize: await code(() => redis.resize(NaN)),
        sync: await code(() => native.__panicForTests('sync')),
        worker: await code(() => native.__panicForTests('worker')),
        settle: await code(() => native.__panicForTests('settle')),
        returnRaw: await code(() => native.__panicForTests('return')),
        returnMapped: await code(async () => { try { native.__panicForTests('return'); } catch (err) { throw fromNative(err); } }),
      };
      await redis.set('after', 'panics');
      out.after = await redis.get('after');
      await redis.quit();
      console.log(JSON.stringify(out));
    })();
  `;
  const child = spawnSync(process.execPath, ['-e', script], {
    cwd: fileURLToPath(new URL('..', import.meta.url)),
    encoding: 'utf8',
    timeout: 30000,
  });
  assert.equal(child.signal, null, `the child was killed by ${child.signal}: ${child.stderr}`);
  assert.equal(child.status, 0, child.stderr);
  const out = JSON.parse(child.stdout.trim().split('\n').pop());
  assert.deepEqual(out, {
    blpop: 'ERR_INVALID_ARGUMENT',
    blpopSession: 'ERR_INVALID_ARGUMENT',
    resize: 'ERR_INVALID_ARGUMENT',
    sync: 'ERR_INTERNAL',
    worker: 'ERR_INTERNAL',
    settle: 'ERR_INTERNAL',
    // napi-rs's own catch_unwind (conversions) reports its status; the JS layer maps it.
    returnRaw: 'GenericFailure',
    returnMapped: 'ERR_INTERNAL',
    // ... and the client still works.
    after: 'panics',
  });
  // The panics were real ones, reported on stderr by Rust's panic hook, and caught.
  assert.match(child.stderr, /panicked at/);
  assert.doesNotMatch(child.stderr, /abort/i);
});

test('fromNative gives every native error an ERR_ code', () => {
  const withCode = (code) => Object.assign(new Error('x'), { code });
  assert.equal(fromNative(withCode('GenericFailure')).code, 'ERR_INTERNAL');
  assert.equal(fromNative(withCode('NumberExpected')).code, 'ERR_INVALID_ARGUMENT');
  assert.equal(fromNative(new Error('no code')).code, 'ERR_INTERNAL');
  assert.equal(fromNative('a string').code, 'ERR_INTERNAL');
  assert.equal(fromNative(withCode('ERR_TIMEOUT')).code, 'ERR_TIMEOUT');
});
