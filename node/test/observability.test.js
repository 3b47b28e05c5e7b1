'use strict';
// Observability through the Node package, against real servers: Prometheus text (per client and
// process-wide, no password in it), the prom-client integration, leak reports naming the JS stack,
// resize under load, and sizing advice in health(). CommonJS on purpose: `require('redpool')` and
// `require('redpool/prometheus')` as most services load them.
const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const { once } = require('node:events');
const path = require('node:path');
const { Registry } = require('prom-client');
const Redis = require('redpool');
const prometheus = require('redpool/prometheus');

const PASSWORD = 'obs-secret-9f3a';
/** Families the core writes for every pool (README "Observability"). */
const FAMILIES = [
  'redpool_connections',
  'redpool_connection_max',
  'redpool_connection_idle_min',
  'redpool_connection_pending_requests',
  'redpool_connection_wait_time_seconds',
  'redpool_connection_create_time_seconds',
  'redpool_connection_use_time_seconds',
  'redpool_connection_timeouts_total',
  'redpool_command_duration_seconds',
  'redpool_commands_total',
  'redpool_errors_total',
  'redpool_connection_opened_total',
  'redpool_connection_closed_total',
  'redpool_connection_errors_total',
  'redpool_connection_connecting',
  'redpool_breaker_state',
  'redpool_health_status',
  'redpool_connection_leaks_suspected_total',
];

let helpers;
let server;
before(async () => {
  helpers = await import('./helpers.mjs');
  server = await helpers.startServer(['--requirepass', PASSWORD]);
});
after(async () => {
  await server.stop();
});

function client(options = {}) {
  return new Redis(server.port, '127.0.0.1', { password: PASSWORD, ...options });
}

/** Resolves to the first `event` of `emitter`, or rejects after `ms`. */
function nextEvent(emitter, event, ms) {
  return Promise.race([
    once(emitter, event).then(([value]) => value),
    helpers.sleep(ms).then(() => {
      throw new Error(`no '${event}' within ${ms} ms`);
    }),
  ]);
}

/** Runs `text` through `promtool check metrics` when promtool is installed. */
function promtoolCheck(text, t) {
  if (spawnSync('promtool', ['--version']).error) {
    t.diagnostic('promtool not installed: format not checked');
    return;
  }
  execFileSync('promtool', ['check', 'metrics'], { input: text, stdio: ['pipe', 'pipe', 'pipe'], timeout: 20000 });
}

test('metrics(): every family after commands, labelled with poolName, and never the password', { timeout: 30000 }, async (t) => {
  const redis = client({ poolName: 'obs-orders' });
  await redis.set('obs:k', 'v');
  assert.equal(await redis.get('obs:k'), 'v');
  await redis.pipeline().incr('obs:n').get('obs:n').exec();

  const text = redis.metrics();
  assert.equal(typeof text, 'string');
  for (const family of FAMILIES) assert.match(text, new RegExp(`^# TYPE ${family} `, 'm'), family);
  const labels = `pool="obs-orders",server="127.0.0.1:${server.port}"`;
  assert.ok(text.includes(`redpool_commands_total{${labels},command="set",outcome="ok"} 1\n`), text);
  assert.ok(text.includes(`redpool_connection_max{${labels}} 50\n`));
  assert.ok(!text.includes(PASSWORD), 'the password is in the metrics');
  promtoolCheck(text, t);

  const all = Redis.metrics();
  assert.ok(all.includes(`redpool_connection_max{${labels}} 50\n`), 'process-wide text has this pool');
  assert.ok(!all.includes(PASSWORD));
  await redis.quit();
});

