// Reply integrity through the Node client: a command the shared pool refuses fails alone (never the
// auto-pipelined batch it would have joined), refused pipelines send nothing, session commands work
// in a watch() session whose connection is then closed, and under a generated load of the server's
// whole command table every probe gets its own reply. ioredis is the oracle.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import IORedis from 'ioredis';
import Redis from 'redpool';
import { startServer } from './helpers.mjs';

let server;
let io;
before(async () => {
  server = await startServer();
  io = new IORedis(server.port, '127.0.0.1', { lazyConnect: true });
});
after(async () => {
  await io.quit();
  await server.stop();
});

/** Commands that change the connection, as `call()` arguments; each is refused by the shared pool. */
const SESSION_COMMANDS = [
  ['select', 1], ['auth', 'pw'], ['hello', 3], ['client', 'setname', 'x'], ['client', 'reply', 'off'],
  ['client', 'tracking', 'on'], ['client', 'caching', 'yes'], ['client', 'no-evict', 'on'],
  ['client', 'no-touch', 'on'], ['client', 'setinfo', 'lib-name', 'x'], ['readonly'], ['readwrite'],
  ['asking'], ['reset'], ['monitor'], ['subscribe', 'c'], ['psubscribe', 'p*'], ['ssubscribe', 's'],
  ['unsubscribe'], ['punsubscribe'], ['sunsubscribe'], ['sync'], ['psync', '?', '-1'],
  ['replconf', 'ack', '0'], ['multi'], ['watch', 'k'],
];

/** The upper-case name a refusal starts with (with the subcommand for CLIENT). */
const upperName = ([name, sub]) => (name === 'client' ? `CLIENT ${sub.toUpperCase()}` : name.toUpperCase());

/** The server's names of the commands in `INFO commandstats` (`select`, `client|setname`, ...). */
async function commandsRun() {
  const info = await io.info('commandstats');
  return new Set([...info.matchAll(/^cmdstat_([^:]+):/gm)].map((m) => m[1]));
}

test('a refused command rejects alone; the commands issued in the same tick succeed', async () => {
  const client = new Redis(server.port, '127.0.0.1', { maxConnections: 2 });
  await io.config('RESETSTAT');
  for (const command of SESSION_COMMANDS) {
    const key = `tick:${command.join(':')}`;
    const [set, refused, get] = await Promise.allSettled([client.set(key, 'v'), client.call(...command), client.get(key)]);
    assert.deepStrictEqual([set.status, set.value], ['fulfilled', 'OK'], `${command}: ${set.reason}`);
    assert.deepStrictEqual([get.status, get.value], ['fulfilled', 'v'], `${command}: ${get.reason}`);
    assert.equal(refused.status, 'rejected', String(command));
    assert.equal(refused.reason.code, 'ERR_INVALID_ARGUMENT', `${command}: ${refused.reason.message}`);
    assert.ok(refused.reason.message.startsWith(upperName(command)), refused.reason.message);
  }
  const run = await commandsRun();
  for (const [name, sub] of SESSION_COMMANDS) {
    const stat = name === 'client' ? `client|${sub}` : name;
    assert.ok(!run.has(stat), `${stat} reached the server`);
  }
  await client.quit();
});

test('a pipeline or multi() holding SELECT rejects with ERR_INVALID_ARGUMENT and sends nothing', async () => {
  const client = new Redis(server.port, '127.0.0.1');
  await io.config('RESETSTAT');
  for (const chain of [client.pipeline(), client.multi()]) {
    const err = await chain.set('pipe:k', 'v').select(1).get('pipe:k').exec().catch((e) => e);
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT', err.message);
    assert.ok(err.message.startsWith('SELECT'), err.message);
  }
  assert.equal(await io.get('pipe:k'), null);
  const run = await commandsRun();
  for (const name of ['set', 'select', 'multi', 'exec']) assert.ok(!run.has(name), `${name} reached the server`);
  await client.quit();
});

