// The conformance suite's Node driver: runs every scenario of tests/conformance/*.json
// (operations and expected outcomes, the same files the C and Python drivers run; the format is
// in tests/conformance/README.md) through the ioredis-compatible API a Node user calls:
// `new Redis(...)`, `call`, `pipeline(...).exec()`, `multi(...).exec()`, `stats()`, `metrics()`, `breakerState`,
// `health()`. A scenario listed under `known_divergence.node` must fail (reported, not fatal);
// if it passes, the entry is stale and the test fails.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Redis from 'redpool';
import { startServer, freePort, rawCommand, waitStopped, sleep } from './helpers.mjs';

const DIR = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'tests', 'conformance');
const SCENARIOS = fs.readdirSync(DIR).filter((f) => f.endsWith('.json')).sort();
const LIMIT = { timeout: 60000 };

/**
 * The one table of this driver: each language-neutral ErrorKind name and the `.code` a Node
 * program sees (a server error reply is a `ReplyError` with code ERR_REPLY, as in ioredis).
 */
const KINDS = {
  connection: 'ERR_CONNECTION',
  timeout: 'ERR_TIMEOUT',
  pool_exhausted: 'ERR_POOL_TIMEOUT',
  circuit_open: 'ERR_CIRCUIT_OPEN',
  auth: 'ERR_AUTH',
  response: 'ERR_REPLY',
  protocol: 'ERR_PROTOCOL',
  invalid_argument: 'ERR_INVALID_ARGUMENT',
  closed: 'ERR_POOL_CLOSED',
};

/** The neutral kind of an error, from its `.code`. */
function kindOf(err) {
  const kind = Object.keys(KINDS).find((k) => KINDS[k] === err?.code);
  return kind ?? `${err?.name} with code ${err?.code}`;
}

/** A call's outcome: `{ value }` or `{ kind, message }`. */
async function outcome(fn) {
  try {
    return { value: neutral(await fn()) };
  } catch (err) {
    return { kind: kindOf(err), message: String(err?.message) };
  }
}

/** A reply as the scenarios write it: ioredis's `[err, value]` pipeline pairs flattened. */
function neutral(value) {
  if (value instanceof Error) return { error: kindOf(value), message: value.message };
  return Array.isArray(value) ? value.map(neutral) : value;
}

function matches(want, got) {
  if (want !== null && typeof want === 'object' && !Array.isArray(want) && 'error' in want) return got?.error === want.error;
  if (Array.isArray(want)) return Array.isArray(got) && want.length === got.length && want.every((w, i) => matches(w, got[i]));
  return want === got;
}

/** Compares an outcome with an `expect` object (absent: the call must succeed). */
function check(expect = {}, result) {
  if (result.kind !== undefined) {
    assert.ok(expect.error, `failed with ${result.kind}: ${result.message}`);
    assert.equal(result.kind, expect.error, `expected a ${expect.error} error, got ${result.kind}: ${result.message}`);
    if (expect.message_contains) assert.ok(result.message.includes(expect.message_contains), result.message);
    if (expect.message_excludes) assert.ok(!result.message.includes(expect.message_excludes), result.message);
    return;
  }
  assert.ok(!expect.error, `expected a ${expect.error} error, got ${JSON.stringify(result.value)}`);
  if ('reply' in expect) assert.ok(matches(expect.reply, result.value), `expected reply ${JSON.stringify(expect.reply)}, got ${JSON.stringify(result.value)}`);
  if (expect.reply_contains) assert.ok(String(result.value).includes(expect.reply_contains), String(result.value));
}

const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/** A loopback listener that answers each chunk it reads with fixed bytes. */
async function fakeServer(reply) {
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('data', () => socket.write(reply));
    socket.on('error', () => {});
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    stop: () => new Promise((resolve) => { for (const s of sockets) s.destroy(); server.close(resolve); }),
  };
}

async function startScenarioServer(spec) {
  if (spec.kind === 'redis') {
    const server = await startServer();
    for (const command of spec.setup ?? []) {
      const reply = await rawCommand(server.port, ...command);
      assert.ok(!reply.startsWith('-'), `setup ${command.join(' ')}: ${reply}`);
    }
    return server;
  }
  if (spec.kind === 'fake') return fakeServer(spec.reply);
  assert.equal(spec.kind, 'nothing_listening');
  return { port: await freePort(), stop: async () => {} };
}

/**
 * Runs one scenario. The client is created with `lazyConnect: true` (ioredis's option), so, as
 * in C and Python, nothing is sent before the scenario's first operation: the eager start-up
 * PING would be one more call for the breaker to judge.
 */