test('prom-client: redpool families appear in registry.metrics() with the core names and samples', { timeout: 30000 }, async (t) => {
  const redis = client({ poolName: 'obs-prom' });
  await redis.set('obs:p', '1');
  await redis.get('obs:p');
  const registry = new Registry();
  assert.equal(prometheus.register(registry), registry);
  assert.equal(prometheus.register(registry), registry, 'registering twice changes nothing');

  const out = await registry.metrics();
  const core = Redis.metrics();
  const types = (text) => text.split('\n').filter((l) => l.startsWith('# TYPE redpool_')).sort();
  assert.deepEqual(types(out), types(core));
  for (const family of FAMILIES) assert.match(out, new RegExp(`^# TYPE ${family} `, 'm'), family);
  const labels = `pool="obs-prom",server="127.0.0.1:${server.port}"`;
  assert.ok(out.includes(`redpool_commands_total{${labels},command="get",outcome="ok"} 1\n`), out);
  assert.match(out, new RegExp(`redpool_connection_wait_time_seconds_bucket\\{${labels},le="\\+Inf"\\} \\d+`));
  assert.ok(!out.includes(PASSWORD));
  promtoolCheck(out, t);

  // A family name already used by another metric is refused before anything is added.
  const other = new Registry();
  other.registerMetric({ name: 'redpool_commands_total', help: 'x', type: 'counter', get: async () => ({}) });
  assert.throws(() => prometheus.register(other), /already has a metric named redpool_commands_total/);
  assert.equal(other.getSingleMetric('redpool_connections'), undefined);

  prometheus.unregister(registry);
  assert.doesNotMatch(await registry.metrics(), /redpool_/);
  await redis.quit();
});

test("a watch() session held past leakDetectionThreshold: a 'leak' event and a process warning with the JS stack", { timeout: 30000 }, async () => {
  const redis = client({ leakDetectionThreshold: 200 });
  const warnings = [];
  const onWarning = (w) => w.name === 'RedpoolLeakWarning' && warnings.push(w);
  process.on('warning', onWarning);
  try {
    const leaked = nextEvent(redis, 'leak', 10000);
    await redis.watch('obs:leak'); // the checkout: this line is the stack's first frame
    const event = await leaked;
    assert.equal(event.thread, 'main');
    assert.ok(event.heldForMs >= 200, `heldForMs ${event.heldForMs}`);
    assert.equal(typeof event.id, 'number');
    assert.ok(event.stack.includes(path.basename(__filename)), event.stack);
    assert.doesNotMatch(event.stack.split('\n')[0], /lib[/\\]redis\.js/, 'frames inside redpool are left out');

    await helpers.sleep(1000 - event.heldForMs); // held about 1 s in all
    assert.deepEqual(await redis.multi().set('obs:leak', 'x').exec(), [[null, 'OK']]);
    for (let i = 0; i < 100 && warnings.length === 0; i++) await helpers.sleep(10);
    assert.equal(warnings.length, 1, 'one warning per checkout');
    assert.ok(warnings[0].message.includes(path.basename(__filename)), warnings[0].message);
    assert.ok(warnings[0].message.includes('by thread main'), warnings[0].message);
    assert.ok(!warnings[0].message.includes(PASSWORD));
    assert.equal(redis.stats().leaksSuspected, 1);
  } finally {
    process.off('warning', onWarning);
    await redis.quit();
  }
});

test('no leak report for short watch() sessions', { timeout: 30000 }, async () => {
  // A threshold well above any scheduling stall of a loaded machine: a session that lasts a few
  // ms must never be reported, even when a thread is starved for 100s of ms mid-session.
  const redis = client({ leakDetectionThreshold: 2000 });
  const leaks = [];
  redis.on('leak', (event) => leaks.push(event));
  for (let i = 0; i < 5; i++) {
    await redis.watch('obs:short');
    assert.deepEqual(await redis.multi().incr('obs:short').exec(), [[null, i + 1]]);
  }
  await redis.watch('obs:short');
  await redis.unwatch();
  await helpers.sleep(2500); // past the threshold, several maintenance passes (every 500 ms)
  assert.deepEqual(leaks, []);
  assert.equal(redis.stats().leaksSuspected, 0);
  await redis.quit();
});

