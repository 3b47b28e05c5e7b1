// client.acquire({ timeout, priority }): one connection checked out for one caller. A try
// (timeout 0) fails at once when the only connection is held; a 'high' waiter goes ahead of a
// 'normal' one that queued first; commands run on the checked-out connection; release() returns
// it (in use back to 0). No check depends on how fast anything is.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import Redis, { PooledConnection } from 'redpool';
import { startServer } from './helpers.mjs';

let server;
before(async () => { server = await startServer(); });
after(async () => { await server.stop(); });

/** A client with a single connection, whose waits last long enough that a try ending before them did not wait. */
function oneConnection(options = {}) {
  return new Redis(server.port, '127.0.0.1', { maxConnections: 1, acquireTimeout: 60000, lazyConnect: true, ...options });
}

async function waitUntil(condition, what) {
  const deadline = Date.now() + 20000;
  while (!condition()) {
    assert.ok(Date.now() < deadline, `still not ${what} after 20 s`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

test('a try (timeout 0) fails at once while the only connection is held', async () => {
  const redis = oneConnection();
  const held = await redis.acquire();
  assert.ok(held instanceof PooledConnection);
  assert.equal(await held.ping(), 'PONG');
  const started = Date.now();
  for (const priority of ['normal', 'high']) {
    await assert.rejects(redis.acquire({ timeout: 0, priority }), (err) => {
      assert.equal(err.code, 'ERR_POOL_TIMEOUT');
      assert.match(err.message, /max_connections=1/);
      return true;
    });
  }
  // Bounds "did not wait for the 60 s acquireTimeout", not speed.
  assert.ok(Date.now() - started < 30000);
  assert.equal(redis.stats().inUse, 1);
  assert.equal(redis.stats().waiting, 0);
  await held.release();
  const conn = await redis.acquire({ timeout: 0 });
  assert.equal(await conn.ping(), 'PONG');
  await conn.release();
  await redis.quit();
});

test("a 'high' waiter goes ahead of a 'normal' one that queued first", async () => {
  const redis = oneConnection();
  const held = await redis.acquire();
  const served = [];
  const wait = async (priority) => {
    const conn = await redis.acquire({ priority });
    served.push(priority); // before the release: the other waiter is served after
    await conn.release();
  };
  const normal = wait('normal');
  await waitUntil(() => redis.stats().waiting === 1, 'one waiter');
  const high = wait('high');
  await waitUntil(() => redis.stats().waiting === 2, 'two waiters');
  await held.release();
  await Promise.all([normal, high]);
  assert.deepEqual(served, ['high', 'normal']);
  assert.equal(redis.stats().inUse, 0);
  await redis.quit();
});

test('commands run on the checked-out connection, and release() returns it', async () => {
  const redis = new Redis(server.port, '127.0.0.1', { keyPrefix: 'acq:', lazyConnect: true });
  const oracle = new Redis(server.port, '127.0.0.1', { lazyConnect: true });
  const conn = await redis.acquire({ priority: 'high' });
  assert.equal(await conn.set('k', 'v'), 'OK');
  assert.equal(await conn.get('k'), 'v');
  assert.equal(await oracle.get('acq:k'), 'v', 'keys are prefixed as on the client');
  await conn.hset('h', { a: '1', b: '2' });
  assert.deepEqual(await conn.hgetall('h'), { a: '1', b: '2' });
  assert.deepEqual(await conn.getBuffer('k'), Buffer.from('v'));
  assert.equal(await conn.call('incr', 'n'), 1);
  // A session command the shared pool refuses works on a connection of one's own.
  assert.equal(await conn.client('setname', 'mine'), 'OK');
  assert.equal(await conn.client('getname'), 'mine');
  // Pipelines and WATCH transactions run on it too.
  assert.deepEqual(await conn.pipeline().incr('n').get('n').exec(), [[null, 2], [null, '2']]);
  assert.equal(await conn.watch('k'), 'OK');
  assert.equal(await conn.get('k'), 'v');
  await oracle.set('acq:k', 'changed');
  assert.equal(await conn.multi().set('k', 'w').exec(), null, 'the WATCHed key changed');
  assert.deepEqual(await conn.multi().set('k', 'w').exec(), [[null, 'OK']]);
  await assert.rejects(conn.exec(), (err) => err.code === 'ERR_INVALID_ARGUMENT');
  assert.equal(redis.stats().inUse, 1);
  await conn.release();
  await conn.release(); // idempotent
  assert.equal(redis.stats().inUse, 0);
  await assert.rejects(conn.get('k'), (err) => {
    assert.equal(err.code, 'ERR_POOL_CLOSED');
    assert.match(err.message, /already released/);
    return true;
  });
  // An error inside the caller's code: release() in `finally` returns it.
  await assert.rejects(async () => {
    const c = await redis.acquire();
    try {
      await c.set('k', 'x');
      throw new Error('boom');
    } finally {
      await c.release();
    }
  }, /boom/);
  assert.equal(redis.stats().inUse, 0);
  // The callback form.
  await new Promise((resolve, reject) => {
    redis.acquire({ timeout: 1000 }, (err, c) => (err ? reject(err) : c.release(resolve)));
  });
  assert.equal(redis.stats().inUse, 0);
  await redis.quit();
  await oracle.quit();
});

test('bad timeouts and priorities are refused naming them, before any wait', async () => {
  const redis = oneConnection();
  const held = await redis.acquire();
  const invalid = async (options, pattern) =>
    assert.rejects(redis.acquire(options), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT');
      assert.match(err.message, pattern);
      return true;
    });
  await invalid({ timeout: 0, priority: 'urgent' }, /^invalid priority = "urgent": must be normal or high$/);
  await invalid({ priority: 'HIGH' }, /invalid priority/);
  await invalid({ priority: 1 }, /invalid priority = 1: must be a string/);
  for (const timeout of [-1, NaN, Infinity, '100', 366 * 24 * 3600 * 1000]) {
    await invalid({ timeout }, /invalid timeout/);
  }
  await invalid(null, /acquire\(options\)/);
  assert.equal(redis.stats().inUse, 1);
  await held.release();
  await redis.quit();
  await assert.rejects(redis.acquire(), (err) => err.code === 'ERR_POOL_CLOSED');
});
