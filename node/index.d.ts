// Types of the redpool Node package: an ioredis-compatible client on redpool's Rust pool.
/// <reference types="node" />
import { EventEmitter } from 'events';

/** An argument of a command (numbers are sent as their decimal text, null/undefined as ''). */
export type RedisKey = string | Buffer;
export type RedisValue = string | Buffer | number | bigint | boolean | null | undefined;
export type RedisArg = RedisValue | RedisValue[] | Record<string, RedisValue> | Map<RedisValue, RedisValue>;
export type Callback<T> = (err: Error | null, result?: T) => void;

/** Circuit-breaker settings (times in milliseconds); see the README's resilience table. */
export interface BreakerOptions {
  failureThreshold?: number;
  failureRate?: number;
  window?: number;
  minCalls?: number;
  recoveryTimeout?: number;
  halfOpenProbes?: number;
  successThreshold?: number;
  probeTimeout?: number;
}

/** TLS: certificate files by path. `ca`/`cert`/`key` (PEM contents) are rejected. */
export interface TlsOptions {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
  /** false skips certificate and host name checks (tests only). */
  rejectUnauthorized?: boolean;
}

/**
 * ioredis options redpool does not support yet, typed only with the value that asks for nothing
 * (ioredis's "off"): any other value throws ERR_INVALID_ARGUMENT naming the option, why, and what
 * to do instead (README, "Options").
 */
export interface RefusedOptions {
  /** Sentinel (this and every `sentinel...` option, `name`, `role`, `natMap`, ...): connect to the master directly. */
  sentinels?: null;
  /** The Sentinel master group (CLIENT SETNAME is `connectionName`). */
  name?: null;
  role?: never;
  sentinelUsername?: never;
  sentinelPassword?: never;
  sentinelTLS?: never;
  enableTLSForSentinelMode?: false;
  sentinelRetryStrategy?: never;
  sentinelReconnectStrategy?: never;
  sentinelCommandTimeout?: never;
  sentinelMaxConnections?: never;
  preferredSlaves?: never;
  natMap?: null;
  updateSentinels?: never;
  failoverDetector?: false;
  /** Connections are made by the core. */
  Connector?: null;
  /** A safety net for blocking commands; `0` or less is ioredis's "off". */
  blockingTimeout?: number;
  /** No CLIENT SETINFO is sent. */
  clientInfoTag?: never;
  /** Pub/sub is not supported yet. */
  autoResubscribe?: true;
  /** Redpool reconnects on connection failures only. */
  reconnectOnError?: null;
  /** Redis Cluster is not supported yet. */
  readOnly?: false;
  stringNumbers?: false;
  monitor?: false;
  /** A server loading its data set answers LOADING errors. */
  maxLoadingRetryTime?: never;
  autoPipeliningIgnoredCommands?: [];
  himportFieldsets?: [];
}

/**
 * ioredis's options, each honoured, mapped onto what redpool does (typed with the values accepted;
 * any other throws ERR_INVALID_ARGUMENT) or refused (`RefusedOptions`), plus the pool's own. An
 * option that is neither ioredis's nor redpool's throws. Times are in milliseconds.
 */
