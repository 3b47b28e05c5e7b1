'use strict';
/**
 * Error classes. Every error the client raises has a stable `.code`:
 * ERR_CONNECTION, ERR_TIMEOUT, ERR_POOL_TIMEOUT, ERR_CIRCUIT_OPEN, ERR_AUTH, ERR_PROTOCOL,
 * ERR_INVALID_ARGUMENT, ERR_POOL_CLOSED, ERR_INTERNAL (a bug), and ERR_REPLY for server error
 * replies, which are `ReplyError`s as in ioredis (message = the server's text). `.transient` is
 * the core's verdict: true when the same call may succeed if made again later.
 */

const native = require('../native');

/** Base class of every redpool error (the name matches ioredis's `redis-errors`). */
class RedisError extends Error {
  constructor(message, code, transient = false) {
    super(message);
    this.code = code;
    /** The core's classifier (`ErrorKind::is_transient`): the same call may succeed later. */
    this.transient = transient;
  }

  get name() {
    return this.constructor.name;
  }
}

/** A server error reply (`ERR ...`, `WRONGTYPE ...`, `NOAUTH ...`). */
class ReplyError extends RedisError {
  constructor(message, code = 'ERR_REPLY') {
    super(message, code);
  }
}

/** Anything else: connection, timeouts, pool, breaker, bad arguments, closed client. */
class RedpoolError extends RedisError {}

/**
 * Refused credentials: ERR_AUTH from the core, a server reply all the same (ioredis: ReplyError).
 * The core's message names the server before the reply (`authentication to ... failed: WRONGPASS ...`).
 */
const SERVER_AUTH = /\b(NOAUTH|WRONGPASS)\b/;

/**
 * napi-rs's own error statuses for a JS value it could not convert into an argument's Rust type.
 * The JS layer checks every argument first, so these mean a bug, but a bad argument's one.
 */
const NAPI_ARGUMENT_STATUSES = new Set([
  'InvalidArg', 'ObjectExpected', 'StringExpected', 'NameExpected', 'FunctionExpected', 'NumberExpected',
  'BooleanExpected', 'ArrayExpected', 'BigintExpected', 'DateExpected', 'ArrayBufferExpected',
]);

/** The `.code` of a native error: the addon's own `ERR_...`, or napi-rs's status mapped onto one. */
function nativeCode(err) {
  if (!(err instanceof Error) || typeof err.code !== 'string') return 'ERR_INTERNAL';
  if (err.code.startsWith('ERR_')) return err.code;
  // napi-rs's status: `GenericFailure` is also how it reports a panic it caught in converting
  // arguments or return values (the addon reports its own panics as ERR_INTERNAL).
  return NAPI_ARGUMENT_STATUSES.has(err.code) ? 'ERR_INVALID_ARGUMENT' : 'ERR_INTERNAL';
}

/**
 * Turns an error from the native layer (a plain Error with `.code`) into a redpool error; `command`
 * (`[name, ...args]`, the wire form) is attached to reply errors as `{ name, args }` like ioredis does, the
 * name as the caller spelled it. A reply
 * error of a transaction (`commands`: the commands it sent) gets ioredis's `previousErrors`: the
 * error of each command the server rejected while queueing (none unless it is EXECABORT). A
 * redpool error passes through as it is.
 */
function fromNative(err, command, commands) {
  if (err instanceof RedisError) return err;
  const code = nativeCode(err);
  const message = err instanceof Error ? err.message : String(err);
  if (code === 'ERR_INTERNAL' && !(err instanceof Error && err.code === 'ERR_INTERNAL')) {
    return new RedpoolError(`internal error in redpool (a bug, please report it): ${message}`, code);
  }
  const reply = code === 'ERR_REPLY' || (code === 'ERR_AUTH' && SERVER_AUTH.test(message));
  const out = reply ? new ReplyError(message, code) : new RedpoolError(message, code, err.transient === true);
  if (reply && command) {
    out.command = { name: command[0], args: redactedArgs(command) };
  }
  if (reply && commands) {
    const rejected = Array.isArray(err.rejected) ? err.rejected : [];
    out.previousErrors = rejected.map((r) => fromNative(r, commands[r.index]));
    if (!command) out.command = { name: 'exec', args: [] }; // EXEC's own error, as ioredis shows it
  }
  return out;
}

/**
 * The arguments of `command` as sent (strings and Buffers, as ioredis shows them), every password
 * replaced by `[redacted]`: which words are passwords is the core's one rule (`secretArguments`),
 * as in Python.
 */
function redactedArgs(command) {
  const shown = command.slice(1);
  for (const i of native.secretArguments(command)) if (i > 0) shown[i - 1] = '[redacted]';
  return shown;
}

/** An invalid-argument error raised by the JS layer itself. */
function invalid(message) {
  return new RedpoolError(message, 'ERR_INVALID_ARGUMENT');
}

/** The error of a call on a client after quit() or disconnect() (ioredis's text). */
function closed() {
  return new RedpoolError('Connection is closed.', 'ERR_POOL_CLOSED');
}

module.exports = { RedisError, ReplyError, RedpoolError, fromNative, invalid, closed };
