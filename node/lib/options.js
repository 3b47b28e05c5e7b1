'use strict';
/**
 * The constructor's arguments, as ioredis takes them — `()`, `(port, host, options)`,
 * `(url, options)`, `(path)`, `(options)` — mapped onto the native pool's settings: an optional
 * URL and address, then core knobs by name. This module maps names and checks JS types only; every
 * default, range and message of a setting is the core's knob table's, and its errors name the
 * option as written here (`connectTimeout`, `breaker.window`, `knobs.max_lifetime`). A number for
 * a duration is milliseconds, as every Node option; a string for one needs its unit (`'2s'`).
 * Every option has one disposition (`OPTIONS`): honoured, redpool's own, mapped onto what redpool
 * does, or refused; none is ignored, and an unknown option is refused.
 */
const net = require('node:net');
const { invalid } = require('./errors');

/** Marks the options of `Redis.fromEnv()`: the core reads the environment first. */
const FROM_ENV = Symbol('redpool.fromEnv');

/** Breaker option names → core knobs. */
const BREAKER = {
  failureThreshold: 'breaker_failure_threshold',
  failureRate: 'breaker_failure_rate',
  window: 'breaker_window',
  minCalls: 'breaker_min_calls',
  recoveryTimeout: 'breaker_recovery_timeout',
  halfOpenProbes: 'breaker_half_open_probes',
  successThreshold: 'breaker_success_threshold',
  probeTimeout: 'breaker_probe_timeout',
};

/** The four dispositions of an option (see `OPTIONS`). */
const HONOURED = 'honoured';
const REDPOOL = 'redpool';
const MAPPED = 'mapped';
const REFUSED = 'refused';

/**
 * A check that accepts exactly `values` (by `Object.is`; `[]` stands for any empty array); its
 * `values` also tell the caller what to pass instead.
 */
function only(...values) {
  const emptyList = (value) => Array.isArray(value) && value.length === 0;
  const accepts = (value) => values.some((v) => Object.is(v, value) || (emptyList(v) && emptyList(value)));
  accepts.values = values;
  return accepts;
}

/** Whether `family` (ioredis: 0 either, 4 or 6) fits the address `{ host, path }` redpool will use. */
function familyFits(family, { host, path }) {
  if (family === 0) return true;
  if (family !== 4 && family !== 6) return false;
  if (path !== undefined) return true; // a Unix socket has no IP family: ioredis ignores it too
  return typeof host === 'string' && net.isIP(host.replace(/^\[(.*)\]$/, '$1')) === family;
}
familyFits.values = [0];

/** Accepts ioredis's "off" for `blockingTimeout`: a number up to 0. */
function notPositive(value) {
  return typeof value === 'number' && value <= 0;
}
notPositive.values = [0];

/** An ioredis option redpool provides its own way: accepted as `accepts` says, else refused saying `why`. */
function mapped(accepts, why) {
  return { disposition: MAPPED, accepts, why };
}

/** An ioredis option redpool does not support: accepted only as `accepts` (ioredis's "off"), else refused saying `why`. */
function refused(accepts, why) {
  return { disposition: REFUSED, accepts, why };
}

/** The `why` of the options in ioredis's type that its constructor does not read. */
const UNREAD = 'ioredis\'s constructor does not read it either (a flag of its flushQueue)';

/** The `why` of every Sentinel option. */
const SENTINEL = 'Sentinel is not supported by redpool yet, it is planned: connect to the master directly (host, port)';

/**
 * Every constructor option and its one disposition: ioredis 6.0.0's (`RedisOptions` in
 * lib/redis/RedisOptions.ts: `CommonRedisOptions` with `keyPrefix` and `showFriendlyErrorStack`,
 * `SentinelConnectionOptions` in lib/connectors/SentinelConnector/index.ts and
 * `StandaloneConnectionOptions` in lib/connectors/StandaloneConnector.ts), then redpool's own.
 * - `honoured`: does what it does in ioredis, read by `parse()`; `knob` and `type`: the core knob
 *   it sets and the JS type it takes, when it sets one knob as given;
 * - `redpool`: redpool's own (the pool's settings), read the same way;
 * - `mapped`: what it asks of ioredis redpool does in its own way: accepted for the values that ask
 *   for what redpool does anyway, refused with `why` for any other;
 * - `refused`: redpool cannot do it yet: accepted only for the values that ask for nothing
 *   (ioredis's "off"), refused with `why` for any other.
 * `undefined` is never checked (not given). Any option not listed is refused as unknown.
 */