export interface RedisOptions extends RefusedOptions {
  host?: string;
  port?: number;
  /** Unix socket path. */
  path?: string;
  db?: number;
  username?: string;
  password?: string;
  /** CLIENT SETNAME of every connection (default none: no CLIENT SETNAME, as in ioredis). */
  connectionName?: string;
  /** Connect + TLS + handshake (default 5000). */
  connectTimeout?: number;
  /** Each read and write, and the overall limit of a call (default 5000 per read/write). */
  commandTimeout?: number;
  /** Each read and write only (the core's `socket_timeout`); not with `commandTimeout`. */
  socketTimeout?: number;
  /** TCP keepalive: false turns it off, a number sets the idle time (default on, 60 s). */
  keepAlive?: boolean | number;
  noDelay?: boolean;
  tls?: boolean | TlsOptions;
  /** Retries of a failed call that is safe to retry (default 3); null keeps the default. */
  maxRetriesPerRequest?: number | null;
  /** Sampled at times 1 and 10 for the pool's reconnect backoff (base and cap). */
  retryStrategy?: ((times: number) => number | null | void) | null;
  /** Commands of one tick as one pipeline (default true). */
  enableAutoPipelining?: boolean;
  /** Do not PING at construction (default false). */
  lazyConnect?: boolean;
  keyPrefix?: string;
  /** Lua scripts defined as commands at construction, as `defineCommand`. */
  scripts?: Record<string, { lua: string; numberOfKeys?: number; readOnly?: boolean }>;
  /** 4 or 6 only with `host` given as an IPv4 or IPv6 address (every address of a name is tried). */
  family?: 0 | 4 | 6;
  /** Connections are checked by the pool (a PING on connect(), `healthCheckInterval`). */
  enableReadyCheck?: true;
  /** Commands wait for a pooled connection up to `acquireTimeout`. */
  enableOfflineQueue?: true;
  /** A call is sent again only when safe, up to `maxRetriesPerRequest` times. */
  autoResendUnfulfilledCommands?: true;
  showFriendlyErrorStack?: boolean;
  /** Keeps RESP2; replies have ioredis's `legacy` shapes with either (`knobs: { protocol: 3 }` switches the wire to RESP3, whose types replies then keep). */
  protocol?: 2 | 3;
  replyMapping?: 'legacy';
  /** No CLIENT SETINFO is sent. */
  disableClientInfo?: true;
  /** Not read by ioredis's constructor either. */
  offlineQueue?: boolean;
  /** Not read by ioredis's constructor either. */
  commandQueue?: boolean;
  /** quit() closes with its own 5 s grace. */
  disconnectTimeout?: never;
  /** A blocking command's grace is `commandTimeout`. */
  blockingTimeoutGrace?: never;
  /** Hard cap on open connections (default 50). */
  maxConnections?: number;
  /** Connections kept open (default 0). */
  minIdle?: number;
  /** Longest wait for a free connection (default 5000). */
  acquireTimeout?: number;
  /** true/false, or settings (default on: opens after 5 consecutive failures, probes after 30 s). */
  breaker?: boolean | BreakerOptions;
  /** An idle connection unused this long is PINGed before use (default 30000; 0: never). */
  healthCheckInterval?: number;
  /**
   * A connection checked out (by `watch()`) longer than this is reported once as a `'leak'` event
   * and a `RedpoolLeakWarning` process warning naming the JS stack of the checkout (default 0: off;
   * stacks are captured only when on).
   */
  leakDetectionThreshold?: number;
  /** The `pool` label of this client's metrics (default: `connectionName`, else `redpool`). */
  poolName?: string;
  /** Any core knob by its name (README tables), e.g. `{ idle_timeout: '60s' }`. */
  knobs?: Record<string, string | number | boolean>;
}

/** Every error of this package carries `.code`. */
export type ErrorCode =
  | 'ERR_CONNECTION'
  | 'ERR_TIMEOUT'
  | 'ERR_POOL_TIMEOUT'
  | 'ERR_CIRCUIT_OPEN'
  | 'ERR_AUTH'
  | 'ERR_REPLY'
  | 'ERR_PROTOCOL'
  | 'ERR_INVALID_ARGUMENT'
  | 'ERR_POOL_CLOSED'
  | 'ERR_INTERNAL';

export class RedisError extends Error {
  readonly code: ErrorCode;
  /** The core's classifier: true when the same call may succeed if made again later. */
  readonly transient: boolean;
}
/** A server error reply; `message` is the server's text. */
export class ReplyError extends RedisError {
  /**
   * The command answered with this error, as ioredis gives it: the name as the caller spelled it,
   * the arguments as sent (numbers as strings), each password shown as `[redacted]`.
   */
  command?: { name: string; args: Array<string | Buffer> };
  /** On a transaction's EXECABORT: the error of each command the server rejected while queueing (ioredis's). */
  previousErrors?: ReplyError[];
}
export class RedpoolError extends RedisError {}

