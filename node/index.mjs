// ES module entry: `import Redis, { ReplyError } from 'redpool'`.
import Redis from './index.js';

export default Redis;
export const { Pipeline, PooledConnection, RedisError, ReplyError, RedpoolError, metrics, version, nativeVersion } = Redis;
export { Redis };
