'use strict';
/**
 * Node benchmark driver: redpool (one client on its own pool of --concurrency connections, with
 * its auto-pipelining) against ioredis and node-redis (one connection per caller: a single client
 * for one caller, a generic-pool of --concurrency clients for several, as services pool them).
 *
 *   node bench.js --client redpool|ioredis|node-redis --port P [options of common.js]
 */
const common = require('./common');

/** A fixed client shared by every caller (no checkout). */
function single(client, close) {
  return { acquire: async () => client, release() {}, close };
}

/** --concurrency peer clients in a generic-pool, one per caller at a time. */
function pooled(args, create, destroy) {
  if (args.concurrency === 1) {
    return create().then((c) => single(c, () => destroy(c)));
  }
  const genericPool = require('generic-pool');
  const pool = genericPool.createPool({ create, destroy }, { max: args.concurrency, min: args.concurrency });
  return Promise.resolve({
    acquire: () => pool.acquire(),
    release: (c) => pool.release(c),
    close: async () => { await pool.drain(); await pool.clear(); },
  });
}

const clients = {
  async redpool(args) {
    const Redis = require('redpool');
    const r = new Redis({ host: args.host, port: args.port, maxConnections: args.concurrency, minIdle: args.concurrency });
    return single(r, () => r.quit());
  },
  ioredis(args) {
    const mod = require('ioredis');
    const Redis = mod.Redis || mod.default || mod;
    return pooled(args, async () => {
      const r = new Redis({ host: args.host, port: args.port, lazyConnect: true });
      await r.connect();
      return r;
    }, (r) => r.quit());
  },
  'node-redis'(args) {
    const { createClient } = require('redis');
    return pooled(args, () => createClient({ socket: { host: args.host, port: args.port } }).connect(), (r) => r.quit());
  },
};

async function main() {
  const args = common.parseArgs(clients);
  const client = await clients[args.client](args);
  await common.run('node', args.client, client, args);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
