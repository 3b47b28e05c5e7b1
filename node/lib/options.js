'use strict';
/**
 * The constructor's arguments, as ioredis takes them — `()`, `(port, host, options)`,
 * `(url, options)`, `(path)`, `(options)` — mapped onto the native pool's settings: an optional
 * URL and address, then core knobs by name. Types and signs are checked here, with the ioredis
 * option's name in the message; ranges are checked by the core. ioredis options that mean nothing
 * for a pool (enableReadyCheck, enableOfflineQueue, family, reconnectOnError, ...) are ignored.
 *
 * Every number is checked before it reaches the core: NaN, ±Infinity, negative values, fractions
 * where a whole number is meant, and values the native side cannot hold (a whole number above
 * 2^53 - 1, a count above 2^32 - 1, a port above 65535, a duration above 365 days) are refused with
 * ERR_INVALID_ARGUMENT naming the option, never passed on to become another number.
 */
const { invalid } = require('./errors');

/** The longest duration any option or call takes: 365 days (the core's bound), in milliseconds. */
const MAX_DURATION_MS = 365 * 24 * 3600 * 1000;
/** The largest count the core stores in 32 bits (retries, breaker thresholds). */
const MAX_COUNT = 0xffffffff;
/** Marks the options of `Redis.fromEnv()`: the core reads the environment first. */
const FROM_ENV = Symbol('redpool.fromEnv');

/** Redis's database indexes are C ints. */
const MAX_DB = 0x7fffffff;

/** Breaker option names → core knobs; `ms` marks durations, the others are 32-bit counts. */
const BREAKER = {
  failureThreshold: ['breaker_failure_threshold'],
  failureRate: ['breaker_failure_rate'],
  window: ['breaker_window', 'ms'],
  minCalls: ['breaker_min_calls'],
  recoveryTimeout: ['breaker_recovery_timeout', 'ms'],
  halfOpenProbes: ['breaker_half_open_probes'],
  successThreshold: ['breaker_success_threshold'],
  probeTimeout: ['breaker_probe_timeout', 'ms'],
};

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/**
 * Checks a number option or argument: finite, whole if `integer`, within [min, max]. A whole
 * number is at most 2^53 - 1 (beyond it, JS numbers are no longer exact) unless `max` is lower.
 */
function number(name, value, { integer = false, min = 0, max = integer ? Number.MAX_SAFE_INTEGER : Infinity } = {}) {
  if (typeof value !== 'number' || !Number.isFinite(value) || (integer && !Number.isInteger(value))) {
    throw invalid(`invalid ${name} = ${describe(value)}: must be a ${integer ? 'whole number' : 'finite number'}`);
  }
  if (value < min) throw invalid(`invalid ${name} = ${value}: must be >= ${min}`);
  if (value > max) throw invalid(`invalid ${name} = ${value}: must be <= ${max}`);
  return value;
}

/** A duration in milliseconds (0 to 365 days; fractions round up), as a core knob value. */
function milliseconds(name, value) {
  number(name, value);
  if (value > MAX_DURATION_MS) throw invalid(`invalid ${name} = ${value}: must be at most 365 days (${MAX_DURATION_MS} ms)`);
  return `${Math.ceil(value)}ms`;
}

function string(name, value) {
  if (typeof value !== 'string') throw invalid(`invalid ${name}: must be a string, got ${describe(value)}`);
  return value;
}

function boolean(name, value) {
  if (typeof value !== 'boolean') throw invalid(`invalid ${name} = ${describe(value)}: must be true or false`);
  return value;
}

/** A value for messages: never the value of a string (it may be a secret), only its type. */
function describe(value) {
  if (value === null) return 'null';
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (typeof value === 'string') return 'a string';
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/**
 * A core knob's value as text. Strings and booleans go as they are (the core parses and checks
 * them, naming the knob); a number must be finite and, if whole, exact (at most 2^53 - 1), so that
 * its text is the number given (`String(1e21)` is `1e+21`, which no knob reads as that number).
 */
function knobValue(name, value) {
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(`invalid knobs.${name} = ${value}: must be a finite number`);
    if (Math.abs(value) > Number.MAX_SAFE_INTEGER) {
      throw invalid(`invalid knobs.${name} = ${value}: must be at most ${Number.MAX_SAFE_INTEGER} (pass larger values as text)`);
    }
  }
  return String(value);
}

/** A port as knob text: the core checks it (a whole number from 1 to 65535). */
function portText(value) {
  if (typeof value === 'number' || typeof value === 'string') return String(value);
  throw invalid(`invalid port = ${describe(value)}: must be a number between 1 and 65535`);
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
  if (tls.caFile !== undefined) knobs.push(['tls_ca_file', string('tls.caFile', tls.caFile)]);
  if (tls.certFile !== undefined) knobs.push(['tls_cert_file', string('tls.certFile', tls.certFile)]);
  if (tls.keyFile !== undefined) knobs.push(['tls_key_file', string('tls.keyFile', tls.keyFile)]);
  if (tls.rejectUnauthorized !== undefined) {
    knobs.push(['tls_insecure', String(!boolean('tls.rejectUnauthorized', tls.rejectUnauthorized))]);
  }
  return true;
}

