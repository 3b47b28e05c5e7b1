// Every ioredis constructor option has exactly one disposition (issue 18.5): honoured, mapped onto
// what redpool does (accepted only for the values that ask for it) or refused with a coded error
// naming it; an option neither ioredis's nor redpool's is refused too. Nothing is ignored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import Redis from 'redpool';
import { startServer } from './helpers.mjs';

const require = createRequire(import.meta.url);
const { OPTIONS } = require('../lib/options.js');

/**
 * ioredis 6.0.0's constructor options (github.com/redis/ioredis at dfd5428, package.json 6.0.0):
 * `RedisOptions` = `CommonRedisOptions` (lib/redis/RedisOptions.ts, with `CommanderOptions`'
 * keyPrefix and showFriendlyErrorStack from lib/utils/Commander.ts) + `SentinelConnectionOptions`
 * (lib/connectors/SentinelConnector/index.ts) + `StandaloneConnectionOptions`
 * (lib/connectors/StandaloneConnector.ts: port, host, family, path, disconnectTimeout, tls).
 */
const IOREDIS_OPTIONS = [
  // CommanderOptions
  'keyPrefix', 'showFriendlyErrorStack',
  // CommonRedisOptions
  'Connector', 'retryStrategy', 'commandTimeout', 'blockingTimeout', 'blockingTimeoutGrace', 'socketTimeout',
  'keepAlive', 'noDelay', 'connectionName', 'disableClientInfo', 'clientInfoTag', 'username', 'password', 'db',
  'autoResubscribe', 'autoResendUnfulfilledCommands', 'reconnectOnError', 'readOnly', 'stringNumbers', 'protocol',
  'replyMapping', 'connectTimeout', 'monitor', 'maxRetriesPerRequest', 'maxLoadingRetryTime', 'enableAutoPipelining',
  'autoPipeliningIgnoredCommands', 'offlineQueue', 'commandQueue', 'enableOfflineQueue', 'enableReadyCheck',
  'lazyConnect', 'scripts', 'himportFieldsets',
  // SentinelConnectionOptions (connectTimeout, protocol, replyMapping: above)
  'name', 'role', 'tls', 'sentinelUsername', 'sentinelPassword', 'sentinels', 'path', 'family', 'sentinelRetryStrategy',
  'sentinelReconnectStrategy', 'preferredSlaves', 'disconnectTimeout', 'sentinelCommandTimeout',
  'enableTLSForSentinelMode', 'sentinelTLS', 'natMap', 'updateSentinels', 'sentinelMaxConnections', 'failoverDetector',
  // StandaloneConnectionOptions (family, path, disconnectTimeout, tls: above)
  'port', 'host',
];

/** A string that must never appear in a message (options may carry secrets). */
const SECRET = 'opt-secret-7f3a9c';

/**
 * Values tried on every mapped and refused option: each the table accepts must make a working
 * client, each it does not must be refused, naming the option.
 */
const CANDIDATES = [true, false, 0, -1, 2, 3, 4, 6, 100, null, SECRET, 'legacy', [], ['get'], { host: SECRET }, () => 1];

const DISPOSITIONS = ['honoured', 'redpool', 'mapped', 'refused'];

let server;
let socket;
let guarded; // a server with a password for the default user
before(async () => {
  socket = path.join(os.tmpdir(), `redpool-options-${process.pid}.sock`);
  server = await startServer(['--unixsocket', socket, '--unixsocketperm', '700']);
  guarded = await startServer(['--requirepass', 'options-pass']);
  const admin = new Redis({ port: server.port });
  await admin.call('ACL', 'SETUSER', 'options-user', 'on', '>options-pass', '~*', '&*', '+@all');
  await admin.quit();
});
after(async () => {
  await server.stop();
  await guarded.stop();
  fs.rmSync(socket, { force: true });
});

/** The options every client here starts from: the test server's address, connected on first use. */
const base = () => ({ host: '127.0.0.1', port: server.port, lazyConnect: true });

/**
 * Settings of each honoured option and redpool's own that a working client is built with (merged
 * onto `base()`); mapped and refused options are tried with the values their entry accepts.
 */