const OPTIONS = Object.freeze({
  // Where and how to connect.
  host: { disposition: HONOURED },
  port: { disposition: HONOURED },
  path: { disposition: HONOURED },
  tls: { disposition: HONOURED },
  family: mapped(familyFits,
    'redpool connects to every address host has: family 4 needs host given as an IPv4 address, 6 as an IPv6 one'),
  db: { disposition: HONOURED, knob: 'db', type: 'number' },
  username: { disposition: HONOURED, knob: 'username', type: 'string' },
  password: { disposition: HONOURED, knob: 'password', type: 'string' },
  connectionName: { disposition: HONOURED, knob: 'client_name', type: 'string' },
  connectTimeout: { disposition: HONOURED, knob: 'connect_timeout', type: 'number' },
  commandTimeout: { disposition: HONOURED, knob: 'socket_timeout', type: 'number' },
  socketTimeout: { disposition: HONOURED, knob: 'socket_timeout', type: 'number' },
  keepAlive: { disposition: HONOURED },
  noDelay: { disposition: HONOURED, knob: 'tcp_nodelay', type: 'boolean' },
  maxRetriesPerRequest: { disposition: HONOURED, knob: 'retries', type: 'number' },
  retryStrategy: { disposition: HONOURED },
  enableAutoPipelining: { disposition: HONOURED },
  lazyConnect: { disposition: HONOURED },
  keyPrefix: { disposition: HONOURED },
  scripts: { disposition: HONOURED },
  // ioredis's behaviour, redpool's way.
  enableReadyCheck: mapped(only(true),
    'redpool checks connections itself: connect() PINGs, and an idle connection is PINGed before use after healthCheckInterval'),
  enableOfflineQueue: mapped(only(true),
    'commands wait for a pooled connection up to acquireTimeout (to fail sooner, lower it; the breaker fails calls at once while the server is down)'),
  autoResendUnfulfilledCommands: mapped(only(true),
    'redpool sends a call again after a connection failure only when that is safe, up to maxRetriesPerRequest times; maxRetriesPerRequest: 0 never does'),
  showFriendlyErrorStack: mapped(only(true, false), 'errors carry the stack they have'),
  protocol: mapped(only(2, 3),
    'this option keeps RESP2 (knobs: { protocol: 3 } switches the wire to RESP3); replies have the shapes of ioredis\'s default replyMapping, "legacy", with either protocol'),
  replyMapping: mapped(only('legacy'),
    'replies have the "legacy" shapes (maps as flat arrays, doubles as strings); "resp3" is not supported yet'),
  disableClientInfo: mapped(only(true), 'redpool sends no CLIENT SETINFO (not supported yet)'),
  disconnectTimeout: mapped(only(),
    'quit() lets the commands already issued finish, then closes the pool (5 s grace); disconnect() closes at once'),
  blockingTimeoutGrace: mapped(only(),
    'a blocking command times out after its block time plus commandTimeout (default: plus the 5 s socket timeout): set commandTimeout'),
  offlineQueue: mapped(only(true, false), UNREAD),
  commandQueue: mapped(only(true, false), UNREAD),
  // Not supported yet.
  blockingTimeout: refused(notPositive,
    'a blocking command times out after its block time plus commandTimeout, and a block time of 0 waits without limit; a limit for it is not supported yet'),
  clientInfoTag: refused(only(),
    'redpool sends no CLIENT SETINFO (not supported yet); connectionName names the connections'),
  autoResubscribe: refused(only(true),
    'pub/sub is not supported by redpool yet (SUBSCRIBE is refused on the pool), so there is nothing to resubscribe'),
  reconnectOnError: refused(only(null),
    'redpool reconnects on connection failures only, never on an error reply (such as READONLY after a failover); not supported yet'),
  readOnly: refused(only(false),
    'READONLY is for reading from Redis Cluster replicas; Cluster is not supported by redpool yet'),
  stringNumbers: refused(only(false),
    'integer replies are numbers (ioredis\'s default); strings for them are not supported yet'),
  monitor: refused(only(false), 'MONITOR mode is not supported: MONITOR is refused on the pool'),
  maxLoadingRetryTime: refused(only(),
    'redpool does not wait for a server loading its data set (its LOADING replies are errors); not supported yet'),
  autoPipeliningIgnoredCommands: refused(only([]),
    'redpool pipelines every command of a tick; leaving some out is not supported yet (enableAutoPipelining: false sends each command alone)'),
  himportFieldsets: refused(only([]),
    'managed HIMPORT fieldsets are not supported yet; send HIMPORT commands yourself'),
  Connector: refused(only(null), 'connections are made by redpool\'s core; a custom Connector is not supported'),
  sentinels: refused(only(null), SENTINEL),
  name: refused(only(null), `${SENTINEL}; connectionName names the connections`),
  role: refused(only(), SENTINEL),
  sentinelUsername: refused(only(), SENTINEL),
  sentinelPassword: refused(only(), SENTINEL),
  sentinelTLS: refused(only(), SENTINEL),
  enableTLSForSentinelMode: refused(only(false), SENTINEL),
  sentinelRetryStrategy: refused(only(), SENTINEL),
  sentinelReconnectStrategy: refused(only(), SENTINEL),
  sentinelCommandTimeout: refused(only(), SENTINEL),
  sentinelMaxConnections: refused(only(), SENTINEL),
  preferredSlaves: refused(only(), SENTINEL),
  natMap: refused(only(null), SENTINEL),
  updateSentinels: refused(only(), SENTINEL),
  failoverDetector: refused(only(false), SENTINEL),
  // redpool's own.
  maxConnections: { disposition: REDPOOL, knob: 'max_connections', type: 'number' },
  minIdle: { disposition: REDPOOL, knob: 'min_idle', type: 'number' },
  acquireTimeout: { disposition: REDPOOL, knob: 'acquire_timeout', type: 'number' },
  healthCheckInterval: { disposition: REDPOOL, knob: 'health_check_interval', type: 'number' },
  leakDetectionThreshold: { disposition: REDPOOL, knob: 'leak_detection_threshold', type: 'number' },
  poolName: { disposition: REDPOOL, knob: 'pool_name', type: 'string' },
  breaker: { disposition: REDPOOL },
  knobs: { disposition: REDPOOL },
});