export interface PoolStats {
  maxConnections: number;
  minIdle: number;
  open: number;
  idle: number;
  inUse: number;
  connecting: number;
  waiting: number;
  connectionsCreated: number;
  connectAttempts: number;
  connectFailures: number;
  retries: number;
  connectionsClosed: Record<string, number>;
  acquires: number;
  acquireTimeouts: number;
  commands: number;
  errors: Record<string, number>;
  waitTimeTotalMs: number;
  waitTimeMaxMs: number;
  /** Checkouts held longer than `leakDetectionThreshold` so far. */
  leaksSuspected: number;
}

/** Sizing advice over the window since the previous health check (Little's law). */
export interface SizingAdvice {
  windowMs: number;
  /** Connections in use now / maxConnections. */
  utilization: number;
  /** Mean connections in use over the window (λ · W). */
  meanInUse: number;
  /** Checkouts per second (λ). */
  arrivalRate: number;
  /** Mean time a checkout was held (W). */
  meanHoldTimeMs: number;
  meanWaitMs: number;
  acquireTimeouts: number;
  maxConnections: number;
  /** ceil(λ·W / 0.7 × 1.2), at least minIdle and 1; 25 % above the cap when acquires timed out. */
  suggestedMaxConnections: number;
}

export type BreakerState = 'closed' | 'open' | 'half_open';
export type HealthStatus = 'healthy' | 'degraded' | 'unhealthy';

export interface HealthReport {
  status: HealthStatus;
  reasons: string[];
  pingLatencyMs?: number;
  error?: string;
  breaker: BreakerState;
  consecutiveFailures: number;
  serverInfo: Record<string, string>;
  stats: PoolStats;
  sizing: SizingAdvice;
}

/** A connection held past `leakDetectionThreshold` (reported once per checkout). */
export interface LeakEvent {
  /** The connection's id. */
  id: number;
  heldForMs: number;
  /** `main` or `worker <threadId>`. */
  thread: string;
  /** The JS stack where it was checked out (`watch()`'s caller first). */
  stack: string;
}

export interface BreakerEvent {
  from: BreakerState;
  to: BreakerState;
}

export interface ClientEvents {
  connect: [];
  ready: [];
  error: [err: RedisError];
  close: [];
  /**
   * Connecting again: after an outage, the delay before the next check (ioredis's default
   * strategy, 50 ms × attempt, at most 2 s); after `disconnect(true)`, 0.
   */
  reconnecting: [delayMs: number];
  end: [];
  circuitOpen: [event: BreakerEvent];
  circuitHalfOpen: [event: BreakerEvent];
  circuitClose: [event: BreakerEvent];
  health: [event: { from?: HealthStatus; to: HealthStatus }];
  connectionCreated: [event: { id: number }];
  connectionClosed: [event: { id: number; reason: string }];
  poolExhausted: [event: { maxConnections: number }];
  acquireTimeout: [event: { waitedMs: number; waiting: number }];
  leak: [event: LeakEvent];
}

/** `[err, result]` per command (`[err]` when it failed). */
export type PipelineResult = [error: Error | null, result?: unknown][];

