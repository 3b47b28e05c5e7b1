// One behaviour in every language (issue 15.1): defaults and rules come from the core, so the
// Node package agrees with the Rust, C and Python ones.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import Redis, { ReplyError } from 'redpool';
import { startServer, freePort } from './helpers.mjs';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const native = require('../native.js');
const { fromNative } = require('../lib/errors.js');

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

test('the default host is the core\'s 127.0.0.1', async () => {
  const redis = new Redis({ port: server.port });
  try {
    assert.match(util.inspect(redis), /127\.0\.0\.1:/);
    assert.equal(await redis.ping(), 'PONG');
  } finally {
    await redis.quit();
  }
});

test('the port is checked by the core, with the core\'s message', () => {
  for (const port of [0, 65536, -1, 1.5, 'http']) {
    assert.throws(() => new Redis({ port, lazyConnect: true }), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, /invalid port = .*: must be a number between 1 and 65535/);
      return true;
    });
  }
});

test('NOPERM is a ReplyError (ERR_REPLY), as in ioredis; refused credentials stay ERR_AUTH', async () => {
  const admin = new Redis({ port: server.port });
  await admin.call('ACL', 'SETUSER', 'reader', 'on', '>reader-pass', '~*', '&*', '+@all', '-set');
  const reader = new Redis({ port: server.port, username: 'reader', password: 'reader-pass', maxRetriesPerRequest: 0 });
  try {
    const err = await reader.set('k', 'v').catch((e) => e);
    assert.ok(err instanceof ReplyError, String(err));
    assert.equal(err.code, 'ERR_REPLY');
    assert.match(err.message, /^NOPERM/);
    assert.equal(await reader.get('k'), null);
  } finally {
    await reader.quit();
    await admin.quit();
  }
});

test('err.transient is the core\'s classifier', async () => {
  const refused = new Redis({ port: await freePort(), maxRetriesPerRequest: 0, lazyConnect: true });
  refused.on('error', () => {});
  const err = await refused.get('k').catch((e) => e);
  assert.equal(err.code, 'ERR_CONNECTION');
  assert.equal(err.transient, true);
  refused.disconnect();
  const redis = new Redis({ port: server.port });
  try {
    const reply = await redis.call('INCR', 'k', 'x').catch((e) => e);
    assert.ok(reply instanceof ReplyError);
    assert.equal(reply.transient, false);
    assert.throws(() => new Redis({ port: 0 }), (e) => e.transient === false);
  } finally {
    await redis.quit();
  }
});

test('a blocking command\'s reply timeout is the core\'s: block time plus the socket timeout', async () => {
  // A block time longer than the socket timeout, which the nil reply (due at the block time, up
  // to ~100 ms late at the server's hz 10) comes after; the socket timeout on top is wide enough
  // for that lateness and a loaded machine's stalls.
  const redis = new Redis({ port: server.port, commandTimeout: 1000, maxRetriesPerRequest: 0 });
  try {
    assert.equal(await redis.blpop('node:blocking:empty', 1.5), null);
    const negative = await redis.blpop('node:blocking:empty', -1).catch((e) => e);
    assert.ok(negative instanceof ReplyError, String(negative));
    const huge = await redis.blpop('node:blocking:empty', 1e20).catch((e) => e);
    assert.equal(huge.code, 'ERR_INVALID_ARGUMENT');
    assert.match(huge.message, /BLPOP timeout = \d+: must be at most 365 days/);
  } finally {
    await redis.quit();
  }
});

test('a released connection is closed (ERR_POOL_CLOSED), as in Python, with the core\'s message', async () => {
  const pool = new native.NativePool({ knobs: [{ knob: 'port', value: server.port, writtenAs: 'port' }] });
  try {
    const conn = await pool.acquire();
    assert.deepEqual(await conn.pipeline([['PING']], [false]), ['PONG']);
    await conn.release();
    const err = await conn.pipeline([['PING']], [false]).then(() => null, (e) => fromNative(e));
    assert.equal(err?.code, 'ERR_POOL_CLOSED', String(err));
    assert.match(err.message, /already released to the pool/);
    assert.equal(err.transient, false);
  } finally {
    await pool.close(1000);
  }
});

test('knobs: a number is milliseconds for a duration knob, text needs its unit (the core\'s rule)', async () => {
  // 300 means 300 ms (it was 300 s): DEBUG SLEEP 1 outlasts it and times out.
  const redis = new Redis({ port: server.port, knobs: { socket_timeout: 300, retries: 0, breaker: false } });
  try {
    const err = await redis.call('DEBUG', 'SLEEP', '1').then(() => null, (e) => e);
    assert.equal(err?.code, 'ERR_TIMEOUT', String(err));
  } finally {
    redis.disconnect();
  }
  // 5000 as seconds would be refused (timeouts above one hour); as milliseconds it is 5 s.
  const ok = new Redis({ port: server.port, knobs: { connect_timeout: 5000, max_lifetime: '2s' } });
  assert.equal(await ok.ping(), 'PONG');
  await ok.quit();
  assert.throws(() => new Redis({ port: server.port, knobs: { max_lifetime: '2000' } }), (e) => {
    assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
    assert.match(e.message, /invalid knobs\.max_lifetime = "2000": a duration given as text needs its unit/);
    return true;
  });
});

test('Redis.fromEnv() reads the environment through the core (new Redis() does not, as in ioredis)', async () => {
  const saved = { ...process.env };
  try {
    process.env.REDIS_URL = `redis://127.0.0.1:${server.port}/3`;
    process.env.REDIS_MAX_CONNECTIONS = '3';
    const redis = Redis.fromEnv({ keyPrefix: 'env:' });
    try {
      await redis.set('k', 'from-env');
      const db3 = new Redis({ port: server.port, db: 3 });
      assert.equal(await db3.get('env:k'), 'from-env');
      await db3.quit();
    } finally {
      await redis.quit();
    }
    // A variable that contradicts REDIS_URL is refused, naming both, never its value.
    process.env.REDIS_PASSWORD = 'env-secret-value';
    assert.throws(() => Redis.fromEnv(), (e) => {
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, /REDIS_PASSWORD conflicts with REDIS_URL/);
      assert.ok(!e.message.includes('env-secret-value'));
      return true;
    });
    assert.throws(() => Redis.fromEnv('redis://x'), (e) => e.code === 'ERR_INVALID_ARGUMENT');
  } finally {
    for (const key of Object.keys(process.env)) if (!(key in saved)) delete process.env[key];
    Object.assign(process.env, saved);
  }
});

test('a count above 32 bits is refused by the core\'s knob table, with its message (no addon copy)', () => {
  for (const value of [2 ** 32, '4294967296']) {
    assert.throws(() => new Redis({ port: server.port, lazyConnect: true, knobs: { breaker_min_calls: value } }), (e) => {
      assert.equal(e.code, 'ERR_INVALID_ARGUMENT');
      assert.match(e.message, /invalid knobs\.breaker_min_calls = "4294967296": must be at most 4294967295/);
      return true;
    });
  }
});
