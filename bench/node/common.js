'use strict';
/**
 * The Node benchmark harness: arguments, the working set, callers, timing, client CPU
 * (process.cpuUsage: the whole process, addon threads included) and the one JSON line per
 * measurement. bench.js supplies the clients as { acquire, release, get, set, close }.
 *
 * A measurement runs --concurrency callers; each caller repeatedly acquires a client, issues
 * --pipeline commands at once (Promise.all: "in flight"), awaits them all and releases the client,
 * until --ops commands are done or --max-seconds pass.
 */

function parseArgs(clients) {
  const args = {
    host: '127.0.0.1', port: 0, scenario: 'get', label: '', concurrency: 1, pipeline: 1,
    size: 1, ops: 10000, keys: 10000, maxSeconds: 30, client: '',
  };
  const argv = process.argv.slice(2);
  for (let i = 0; i + 1 < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '').replace(/-(.)/g, (_, c) => c.toUpperCase());
    if (!(name in args)) throw new Error(`unknown option ${argv[i]}`);
    args[name] = typeof args[name] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  if (!clients[args.client]) throw new Error(`--client must be one of ${Object.keys(clients)}`);
  if (!(args.port > 0) || !['get', 'set'].includes(args.scenario)) throw new Error('need --port, --scenario get|set');
  return args;
}

async function run(lang, clientName, client, args) {
  const keys = Array.from({ length: args.keys }, (_, i) => `key:${String(i).padStart(12, '0')}`);
  const value = 'x'.repeat(args.size);
  const isSet = args.scenario === 'set';
  const one = (c, key) => (isSet ? c.set(key, value) : c.get(key));
  const ok = (reply) => (isSet ? reply === 'OK' : reply === value);

  async function batch(i) {
    const c = await client.acquire();
    try {
      const pending = [];
      for (let j = 0; j < args.pipeline; j++) pending.push(one(c, keys[(i + j) % args.keys]));
      const replies = await Promise.all(pending);
      if (!replies.every(ok)) throw new Error(`${clientName}: unexpected reply ${replies.find((r) => !ok(r))}`);
    } finally {
      client.release(c);
    }
  }

  await batch(0); // connect outside the timed part
  const batches = Math.ceil(args.ops / args.pipeline);
  let started = 0;
  let done = 0;
  const deadline = performance.now() + args.maxSeconds * 1000;
  async function caller(t) {
    let i = t * 7919;
    while (started < batches && performance.now() < deadline) {
      started += 1;
      await batch(i);
      i += args.pipeline;
      done += args.pipeline;
    }
  }
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(Array.from({ length: args.concurrency }, (_, t) => caller(t)));
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  await client.close();
  console.log(JSON.stringify({
    lang, scenario: args.scenario, label: args.label, client: clientName,
    concurrency: args.concurrency, pipeline: args.pipeline, value_size: args.size, ops: done,
    seconds: Number(seconds.toFixed(6)), ops_per_sec: Number((done / seconds).toFixed(1)),
    cpu_us_per_op: Number(((cpu.user + cpu.system) / done).toFixed(4)),
  }));
}

module.exports = { parseArgs, run };