/** The value a table entry asks for, for messages (table constants, never a caller's value). */
function show(value) {
  return Array.isArray(value) ? '[]' : JSON.stringify(value);
}

/** The error for option `name` given `value`, which its mapped or refused `entry` does not accept. */
function refusal(name, entry, value) {
  const { values } = entry.accepts;
  const instead = values.length === 0 ? `omit ${name}` : `omit ${name} or pass ${values.map(show).join(' or ')}`;
  return invalid(`unsupported option ${name} = ${describe(value)}: ${entry.why} (${instead})`);
}

/**
 * Refuses each option given (not `undefined`) that is unknown, or mapped or refused with a value
 * its entry does not accept; `address` (`{ host, path }`) is what `family` must fit.
 */
function checkOptions(options, address) {
  for (const [name, value] of Object.entries(options)) {
    if (value === undefined) continue;
    if (!Object.hasOwn(OPTIONS, name)) throw invalid(`unknown option ${name}: neither an ioredis nor a redpool option`);
    const entry = OPTIONS[name];
    if (entry.accepts && !entry.accepts(value, address)) throw refusal(name, entry, value);
  }
  if (options.commandTimeout !== undefined && options.socketTimeout !== undefined) {
    throw invalid('invalid options: give commandTimeout or socketTimeout, not both (both set the socket timeout of each read and write; commandTimeout also bounds each call)');
  }
}

/**
 * The address the arguments ask for, as far as they tell: `{ path }` for a Unix socket, else
 * `{ host }` (undefined when the core decides it: its default, the environment, a bad URL).
 */
function addressOf(o, { url, host, path }) {
  const socketPath = o.path ?? path;
  if (socketPath !== undefined) return { path: socketPath };
  const explicit = o.host ?? host;
  if (explicit !== undefined || url === undefined) return { host: explicit };
  try {
    const parsed = new URL(url);
    return parsed.protocol.startsWith('unix') ? { path: parsed.pathname } : { host: parsed.hostname };
  } catch {
    return {};
  }
}

/** The JS types a setting's value may have, by what the option takes. */
const TYPES = {
  number: ['number'],
  string: ['string'],
  boolean: ['boolean'],
  any: ['number', 'string', 'boolean'],
};

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A value for messages: never the value of a string (it may be a secret), only its type. */
function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return 'a string';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

function string(name, value) {
  if (typeof value !== 'string') throw invalid(`invalid ${name}: must be a string, got ${describe(value)}`);
  return value;
}

function boolean(name, value) {
  if (typeof value !== 'boolean') throw invalid(`invalid ${name} = ${describe(value)}: must be true or false`);
  return value;
}

/**
 * Adds option `name` as core knob `knob`, its value passed on as given (of the JS types `type`
 * allows): the core checks and converts it.
 */
function add(knobs, knob, name, value, type = 'any') {
  if (!TYPES[type].includes(typeof value)) {
    const what = type === 'any' ? 'a number, a string or a boolean' : `a ${type}`;
    // The type only, never the value: it may be a password.
    throw invalid(`invalid ${name}: must be ${what}, got ${value === null ? 'null' : `a ${typeof value}`}`);
  }
  knobs.push({ knob, value, writtenAs: name });
}

