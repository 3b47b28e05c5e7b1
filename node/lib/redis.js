'use strict';
/**
 * The ioredis-compatible client. One client = one pool of connections in the Rust core (created on
 * first use, off the main thread). Commands are promise-returning methods named as in ioredis,
 * with an optional callback and `...Buffer` variants; commands of one tick go out as one pipeline.
 *
 * Order: commands issued in the same tick run in order on one connection; commands from different
 * ticks that are not awaited may run concurrently on different connections. After `watch()`, every
 * command runs in order on the watching connection until `exec()` or `unwatch()` (ioredis's
 * single-connection behaviour for optimistic transactions).
 */
const { EventEmitter } = require('node:events');
const crypto = require('node:crypto');
const util = require('node:util');
const { isMainThread, threadId } = require('node:worker_threads');

const native = require('../native');
const commands = require('./commands');
const errors = require('./errors');
const { parse, checkoutOptions, FROM_ENV } = require('./options');
const { Batcher } = require('./batcher');
const { pack } = require('./packed');
const { Pipeline } = require('./pipeline');

/**
 * Failures that mean the server is unreachable or unusable (they drive 'error'/'ready'): the
 * core's transient failures (`err.transient`) but a busy pool, and refused credentials.
 */
function isOutage(err) {
  return (err?.transient === true && err.code !== 'ERR_POOL_TIMEOUT') || err?.code === 'ERR_AUTH';
}
/**
 * Why the pool closed a connection, when it may mean the server is gone (see `#checkStillUp`):
 * closed by the server. Not a failed keepalive PING: a busy server (a long script, DEBUG SLEEP)
 * fails it too, and ioredis sees no outage there.
 */
const SERVER_GONE = new Set(['server_closed']);
/** Breaker states → client events. */
const BREAKER_EVENTS = { open: 'circuitOpen', half_open: 'circuitHalfOpen', closed: 'circuitClose' };
/** How long quit() lets commands still running finish. */
const QUIT_GRACE_MS = 5000;
/** This JS thread, as leak reports name it. */
const THREAD = isMainThread ? 'main' : `worker ${threadId}`;
/** At most this many command names are remembered by `checkOneShot` (names come from callers). */
const MAX_REMEMBERED_NAMES = 4096;
/** Lower-case command name → whether the core calls it ordinary (`native.isOrdinaryName`). */
const ordinaryNames = new Map();

/**
 * Throws ERR_INVALID_ARGUMENT, with the core's message, when the shared pool would refuse `wire`
 * (`[name, ...args]`, `info` what `commands.about` says of its name) as a one-shot command (SELECT,
 * SUBSCRIBE, a lone WATCH, ...), so that the call fails alone instead of the auto-pipelined batch it
 * would join. Only names the core does not call ordinary are checked in full; the answer per name
 * is remembered.
 */
function checkOneShot(wire, info) {
  const name = info.lower;
  let ordinary = ordinaryNames.get(name);
  if (ordinary === undefined) {
    ordinary = sync(() => native.isOrdinaryName(name));
    if (ordinaryNames.size < MAX_REMEMBERED_NAMES) ordinaryNames.set(name, ordinary);
  }
  if (ordinary) return;
  try {
    native.checkOneShot(wire);
  } catch (err) {
    throw errors.fromNative(err);
  }
}

/**
 * Calls a synchronous addon function: what it throws (a bad argument, or ERR_INTERNAL for a bug
 * caught at the addon's panic boundary) becomes a redpool error with its `.code`.
 */
function sync(call) {
  try {
    return call();
  } catch (err) {
    throw errors.fromNative(err);
  }
}

/**
 * Calls a promise-returning addon function: an error it throws before it has a promise to return
 * becomes a rejection, so every caller handles one path.
 */
function promised(call) {
  try {
    return call();
  } catch (err) {
    return Promise.reject(err);
  }
}

function withCallback(promise, callback) {
  if (typeof callback === 'function') promise.then((r) => callback(null, r), (e) => callback(e));
  return promise;
}

