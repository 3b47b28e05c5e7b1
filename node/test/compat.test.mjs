// The same calls on ioredis and on redpool give the same results (reply shapes, errors, pipelines).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import IORedis from 'ioredis';
import Redis, { ReplyError } from 'redpool';
import { startServer } from './helpers.mjs';

let server;
let io;
let rp;

before(async () => {
  server = await startServer();
  io = new IORedis(server.port, '127.0.0.1', { lazyConnect: true });
  rp = new Redis(server.port, '127.0.0.1', { maxConnections: 4 });
});
after(async () => {
  await io.quit();
  await rp.quit();
  await server.stop();
});

const CALLS = [
  ['set', 'str', 'hello'], ['get', 'str'], ['getBuffer', 'str'], ['get', 'missing'], ['append', 'str', ' world'],
  ['strlen', 'str'], ['getrange', 'str', 0, 4], ['set', 'n', 10], ['incr', 'n'], ['incrby', 'n', 5], ['decr', 'n'],
  ['incrbyfloat', 'n', '1.5'], ['set', 'ex', 'v', 'EX', 100], ['ttl', 'ex'], ['set', 'nx', 'v', 'NX'], ['set', 'nx', 'v', 'NX'],
  ['mset', { a: 1, b: 'two' }], ['mget', 'a', 'b', 'missing'], ['mget', ['a', 'b']], ['exists', 'a', 'b', 'zz'], ['del', 'a'],
  ['hset', 'h', { f1: 'v1', f2: 2 }], ['hset', 'h', 'f3', 'v3'], ['hget', 'h', 'f1'], ['hgetall', 'h'], ['hgetallBuffer', 'h'],
  ['hgetall', 'nohash'], ['hmget', 'h', 'f1', 'nope'], ['hincrby', 'h', 'f2', 3], ['hkeys', 'h'], ['hlen', 'h'], ['hdel', 'h', 'f3'],
  ['lpush', 'l', 'a', 'b', 'c'], ['rpush', 'l', ['d', 'e']], ['lrange', 'l', 0, -1], ['lrangeBuffer', 'l', 0, 1], ['lpop', 'l'],
  ['llen', 'l'], ['lindex', 'l', 1], ['sadd', 's', 'x', 'y', 'z'], ['scard', 's'], ['sismember', 's', 'x'], ['srem', 's', 'x'],
  ['zadd', 'z', 1, 'one', 2, 'two', 3, 'three'], ['zrange', 'z', 0, -1], ['zrange', 'z', 0, -1, 'WITHSCORES'], ['zscore', 'z', 'two'],
  ['zrevrangebyscore', 'z', '+inf', '-inf', 'WITHSCORES', 'LIMIT', 0, 2], ['zincrby', 'z', 2, 'one'], ['zrank', 'z', 'one'],
  ['type', 'z'], ['expire', 'str', 100], ['persist', 'str'], ['rename', 'str', 'str2'], ['keys', 'str*'],
  ['eval', 'return {1, 2, "three", redis.call("get", KEYS[1])}', 1, 'str2'], ['echo', 'hé ✓'], ['ping'], ['ping', 'hi'],
  ['xadd', 'stream', '1-1', 'field', 'value'], ['xrange', 'stream', '-', '+'], ['xlen', 'stream'],
  ['lpush', 'str2', 'x'], ['hgetall', 'str2'], ['incr', 'h'], ['get', 'h'], ['call', 'GET', 'str2'], ['callBuffer', 'GET', 'str2'],
  ['setBuffer', Buffer.from([0, 255, 1]), Buffer.from([2, 0, 254])], ['getBuffer', Buffer.from([0, 255, 1])],
  ['bitcount', 'str2'], ['object', 'ENCODING', 'z'], ['dbsize'], ['hget', Buffer.from('str2'), 'f'], ['call', 'HGET', 'str2', 'f'],
];

/** Whether `err` is the client's ReplyError (ioredis 6 names its subclass SimpleError). */
const isReply = (client, err) => err instanceof (client === io ? IORedis.ReplyError : ReplyError);

async function run(client) {
  await client.flushdb();
  const results = [];
  for (const [method, ...args] of CALLS) {
    try {
      results.push({ method, ok: await client[method](...args) });
    } catch (err) {
      results.push({ method, error: err.message, reply: isReply(client, err), command: err.command });
    }
  }
  return results;
}

test('replies and errors match ioredis for a broad set of commands', async () => {
  const expected = await run(io);
  const actual = await run(rp);
  for (let i = 0; i < CALLS.length; i++) assert.deepStrictEqual(actual[i], expected[i], `call ${JSON.stringify(CALLS[i])}`);
});

test('pipeline and multi results match ioredis, including errors in place', async () => {
  const build = (c) => c.pipeline().set('p', 1).incr('p').lpush('p', 'x').get('p').hgetall('nothing');
  const shape = (client, results) =>
    results.map(([err, value]) => (err ? { err: err.message, reply: isReply(client, err) } : value));
  assert.deepStrictEqual(shape(rp, await build(rp).exec()), shape(io, await build(io).exec()));
  const multi = (c) => c.multi().set('m', 1).incr('m').lpush('m', 'x').get('m').exec();
  assert.deepStrictEqual(shape(rp, await multi(rp)), shape(io, await multi(io)));
  const arrayForm = (c) => c.pipeline([['set', 'af', 'v'], ['get', 'af']]).exec();
  assert.deepStrictEqual(await arrayForm(rp), await arrayForm(io));
  assert.deepStrictEqual(await rp.multi().exec(), await io.multi().exec());
});