/** Splits ioredis's positional arguments into `{ url, port, host, path, options }`. */
function positional(args) {
  const out = { options: {} };
  for (const arg of args) {
    if (arg === undefined || arg === null) continue;
    if (typeof arg === 'number' || (typeof arg === 'string' && arg !== '' && !Number.isNaN(Number(arg)))) {
      if (out.port !== undefined) throw invalid('invalid arguments: the port was given twice');
      out.port = arg;
    } else if (typeof arg === 'string' && out.port !== undefined && out.host === undefined) {
      out.host = arg;
    } else if (typeof arg === 'string') {
      if (out.url !== undefined || out.path !== undefined) throw invalid('invalid arguments: more than one URL');
      if (arg.startsWith('/')) out.path = arg;
      else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(arg)) out.url = arg;
      else throw invalid('invalid URL: expected redis://, rediss:// or unix:// (or a socket path)');
    } else if (isObject(arg)) {
      out.options = { ...out.options, ...arg };
    } else {
      throw invalid(`invalid argument to new Redis(): ${describe(arg)}; expected a port, host, URL or options object`);
    }
  }
  return out;
}

/** The keys of a `tls` object. */
const TLS_KEYS = ['caFile', 'certFile', 'keyFile', 'rejectUnauthorized'];

/** TLS: `true` or an object; certificate files by path, verification switch. */
function tlsKnobs(tls, knobs) {
  if (tls === true) return true;
  if (tls === false || tls === undefined) return undefined;
  if (!isObject(tls)) throw invalid(`invalid tls = ${describe(tls)}: must be true, false or an object`);
  for (const key of ['ca', 'cert', 'key']) {
    if (tls[key] !== undefined) {
      throw invalid(`tls.${key} (PEM contents) is not supported; pass the file path as tls.${key}File`);
    }
  }
  for (const [key, value] of Object.entries(tls)) {
    if (value !== undefined && !TLS_KEYS.includes(key)) {
      throw invalid(`unsupported option tls.${key}: redpool's tls takes ${TLS_KEYS.join(', ')}`);
    }
  }
  if (tls.caFile !== undefined) add(knobs, 'tls_ca_file', 'tls.caFile', tls.caFile, 'string');
  if (tls.certFile !== undefined) add(knobs, 'tls_cert_file', 'tls.certFile', tls.certFile, 'string');
  if (tls.keyFile !== undefined) add(knobs, 'tls_key_file', 'tls.keyFile', tls.keyFile, 'string');
  if (tls.rejectUnauthorized !== undefined) {
    add(knobs, 'tls_insecure', 'tls.rejectUnauthorized', !boolean('tls.rejectUnauthorized', tls.rejectUnauthorized));
  }
  return true;
}

/**
 * ioredis's retryStrategy(times) → reconnect delay: sampled once for the core's backoff. A strategy
 * that throws or returns a non-number (ioredis: stop reconnecting) leaves the core's backoff. A
 * delay of 0 (ioredis: at once) becomes the core's shortest, 1 ms; the core checks the rest.
 */
function retryStrategyKnobs(strategy, knobs) {
  if (strategy === undefined || strategy === null) return;
  if (typeof strategy !== 'function') throw invalid(`invalid retryStrategy: must be a function, got ${describe(strategy)}`);
  let first;
  let later;
  try {
    first = strategy(1);
    later = strategy(10);
  } catch {
    return;
  }
  if (typeof first === 'number') {
    const base = first === 0 ? 1 : first;
    add(knobs, 'reconnect_backoff_base', 'retryStrategy(1)', base);
    // A later delay from 0 to below the first keeps the first as the cap.
    if (typeof later === 'number') {
      add(knobs, 'reconnect_backoff_cap', 'retryStrategy(10)', later >= 0 && later < base ? base : later);
    }
  }
}

function breakerKnobs(breaker, knobs) {
  if (breaker === undefined) return;
  if (typeof breaker === 'boolean') {
    add(knobs, 'breaker', 'breaker', breaker);
    return;
  }
  if (!isObject(breaker)) throw invalid(`invalid breaker = ${describe(breaker)}: must be true, false or an object`);
  add(knobs, 'breaker', 'breaker', true);
  for (const [key, value] of Object.entries(breaker)) {
    const knob = BREAKER[key];
    if (!knob) throw invalid(`unknown breaker option ${key}; valid: ${Object.keys(BREAKER).join(', ')}`);
    add(knobs, knob, `breaker.${key}`, value, 'number');
  }
}