test('resize() under concurrent load: no command fails, the new size is in stats and metrics', { timeout: 60000 }, async () => {
  const redis = client({ maxConnections: 2, poolName: 'obs-resize', enableAutoPipelining: false });
  await redis.ping();
  let stop = false;
  let done = 0;
  const failures = [];
  const worker = async (w) => {
    for (let i = 0; !stop; i++) {
      try {
        const key = `obs:r:${w}`;
        const [[, n]] = await redis.multi().incr(key).exec();
        assert.equal(typeof n, 'number');
        done++;
      } catch (err) {
        failures.push(err);
      }
    }
  };
  const workers = Array.from({ length: 16 }, (_, w) => worker(w));
  for (const [max, min] of [[8, 0], [1, 0], [6, 2], [2, 0], [4, 1]]) {
    await redis.resize(max, min);
    assert.equal(redis.stats().maxConnections, max);
    await helpers.sleep(100);
  }
  stop = true;
  await Promise.all(workers);
  assert.deepEqual(failures, []);
  assert.ok(done > 0);
  const stats = redis.stats();
  assert.equal(stats.maxConnections, 4);
  assert.equal(stats.minIdle, 1);
  assert.ok(stats.open <= 4, `open ${stats.open}`);
  assert.ok(redis.metrics().includes(`redpool_connection_max{pool="obs-resize",server="127.0.0.1:${server.port}"} 4\n`));

  await redis.resize(3); // minIdle stays 1
  assert.equal(redis.stats().minIdle, 1);
  await assert.rejects(redis.resize(2, 5), { code: 'ERR_INVALID_ARGUMENT' });
  await assert.rejects(redis.resize(0), { code: 'ERR_INVALID_ARGUMENT' });
  await redis.quit();
  await assert.rejects(redis.resize(4), { code: 'ERR_POOL_CLOSED' });
});

test('health() has sizing advice with suggestedMaxConnections', { timeout: 30000 }, async () => {
  // Generous health thresholds: this checks the plumbing, not latency (a loaded machine can stall
  // a PING past the 50 ms / 100 ms defaults).
  const redis = client({ maxConnections: 5, knobs: { health_degraded_latency: 10000, health_unhealthy_latency: 20000 } });
  await redis.health(); // starts the window
  await Promise.all(Array.from({ length: 50 }, (_, i) => redis.set(`obs:h:${i}`, i)));
  await redis.watch('obs:h:0');
  await redis.unwatch();
  const report = await redis.health();
  assert.equal(report.status, 'healthy');
  const { sizing } = report;
  assert.equal(sizing.maxConnections, 5);
  assert.ok(Number.isInteger(sizing.suggestedMaxConnections) && sizing.suggestedMaxConnections >= 1, JSON.stringify(sizing));
  for (const key of ['windowMs', 'utilization', 'meanInUse', 'arrivalRate', 'meanHoldTimeMs', 'meanWaitMs', 'acquireTimeouts']) {
    assert.equal(typeof sizing[key], 'number', key);
  }
  assert.ok(sizing.arrivalRate > 0, JSON.stringify(sizing));
  assert.equal(report.stats.leaksSuspected, 0);
  await redis.quit();
});

test('metrics() and stats() answer on the main thread while the pool is still opening (no wait for warm-up)', { timeout: 30000 }, async () => {
  const stopped = await helpers.startServer();
  try {
    stopped.stopProcess();
    await helpers.waitStopped(stopped.pid);
    // Warm-up connects (the kernel accepts) and then waits for the handshake (CLIENT SETNAME, for
    // the connection name) until connectTimeout.
    const redis = new Redis(stopped.port, '127.0.0.1', { minIdle: 1, connectTimeout: 3000, connectionName: 'warming' });
    redis.on('error', () => {});
    await helpers.sleep(300); // the worker is inside the warm-up now
    const text = redis.metrics();
    const stats = redis.stats();
    assert.equal(Redis.metrics().includes(`server="127.0.0.1:${stopped.port}"`), false, 'not opened yet');
    // Had these calls waited for the warm-up, its failed handshake would be counted by now.
    assert.equal(redis.stats().connectFailures, 0);
    assert.doesNotMatch(text, /^redpool_connection_max\{/m, 'no samples before the pool exists');
    assert.equal(stats.open, 0);
    stopped.continueProcess();
    await redis.connect();
    assert.match(redis.metrics(), /^redpool_connection_max\{/m);
    await redis.quit();
  } finally {
    await stopped.stop();
  }
});