/**
 * ioredis's retryStrategy(times) → reconnect delay: sampled once for the core's backoff. A strategy
 * that throws or returns a non-number (ioredis: stop reconnecting) leaves the core's backoff; a
 * number it returns must be a valid delay (see `milliseconds`).
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
    milliseconds('retryStrategy(1)', first);
    knobs.push(['reconnect_backoff_base', `${Math.max(1, Math.ceil(first))}ms`]);
    if (typeof later === 'number') {
      milliseconds('retryStrategy(10)', later);
      if (later >= first) knobs.push(['reconnect_backoff_cap', `${Math.max(1, Math.ceil(later))}ms`]);
    }
  }
}

function breakerKnobs(breaker, knobs) {
  if (breaker === undefined) return;
  if (typeof breaker === 'boolean') {
    knobs.push(['breaker', String(breaker)]);
    return;
  }
  if (!isObject(breaker)) throw invalid(`invalid breaker = ${describe(breaker)}: must be true, false or an object`);
  knobs.push(['breaker', 'true']);
  for (const [key, value] of Object.entries(breaker)) {
    const spec = BREAKER[key];
    if (!spec) throw invalid(`unknown breaker option ${key}; valid: ${Object.keys(BREAKER).join(', ')}`);
    const [knob, unit] = spec;
    knobs.push([
      knob,
      unit === 'ms' ? milliseconds(`breaker.${key}`, value) : String(number(`breaker.${key}`, value, { integer: true, max: MAX_COUNT })),
    ]);
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
  if (h !== undefined) knobs.push(['host', string('host', h)]);
  if (p !== undefined) knobs.push(['port', portText(p)]);
  const socketPath = o.path ?? path;
  if (socketPath !== undefined) native.path = string('path', socketPath);
  const tls = tlsKnobs(o.tls, knobs);
  if (tls) native.tls = true;

  if (o.db !== undefined) knobs.push(['db', String(number('db', o.db, { integer: true, max: MAX_DB }))]);
  if (o.username !== undefined && o.username !== null) knobs.push(['username', string('username', o.username)]);
  if (o.password !== undefined && o.password !== null) knobs.push(['password', string('password', o.password)]);
  if (o.connectionName !== undefined) knobs.push(['client_name', string('connectionName', o.connectionName)]);
  if (o.connectTimeout !== undefined) knobs.push(['connect_timeout', milliseconds('connectTimeout', o.connectTimeout)]);
  if (o.commandTimeout !== undefined) knobs.push(['socket_timeout', milliseconds('commandTimeout', o.commandTimeout)]);
  if (o.noDelay !== undefined) knobs.push(['tcp_nodelay', String(boolean('noDelay', o.noDelay))]);
  if (o.keepAlive === false) knobs.push(['tcp_keepalive', 'false']);
  else if (o.keepAlive !== undefined && o.keepAlive !== true && number('keepAlive', o.keepAlive) > 0) {
    knobs.push(['tcp_keepalive', 'true'], ['tcp_keepalive_idle', milliseconds('keepAlive', o.keepAlive)]);
  }
  if (o.maxRetriesPerRequest !== undefined && o.maxRetriesPerRequest !== null) {
    knobs.push(['retries', String(number('maxRetriesPerRequest', o.maxRetriesPerRequest, { integer: true, max: MAX_COUNT }))]);
  }
  retryStrategyKnobs(o.retryStrategy, knobs);
  if (o.maxConnections !== undefined) {
    knobs.push(['max_connections', String(number('maxConnections', o.maxConnections, { integer: true, min: 1, max: MAX_COUNT }))]);
  }
  if (o.minIdle !== undefined) knobs.push(['min_idle', String(number('minIdle', o.minIdle, { integer: true, max: MAX_COUNT }))]);
  if (o.acquireTimeout !== undefined) knobs.push(['acquire_timeout', milliseconds('acquireTimeout', o.acquireTimeout)]);
  if (o.healthCheckInterval !== undefined) knobs.push(['health_check_interval', milliseconds('healthCheckInterval', o.healthCheckInterval)]);
  if (o.leakDetectionThreshold !== undefined) {
    knobs.push(['leak_detection_threshold', milliseconds('leakDetectionThreshold', o.leakDetectionThreshold)]);
  }
  if (o.poolName !== undefined) knobs.push(['pool_name', string('poolName', o.poolName)]);
  breakerKnobs(o.breaker, knobs);
  if (o.knobs !== undefined) {
    if (!isObject(o.knobs)) throw invalid(`invalid knobs = ${describe(o.knobs)}: must be an object of core knob names`);
    // A number is milliseconds for a duration knob, as every Node option; a string for one needs
    // its unit ('2s'): the core's rule (KnobInput), so 2000 can never silently mean 2000 s.
    for (const [name, value] of Object.entries(o.knobs)) {
      const how = typeof value === 'number' ? 'number' : typeof value === 'string' ? 'text' : undefined;
      knobs.push(how ? [name, knobValue(name, value), how] : [name, knobValue(name, value)]);
    }
  }

  const client = {
    enableAutoPipelining: o.enableAutoPipelining === undefined ? true : boolean('enableAutoPipelining', o.enableAutoPipelining),
    lazyConnect: o.lazyConnect === undefined ? false : boolean('lazyConnect', o.lazyConnect),
    keyPrefix: o.keyPrefix === undefined ? '' : string('keyPrefix', o.keyPrefix),
    commandTimeout: o.commandTimeout,
  };
  return { native, client, options: o, positional: { url, port, host, path } };
}

module.exports = { parse, number, MAX_COUNT, FROM_ENV };