const working = () => ({
  host: [{ host: '127.0.0.1' }],
  port: [{ port: server.port }],
  path: [{ host: undefined, port: undefined, path: socket }],
  tls: [{ tls: false }],
  db: [{ db: 2 }],
  username: [{ username: 'options-user', password: 'options-pass' }],
  password: [{ port: guarded.port, password: 'options-pass' }],
  connectionName: [{ connectionName: 'redpool-options-test' }],
  connectTimeout: [{ connectTimeout: 2000 }],
  commandTimeout: [{ commandTimeout: 2000 }],
  socketTimeout: [{ socketTimeout: 2000 }],
  keepAlive: [{ keepAlive: 10000 }, { keepAlive: false }],
  noDelay: [{ noDelay: true }, { noDelay: false }],
  maxRetriesPerRequest: [{ maxRetriesPerRequest: 1 }, { maxRetriesPerRequest: null }],
  retryStrategy: [{ retryStrategy: (times) => Math.min(times * 50, 2000) }],
  enableAutoPipelining: [{ enableAutoPipelining: false }, { enableAutoPipelining: true }],
  lazyConnect: [{ lazyConnect: false }, { lazyConnect: true }],
  keyPrefix: [{ keyPrefix: 'opt:' }],
  scripts: [{ scripts: { echoArgument: { lua: 'return ARGV[1]', numberOfKeys: 0 } } }],
  maxConnections: [{ maxConnections: 2 }],
  minIdle: [{ minIdle: 1 }],
  acquireTimeout: [{ acquireTimeout: 2000 }],
  healthCheckInterval: [{ healthCheckInterval: 1000 }],
  leakDetectionThreshold: [{ leakDetectionThreshold: 60000 }],
  poolName: [{ poolName: 'options-test' }],
  breaker: [{ breaker: false }, { breaker: { failureThreshold: 3 } }],
  knobs: [{ knobs: { idle_timeout: '60s' } }],
});

let keys = 0;
/** Builds a client from `options`, checks a SET/GET round trip (and a defined script), and quits it. */
async function assertWorks(options, what) {
  const redis = new Redis(options);
  try {
    const key = `options:${keys++}`;
    assert.equal(await redis.set(key, 'v'), 'OK', what);
    assert.equal(await redis.get(key), 'v', what);
    if (options.scripts) assert.equal(await redis.echoArgument('hi'), 'hi', what);
  } finally {
    await redis.quit();
  }
}

/** Asserts that `new Redis(options)` throws ERR_INVALID_ARGUMENT matching `message`, with no secret in it. */
function assertRefused(options, message, what = String(message)) {
  assert.throws(() => new Redis(options), (err) => {
    assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${what}: ${err.message}`);
    assert.match(err.message, message, what);
    assert.ok(!err.message.includes(SECRET), `${what}: a string value in the message: ${err.message}`);
    return true;
  });
}

test('every ioredis option has one disposition, and every other option is redpool\'s own', () => {
  assert.equal(new Set(IOREDIS_OPTIONS).size, IOREDIS_OPTIONS.length, 'a name listed twice');
  for (const name of IOREDIS_OPTIONS) {
    assert.ok(Object.hasOwn(OPTIONS, name), `ioredis's ${name} has no disposition`);
    assert.ok(['honoured', 'mapped', 'refused'].includes(OPTIONS[name].disposition), name);
  }
  for (const [name, entry] of Object.entries(OPTIONS)) {
    assert.ok(DISPOSITIONS.includes(entry.disposition), `${name}: ${entry.disposition}`);
    if (!IOREDIS_OPTIONS.includes(name)) assert.equal(entry.disposition, 'redpool', `${name} is not ioredis's`);
    const checked = entry.disposition === 'mapped' || entry.disposition === 'refused';
    assert.equal(typeof entry.accepts === 'function' && Array.isArray(entry.accepts.values), checked, name);
    assert.equal(typeof entry.why === 'string' && entry.why.length > 0, checked, name);
  }
});

test('each honoured option and redpool\'s own makes a working client', { timeout: 60000 }, async () => {
  const table = working();
  const read = Object.keys(OPTIONS).filter((name) => ['honoured', 'redpool'].includes(OPTIONS[name].disposition));
  assert.deepEqual(Object.keys(table).sort(), read.sort(), 'working() must cover exactly the honoured and redpool options');
  for (const [name, settings] of Object.entries(table)) {
    for (const setting of settings) await assertWorks({ ...base(), ...setting }, name);
  }
});

