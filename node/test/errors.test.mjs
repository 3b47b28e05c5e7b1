// Every failure path gives an error with a stable .code; bad arguments give clear errors (never a
// crash); secrets never appear in messages or util.inspect.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import util from 'node:util';
import Redis, { ReplyError, RedpoolError } from 'redpool';
import { startServer, waitStopped, freePort, sleep } from './helpers.mjs';

const SECRET = 'sup3r-s3cret-pw';
let server;
before(async () => { server = await startServer(['--requirepass', SECRET]); });
after(async () => { await server.stop(); });

const quiet = (redis) => redis.on('error', () => {});

test('ERR_CONNECTION, ERR_AUTH and ERR_REPLY', async () => {
  const port = await freePort();
  const refused = quiet(new Redis(port, '127.0.0.1', { lazyConnect: true, maxRetriesPerRequest: 0 }));
  const err = await refused.get('k').catch((e) => e);
  assert.ok(err instanceof RedpoolError);
  assert.equal(err.code, 'ERR_CONNECTION');
  refused.disconnect();

  const wrong = quiet(new Redis(server.port, '127.0.0.1', { password: 'wrong-password', lazyConnect: true }));
  const refusedCredentials = await wrong.get('k').catch((e) => e);
  assert.equal(refusedCredentials.code, 'ERR_AUTH');
  // The server's refusal (WRONGPASS), a ReplyError as in ioredis.
  assert.ok(refusedCredentials instanceof ReplyError, String(refusedCredentials));
  assert.match(refusedCredentials.message, /WRONGPASS/);
  wrong.disconnect();

  const redis = new Redis(server.port, '127.0.0.1', { password: SECRET });
  await redis.set('s', 'x');
  const reply = await redis.incr('s').catch((e) => e);
  assert.ok(reply instanceof ReplyError);
  assert.equal(reply.code, 'ERR_REPLY');
  assert.match(reply.message, /^ERR value is not an integer/);
  await redis.quit();
});

test('ERR_TIMEOUT and ERR_POOL_TIMEOUT', async () => {
  // commandTimeout 1 s on top of the block time: room for a nil reply up to ~100 ms late (the
  // server's hz 10) and a loaded machine's stalls.
  const redis = new Redis(server.port, '127.0.0.1', { password: SECRET, maxConnections: 1, acquireTimeout: 100, commandTimeout: 1000, maxRetriesPerRequest: 0, breaker: false });
  await redis.ping();
  const blocking = redis.blpop('empty', 1.5); // holds the only connection for 1.5 s
  // The BLPOP checks out on a worker thread: wait until it holds the connection, else the GET
  // may take it first.
  for (let i = 0; i < 500 && redis.stats().inUse !== 1; i++) await sleep(10);
  assert.equal(redis.stats().inUse, 1, 'the BLPOP did not take the connection');
  await assert.rejects(redis.get('k'), { code: 'ERR_POOL_TIMEOUT' });
  assert.equal(await blocking, null);
  server.stopProcess();
  await waitStopped(server.pid);
  try {
    await assert.rejects(redis.get('k'), { code: 'ERR_TIMEOUT' });
  } finally {
    server.continueProcess();
  }
  redis.disconnect();
});

