'use strict';
/**
 * Error classes. Every error the client raises has a stable `.code`:
 * ERR_CONNECTION, ERR_TIMEOUT, ERR_POOL_TIMEOUT, ERR_CIRCUIT_OPEN, ERR_AUTH, ERR_PROTOCOL,
 * ERR_INVALID_ARGUMENT, ERR_POOL_CLOSED, ERR_INTERNAL (a bug), and ERR_REPLY for server error
 * replies, which are `ReplyError`s as in ioredis (message = the server's text).
 */

/** Base class of every redpool error (the name matches ioredis's `redis-errors`). */
class RedisError extends Error {
  constructor(message, code) {
    super(message);
    this.code = code;
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

/** Commands whose arguments may carry secrets: never attached to errors. */
const SECRET_ARGS = new Set(['auth', 'hello', 'acl', 'config', 'migrate']);

const SERVER_AUTH = /^(NOAUTH|WRONGPASS|NOPERM)\b/;

/**
 * Turns an error from the native layer (a plain Error with `.code`) into a redpool error; `command`
 * (`[name, ...args]`) is attached to reply errors as `{ name, args }` like ioredis does.
 */
function fromNative(err, command) {
  if (!(err instanceof Error) || typeof err.code !== 'string') {
    return new RedpoolError(String(err && err.message ? err.message : err), 'ERR_INTERNAL');
  }
  const reply = err.code === 'ERR_REPLY' || (err.code === 'ERR_AUTH' && SERVER_AUTH.test(err.message));
  const out = reply ? new ReplyError(err.message, err.code) : new RedpoolError(err.message, err.code);
  if (reply && command) {
    const name = String(command[0]).toLowerCase();
    out.command = {
      name,
      args: SECRET_ARGS.has(name) ? ['[redacted]'] : command.slice(1).map(String),
    };
  }
  return out;
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
