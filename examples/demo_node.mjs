// The Node side of the demo: the ioredis-style client on redpool's pool (node/).
//
//   REDIS_URL=redis://127.0.0.1:6379/0 node examples/demo_node.mjs
import Redis from '../node/index.mjs';

const redis = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379/0', { maxConnections: 4 });
redis.on('circuitOpen', (e) => console.log('breaker opened', e));

await redis.set('demo:node:greeting', 'hello from Node');
console.log('GET            ->', await redis.get('demo:node:greeting'));

// One tick of commands = one pipeline on one pooled connection.
const counts = await Promise.all(Array.from({ length: 100 }, () => redis.incr('demo:node:counter')));
console.log('100 x INCR     -> last', Math.max(...counts), '(auto-pipelined)');

await redis.hset('demo:node:user', { name: 'Ada', lang: 'en' });
console.log('HGETALL        ->', await redis.hgetall('demo:node:user'));
console.log('pipeline       ->', await redis.pipeline().incr('demo:node:p').get('demo:node:p').exec());
console.log('multi          ->', await redis.multi().set('demo:node:tx', 1).incr('demo:node:tx').exec());
try {
  await redis.lpush('demo:node:greeting', 'x');
} catch (err) {
  console.log('error reply    ->', err.name, err.code, err.message);
}
const { status, pingLatencyMs } = await redis.health();
console.log('health         ->', status, `${pingLatencyMs.toFixed(2)} ms`);
const { open, idle, inUse, commands } = redis.stats();
console.log('stats          ->', { open, idle, inUse, commands });
await redis.del('demo:node:greeting', 'demo:node:counter', 'demo:node:user', 'demo:node:p', 'demo:node:tx');
await redis.quit();
