'use strict';
/**
 * The constructor's arguments, as ioredis takes them — `()`, `(port, host, options)`,
 * `(url, options)`, `(path)`, `(options)` — mapped onto the native pool's settings: an optional
 * URL and address, then core knobs by name. This module maps names and checks JS types only; every
 * default, range and message of a setting is the core's knob table's, and its errors name the
 * option as written here (`connectTimeout`, `breaker.window`, `knobs.max_lifetime`). A number for
 * a duration is milliseconds, as every Node option; a string for one needs its unit (`'2s'`).
 * ioredis options that mean nothing for a pool (enableReadyCheck, enableOfflineQueue, family,
 * reconnectOnError, ...) are ignored with a warning naming them (`IGNORED`).
 */
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

/** ioredis options (and redpool's own) that set one core knob: [option, knob, JS type]. */
const NAMED = [
  ['db', 'db', 'number'],
  ['username', 'username', 'string'],
  ['password', 'password', 'string'],
  ['connectionName', 'client_name', 'string'],
  ['connectTimeout', 'connect_timeout', 'number'],
  ['commandTimeout', 'socket_timeout', 'number'],
  ['noDelay', 'tcp_nodelay', 'boolean'],
  ['maxRetriesPerRequest', 'retries', 'number'],
  ['maxConnections', 'max_connections', 'number'],
  ['minIdle', 'min_idle', 'number'],
  ['acquireTimeout', 'acquire_timeout', 'number'],
  ['healthCheckInterval', 'health_check_interval', 'number'],
  ['leakDetectionThreshold', 'leak_detection_threshold', 'number'],
  ['poolName', 'pool_name', 'string'],
];

/** Options read by `parse()` itself, besides `NAMED`. */
const READ = ['host', 'port', 'path', 'tls', 'keepAlive', 'retryStrategy', 'breaker', 'knobs', 'enableAutoPipelining', 'lazyConnect', 'keyPrefix'];

/**
 * ioredis options that mean nothing for a pool, and why. Given, each is ignored with a warning
 * (once per process); an option neither ioredis's nor redpool's gets a warning too: never silent.
 */
const IGNORED = {
  family: 'the address decides the IP family',
  enableReadyCheck: 'connections are checked by the pool (healthCheckInterval)',
  enableOfflineQueue: 'commands wait for a pooled connection instead (acquireTimeout)',
  autoResubscribe: 'pub/sub is not supported yet',
  autoResendUnfulfilledCommands: 'the core retries only what is safe to send again',
  reconnectOnError: 'the core reconnects, and retries only what is safe to send again',
  maxLoadingRetryTime: 'the core retries a LOADING server with its own backoff',
  showFriendlyErrorStack: 'errors carry the calling stack as they are',
  stringNumbers: 'integers are numbers, as ioredis gives them by default',
  readOnly: 'READONLY is for Redis Cluster, not supported yet',
  sentinels: 'Sentinel is not supported yet: connect to the master directly',
  name: 'Sentinel is not supported yet: connect to the master directly',
  role: 'Sentinel is not supported yet',
  sentinelPassword: 'Sentinel is not supported yet',
  autoPipeliningIgnoredCommands: 'commands the core does not call ordinary are never auto-pipelined',
  disconnectTimeout: 'quit() closes the pool within its own grace period',
  monitor: 'MONITOR is refused on a shared pool',
  Connector: 'connections are made by the core',
};

/** Options already warned about in this process. */
const WARNED = new Set();

/** Warns (once per option and process) about each option `parse()` did not use. */
function warnUnused(options) {
  const used = new Set([...READ, ...NAMED.map(([name]) => name)]);
  for (const name of Object.keys(options)) {
    if (used.has(name) || options[name] === undefined || WARNED.has(name)) continue;
    WARNED.add(name);
    const why = IGNORED[name] ?? 'neither an ioredis nor a redpool option';
    process.emitWarning(`redpool ignores the option ${name}: ${why}`, 'RedpoolIgnoredOptionWarning');
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
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
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

/**
 * Parses constructor arguments. Returns `{ native, client }`: the settings for the native pool
 * (`{ url, host, port, path, tls, knobs }`) and the client's own behaviour
 * (`{ enableAutoPipelining, lazyConnect, keyPrefix, commandTimeout }`).
 */
function parse(args) {
  const { url, port, host, path, options } = positional(args);
  const o = { ...options };
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

  for (const [name, knob, type] of NAMED) {
    // As ioredis: null leaves the default (username, password, maxRetriesPerRequest).
    if (o[name] !== undefined && o[name] !== null) add(knobs, knob, name, o[name], type);
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

  warnUnused(o);
  const client = {
    enableAutoPipelining: o.enableAutoPipelining === undefined ? true : boolean('enableAutoPipelining', o.enableAutoPipelining),
    lazyConnect: o.lazyConnect === undefined ? false : boolean('lazyConnect', o.lazyConnect),
    keyPrefix: o.keyPrefix === undefined ? '' : string('keyPrefix', o.keyPrefix),
    commandTimeout: o.commandTimeout,
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

module.exports = { parse, checkoutOptions, FROM_ENV };