// GENERATED: command names (node scripts/gen-types.js)
export type CommandName =
  | 'acl' | 'append' | 'arcount' | 'ardel' | 'ardelrange' | 'arget' | 'argetrange' | 'argrep'
  | 'arinfo' | 'arinsert' | 'arlastitems' | 'arlen' | 'armget' | 'armset' | 'arnext' | 'arop'
  | 'arring' | 'arscan' | 'arseek' | 'arset' | 'asking' | 'auth' | 'backup' | 'bgrewriteaof'
  | 'bgsave' | 'bitcount' | 'bitfield' | 'bitfield_ro' | 'bitop' | 'bitpos' | 'bless' | 'blmove'
  | 'blmovem' | 'blmpop' | 'blpop' | 'brpop' | 'brpoplpush' | 'bzmpop' | 'bzpopmax' | 'bzpopmin'
  | 'client' | 'cluster' | 'command' | 'config' | 'copy' | 'dbsize' | 'debug' | 'decr'
  | 'decrby' | 'del' | 'delex' | 'digest' | 'discard' | 'dump' | 'echo' | 'eval'
  | 'eval_ro' | 'evalsha' | 'evalsha_ro' | 'exec' | 'exists' | 'expire' | 'expireat' | 'expiretime'
  | 'failover' | 'fcall' | 'fcall_ro' | 'flushall' | 'flushdb' | 'function' | 'geoadd' | 'geodist'
  | 'geohash' | 'geopos' | 'georadius' | 'georadius_ro' | 'georadiusbymember' | 'georadiusbymember_ro' | 'geosearch' | 'geosearchstore'
  | 'get' | 'getbit' | 'getdel' | 'getex' | 'getrange' | 'getset' | 'hdel' | 'hello'
  | 'hexists' | 'hexpire' | 'hexpireat' | 'hexpiretime' | 'hget' | 'hgetall' | 'hgetdel' | 'hgetex'
  | 'himport' | 'hincrby' | 'hincrbyfloat' | 'hkeys' | 'hlen' | 'hmget' | 'hmset' | 'hotkeys'
  | 'hpersist' | 'hpexpire' | 'hpexpireat' | 'hpexpiretime' | 'hpttl' | 'hrandfield' | 'hscan' | 'hset'
  | 'hsetex' | 'hsetnx' | 'hstrlen' | 'httl' | 'hvals' | 'incr' | 'incrby' | 'incrbyfloat'
  | 'increx' | 'info' | 'keys' | 'lastsave' | 'latency' | 'lcs' | 'lindex' | 'linsert'
  | 'llen' | 'lmove' | 'lmovem' | 'lmpop' | 'lolwut' | 'lpop' | 'lpos' | 'lpush'
  | 'lpushx' | 'lrange' | 'lrem' | 'lset' | 'ltrim' | 'memory' | 'mget' | 'migrate'
  | 'module' | 'move' | 'mset' | 'msetex' | 'msetnx' | 'multi' | 'object' | 'persist'
  | 'pexpire' | 'pexpireat' | 'pexpiretime' | 'pfadd' | 'pfcount' | 'pfdebug' | 'pfmerge' | 'pfselftest'
  | 'ping' | 'psetex' | 'psubscribe' | 'psync' | 'pttl' | 'publish' | 'pubsub' | 'punsubscribe'
  | 'quit' | 'randomkey' | 'readonly' | 'readwrite' | 'rename' | 'renamenx' | 'replconf' | 'replicaof'
  | 'reset' | 'restore' | 'role' | 'rpop' | 'rpoplpush' | 'rpush' | 'rpushx' | 'sadd'
  | 'save' | 'scan' | 'scard' | 'script' | 'sdiff' | 'sdiffcard' | 'sdiffstore' | 'select'
  | 'set' | 'setbit' | 'setex' | 'setnx' | 'setrange' | 'shutdown' | 'sinter' | 'sintercard'
  | 'sinterstore' | 'sismember' | 'slaveof' | 'slowlog' | 'smembers' | 'smismember' | 'smove' | 'sort'
  | 'sort_ro' | 'spop' | 'spublish' | 'srandmember' | 'srem' | 'sscan' | 'ssubscribe' | 'strlen'
  | 'subscribe' | 'substr' | 'sunion' | 'sunioncard' | 'sunionstore' | 'sunsubscribe' | 'swapdb' | 'sync'
  | 'time' | 'touch' | 'trimslots' | 'ttl' | 'type' | 'unlink' | 'unsubscribe' | 'unwatch'
  | 'vadd' | 'vcard' | 'vdim' | 'vemb' | 'vgetattr' | 'vinfo' | 'vismember' | 'vlinks'
  | 'vrandmember' | 'vrange' | 'vrem' | 'vsetattr' | 'vsim' | 'wait' | 'waitaof' | 'watch'
  | 'xack' | 'xackdel' | 'xadd' | 'xautoclaim' | 'xcfgset' | 'xclaim' | 'xdel' | 'xdelex'
  | 'xgroup' | 'xidmprecord' | 'xinfo' | 'xlen' | 'xnack' | 'xpending' | 'xrange' | 'xread'
  | 'xreadgroup' | 'xrevrange' | 'xsetid' | 'xtrim' | 'zadd' | 'zcard' | 'zcount' | 'zdiff'
  | 'zdiffstore' | 'zincrby' | 'zinter' | 'zintercard' | 'zinterstore' | 'zlexcount' | 'zmpop' | 'zmscore'
  | 'zpopmax' | 'zpopmin' | 'zrandmember' | 'zrange' | 'zrangebylex' | 'zrangebyscore' | 'zrangestore' | 'zrank'
  | 'zrem' | 'zremrangebylex' | 'zremrangebyrank' | 'zremrangebyscore' | 'zrevrange' | 'zrevrangebylex' | 'zrevrangebyscore' | 'zrevrank'
  | 'zscan' | 'zscore' | 'zunion' | 'zunionstore';
