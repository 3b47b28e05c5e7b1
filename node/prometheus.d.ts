// Types of `redpool/prometheus`: redpool's metric families in a prom-client registry.

/**
 * What `register()` needs of a registry: prom-client's `Registry` (v14 or later) fits. Declared
 * here so that these types compile without prom-client installed.
 */
export interface PromRegistry {
  registerMetric(metric: any): void;
  getSingleMetric(name: string): any;
  removeSingleMetric(name: string): void;
  metrics(): Promise<string>;
}

/** One metric family of a Prometheus text exposition. */
export interface MetricFamily {
  name: string;
  type: string;
  help: string;
  samples: { name: string; labels: Record<string, string>; value: number }[];
}

/**
 * Adds redpool's families (every pool of the process, the core's names) to `registry`, default
 * prom-client's default `register`; returns the registry. Idempotent per registry.
 */
export function register<R extends PromRegistry>(registry?: R): R;
/** Removes redpool's families from `registry` (default: prom-client's default `register`). */
export function unregister(registry?: PromRegistry): void;
/** Parses Prometheus text (version 0.0.4) into its families, in order. */
export function parse(text: string): Map<string, MetricFamily>;