test('each value a mapped or refused option accepts makes a working client', { timeout: 60000 }, async () => {
  for (const [name, entry] of Object.entries(OPTIONS)) {
    if (!entry.accepts) continue;
    for (const value of entry.accepts.values) await assertWorks({ ...base(), [name]: value }, `${name} = ${String(value)}`);
  }
  // family 4 fits an IPv4 host; 6 an IPv6 one (constructed only: the server listens on IPv4).
  await assertWorks({ ...base(), family: 4 }, 'family = 4');
  new Redis({ host: '::1', port: server.port, family: 6, lazyConnect: true }).disconnect();
});

test('every value a mapped or refused option does not accept throws ERR_INVALID_ARGUMENT naming it', () => {
  for (const [name, entry] of Object.entries(OPTIONS)) {
    if (!entry.accepts) continue;
    let refusals = 0;
    for (const value of CANDIDATES) {
      const options = { ...base(), [name]: value };
      if (entry.accepts(value, { host: '127.0.0.1' })) {
        new Redis(options).disconnect();
        continue;
      }
      refusals++;
      assertRefused(options, new RegExp(`^unsupported option ${name} = .*: .+ \\(omit ${name}( or pass .+)?\\)$`), `${name} = ${typeof value}`);
    }
    assert.ok(refusals > 0, `${name} accepted every candidate value`);
  }
});

test('refusals say why and what to do instead', () => {
  const cases = [
    [{ sentinels: [{ host: '127.0.0.1', port: 26379 }], name: 'mymaster' }, /sentinels = an array: Sentinel is not supported by redpool yet, it is planned: connect to the master directly/],
    [{ name: SECRET }, /name = a string: Sentinel .*connectionName names the connections/],
    [{ role: 'slave' }, /role = a string: Sentinel/],
    [{ sentinelPassword: SECRET }, /sentinelPassword = a string: Sentinel/],
    [{ Connector: class {} }, /Connector = a function: .*custom Connector is not supported/],
    [{ monitor: true }, /monitor = true: MONITOR mode is not supported/],
    [{ readOnly: true }, /readOnly = true: READONLY is for .* Cluster/],
    [{ autoResubscribe: false }, /autoResubscribe = false: pub\/sub is not supported/],
    [{ enableReadyCheck: false }, /enableReadyCheck = false: redpool checks connections itself.*\(omit enableReadyCheck or pass true\)/],
    [{ enableOfflineQueue: false }, /enableOfflineQueue = false: commands wait for a pooled connection up to acquireTimeout/],
    [{ replyMapping: 'resp3' }, /replyMapping = a string: .*\(omit replyMapping or pass "legacy"\)/],
    [{ family: 6 }, /family = 6: .*6 as an IPv6 one \(omit family or pass 0\)/],
    [{ family: 4, host: 'localhost' }, /family = 4: .*family 4 needs host given as an IPv4 address/],
    [{ blockingTimeout: 1000 }, /blockingTimeout = 1000: .*a limit for it is not supported yet \(omit blockingTimeout or pass 0\)/],
    [{ commandTimeout: 1000, socketTimeout: 1000 }, /give commandTimeout or socketTimeout, not both/],
    [{ tls: { servername: SECRET } }, /unsupported option tls\.servername: redpool's tls takes caFile, certFile, keyFile, rejectUnauthorized/],
    [{ scripts: { broken: null } }, /invalid scripts\.broken = null/],
  ];
  for (const [options, message] of cases) assertRefused({ ...base(), ...options }, message);
  // blockingTimeout's "off" is any number up to 0, as in ioredis.
  new Redis({ ...base(), blockingTimeout: -1 }).disconnect();
});

test('an option neither ioredis\'s nor redpool\'s throws, naming it', async () => {
  assertRefused({ ...base(), fooBar: SECRET }, /^unknown option fooBar: neither an ioredis nor a redpool option$/);
  assertRefused({ ...base(), connectTimeOut: 1000 }, /^unknown option connectTimeOut:/);
  // Through duplicate() too; undefined is "not given", as for every option.
  const redis = new Redis({ ...base(), fooBar: undefined });
  assert.throws(() => redis.duplicate({ fooBar: 1 }), /unknown option fooBar/);
  redis.disconnect();
});