// END GENERATED

type CommandMethod = (...args: any[]) => Promise<any>;
type GenericCommands = { [K in CommandName]: CommandMethod } & {
  [K in CommandName as `${K}Buffer`]: CommandMethod;
};
/** Commands typed precisely below. */
type Typed = 'get' | 'set' | 'del' | 'incr' | 'hgetall' | 'hget' | 'mget' | 'exists' | 'expire' | 'ttl' | 'ping' | 'getBuffer' | 'watch' | 'unwatch' | 'quit' | 'multi';

export interface Pipeline extends Omit<{ [K in CommandName]: (...args: any[]) => Pipeline } & { [K in CommandName as `${K}Buffer`]: (...args: any[]) => Pipeline }, 'exec'> {}
export class Pipeline {
  readonly length: number;
  call(name: string, ...args: RedisArg[]): this;
  callBuffer(name: string, ...args: RedisArg[]): this;
  /** Resolves to `[[err, result], ...]`, or null when a WATCHed key changed (multi). */
  exec(callback?: Callback<PipelineResult | null>): Promise<PipelineResult | null>;
}

/** The commands typed one by one, on a client and on a checked-out connection alike. */
export interface TypedCommands {
  call(name: string, ...args: RedisArg[]): Promise<unknown>;
  callBuffer(name: string, ...args: RedisArg[]): Promise<unknown>;

  get(key: RedisKey, callback?: Callback<string | null>): Promise<string | null>;
  getBuffer(key: RedisKey, callback?: Callback<Buffer | null>): Promise<Buffer | null>;
  set(key: RedisKey, value: RedisValue, ...args: RedisArg[]): Promise<'OK' | string | null>;
  del(...keys: (RedisKey | RedisKey[] | Callback<number>)[]): Promise<number>;
  incr(key: RedisKey, callback?: Callback<number>): Promise<number>;
  hget(key: RedisKey, field: RedisKey, callback?: Callback<string | null>): Promise<string | null>;
  hgetall(key: RedisKey, callback?: Callback<Record<string, string>>): Promise<Record<string, string>>;
  mget(...keys: (RedisKey | RedisKey[])[]): Promise<(string | null)[]>;
  exists(...keys: (RedisKey | RedisKey[])[]): Promise<number>;
  expire(key: RedisKey, seconds: number, ...args: RedisArg[]): Promise<number>;
  ttl(key: RedisKey, callback?: Callback<number>): Promise<number>;
  ping(message?: RedisValue): Promise<string>;
}

/** Options of `client.acquire()`. */
export interface AcquireOptions {
  /** Milliseconds to wait for a free connection (default `acquireTimeout`; 0 never waits for another caller's connection). */
  timeout?: number;
  /** `'high'` is served before every `'normal'` (default) waiter. */
  priority?: 'normal' | 'high';
}

/** A connection checked out by `client.acquire()`: every command runs on it, in order. */
export interface PooledConnection extends Omit<GenericCommands, Typed>, TypedCommands {}
export class PooledConnection {
  watch(...keys: (RedisKey | RedisKey[] | Callback<'OK'>)[]): Promise<'OK'>;
  unwatch(callback?: Callback<'OK'>): Promise<'OK'>;

