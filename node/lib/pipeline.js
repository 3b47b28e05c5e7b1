'use strict';
/**
 * `client.pipeline()` and `client.multi()`: chains of commands sent together by `exec()`, which
 * resolves to `[[err, result], ...]` as in ioredis (`[err]` for a failed command), or to `null`
 * when a WATCHed key changed before a `multi()` ran.
 */
const commands = require('./commands');
const { fromNative, invalid } = require('./errors');

class Pipeline {
  /**
   * @param run `(wires, buffers, transaction) => Promise<replies | null>` from the client
   * @param keyPrefix the client's key prefix
   * @param transaction true for multi()
   * @param initial ioredis's array form: `[['set', 'k', 'v'], ['get', 'k']]`
   */
  constructor(run, keyPrefix, transaction, initial = []) {
    this._run = run;
    this._keyPrefix = keyPrefix;
    this._transaction = transaction;
    this._entries = [];
    this._error = null;
    for (const [name, ...args] of initial) this._queue(name, args, false);
  }

  /** Number of queued commands. */
  get length() {
    return this._entries.length;
  }

  _queue(name, args, buffers) {
    const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
    try {
      const reason = commands.unsupported(name);
      if (reason) throw invalid(`${String(name).toUpperCase()} is not supported: ${reason}`);
      this._entries.push({ name, wire: commands.build(name, args, this._keyPrefix), buffers, callback });
    } catch (err) {
      this._error = this._error ?? err;
    }
    return this;
  }

  /** Any command by name. */
  call(name, ...args) {
    return this._queue(name, args, false);
  }

  /** Any command by name, replies as Buffers. */
  callBuffer(name, ...args) {
    return this._queue(name, args, true);
  }

  /** Sends the commands; resolves to `[[err, result], ...]` (or `null`, see above). */
  exec(callback) {
    const entries = this._entries;
    this._entries = [];
    const promise = this._error
      ? Promise.reject(this._error)
      : this._run(entries.map((e) => e.wire), entries.map((e) => e.buffers), this._transaction).then((replies) => {
          if (replies === null) return null;
          return replies.map((reply, i) =>
            reply instanceof Error
              ? [fromNative(reply, entries[i].wire)]
              : [null, commands.transformReply(entries[i].name, reply)],
          );
        });
    promise.then(
      (results) => entries.forEach((e, i) => e.callback?.(...(results ? results[i] : [null, null]))),
      (err) => entries.forEach((e) => e.callback?.(err)),
    );
    if (typeof callback === 'function') promise.then((r) => callback(null, r), (e) => callback(e));
    return promise;
  }
}

for (const name of commands.NAMES) {
  if (!(name in Pipeline.prototype)) {
    Pipeline.prototype[name] = function (...args) {
      return this._queue(name, args, false);
    };
  }
  Pipeline.prototype[`${name}Buffer`] = function (...args) {
    return this._queue(name, args, true);
  };
}

module.exports = { Pipeline };
