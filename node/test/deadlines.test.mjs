// A deadline is a deadline (issue 14.1): through a proxy that forwards the server's bytes one at a
// time, 200 ms apart (a 100-byte reply takes over 20 s), a command ends by commandTimeout for the
// whole reply and the whole call (retries included), a blocking command by its block time plus
// commandTimeout, and the AUTH/SETNAME handshake of a new connection by connectTimeout. The Node
// twin of tests/deadlines.rs. Bounds are generous (4 s): they tell an answer by the deadline from
// the 20 s a dribbled reply takes, not a speed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'redpool';
import { startServer, dribbleProxy } from './helpers.mjs';

const DRIBBLE_MS = 200;
const ANSWERED_BY_MS = 4000;
const PASSWORD = 'dribble-pw';
const LIMIT = { timeout: 60000 };

let server;
let protectedServer;
before(async () => {
  server = await startServer();
  protectedServer = await startServer(['--requirepass', PASSWORD]);
  const setup = new Redis(server.port, '127.0.0.1');
  await setup.set('k', 'v'.repeat(100));
  await setup.rpush('l', 'v'.repeat(100));
  await setup.quit();
});
after(async () => {
  await server.stop();
  await protectedServer.stop();
});

/** Awaits `promise`, which must reject with ERR_TIMEOUT within ANSWERED_BY_MS; returns the error and the time taken. */
async function timedOut(promise, what) {
  const started = performance.now();
  const err = await promise.then(() => assert.fail(`${what} succeeded`), (e) => e);
  const took = performance.now() - started;
  assert.equal(err.code, 'ERR_TIMEOUT', `${what}: ${err.code} ${err.message}`);
  assert.ok(took < ANSWERED_BY_MS, `${what} answered after ${took.toFixed(0)} ms`);
  return { err, took };
}

/**
 * A client through a proxy that starts dribbling once the client is connected. `lazyConnect`, so
 * that no PING of the constructor's own connect() is still waiting for the only connection (and
 * then dribbled, holding it) when the test's command is sent.
 */
async function dribblingClient(options) {
  const proxy = await dribbleProxy(server.port);
  const redis = new Redis(proxy.port, '127.0.0.1', { maxConnections: 1, lazyConnect: true, ...options });
  redis.on('error', () => {});
  await redis.connect();
  proxy.dribble(DRIBBLE_MS);
  return { redis, proxy };
}

test('a dribbled reply times out by commandTimeout for the whole reply', LIMIT, async () => {
  const { redis, proxy } = await dribblingClient({ commandTimeout: 500, maxRetriesPerRequest: 0 });
  try {
    const { took } = await timedOut(redis.get('k'), 'GET');
    assert.ok(took >= 450, `GET gave up after ${took.toFixed(0)} ms`);
    // A pipeline and a transaction are bounded the same way.
    await timedOut(redis.pipeline().get('k').exec(), 'a pipeline');
    await timedOut(redis.multi().get('k').exec(), 'a transaction');
  } finally {
    redis.disconnect();
    await proxy.close();
  }
});

test('commandTimeout is the whole call\'s deadline, retries included', LIMIT, async () => {
  // GET may be retried 3 times (the default); every attempt would take commandTimeout again.
  const { redis, proxy } = await dribblingClient({ commandTimeout: 1000 });
  try {
    await timedOut(redis.get('k'), 'GET');
  } finally {
    redis.disconnect();
    await proxy.close();
  }
});

test('a blocking command ends by its block time plus commandTimeout, retries included', LIMIT, async () => {
  // BLPOP may be retried here (retry_non_idempotent); every attempt would take 1.5 s again.
  const { redis, proxy } = await dribblingClient({ commandTimeout: 500, knobs: { retry_non_idempotent: true } });
  try {
    const { took } = await timedOut(redis.blpop('l', 1), 'BLPOP');
    assert.ok(took >= 1450, `BLPOP gave up after ${took.toFixed(0)} ms`);
  } finally {
    redis.disconnect();
    await proxy.close();
  }
});

test('a dribbled handshake times out by connectTimeout', LIMIT, async () => {
  // AUTH and CLIENT SETNAME are answered +OK each: 10 bytes, 2 s dribbled.
  const proxy = await dribbleProxy(protectedServer.port, DRIBBLE_MS);
  const redis = new Redis(proxy.port, '127.0.0.1', { password: PASSWORD, connectTimeout: 500, maxRetriesPerRequest: 0, lazyConnect: true });
  redis.on('error', () => {});
  try {
    const { err } = await timedOut(redis.ping(), 'PING on a new connection');
    assert.match(err.message, /handshake/);
    assert.ok(!err.message.includes(PASSWORD), err.message);
  } finally {
    redis.disconnect();
    await proxy.close();
  }
});