test('in a watch() session SELECT works, and the connection is closed afterwards', async () => {
  const client = new Redis(server.port, '127.0.0.1', { maxConnections: 1 });
  await client.watch('session:w');
  const sessionId = await client.client('ID');
  assert.equal(await client.select(1), 'OK');
  await client.set('session:db', 'one'); // in db 1, on the session's connection
  assert.deepStrictEqual(await client.multi().get('session:db').exec(), [[null, 'one']]);
  assert.notEqual(await client.client('ID'), sessionId);
  assert.equal(await client.get('session:db'), null); // db 0 again
  await io.select(1);
  assert.equal(await io.get('session:db'), 'one');
  await io.select(0);
  assert.equal(client.stats().connectionsClosed.discarded, 1);
  await client.quit();
});

/** Commands left out of the generated load: they stop the server, wipe the probes' keys, or reach elsewhere. */
const EXCLUDED = new Set(['shutdown', 'flushall', 'flushdb', 'swapdb', 'replicaof', 'slaveof', 'failover', 'migrate']);

/** A seeded PRNG (mulberry32): `next()` in [0, 1). */
function prng(seed) {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Every command and subcommand of the server's `COMMAND` table: `{ words, arity, blocking }`. */
async function commandTable() {
  const specs = [];
  const add = ([name, arity, flags, , , , , , , subcommands = []]) => {
    const words = name.toLowerCase().split('|');
    if (EXCLUDED.has(words[0])) return;
    specs.push({ words, arity, blocking: flags.includes('blocking') });
    subcommands.forEach(add);
  };
  (await io.command()).forEach(add);
  return specs;
}

test('generated load of the whole command table: every probe gets its own reply', { timeout: 60000 }, async () => {
  const seed = Number(process.env.REDPOOL_SEED ?? Date.now()) >>> 0;
  console.log(`integrity: generated load with REDPOOL_SEED=${seed}`);
  const random = prng(seed);
  const pick = (n) => Math.floor(random() * n);
  let serial = 0;
  /** One argument: a key of this run, or a small number ('0.01' for blocking commands, so they block little). */
  const argument = (blocking) => (random() < 0.5 ? `gen:${seed}:${pick(8)}` : blocking ? '0.01' : String(1 + pick(3)));
  /** The arguments of one command (its words, then what its arity asks for, a few more if variadic). */
  const generate = ({ words, arity, blocking }) => {
    const count = Math.abs(arity) - words.length + (arity < 0 ? pick(3) : 0);
    return [...words, ...Array.from({ length: count }, () => argument(blocking))];
  };

  const specs = await commandTable();
  const client = new Redis(server.port, '127.0.0.1', { maxConnections: 2 });
  const counts = { sent: 0, rejected: {}, probes: 0 };
  const failures = [];
  const command = (args) =>
    client.call(...args).then(
      () => {},
      (err) => {
        counts.rejected[err.code] = (counts.rejected[err.code] ?? 0) + 1;
        if (!['ERR_REPLY', 'ERR_INVALID_ARGUMENT'].includes(err.code)) failures.push(`${args.join(' ')}: ${err.code} ${err.message}`);
      },
    );
  const probe = async () => {
    const n = serial++;
    counts.probes++;
    const token = `probe:${seed}:${n}`;
    if (n % 2) {
      assert.equal(await client.echo(token), token);
    } else {
      assert.equal(await client.set(token, `value ${n}`), 'OK');
      assert.equal(await client.get(token), `value ${n}`);
    }
  };

  const deadline = Date.now() + 3000;
  const inFlight = [];
  // One pass over the whole table at least, then more until the deadline; each tick sends a mix of
  // commands and probes (one pipeline), and several ticks are in flight on the two connections.
  for (let round = 0; counts.sent < specs.length || Date.now() < deadline; round++) {
    for (let i = 0; i < 16; i++) {
      const spec = counts.sent < specs.length ? specs[counts.sent] : specs[pick(specs.length)];
      counts.sent++;
      inFlight.push(command(generate(spec)), probe());
    }
    if (round % 8 === 7) await Promise.all(inFlight.splice(0));
    else await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(inFlight);
  console.log(`integrity: ${specs.length} commands in the table, ${JSON.stringify(counts)}`);
  assert.deepStrictEqual(failures, []);
  assert.ok(counts.sent >= specs.length && counts.probes >= specs.length);
  assert.equal(await client.echo('still aligned'), 'still aligned');
  await client.quit();
});
