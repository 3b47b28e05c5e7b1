// Pool behaviour through the client: concurrency on a few connections, auto-pipelining round
// trips, events, stats, health, lifecycle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis from 'redpool';
import { startServer, countingProxy, sleep, waitStopped, rawCommand } from './helpers.mjs';

/** Health thresholds no scheduling stall reaches (degraded at 10 s, unhealthy at 20 s PING). */
const RELAXED_HEALTH = { health_degraded_latency: 10000, health_unhealthy_latency: 20000 };

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

for (const enableAutoPipelining of [true, false]) {
  test(`1000 concurrent promises on maxConnections 4 each get their own reply (autoPipelining ${enableAutoPipelining})`, async () => {
    const redis = new Redis(server.port, '127.0.0.1', { maxConnections: 4, enableAutoPipelining });
    await redis.mset(Object.fromEntries(Array.from({ length: 1000 }, (_, i) => [`key:${i}`, `val:${i}`])));
    // Issued over several ticks, so several batches (or single calls) are in flight at once.
    const replies = await Promise.all(Array.from({ length: 1000 }, async (_, i) => {
      if (i % 7 === 0) await new Promise((r) => setImmediate(r));
      return redis.get(`key:${i}`);
    }));
    replies.forEach((reply, i) => assert.equal(reply, `val:${i}`));
    const stats = redis.stats();
    assert.ok(stats.open <= 4, `open ${stats.open}`);
    assert.ok(stats.commands >= 1001);
    await redis.quit();
  });
}

test('auto-pipelining sends one tick of commands in one round trip', async () => {
  const proxy = await countingProxy(server.port);
  const count = async (options) => {
    const redis = new Redis(proxy.port, '127.0.0.1', { maxConnections: 4, lazyConnect: true, ...options });
    await redis.ping();
    const before = proxy.stats.writes;
    const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => redis.echo(`m${i}`)));
    replies.forEach((r, i) => assert.equal(r, `m${i}`));
    const writes = proxy.stats.writes - before;
    await redis.quit();
    return writes;
  };
  const pipelined = await count({});
  const unpipelined = await count({ enableAutoPipelining: false });
  assert.ok(pipelined <= 3, `auto-pipelined: ${pipelined} writes for 100 commands`);
  assert.ok(unpipelined >= 50, `without auto-pipelining: ${unpipelined} writes`);
  await proxy.close();
});

test('an auto-pipelined batch carries every argument byte for byte (UTF-8, lone surrogates, Buffers, empty, long)', async () => {
  const redis = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  const values = ['', 'ascii', 'é', '日本語', '😀 astral', 'lone \ud800 high', 'lone \udc00 low', 'end \ud83d',
    Buffer.from([0xff, 0x00, 0xc3]), Buffer.alloc(0), 'x'.repeat(300) + 'é'.repeat(300), 42,
    // Around the length past which a string goes as a Buffer (packed.js LONG_STRING).
    'é'.repeat(4096), 'z'.repeat(4097), 'y'.repeat(5000) + '\ud800', '\udc00' + '日'.repeat(9000)];
  // One tick: one batch, keys and values of every kind side by side.
  const sets = values.map((value, i) => redis.set(i % 2 ? `packed:${i}:ключ` : Buffer.from(`packed:${i}:ключ`), value));
  assert.deepEqual(await Promise.all(sets), values.map(() => 'OK'));
  const got = await Promise.all(values.map((_, i) => redis.getBuffer(`packed:${i}:ключ`)));
  got.forEach((reply, i) => {
    const value = values[i];
    assert.deepEqual(reply, Buffer.isBuffer(value) ? value : Buffer.from(String(value)), `value ${i}`);
  });
  await redis.quit();
});

test('ready/close/end events, status, stats, health, duplicate, quit and disconnect', async () => {
  // Generous health thresholds: this checks the plumbing, not latency (a loaded machine can stall
  // a PING past the 50 ms / 100 ms defaults).
  const redis = new Redis(`redis://127.0.0.1:${server.port}/2`, { minIdle: 1, knobs: RELAXED_HEALTH });
  const seen = [];
  for (const e of ['connect', 'ready', 'close', 'end']) redis.on(e, () => seen.push(e));
  await new Promise((resolve) => redis.once('ready', resolve));
  assert.equal(redis.status, 'ready');
  const health = await redis.health();
  assert.equal(health.status, 'healthy');
  assert.equal(health.breaker, 'closed');
  assert.ok(health.pingLatencyMs >= 0);
  assert.ok(health.serverInfo.redis_version);
  await redis.set('db2', 'x');
  const copy = redis.duplicate({ db: 3 });
  assert.equal(await copy.get('db2'), null);
  assert.equal(await redis.get('db2'), 'x');
  copy.disconnect();
  const pending = redis.get('db2');
  assert.equal(await redis.quit(), 'OK');
  assert.equal(await pending, 'x'); // issued before quit: completes
  assert.equal(redis.status, 'end');
  assert.deepStrictEqual(seen, ['connect', 'ready', 'close', 'end']);
  await assert.rejects(redis.get('db2'), { code: 'ERR_POOL_CLOSED' });
});