function splitCallback(args) {
  return typeof args[args.length - 1] === 'function' ? [args.slice(0, -1), args[args.length - 1]] : [args, undefined];
}

/**
 * Runs command `name` as ioredis does: an optional trailing callback, the wire form (arguments
 * converted, keys prefixed with `keyPrefix`), the reply shaped for `name`. `send(build, info)` is
 * given the function that builds the wire form and what `commands.about` says of `name`, and
 * returns a promise of the reply; what either throws becomes the rejection. The table is
 * consulted once per command.
 */
function runCommand(name, rawArgs, buffers, keyPrefix, send) {
  const last = rawArgs.length - 1;
  const callback = last >= 0 && typeof rawArgs[last] === 'function' ? rawArgs[last] : undefined;
  const args = callback === undefined ? rawArgs : rawArgs.slice(0, last);
  let promise;
  try {
    const info = commands.about(String(name));
    if (info.unsupported) throw errors.invalid(`${String(name).toUpperCase()} is not supported: ${info.unsupported}`);
    const sent = send(() => commands.build(name, args, keyPrefix), info);
    // No promise hop for the commands whose replies are not reshaped (nearly all).
    promise = info.transformReply ? sent.then(info.transformReply) : sent;
  } catch (err) {
    promise = Promise.reject(err);
  }
  return withCallback(promise, callback);
}

/** The reply of `wire` from a native call: an error reply or a failure becomes the coded error. */
function replyOf(sent, wire) {
  return sent.then(
    (reply) => {
      if (reply instanceof Error) throw errors.fromNative(reply, wire);
      return reply;
    },
    (err) => {
      throw errors.fromNative(err, wire);
    },
  );
}

/**
 * A checked-out connection (a `watch()` session, or `client.acquire()`): its operations run one
 * after the other.
 */
class Session {
  constructor(connection) {
    this.connection = connection;
    this.tail = connection.catch(() => {});
  }

  run(operation) {
    const result = this.tail.then(() => this.connection).then(operation);
    this.tail = result.catch(() => {});
    return result;
  }

  /** Sends one command; resolves to its reply (a blocking command waits its block time). */
  send(wire, buffers) {
    const blocks = commands.mayBlock(wire) && sync(() => native.isBlocking(wire));
    return replyOf(
      this.run((conn) => (blocks ? conn.blocking(wire, buffers) : conn.pipeline([wire], [buffers]).then((r) => r[0]))),
      wire,
    );
  }

  /** Sends commands together: a pipeline, or MULTI/EXEC (`null` if a WATCHed key changed). */
  batch(wires, buffers, transaction) {
    return this.run((conn) => (transaction ? conn.transaction(wires, buffers) : conn.pipeline(wires, buffers)));
  }

  release() {
    return this.run((conn) => conn.release());
  }
}

/**
 * A connection checked out by `client.acquire()` for one caller: ioredis's command methods
 * (`get`, `set`, ..., their `...Buffer` variants, `call`, `callBuffer`), `pipeline()` and `multi()`,
 * all run in order on this one connection (no retries: its state matters; session commands such
 * as SELECT or CLIENT SETNAME work, and the connection is then closed when released). `release()`
 * returns it to the pool; a command after it fails with ERR_POOL_CLOSED.
 */
class PooledConnection {
  #session;
  #keyPrefix;

  constructor(session, keyPrefix) {
    this.#session = session;
    this.#keyPrefix = keyPrefix;
  }

  /** Any command by name: `call('get', 'key')`. */
  call(name, ...args) {
    return this._command(name, args, false);
  }

  /** `call` with Buffer replies. */
  callBuffer(name, ...args) {
    return this._command(name, args, true);
  }

  /** Sends one command on this connection (used by every command method). */
  _command(name, rawArgs, buffers) {
    return runCommand(name, rawArgs, buffers, this.#keyPrefix, (build) => this.#session.send(build(), buffers));
  }

  /** A chain of commands sent together on this connection by `exec()`. */
  pipeline(commandList) {
    return new Pipeline((w, b, t) => this.#batch(w, b, t), this.#keyPrefix, false, commandList);
  }

  /** MULTI/EXEC on this connection (after `watch()`, for optimistic locking). */
  multi(commandList) {
    const list = Array.isArray(commandList) ? commandList : [];
    return new Pipeline((w, b, t) => this.#batch(w, b, t), this.#keyPrefix, true, list);
  }

  #batch(wires, buffers, transaction) {
    return this.#session.batch(wires, buffers, transaction).catch((err) => {
      throw errors.fromNative(err, undefined, transaction ? wires : undefined);
    });
  }