async function run(spec, server) {
  const options = { port: server.port, lazyConnect: true, knobs: spec.knobs };
  if (spec.host !== 'default') options.host = '127.0.0.1';
  let redis;
  const opened = await outcome(() => { redis = new Redis(options); });
  check(spec.open, opened);
  if (!redis) return;
  redis.on('error', () => {}); // reported through the failing calls
  let held = null;
  try {
    for (const [index, step] of spec.steps.entries()) {
      try {
        held = await runStep(redis, server, step, held);
      } catch (err) {
        err.message = `step ${index + 1} (${step.op}): ${err.message}`;
        throw err;
      }
    }
  } finally {
    if (held) await release(server, held);
    redis.disconnect();
  }
}

/** One step; returns the hold in progress (`{ blocked }`: the blocking call), if any. */
async function runStep(redis, server, step, held) {
  const expect = step.expect;
  switch (step.op) {
    case 'command':
      check(expect, await outcome(() => redis.call(...step.args)));
      return held;
    case 'pipeline':
    case 'transaction': {
      const batch = step.op === 'pipeline' ? redis.pipeline(step.commands) : redis.multi(step.commands);
      check(expect, await outcome(async () => (await batch.exec()).map(([err, value]) => err ?? value)));
      return held;
    }
    case 'together': {
      const outcomes = await Promise.all(step.commands.map((args) => outcome(() => redis.call(...args))));
      assert.equal(outcomes.length, expect.outcomes.length);
      outcomes.forEach((got, i) => check(expect.outcomes[i], got));
      return held;
    }
    case 'hold': {
      // A blocking command holds a connection until the driver pushes to its list.
      const busy = redis.stats().inUse;
      const blocked = redis.call('blpop', 'conformance:held', '0').catch((err) => err);
      for (let i = 0; i < 500 && redis.stats().inUse === busy; i++) await sleep(10);
      assert.equal(redis.stats().inUse, busy + 1, 'the blocking command did not take a connection');
      return { blocked }; // wrapped: an async function's returned promise would be awaited
    }
    case 'acquire': {
      let conn = null;
      check(expect, await outcome(async () => {
        conn = await redis.acquire({ timeout: step.timeout_ms, priority: step.priority });
      }));
      try {
        for (const command of step.commands ?? []) {
          check(command.expect ?? {}, await outcome(() => conn.call(...command.args)));
        }
      } finally {
        await conn?.release();
      }
      return held;
    }
    case 'release':
      await release(server, held);
      return null;
    case 'disconnect': {
      // ioredis's disconnect(true): every connection closed, then connected again ('ready'), or
      // the reconnect failed ('error'); bounded.
      let onReady;
      let onError;
      let timer;
      const settled = new Promise((resolve, reject) => {
        onReady = resolve;
        onError = reject;
        redis.once('ready', onReady);
        redis.once('error', onError);
        timer = setTimeout(() => reject(new Error('disconnect(true): no ready within 10 s')), 10000);
      });
      redis.disconnect(true);
      try {
        await settled;
      } finally {
        clearTimeout(timer);
        redis.off('ready', onReady);
        redis.off('error', onError);
      }
      return held;
    }
    case 'close':
      await redis.quit();
      return held;
    case 'stop_server':
      server.stopProcess();
      await waitStopped(server.pid);
      return held;
    case 'continue_server':
      server.continueProcess();
      return held;
    case 'sleep':
      await sleep(step.ms);
      return held;
    case 'stats': {
      const stats = redis.stats();
      for (const [field, want] of Object.entries(expect)) {
        assert.ok(camel(field) in stats, `no stats field ${camel(field)}`);
        assert.equal(stats[camel(field)], want, `stats ${field}`);
      }
      return held;
    }
    case 'metrics': {
      const families = new Set(redis.metrics().split('\n').filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]));
      assert.deepEqual(expect.families.filter((f) => !families.has(f)), [], 'missing families');
      return held;
    }
    case 'breaker':
      assert.equal(redis.breakerState, expect);
      return held;
    case 'health':
      assert.equal((await redis.health()).status, expect);
      return held;
    default:
      throw new Error(`unknown op ${step.op}`);
  }
}

/** Ends a hold: pushes to the list its blocking command waits on, then awaits that command. */
async function release(server, held) {
  await rawCommand(server.port, 'RPUSH', 'conformance:held', 'x');
  const result = await held.blocked;
  if (result instanceof Error) throw result;
}

test('there are scenarios', () => {
  assert.ok(SCENARIOS.length > 0, `no scenario in ${DIR}`);
});

for (const file of SCENARIOS) {
  const spec = JSON.parse(fs.readFileSync(path.join(DIR, file), 'utf8'));
  const divergence = spec.known_divergence?.node;
  test(file.replace(/\.json$/, ''), LIMIT, async (t) => {
    const server = await startScenarioServer(spec.server);
    let failure = null;
    try {
      await run(spec, server);
    } catch (err) {
      failure = err;
    } finally {
      server.continueProcess?.();
      await server.stop();
    }
    if (divergence === undefined) {
      if (failure) throw failure;
    } else if (failure) {
      t.diagnostic(`expected failure (${divergence}): ${failure.message}`);
    } else {
      assert.fail(`passes, but known_divergence.node says "${divergence}": remove it`);
    }
  });
}
