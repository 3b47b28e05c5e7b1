'use strict';
/**
 * prom-client integration: `require('redpool/prometheus').register(registry)` makes redpool's
 * metric families (every pool of the process, see README "Observability") appear in
 * `await registry.metrics()` under the core's own names, types, help and labels.
 *
 * How: one custom metric object per family (`registry.registerMetric()`), whose `get()` returns
 * that family's samples parsed from the core's Prometheus text. The core already keeps the
 * counters and fixed-bucket histograms, so re-creating them as prom-client Counters, Gauges and
 * Histograms (`collect()`) could not carry the core's buckets; and `Registry.merge` builds a new
 * registry instead of adding to the application's. The text is read once per scrape (all
 * families see one snapshot); the list of families is fixed by the addon (the core writes every
 * family's HELP and TYPE even with no pool open).
 *
 * prom-client is an optional peer dependency: nothing here loads it unless `register()` is called
 * without a registry.
 */
const native = require('./native');
const { fromNative } = require('./lib/errors');

/** The Prometheus text of every pool; an addon error (ERR_INTERNAL for a bug) keeps its `.code`. */
function metricsText() {
  try {
    return native.metricsText();
  } catch (err) {
    throw fromNative(err);
  }
}

/**
 * Parses Prometheus text (version 0.0.4) into a Map of family name → `{ name, type, help,
 * samples: [{ name, labels, value }] }`, in order.
 */
function parse(text) {
  const families = new Map();
  let current;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) {
      const rest = line.slice(7);
      const space = rest.indexOf(' ');
      const name = space < 0 ? rest : rest.slice(0, space);
      const value = space < 0 ? '' : rest.slice(space + 1);
      current = families.get(name) ?? { name, type: 'untyped', help: '', samples: [] };
      families.set(name, current);
      if (line[2] === 'H') current.help = value;
      else current.type = value;
    } else if (!line.startsWith('#') && current) {
      current.samples.push(sample(line));
    }
  }
  return families;
}

/** One sample line: `name{key="value",...} value`. */
function sample(line) {
  const labels = {};
  let i = line.search(/[{ ]/);
  const name = line.slice(0, i);
  if (line[i] === '{') {
    i++;
    while (line[i] !== '}') {
      const eq = line.indexOf('=', i);
      const key = line.slice(i, eq).replace(/^,/, '');
      let value = '';
      for (i = eq + 2; line[i] !== '"'; i++) {
        if (line[i] === '\\') {
          i++;
          value += line[i] === 'n' ? '\n' : line[i];
        } else {
          value += line[i];
        }
      }
      labels[key] = value;
      i++;
    }
    i++;
  }
  return { name, labels, value: number(line.slice(i).trim().split(' ')[0]) };
}

function number(text) {
  if (text === '+Inf' || text === 'inf') return Infinity;
  if (text === '-Inf' || text === '-inf') return -Infinity;
  return Number(text);
}

/** The process-wide families, parsed once per scrape (reset when the current job ends). */
let snapshot = null;
function current() {
  if (snapshot === null) {
    snapshot = parse(metricsText());
    queueMicrotask(() => {
      snapshot = null;
    });
  }
  return snapshot;
}

/** One redpool family as a prom-client metric object (what `registry.registerMetric` takes). */
class RedpoolFamily {
  constructor({ name, type, help }) {
    this.family = name;
    this.name = name;
    this.type = type;
    this.help = help;
    this.aggregator = 'sum';
  }

  /** prom-client's `MetricObjectWithValues`: this family's samples now. */
  get() {
    const samples = current().get(this.family)?.samples ?? [];
    return {
      name: this.name,
      help: this.help,
      type: this.type,
      aggregator: this.aggregator,
      // A sample named as its family takes the metric's name (so prom-client's OpenMetrics
      // counter naming applies); histogram samples keep their _bucket/_sum/_count names.
      values: samples.map((s) => ({ value: s.value, labels: s.labels, metricName: s.name === this.family ? undefined : s.name })),
    };
  }

  /** `registry.resetMetrics()`: the core's counters are not reset from here. */
  reset() {}
}

/** The application's prom-client default registry (its copy of prom-client when there is one). */
function defaultRegistry() {
  const app = require.main;
  for (const load of [app && ((id) => app.require(id)), require]) {
    try {
      if (load) return load('prom-client').register;
    } catch (err) {
      if (err?.code !== 'MODULE_NOT_FOUND') throw err;
    }
  }
  const error = new Error("redpool/prometheus: prom-client is not installed (npm install prom-client), or pass your registry to register()");
  error.code = 'ERR_INVALID_ARGUMENT';
  throw error;
}

/**
 * Adds redpool's families to `registry` (default: prom-client's default `register`); returns it.
 * Calling it again for the same registry changes nothing; a family name already used by another
 * metric of the registry throws before anything is added.
 */
function register(registry = defaultRegistry()) {
  if (typeof registry?.registerMetric !== 'function' || typeof registry.getSingleMetric !== 'function') {
    throw new TypeError('redpool/prometheus: register(registry) needs a prom-client Registry');
  }
  const families = [...parse(metricsText()).values()];
  for (const { name } of families) {
    const taken = registry.getSingleMetric(name);
    if (taken && !(taken instanceof RedpoolFamily)) {
      throw new Error(`redpool/prometheus: the registry already has a metric named ${name}`);
    }
  }
  for (const family of families) {
    if (!registry.getSingleMetric(family.name)) registry.registerMetric(new RedpoolFamily(family));
  }
  return registry;
}

/** Removes redpool's families from `registry` (default: prom-client's default `register`). */
function unregister(registry = defaultRegistry()) {
  for (const name of parse(metricsText()).keys()) {
    if (registry.getSingleMetric(name) instanceof RedpoolFamily) registry.removeSingleMetric(name);
  }
}

module.exports = { register, unregister, parse };
