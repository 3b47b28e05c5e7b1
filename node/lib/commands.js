'use strict';
/**
 * The command table and everything done to a command before it is sent and to its reply after:
 * the list comes from `@ioredis/commands` (the table ioredis itself uses); argument flattening,
 * object arguments (`mset`, `hset`, ...), key prefixes and reply shapes follow ioredis.
 */
const commands = require('@ioredis/commands');
const { invalid } = require('./errors');

/**
 * Commands sent by a method of their own in ioredis's API, with that method. Commands that cannot
 * run on a shared pooled connection (SELECT, SUBSCRIBE, ...) are not listed: the core refuses them
 * (see `checkOneShot` in redis.js), and they work in a `watch()` session.
 */
const UNSUPPORTED = {
  quit: 'call client.quit()',
  multi: 'use client.multi() ... exec()',
  exec: 'use client.multi() ... exec()',
  discard: 'use client.multi() ... exec(), or client.unwatch()',
};

/** Every command name, lower case, as methods are named (ioredis leaves out `monitor`). */
const NAMES = commands.list.filter((name) => !/[^a-z0-9_]/.test(name) && name !== 'monitor');

/** ioredis's argument transformers: an object or Map as the field/value list. */
function pairs(value) {
  if (value instanceof Map) return [...value].flat();
  return Object.entries(value).flat();
}
const ARGUMENT_TRANSFORMERS = {
  mset: (args) => (args.length === 1 && isObjectArg(args[0]) ? pairs(args[0]) : args),
  msetnx: (args) => (args.length === 1 && isObjectArg(args[0]) ? pairs(args[0]) : args),
  hset: (args) => (args.length === 2 && isObjectArg(args[1]) ? [args[0], ...pairs(args[1])] : args),
  hmset: (args) => (args.length === 2 && isObjectArg(args[1]) ? [args[0], ...pairs(args[1])] : args),
};
function isObjectArg(v) {
  return v instanceof Map || (v !== null && typeof v === 'object' && !Array.isArray(v) && !ArrayBuffer.isView(v));
}

/** ioredis's reply transformers that apply to RESP2 replies. */
const REPLY_TRANSFORMERS = {
  hgetall(reply) {
    if (!Array.isArray(reply)) return reply;
    const object = {};
    for (let i = 0; i < reply.length; i += 2) {
      // defineProperty so that keys such as __proto__ become plain fields (ioredis #1267)
      Object.defineProperty(object, String(reply[i]), {
        value: reply[i + 1],
        configurable: true,
        enumerable: true,
        writable: true,
      });
    }
    return object;
  },
};

/** At most this many spellings of command names are remembered by `about` (names come from callers). */
const MAX_REMEMBERED_NAMES = 4096;
/** Command name as called → what `about` found for it. */
const remembered = new Map();

/**
 * What the table says about command `name` (a string, any case), remembered per spelling so that a
 * command's hot path does not lower-case its name and look it up again at every step: its lower-case
 * name, ioredis's argument and reply transformers, why it is unsupported, whether it may block.
 */
function about(name) {
  let info = remembered.get(name);
  if (info === undefined) {
    const lower = name.toLowerCase();
    info = {
      lower,
      transformArgs: ARGUMENT_TRANSFORMERS[lower],
      transformReply: REPLY_TRANSFORMERS[lower],
      unsupported: UNSUPPORTED[lower],
      known: commands.exists(lower),
      mayBlock: commands.exists(lower) && commands.hasFlag(lower, 'blocking'),
    };
    if (remembered.size < MAX_REMEMBERED_NAMES) remembered.set(name, info);
  }
  return info;
}

/** Converts one argument as ioredis does (numbers, null/undefined as ''), refusing the rest. */
function toArg(arg, name, position) {
  if (typeof arg === 'string' || Buffer.isBuffer(arg)) return arg;
  if (typeof arg === 'number') {
    return Number.isInteger(arg) && !Number.isSafeInteger(arg) ? BigInt(arg).toString() : String(arg);
  }
  if (typeof arg === 'bigint' || typeof arg === 'boolean') return String(arg);
  if (arg === null || arg === undefined) return '';
  if (ArrayBuffer.isView(arg)) return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
  const what = Array.isArray(arg) ? 'a nested array' : typeof arg === 'object' ? 'an object' : `a ${typeof arg}`;
  throw invalid(`argument ${position} of ${name.toUpperCase()} is ${what}; pass a string, Buffer or number`);
}

/** Prefixes one key (ioredis's keyPrefix rules, string or Buffer). */
function prefixed(prefix, key) {
  if (Buffer.isBuffer(key)) return Buffer.concat([Buffer.from(prefix), key]);
  return prefix + key;
}

/**
 * `args.flat()` (one level, holes skipped) without its cost when, as in nearly every call, no
 * argument is an array: then `args` itself (the caller does not change it).
 */
function flatten(args) {
  for (let i = 0; i < args.length; i++) {
    if (Array.isArray(args[i]) || !(i in args)) return args.flat();
  }
  return args;
}

/**
 * Builds the wire form `[name, ...args]` of a command: arrays flattened one level, object
 * arguments expanded, values converted, keys prefixed. Throws ERR_INVALID_ARGUMENT.
 */
function build(name, args, keyPrefix) {
  if (typeof name !== 'string' || name === '') throw invalid('the command name must be a non-empty string');
  const { lower, transformArgs, known } = about(name);
  let flat = flatten(args);
  if (transformArgs) flat = transformArgs(flat);
  const wire = new Array(flat.length + 1); // sized once: no growth per argument
  wire[0] = name;
  for (let i = 0; i < flat.length; i++) wire[i + 1] = toArg(flat[i], lower, i + 1);
  if (keyPrefix && known) {
    for (const index of commands.getKeyIndexes(lower, wire.slice(1))) {
      wire[index + 1] = prefixed(keyPrefix, wire[index + 1]);
    }
  }
  return wire;
}

/** Why `name` cannot be sent as a one-shot command, or undefined. */
function unsupported(name) {
  return about(name).unsupported;
}

/** Shapes a reply as ioredis does for `name` (hgetall → object, ...). */
function transformReply(name, reply) {
  const transform = about(name).transformReply;
  return transform ? transform(reply) : reply;
}

/**
 * Whether `wire` may block: a command ioredis's table flags `blocking`. The core decides whether it
 * does and how long its reply may take (`native.isBlocking`, `blocking_reply_timeout`): a block
 * time the server refuses (negative, not a number) is sent as it is and answered at once with the
 * server's ReplyError, as with ioredis; one over 365 days throws ERR_INVALID_ARGUMENT naming the
 * command (0 blocks forever).
 */
function mayBlock(wire) {
  return about(String(wire[0])).mayBlock;
}

module.exports = { NAMES, about, build, unsupported, transformReply, mayBlock };