test('disconnect(true) closes every connection and connects again, as ioredis does, cutting no command', async () => {
  const redis = new Redis(server.port, '127.0.0.1', { minIdle: 2, maxConnections: 4 });
  await new Promise((resolve) => redis.once('ready', resolve));
  await redis.set('reconnect:k', 'v');
  const seen = [];
  for (const e of ['close', 'reconnecting', 'connect', 'ready', 'end']) redis.on(e, () => seen.push(e));
  const created = redis.stats().connectionsCreated;
  const running = redis.blpop('reconnect:empty', 0.5); // holds a connection through the reconnect
  for (let i = 0; i < 500 && redis.stats().inUse !== 1; i++) await sleep(10);
  assert.equal(redis.stats().inUse, 1, 'the BLPOP did not take a connection');
  const ready = new Promise((resolve) => redis.once('ready', resolve));
  redis.disconnect(true);
  assert.equal(redis.status, 'reconnecting');
  await ready;
  assert.equal(redis.status, 'ready');
  assert.deepStrictEqual(seen, ['close', 'reconnecting', 'connect', 'ready']);
  assert.equal(await running, null); // not cut: its connection is closed once it is returned
  assert.equal(await redis.get('reconnect:k'), 'v');
  const stats = redis.stats();
  assert.ok(stats.connectionsClosed.discarded >= 2, JSON.stringify(stats.connectionsClosed));
  assert.ok(stats.connectionsCreated > created, `${stats.connectionsCreated} > ${created}`);
  // A second disconnect(true) while one is under way does nothing; quit() right after one ends
  // the client with ioredis's close and end only.
  seen.length = 0;
  redis.disconnect(true);
  redis.disconnect(true);
  await redis.quit();
  assert.deepStrictEqual(seen, ['close', 'end']);
});

test('disconnect(true) emits on the next tick, as ioredis: listeners added right after the call hear it', async () => {
  const redis = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  await redis.connect();
  const seen = [];
  redis.disconnect(true);
  // Listeners added right after the call still hear its events, as in ioredis.
  for (const e of ['close', 'reconnecting', 'ready']) redis.on(e, () => seen.push(e));
  await new Promise((resolve) => redis.once('ready', resolve));
  assert.deepStrictEqual(seen, ['close', 'reconnecting', 'ready']);
  await redis.quit();
});

/** Resolves on the client's next 'ready'; rejects after `ms`. */
function nextReady(redis, ms = 20000) {
  let timer;
  return new Promise((resolve, reject) => {
    redis.once('ready', resolve);
    timer = setTimeout(() => reject(new Error(`not ready within ${ms} ms (status ${redis.status})`)), ms);
  }).finally(() => clearTimeout(timer));
}

/**
 * Runs `body(redis, frozen)` on a client of a fresh server, then quits and stops both. `freeze()`
 * SIGSTOPs the server and fails one GET by `commandTimeout`: an outage seen by a call.
 */
async function withFreezableServer(options, body) {
  const frozen = await startServer();
  const redis = new Redis(frozen.port, '127.0.0.1', { commandTimeout: 500, maxRetriesPerRequest: 0, ...options });
  const freeze = async () => {
    frozen.stopProcess();
    await waitStopped(frozen.pid);
    await assert.rejects(redis.get('k'), { code: 'ERR_TIMEOUT' });
  };
  try {
    await nextReady(redis);
    await body(redis, frozen, freeze);
  } finally {
    await redis.quit();
    await frozen.stop();
  }
}

test('after an outage the client is ready again by itself, as ioredis: error, close, reconnecting, then connect and ready, no command sent', async () => {
  await withFreezableServer({}, async (redis, frozen, freeze) => {
    const seen = [];
    for (const e of ['error', 'close', 'reconnecting', 'connect', 'ready']) redis.on(e, () => seen.push(e));
    await freeze();
    assert.equal(redis.status, 'reconnecting');
    frozen.continueProcess();
    await nextReady(redis);
    assert.equal(redis.status, 'ready');
    assert.deepStrictEqual(seen.slice(0, 3), ['error', 'close', 'reconnecting'], String(seen));
    assert.deepStrictEqual(seen.slice(-2), ['connect', 'ready'], String(seen));
    assert.ok(seen.slice(3, -2).every((e) => e === 'reconnecting'), String(seen));
    assert.equal(await redis.get('k'), null);
  });
});