test('a transaction the server rejects while queueing: EXECABORT with ioredis\'s previousErrors', async () => {
  const rejected = (c) =>
    c.multi().set('q', 1).call('nosuchcmd', 'x').incr().exec().then(() => assert.fail('exec succeeded'), (e) => e);
  const [mine, theirs] = [await rejected(rp), await rejected(io)];
  assert.ok(mine instanceof ReplyError, String(mine));
  assert.match(mine.message, /^EXECABORT/);
  assert.match(theirs.message, /^EXECABORT/);
  const shown = (err) => err.previousErrors.map((e) => [e.message, e.command]);
  assert.equal(mine.previousErrors.length, 2);
  assert.ok(mine.previousErrors.every((e) => e instanceof ReplyError && e.code === 'ERR_REPLY'));
  assert.deepStrictEqual(shown(mine), shown(theirs));
  assert.deepStrictEqual(mine.command, theirs.command); // EXEC's: { name: 'exec', args: [] }
  assert.equal(await rp.get('q'), null); // discarded: nothing ran

  // EXEC itself refused (an ACL without EXEC), nothing rejected while queueing: previousErrors is
  // empty, as in ioredis, not absent.
  await rp.call('ACL', 'SETUSER', 'noexec', 'on', '>noexec-pw', '~*', '+@all', '-exec');
  const options = { username: 'noexec', password: 'noexec-pw' };
  const [mineRefused, theirsRefused] = await Promise.all(
    [new Redis(server.port, '127.0.0.1', options), new IORedis(server.port, '127.0.0.1', options)].map(async (c) => {
      const err = await c.multi().set('q', 1).exec().then(() => assert.fail('exec succeeded'), (e) => e);
      await c.quit();
      return err;
    }),
  );
  assert.ok(mineRefused instanceof ReplyError, String(mineRefused));
  assert.deepStrictEqual(mineRefused.previousErrors, []);
  assert.deepStrictEqual(theirsRefused.previousErrors, []);
  assert.deepStrictEqual(mineRefused.command, theirsRefused.command);
  await rp.call('ACL', 'DELUSER', 'noexec');
});

test('a server error repeating binary arguments is a ReplyError, as in ioredis, and the client stays ready', async () => {
  const errorsSeen = [];
  const seen = (e) => errorsSeen.push(e);
  rp.on('error', seen);
  const failed = (c) => c.call('nosuchcmd', Buffer.from([0xff, 0xfe, 0x41])).then(() => assert.fail('succeeded'), (e) => e);
  const [mine, theirs] = [await failed(rp), await failed(io)];
  assert.ok(mine instanceof ReplyError, `${mine.code} ${mine.message}`);
  assert.equal(mine.message, theirs.message);
  const inMulti = await rp.multi().call('nosuchcmd', Buffer.from([0xff])).exec().catch((e) => e);
  assert.equal(inMulti.previousErrors.length, 1);
  assert.equal(await rp.echo('after'), 'after');
  assert.equal(rp.status, 'ready');
  rp.off('error', seen);
  assert.deepEqual(errorsSeen, []);
});

test('callbacks, the CommonJS entry and server errors as ReplyError', async () => {
  const value = await new Promise((resolve, reject) => rp.echo('cb', (err, v) => (err ? reject(err) : resolve(v))));
  assert.equal(value, 'cb');
  const error = await new Promise((resolve) => rp.call('NOSUCHCOMMAND', (err) => resolve(err)));
  assert.ok(error instanceof ReplyError);
  assert.equal(error.code, 'ERR_REPLY');
  assert.match(error.message, /^ERR unknown command/);
  const cjs = createRequire(import.meta.url)('redpool');
  assert.equal(cjs, Redis);
  assert.equal(cjs.default, Redis);
});

test('WATCH: a conflicting write makes exec() resolve to null, as ioredis does', async () => {
  await rp.set('w', 1);
  assert.equal(await rp.watch('w'), 'OK');
  const current = Number(await rp.get('w'));
  await io.set('w', 100); // another client changes the key
  assert.equal(await rp.multi().set('w', current + 1).exec(), null);
  assert.equal(await rp.get('w'), '100');
  await rp.watch('w');
  assert.deepStrictEqual(await rp.multi().incr('w').exec(), [[null, 101]]);
  await rp.watch('w');
  assert.equal(await rp.unwatch(), 'OK');
  await io.set('w', 5);
  assert.deepStrictEqual(await rp.multi().incr('w').exec(), [[null, 6]]);
});

test('keyPrefix, defineCommand and blocking commands', async () => {
  const prefixed = new Redis(server.port, '127.0.0.1', { keyPrefix: 'app:' });
  await prefixed.set('k', 'v');
  await prefixed.mset({ k2: 'v2' });
  assert.equal(await io.get('app:k'), 'v');
  assert.equal(await io.get('app:k2'), 'v2');
  prefixed.defineCommand('getTwice', { lua: 'return redis.call("get", KEYS[1]) .. redis.call("get", KEYS[1])', numberOfKeys: 1 });
  assert.equal(await prefixed.getTwice('k'), 'vv');
  assert.equal(await prefixed.getTwice('k'), 'vv'); // EVALSHA hit
  await prefixed.quit();
  // A blocking command waits past commandTimeout (its reply timeout is the block time + that).
  // commandTimeout 1 s on top of the block time: room for a nil reply up to ~100 ms late (the
  // server's hz 10) and a loaded machine's stalls.
  const fast = new Redis(server.port, '127.0.0.1', { commandTimeout: 1000 });
  setTimeout(() => io.rpush('jobs', 'job1'), 1500);
  assert.deepStrictEqual(await fast.blpop('jobs', 5), ['jobs', 'job1']);
  assert.equal(await fast.blpop('jobs', 1.5), null);
  await fast.quit();
});