  /** Commands sent together on this connection by `exec()`. */
  pipeline(commands?: [string, ...RedisArg[]][]): Pipeline;
  /** MULTI/EXEC on this connection (after `watch()`: null when a WATCHed key changed). */
  multi(commands?: [string, ...RedisArg[]][]): Pipeline;
  /** Returns the connection to the pool. Idempotent; commands after it fail with ERR_POOL_CLOSED. */
  release(callback?: Callback<void>): Promise<void>;
}

export interface Redis extends Omit<GenericCommands, Typed>, TypedCommands {}
export class Redis extends EventEmitter {
  constructor();
  constructor(options: RedisOptions);
  constructor(url: string, options?: RedisOptions);
  constructor(port: number, options?: RedisOptions);
  constructor(port: number, host: string, options?: RedisOptions);
  /** A client from the environment (REDIS_URL, or REDIS_HOST/PORT/DB/USERNAME/PASSWORD, then REDIS_<KNOB>); `options` apply on top. */
  static fromEnv(options?: Omit<RedisOptions, 'host' | 'port' | 'path'>): Redis;

  /** `wait`, `connecting`, `ready`, `reconnecting` or `end`. */
  readonly status: 'wait' | 'connecting' | 'ready' | 'reconnecting' | 'end';
  /** The options given, password redacted. */
  readonly options: RedisOptions;
  readonly breakerState: BreakerState;

  connect(callback?: Callback<void>): Promise<void>;

  /**
   * Checks out a connection for this caller alone until `conn.release()`. `timeout: 0` never
   * waits (ERR_POOL_TIMEOUT at once when none is free).
   */
  acquire(options?: AcquireOptions, callback?: Callback<PooledConnection>): Promise<PooledConnection>;
  acquire(callback: Callback<PooledConnection>): Promise<PooledConnection>;

  /** WATCHes keys on a connection of this client's own until multi().exec() or unwatch(). */
  watch(...keys: (RedisKey | RedisKey[] | Callback<'OK'>)[]): Promise<'OK'>;
  unwatch(callback?: Callback<'OK'>): Promise<'OK'>;
  pipeline(commands?: [string, ...RedisArg[]][]): Pipeline;
  multi(commands?: [string, ...RedisArg[]][]): Pipeline;
  defineCommand(name: string, definition: { lua: string; numberOfKeys?: number }): void;

  stats(): PoolStats;
  /** This client's pool in the Prometheus text format (sync, no I/O). */
  metrics(): string;
  /** Changes maxConnections (and minIdle, default: the current one) under load. */
  resize(maxConnections: number, minIdle?: number, callback?: Callback<void>): Promise<void>;
  resize(maxConnections: number, callback: Callback<void>): Promise<void>;
  /** PING, INFO, stats and sizing advice (`sizing.suggestedMaxConnections`). */
  health(callback?: Callback<HealthReport>): Promise<HealthReport>;
  /** Lets issued commands finish, then closes the pool. */
  quit(callback?: Callback<'OK'>): Promise<'OK'>;
  /**
   * Closes at once; commands not sent yet fail with ERR_POOL_CLOSED. `disconnect(true)`, as in
   * ioredis: closes every connection and connects again (a failure is checked again as after an
   * outage); a running command is not cut (its connection closes when it is done), where ioredis
   * cuts and resends it.
   */
  disconnect(reconnect?: boolean): void;
  /** A new client (and pool) with the same options, `overrides` applied. */
  duplicate(overrides?: RedisOptions): Redis;

  on<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this;
  once<E extends keyof ClientEvents>(event: E, listener: (...args: ClientEvents[E]) => void): this;
  on(event: string | symbol, listener: (...args: any[]) => void): this;
  once(event: string | symbol, listener: (...args: any[]) => void): this;
}

/** Every open pool of the process in the Prometheus text format (sync, no I/O). */
export function metrics(): string;
export const version: string;
export const nativeVersion: string;
export default Redis;
