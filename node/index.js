'use strict';
/**
 * redpool for Node: `const Redis = require('redpool')` or `import Redis from 'redpool'`, then use it
 * as ioredis. See README.md ("Node") and index.d.ts.
 */
const { Redis, PooledConnection, metrics } = require('./lib/redis');
const { Pipeline } = require('./lib/pipeline');
const { RedisError, ReplyError, RedpoolError } = require('./lib/errors');

module.exports = Redis;
module.exports.default = Redis;
module.exports.Redis = Redis;
module.exports.Pipeline = Pipeline;
module.exports.PooledConnection = PooledConnection;
module.exports.RedisError = RedisError;
module.exports.ReplyError = ReplyError;
module.exports.RedpoolError = RedpoolError;
module.exports.metrics = metrics;
module.exports.version = require('./package.json').version;
module.exports.nativeVersion = require('./native').version();