test('an idle client whose circuit opened in an outage is ready again once the breaker lets a PING through', async () => {
  await withFreezableServer({ breaker: { failureThreshold: 1, recoveryTimeout: 1000 } }, async (redis, frozen, freeze) => {
    redis.on('error', () => {});
    await freeze();
    assert.equal(redis.breakerState, 'open');
    frozen.continueProcess();
    await nextReady(redis); // no command sent: the recovery check's PING went through the breaker
    assert.equal(redis.breakerState, 'closed');
    assert.equal(await redis.get('k'), null);
  });
});

test('an idle client sees the server go away with no command sent, as ioredis does; a connection killed alone is no outage', async () => {
  const gone = await startServer();
  const redis = new Redis(gone.port, '127.0.0.1', { minIdle: 1 });
  const seen = [];
  try {
    await nextReady(redis);
    for (const e of ['error', 'close', 'reconnecting']) redis.on(e, () => seen.push(e));
    // The server closes the idle connection but answers: one check, no events.
    assert.match(await rawCommand(gone.port, 'CLIENT', 'KILL', 'TYPE', 'normal'), /^:1/);
    for (let i = 0; i < 500 && !redis.stats().connectionsClosed.server_closed; i++) await sleep(10);
    assert.equal(redis.stats().connectionsClosed.server_closed, 1);
    await sleep(200); // the check's time
    assert.equal(redis.status, 'ready');
    assert.deepStrictEqual(seen, []);
    // The server is gone: the pool finds its idle connection closed, the check no answer.
    await gone.stop();
    for (let i = 0; i < 1000 && redis.status === 'ready'; i++) await sleep(10);
    assert.equal(redis.status, 'reconnecting');
    assert.deepStrictEqual(seen.slice(0, 3), ['error', 'close', 'reconnecting']);
  } finally {
    await redis.quit();
  }
});

test('a disconnect(true) that cannot reconnect goes on as an outage: error, close, reconnecting', async () => {
  const gone = await startServer();
  const redis = new Redis(gone.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
  try {
    await nextReady(redis);
    await gone.stop();
    const seen = [];
    for (const e of ['error', 'close', 'reconnecting', 'ready']) redis.on(e, () => seen.push(e));
    redis.disconnect(true);
    for (let i = 0; i < 500 && seen.filter((e) => e === 'reconnecting').length < 2; i++) await sleep(10);
    assert.deepStrictEqual(seen.slice(0, 5), ['close', 'reconnecting', 'error', 'close', 'reconnecting'], String(seen));
    assert.equal(redis.status, 'reconnecting');
  } finally {
    await redis.quit();
  }
});

test('quit() from an error listener ends the outage\'s events: error, close, end, as ioredis', async () => {
  const gone = await startServer();
  const redis = new Redis(gone.port, '127.0.0.1', { maxRetriesPerRequest: 0 });
  await nextReady(redis);
  await gone.stop();
  const seen = [];
  for (const e of ['error', 'close', 'reconnecting', 'end']) redis.on(e, () => seen.push(e));
  redis.once('error', () => redis.quit());
  await assert.rejects(redis.get('k'), { code: 'ERR_CONNECTION' });
  for (let i = 0; i < 200 && !seen.includes('end'); i++) await sleep(10);
  assert.deepStrictEqual(seen, ['error', 'close', 'end']);
});

test('breaker events reach the client', async () => {
  const dead = await startServer();
  const redis = new Redis(dead.port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 200, breaker: { failureThreshold: 2, recoveryTimeout: 60000 } });
  const events = [];
  redis.on('circuitOpen', (e) => events.push(e));
  redis.on('error', () => {});
  await redis.ping();
  await dead.stop();
  await assert.rejects(redis.ping(), { code: 'ERR_CONNECTION' });
  await assert.rejects(redis.ping(), { code: 'ERR_CONNECTION' });
  await assert.rejects(redis.ping(), { code: 'ERR_CIRCUIT_OPEN' });
  for (let i = 0; i < 100 && events.length === 0; i++) await new Promise((r) => setTimeout(r, 10));
  assert.deepStrictEqual(events, [{ from: 'closed', to: 'open' }]);
  assert.equal(redis.breakerState, 'open');
  redis.disconnect();
});