test('ERR_POOL_CLOSED and ERR_INVALID_ARGUMENT for bad calls', async () => {
  const redis = new Redis(server.port, '127.0.0.1', { password: SECRET });
  await assert.rejects(redis.set({ an: 'object' }, 'v'), { code: 'ERR_INVALID_ARGUMENT', message: /argument 1 of SET is an object/ });
  await assert.rejects(redis.call(''), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(redis.subscribe('chan'), { code: 'ERR_INVALID_ARGUMENT', message: /pub\/sub/ });
  await assert.rejects(redis.select(1), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(redis.pipeline().set(Symbol('x'), 1).exec(), { code: 'ERR_INVALID_ARGUMENT' });
  await redis.quit();
  await assert.rejects(redis.get('k'), { code: 'ERR_POOL_CLOSED' });
  await assert.rejects(redis.pipeline().get('k').exec(), { code: 'ERR_POOL_CLOSED' });
});

test('bad constructor arguments throw clear errors', () => {
  const cases = [
    [[{ port: 'abc' }], /port/],
    [[{ connectTimeout: -5 }], /connectTimeout = -5: must be a finite duration >= 0/],
    [[{ commandTimeout: 'soon' }], /commandTimeout/],
    [[{ maxConnections: 0 }], /maxConnections/],
    [[{ minIdle: 10, maxConnections: 2 }], /minIdle = 10: must not exceed max_connections/],
    [['http://127.0.0.1:6379']], [['redis://[::1']], [['not a url']],
    [[{ connectTimeout: 7200 * 1000 }], /connectTimeout = 7200s: must be at most 1h/],
    [[{ tls: { ca: 'PEM' } }], /tls.caFile/],
    [[{ breaker: { nope: 1 } }], /unknown breaker option/],
    [[{ knobs: { no_such_knob: 1 } }], /unknown/],
    [[() => {}]],
  ];
  for (const [args, message] of cases) {
    assert.throws(() => new Redis(...args), (err) => {
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${util.inspect(args)}: ${err.message}`);
      if (message) assert.match(err.message, message);
      return true;
    });
  }
});

test('secrets appear in no message, inspect output or options', async () => {
  const url = `redis://user:${SECRET}@127.0.0.1:${server.port}/0`;
  const texts = [];
  for (const client of [new Redis(url, { lazyConnect: true }), new Redis({ port: server.port, password: SECRET, lazyConnect: true })]) {
    texts.push(util.inspect(client, { depth: 5, showHidden: true }), JSON.stringify(client.options), util.inspect(client.stats()));
    client.disconnect();
  }
  const badUser = quiet(new Redis(`redis://nobody:${SECRET}@127.0.0.1:${server.port}`, { lazyConnect: true }));
  const err = await badUser.get('k').catch((e) => e);
  texts.push(err.message, util.inspect(err));
  badUser.disconnect();
  for (const args of [[`redis://u:${SECRET}@127.0.0.1:99999`], [{ password: SECRET, port: -1 }], [{ password: 42 }]]) {
    try { new Redis(...args); } catch (e) { texts.push(e.message, util.inspect(e)); }
  }
  for (const text of texts) assert.ok(!text.includes(SECRET), `secret leaked: ${text}`);
});

test('a reply error shows its command with every password hidden (the core\'s rule, as in Python)', async () => {
  const redis = new Redis({ port: server.port, password: SECRET });
  await redis.set('k', 'v');
  const port = await freePort(); // nothing listens: MIGRATE fails with IOERR
  const cases = [
    [['MIGRATE', '127.0.0.1', port, 'k', 0, 100, 'AUTH', SECRET], ['127.0.0.1', String(port), 'k', '0', '100', 'AUTH', '[redacted]']],
    [['MIGRATE', '127.0.0.1', port, 'k', 0, 100, 'AUTH2', 'user', Buffer.from(SECRET)], ['127.0.0.1', String(port), 'k', '0', '100', 'AUTH2', '[redacted]', '[redacted]']],
    [['incrby', Buffer.from('k'), 1], [Buffer.from('k'), '1']],
    [['CONFIG', 'SET', 'masterauth', SECRET, 'nosuch-parameter', 'x'], ['SET', 'masterauth', '[redacted]', 'nosuch-parameter', 'x']],
    [['ACL', 'SETUSER', 'u', 'on', `>${SECRET}`, 'nosuch-rule'], ['SETUSER', 'u', 'on', '[redacted]', 'nosuch-rule']],
    [['INCR', 'k'], ['k']],
  ];
  for (const [command, shown] of cases) {
    const err = await redis.call(...command).then(() => assert.fail(`${command[0]} succeeded`), (e) => e);
    assert.ok(err instanceof ReplyError, `${command[0]}: ${err.code} ${err.message}`);
    assert.deepEqual(err.command, { name: command[0], args: shown }); // the name as spelled, Buffers kept, as ioredis
    assert.ok(!util.inspect(err).includes(SECRET), util.inspect(err));
  }
  await redis.quit();
});