  /**
   * Returns the connection to the pool (after the commands already sent on it; an open WATCH or
   * MULTI is ended first, a connection left in another state is closed). Idempotent.
   */
  release(callback) {
    const promise = this.#session.release().catch((err) => {
      throw errors.fromNative(err);
    });
    return withCallback(promise, callback);
  }
}

class Redis extends EventEmitter {
  #args;
  #settings;
  #pool;
  #batcher;
  #session = null;
  #inflight = new Set();
  #status;
  #leakDetection;
  /** A `disconnect(true)` whose connections are not all closed yet: the client is not ready. */
  #reconnecting = false;
  /** The timer of the next recovery check after an outage (see `#recover`), or null. */
  #recovery = null;
  /** Outages seen so far: a recovery check answers only for the outage it was made in. */
  #outages = 0;
  /** A `#checkStillUp` check is under way. */
  #checking = false;

  /** `new Redis()`, `new Redis(port, host, options)`, `new Redis(url, options)`, `new Redis(options)`. */
  constructor(...args) {
    super();
    const parsed = parse(args);
    // ioredis's `scripts`, defined (and checked) before the pool opens.
    for (const [name, definition] of parsed.client.scripts) this.defineCommand(name, definition);
    this.#pool = sync(() => new native.NativePool(parsed.native, (event) => this.#onPoolEvent(event)));
    this.#args = args;
    this.#settings = parsed;
    this.#leakDetection = sync(() => this.#pool.leakDetection);
    const timeout = parsed.client.commandTimeout;
    this.#batcher = new Batcher((wires, buffers) =>
      this.#call(
        promised(() => {
          const { text, lengths, blobs } = pack(wires);
          return this.#pool.pipelinePacked(text, lengths, blobs, buffers, timeout);
        }),
      ),
    );
    this.#status = parsed.client.lazyConnect ? 'wait' : 'connecting';
    if (!parsed.client.lazyConnect) this.connect().catch(() => {}); // reported as an 'error' event
  }

  /**
   * A client configured from the environment, as `redpool.Redis.from_env()` in Python and
   * `redpool_config_from_env()` in C: `REDIS_URL`, or `REDIS_HOST` / `REDIS_PORT` / `REDIS_DB` /
   * `REDIS_USERNAME` / `REDIS_PASSWORD`, then any knob as `REDIS_<KNOB>`, read by the core (a
   * variable that contradicts `REDIS_URL` is refused). `options` (no URL) apply on top.
   * `new Redis()` reads no environment, as in ioredis.
   */
  static fromEnv(options = {}) {
    if (options === null || typeof options !== 'object' || Array.isArray(options)) {
      throw errors.invalid('invalid Redis.fromEnv(options): must be an options object');
    }
    return new Redis({ ...options, [FROM_ENV]: true });
  }

  /** `wait`, `connecting`, `ready`, `reconnecting` or `end` (ioredis's names). */
  get status() {
    return this.#status;
  }

  /** The options given (password redacted). */
  get options() {
    const options = { ...this.#settings.options };
    if (options.password !== undefined) options.password = '[redacted]';
    return options;
  }

  /** Opens the pool (and its `minIdle` connections) and PINGs the server. */
  connect(callback) {
    if (this.#status === 'end') return withCallback(Promise.reject(errors.closed()), callback);
    if (this.#status === 'wait') this.#status = 'connecting';
    return withCallback(
      this.#call(promised(() => this.#pool.connect())).catch((err) => {
        throw errors.fromNative(err);
      }),
      callback,
    );
  }

  /** Any command by name: `call('get', 'key')`. */
  call(name, ...args) {
    return this._command(name, args, false);
  }

  /** `call` with Buffer replies. */
  callBuffer(name, ...args) {
    return this._command(name, args, true);
  }

  /** Sends one command (used by every command method); resolves to its shaped reply. */
  _command(name, rawArgs, buffers) {
    return runCommand(name, rawArgs, buffers, this.#settings.client.keyPrefix, (build, info) => {
      if (this.#status === 'end') throw errors.closed();
      const wire = build();
      if (!this.#session) checkOneShot(wire, info); // a watch() session's connection is its own
      return this.#send(wire, buffers, info);
    });
  }

  #send(wire, buffers, info) {
    if (this.#session) return this.#session.send(wire, buffers);
    const blocks = info.mayBlock && sync(() => native.isBlocking(wire));
    const timeout = this.#settings.client.commandTimeout;
    let sent;
    if (blocks) {
      sent = this.#call(promised(() => this.#pool.blocking(wire, buffers, timeout)));
    } else if (this.#settings.client.enableAutoPipelining) {
      return this.#batcher.push(wire, buffers);
    } else {
      sent = this.#call(promised(() => this.#pool.pipeline([wire], [buffers], timeout))).then((r) => r[0]);
    }
    return replyOf(sent, wire);
  }

  /** Tracks a native call (for quit), and follows the server's reachability from its outcome. */
  #call(promise) {
    return this.#track(promise).then(
      (value) => {
        this.#up();
        return value;
      },
      (err) => {
        if (isOutage(err)) this.#down(errors.fromNative(err));
        throw err;
      },
    );
  }

  #up() {
    if (this.#status === 'ready' || this.#status === 'end' || this.#reconnecting) return;
    // A call let through before the circuit opened can succeed while new calls fail at once:
    // not ready until the breaker lets calls through (the recovery check sees to it).
    if (this.breakerState === 'open') return;
    this.#stopRecovery();
    this.#status = 'ready';
    this.emit('connect');
    this.emit('ready');
  }

  #down(err) {
    if (this.#status === 'reconnecting' || this.#status === 'end') return;
    this.#status = 'reconnecting';
    this.#outageBegins(err);
  }

  /** An outage, the status already 'reconnecting': 'error', 'close', then the recovery checks. */
  #outageBegins(err) {
    const outage = ++this.#outages;
    this.#emitError(err);
    // A listener may end the client (quit(), disconnect()): then nothing more of this outage.
    if (this.#inOutage(outage)) this.emit('close');
    if (this.#inOutage(outage)) this.#recover(1);
  }

  /** Whether outage number `outage` is still the client's state. */
  #inOutage(outage) {
    return this.#status === 'reconnecting' && this.#outages === outage;
  }

  /**
   * After an outage, as ioredis reconnects: 'reconnecting' with the delay of ioredis's default
   * strategy (50 ms × attempt, at most 2 s), then a PING on a connection outside the pool
   * (`reachable`), which takes no connection from callers. Once the server answers, a PING
   * through the breaker (`connect`): refused at once while the circuit is open, let through once
   * its recovery time has passed, which then closes it. The client is ready again when that
   * succeeds, or as soon as a command does; until then the checks go on. Neither the timer nor
   * the checks keep quit() waiting; the timer does not keep the process alive.
   */
  #recover(attempt) {
    const delay = Math.min(attempt * 50, 2000);
    this.emit('reconnecting', delay);
    const outage = this.#outages;
    const current = () => this.#inOutage(outage);
    this.#recovery = setTimeout(() => {
      this.#recovery = null;
      if (!current() || this.#reconnecting) return;
      const again = () => {
        if (current() && this.#recovery === null) this.#recover(attempt + 1);
      };
      promised(() => this.#pool.reachable()).then((answered) => {
        if (!current()) return;
        if (!answered) return again();
        // #call makes the client ready when the PING succeeds.
        this.#call(promised(() => this.#pool.connect())).catch(again);
      }, again);
    }, delay);
    this.#recovery.unref();
  }

  #stopRecovery() {
    clearTimeout(this.#recovery);
    this.#recovery = null;
  }

  /** Like ioredis: an 'error' nobody listens to is printed, not thrown. */
  #emitError(err) {
    if (this.listenerCount('error') > 0) this.emit('error', err);
    else console.error('[redpool] Unhandled error event:', err.message);
  }

  #onPoolEvent(event) {
    const { kind, ...details } = event;
    for (const key of Object.keys(details)) if (details[key] === undefined || details[key] === null) delete details[key];
    if (kind === 'breaker') {
      this.emit(BREAKER_EVENTS[event.to] ?? 'circuitChange', details);
    } else if (kind === 'leak') {
      const { message, ...leak } = details;
      process.emitWarning(message, 'RedpoolLeakWarning');
      this.emit('leak', leak);
    } else {
      if (kind === 'connectionClosed' && SERVER_GONE.has(event.reason)) this.#checkStillUp();
      this.emit(kind, details);
    }
  }

  /**
   * An idle client learns of an outage as ioredis does from its socket closing: a connection the
   * server closed prompts one check (`reachable()`, outside the pool); no answer is an outage,
   * with its events and recovery (`#down`), unless another outage came and went meanwhile.
   */
  #checkStillUp() {
    if (this.#status !== 'ready' || this.#checking) return;
    this.#checking = true;
    const outages = this.#outages;
    promised(() => this.#pool.reachable()).then(
      (answered) => {
        this.#checking = false;
        if (answered || this.#status !== 'ready' || this.#outages !== outages) return;
        const server = sync(() => this.#pool.redactedUrl);
        this.#down(new errors.RedpoolError(`${server} does not answer: it closed a connection and a new connection got no answer`, 'ERR_CONNECTION', true));
      },
      () => {
        this.#checking = false;
      },
    );
  }

  /**
   * Who checks a connection out, for leak reports: this JS thread and the stack below `caller`
   * (the application's frames, not redpool's). Captured only when leak detection is on.
   */
  #holder(caller) {
    if (!this.#leakDetection) return undefined;
    const site = {};
    Error.captureStackTrace(site, caller);
    return { thread: THREAD, stack: site.stack.slice(site.stack.indexOf('\n') + 1) };
  }

  /** A chain of commands sent together by `exec()`. */
  pipeline(commandList) {
    return new Pipeline((w, b, t) => this.#runBatch(w, b, t), this.#settings.client.keyPrefix, false, commandList);
  }

  /** A MULTI/EXEC transaction: `exec()` resolves to the results, or null if a WATCHed key changed. */
  multi(commandList) {
    const list = Array.isArray(commandList) ? commandList : [];
    return new Pipeline((w, b, t) => this.#runBatch(w, b, t), this.#settings.client.keyPrefix, true, list);
  }

  #runBatch(wires, buffers, transaction) {
    if (this.#status === 'end') return Promise.reject(errors.closed());
    const timeout = this.#settings.client.commandTimeout;
    const session = this.#session;
    let sent;
    if (session) {
      sent = session.batch(wires, buffers, transaction);
      if (transaction) this.#endSession();
    } else {
      sent = this.#call(
        promised(() =>
          transaction ? this.#pool.transaction(wires, buffers, timeout) : this.#pool.pipeline(wires, buffers, timeout),
        ),
      );
    }
    return sent.catch((err) => {
      throw errors.fromNative(err, undefined, transaction ? wires : undefined);
    });
  }

  /** WATCHes keys on a connection of this client's own until `multi().exec()` or `unwatch()`. */
  watch(...args) {
    if (!this.#session && this.#status !== 'end') {
      const holder = this.#holder(this.watch);
      const session = new Session(this.#call(promised(() => this.#pool.acquire(holder))));
      session.connection.catch(() => {
        if (this.#session === session) this.#session = null;
      });
      this.#session = session;
    }
    return this._command('watch', args, false);
  }

  /**
   * Checks out a connection of the pool for this caller alone: `const conn = await
   * client.acquire({ timeout, priority })`, then `await conn.get('k')`, ..., `await
   * conn.release()`. `timeout`: milliseconds to wait for a free connection (default
   * `acquireTimeout`; 0 never waits: ERR_POOL_TIMEOUT at once when none is free); `priority`:
   * `'normal'` (default) or `'high'` (served before every normal waiter). A bad one is
   * ERR_INVALID_ARGUMENT naming it.
   */
  acquire(options, callback) {
    if (typeof options === 'function') [options, callback] = [undefined, options];
    let promise;
    try {
      if (this.#status === 'end') throw errors.closed();
      const checkout = checkoutOptions(options);
      const holder = this.#holder(this.acquire);
      const session = new Session(this.#call(promised(() => this.#pool.acquire(holder, checkout))));
      const keyPrefix = this.#settings.client.keyPrefix;
      promise = session.connection.then(
        () => new PooledConnection(session, keyPrefix),
        (err) => {
          throw errors.fromNative(err);
        },
      );
    } catch (err) {
      promise = Promise.reject(errors.fromNative(err));
    }
    return withCallback(promise, callback);
  }

  /** Forgets WATCHed keys and returns the watching connection to the pool. */
  unwatch(callback) {
    const promise = this._command('unwatch', [], false);
    if (this.#session) this.#endSession();
    return withCallback(promise, callback);
  }

  #endSession() {
    const session = this.#session;
    this.#session = null;
    session.release().catch(() => {});
  }

  /** Defines a Lua script as a method (EVALSHA, falling back to EVAL), as ioredis does. */
  defineCommand(name, { lua, numberOfKeys } = {}) {
    if (typeof lua !== 'string') throw errors.invalid(`defineCommand(${name}): lua must be a string`);
    const sha = crypto.createHash('sha1').update(lua).digest('hex');
    const run = (buffers) => (...rawArgs) => {
      const [args, callback] = splitCallback(rawArgs);
      const keys = typeof numberOfKeys === 'number' ? [numberOfKeys] : [];
      const promise = this._command('evalsha', [sha, ...keys, ...args], buffers).catch((err) => {
        if (!(err instanceof errors.ReplyError) || !err.message.startsWith('NOSCRIPT')) throw err;
        return this._command('eval', [lua, ...keys, ...args], buffers);
      });
      return withCallback(promise, callback);
    };
    this[name] = run(false);
    this[`${name}Buffer`] = run(true);
  }

  /** Gauges and totals of the pool (sync, no I/O). */
  stats() {
    return sync(() => this.#pool.stats());
  }

  /**
   * This client's pool in the Prometheus text format (sync, no I/O; HELP and TYPE lines only
   * before the pool is opened). `require('redpool').metrics()` gives every pool of the process.
   */
  metrics() {
    return sync(() => this.#pool.metricsText());
  }

  /**
   * Changes the pool's size under load: growing serves waiting callers at once; shrinking closes
   * idle connections above the new cap now and busy ones when they come back (no command fails
   * because of it). `minIdle` defaults to the current one (at most `maxConnections`). Both are
   * whole numbers (ERR_INVALID_ARGUMENT otherwise, naming which).
   */
  resize(maxConnections, minIdle, callback) {
    if (typeof minIdle === 'function') [minIdle, callback] = [undefined, minIdle];
    let promise;
    try {
      if (this.#status === 'end') throw errors.closed();
      for (const [name, value] of [['maxConnections', maxConnections], ['minIdle', minIdle ?? 0]]) {
        if (typeof value !== 'number') throw errors.invalid(`invalid ${name}: must be a number, got a ${typeof value}`);
      }
      promise = this.#track(promised(() => this.#pool.resize(maxConnections, minIdle))).catch((err) => {
        throw errors.fromNative(err);
      });
    } catch (err) {
      promise = Promise.reject(errors.fromNative(err));
    }
    return withCallback(promise, callback);
  }

  /** The circuit breaker: `closed`, `open` or `half_open`. */
  get breakerState() {
    return sync(() => this.#pool.breakerState());
  }

  /**
   * PING latency, breaker, INFO fields, stats and sizing advice (`sizing.suggestedMaxConnections`
   * over the window since the previous check): `{ status: 'healthy' | 'degraded' | 'unhealthy', ... }`.
   */
  health(callback) {
    const promise = this.#status === 'end' ? Promise.reject(errors.closed()) : this.#track(promised(() => this.#pool.health()));
    return withCallback(
      promise.catch((err) => {
        throw errors.fromNative(err);
      }),
      callback,
    );
  }

  /** Remembers a native call until it settles, so quit() can wait for it. */
  #track(promise) {
    this.#inflight.add(promise);
    const untrack = () => this.#inflight.delete(promise);
    promise.then(untrack, untrack);
    return promise;
  }

  /** Lets commands already issued finish, then closes the pool. Resolves to 'OK'. */
  quit(callback) {
    if (this.#status === 'end') return withCallback(Promise.resolve('OK'), callback);
    this.#batcher.flush();
    this.#status = 'end';
    this.#stopRecovery();
    if (this.#session) this.#endSession();
    const promise = Promise.allSettled([...this.#inflight])
      .then(() => this.#pool.close(QUIT_GRACE_MS))
      .then(() => {
        this.#ended();
        return 'OK';
      })
      .catch((err) => {
        throw errors.fromNative(err);
      });
    return withCallback(promise, callback);
  }

  /**
   * Closes at once: commands not sent yet fail with ERR_POOL_CLOSED, running ones are cut. With
   * `reconnect` true (ioredis's `disconnect(true)`), closes every connection of the pool instead
   * (idle ones now, busy ones when their command is done: nothing is cut, where ioredis cuts and
   * resends) and connects again: 'close' and 'reconnecting' (on the next tick, as ioredis emits),
   * then 'connect' and 'ready', or, if that fails, 'error' and the checks that follow an outage;
   * the client stays usable. A second one while the first is under way does nothing.
   */
  disconnect(reconnect = false) {
    if (this.#status === 'end') return;
    if (reconnect) {
      this.#reconnect();
      return;
    }
    this.#status = 'end';
    this.#stopRecovery();
    this.#batcher.fail(errors.closed());
    if (this.#session) this.#endSession();
    promised(() => this.#pool.close(0)).then(
      () => this.#ended(),
      () => this.#ended(),
    );
  }

  #reconnect() {
    if (this.#reconnecting) return;
    this.#reconnecting = true;
    this.#status = 'reconnecting';
    process.nextTick(() => {
      if (this.#status === 'end') return; // quit() or disconnect() since: ioredis's close, end
      this.emit('close');
      this.emit('reconnecting', 0);
    });
    this.#track(promised(() => this.#pool.disconnect()))
      .then(() => {
        this.#reconnecting = false;
        return this.connect();
      })
      .catch((err) => {
        this.#reconnecting = false;
        if (this.#status === 'end') return;
        // As after an outage: checks until the server answers, or a command succeeds.
        if (this.#status === 'reconnecting' && this.#recovery === null) this.#outageBegins(errors.fromNative(err));
        else this.#emitError(errors.fromNative(err));
      });
  }

  #ended() {
    this.emit('close');
    this.emit('end');
  }

  /** A new client with the same options (and its own pool), `overrides` applied. */
  duplicate(overrides = {}) {
    return new Redis(...this.#args, overrides);
  }

  [util.inspect.custom]() {
    return `Redis { status: '${this.#status}', server: '${sync(() => this.#pool.redactedUrl)}' }`;
  }
}

/** Adds ioredis's command methods (and their `...Buffer` variants) the class does not define. */
function addCommandMethods(prototype) {
  for (const name of commands.NAMES) {
    if (!(name in prototype)) {
      prototype[name] = function (...args) {
        return this._command(name, args, false);
      };
    }
    if (!(`${name}Buffer` in prototype)) {
      prototype[`${name}Buffer`] = function (...args) {
        return this._command(name, args, true);
      };
    }
  }
}
addCommandMethods(Redis.prototype);
addCommandMethods(PooledConnection.prototype);

/** Every open pool of the process (every client) in the Prometheus text format (sync, no I/O). */
function metrics() {
  return sync(() => native.metricsText());
}

module.exports = { Redis, PooledConnection, metrics };