/** ioredis's `scripts` (`{ name: { lua, numberOfKeys } }`) as `[name, definition]` pairs for `defineCommand`. */
function scripts(value) {
  if (value === undefined || value === null) return [];
  if (!isObject(value)) throw invalid(`invalid scripts = ${describe(value)}: must be an object of { lua, numberOfKeys } by name`);
  for (const [name, definition] of Object.entries(value)) {
    if (!isObject(definition)) throw invalid(`invalid scripts.${name} = ${describe(definition)}: must be { lua, numberOfKeys }`);
  }
  return Object.entries(value);
}

/**
 * Parses constructor arguments. Returns `{ native, client }`: the settings for the native pool
 * (`{ url, host, port, path, tls, knobs }`) and the client's own behaviour
 * (`{ enableAutoPipelining, lazyConnect, keyPrefix, commandTimeout, scripts }`). Throws
 * ERR_INVALID_ARGUMENT for an option that is unknown or given a value redpool does not accept.
 */
function parse(args) {
  const { url, port, host, path, options } = positional(args);
  const o = { ...options };
  checkOptions(o, addressOf(o, { url, host, path }));
  const knobs = [];
  const native = { knobs };
  if (o[FROM_ENV] === true) native.fromEnv = true;
  if (url !== undefined) native.url = url;
  // Unset host and port are the core's defaults (127.0.0.1:6379 in every language); the core
  // checks the port and names it.
  const h = o.host ?? host;
  const p = o.port ?? port;
  if (h !== undefined) add(knobs, 'host', 'host', h, 'string');
  if (p !== undefined) add(knobs, 'port', 'port', p);
  const socketPath = o.path ?? path;
  if (socketPath !== undefined) native.path = string('path', socketPath);
  const tls = tlsKnobs(o.tls, knobs);
  if (tls) native.tls = true;

  for (const [name, { knob, type }] of Object.entries(OPTIONS)) {
    // As ioredis: null leaves the default (username, password, maxRetriesPerRequest).
    if (knob !== undefined && o[name] !== undefined && o[name] !== null) add(knobs, knob, name, o[name], type);
  }
  if (o.keepAlive === false) add(knobs, 'tcp_keepalive', 'keepAlive', false);
  else if (typeof o.keepAlive === 'number' && o.keepAlive !== 0) {
    add(knobs, 'tcp_keepalive', 'keepAlive', true);
    add(knobs, 'tcp_keepalive_idle', 'keepAlive', o.keepAlive);
  } else if (o.keepAlive !== undefined && o.keepAlive !== true && o.keepAlive !== 0) {
    throw invalid(`invalid keepAlive = ${describe(o.keepAlive)}: must be a number of milliseconds or a boolean`);
  }
  retryStrategyKnobs(o.retryStrategy, knobs);
  breakerKnobs(o.breaker, knobs);
  if (o.knobs !== undefined) {
    if (!isObject(o.knobs)) throw invalid(`invalid knobs = ${describe(o.knobs)}: must be an object of core knob names`);
    for (const [name, value] of Object.entries(o.knobs)) add(knobs, name, `knobs.${name}`, value);
  }

  const client = {
    enableAutoPipelining: o.enableAutoPipelining === undefined ? true : boolean('enableAutoPipelining', o.enableAutoPipelining),
    lazyConnect: o.lazyConnect === undefined ? false : boolean('lazyConnect', o.lazyConnect),
    keyPrefix: o.keyPrefix === undefined ? '' : string('keyPrefix', o.keyPrefix),
    commandTimeout: o.commandTimeout,
    scripts: scripts(o.scripts),
  };
  return { native, client, options: o, positional: { url, port, host, path } };
}

/**
 * The options of `client.acquire(options)` for the addon: `timeout` a number (its range, 0 to 365
 * days, and `priority`'s names are the core's rules, applied by the addon), `priority` a string.
 */
function checkoutOptions(options = {}) {
  if (!isObject(options)) throw invalid('invalid acquire(options): must be an options object');
  const checkout = {};
  if (options.timeout !== undefined) {
    if (typeof options.timeout !== 'number') throw invalid(`invalid timeout = ${describe(options.timeout)}: must be a number`);
    checkout.timeout = options.timeout;
  }
  if (options.priority !== undefined) {
    if (typeof options.priority !== 'string') {
      throw invalid(`invalid priority = ${describe(options.priority)}: must be a string`);
    }
    checkout.priority = options.priority;
  }
  return checkout;
}

module.exports = { parse, checkoutOptions, FROM_ENV, OPTIONS };
