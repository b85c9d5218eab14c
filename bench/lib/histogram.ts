/**
 * A latency histogram with log-spaced buckets (each 1% wider than the last),
 * so percentiles are exact to about 1% and two processes' histograms merge
 * exactly. Pure code, no I/O.
 *
 * @module
 */

/** Lower edge of bucket 0, in milliseconds; smaller values (and clock skew) land there. */
const MIN_MS = 0.01;
/** Each bucket is this much wider than the previous one. */
const GROWTH = 1.01;
const LOG_GROWTH = Math.log(GROWTH);
/** Enough buckets to reach about 80 s; slower deliveries land in the last one. */
const BUCKETS = 1700;

/** A histogram as it travels in JSON: sparse `[bucket, count]` pairs. */
export interface HistogramData {
  buckets: [number, number][];
  count: number;
  maxMs: number;
  sumMs: number;
}

/** Percentiles of a histogram, in milliseconds (`0` when it is empty). */
export interface LatencySummary {
  count: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/**
 * Counts latencies in milliseconds.
 *
 * @example Usage
 * ```ts
 * import { LatencyHistogram } from "./histogram.ts";
 * const h = new LatencyHistogram();
 * for (const ms of [1, 2, 3, 100]) h.record(ms);
 * h.summary().p50; // about 2
 * ```
 */
export class LatencyHistogram {
  #counts = new Float64Array(BUCKETS);
  #count = 0;
  #max = 0;
  #sum = 0;

  /** Adds one latency. */
  record(ms: number): void {
    const value = Number.isFinite(ms) ? Math.max(ms, 0) : 0;
    this.#counts[bucketOf(value)]++;
    this.#count++;
    this.#sum += value;
    if (value > this.#max) this.#max = value;
  }

  /** Adds every count of `data` (from another process). */
  merge(data: HistogramData): void {
    for (const [bucket, count] of data.buckets) {
      if (Number.isInteger(bucket) && bucket >= 0 && bucket < BUCKETS) {
        this.#counts[bucket] += count;
      }
    }
    this.#count += data.count;
    this.#sum += data.sumMs;
    this.#max = Math.max(this.#max, data.maxMs);
  }

  /** Values recorded. */
  get count(): number {
    return this.#count;
  }

  /** The value below which a fraction `q` (0–1) of the values lie, in milliseconds. */
  quantile(q: number): number {
    if (this.#count === 0) return 0;
    const rank = Math.max(1, Math.ceil(q * this.#count));
    let seen = 0;
    for (let bucket = 0; bucket < BUCKETS; bucket++) {
      seen += this.#counts[bucket];
      if (seen >= rank) return Math.min(upperEdge(bucket), this.#max);
    }
    return this.#max;
  }

  /** p50, p99, p99.9, max and mean. */
  summary(): LatencySummary {
    return {
      count: this.#count,
      p50: round(this.quantile(0.5)),
      p99: round(this.quantile(0.99)),
      p999: round(this.quantile(0.999)),
      max: round(this.#max),
      mean: round(this.#count === 0 ? 0 : this.#sum / this.#count),
    };
  }

  /** The sparse form, for JSON. */
  toData(): HistogramData {
    const buckets: [number, number][] = [];
    this.#counts.forEach((count, bucket) => {
      if (count > 0) buckets.push([bucket, count]);
    });
    return { buckets, count: this.#count, maxMs: round(this.#max), sumMs: round(this.#sum) };
  }
}

function bucketOf(ms: number): number {
  if (ms <= MIN_MS) return 0;
  return Math.min(BUCKETS - 1, Math.ceil(Math.log(ms / MIN_MS) / LOG_GROWTH));
}

function upperEdge(bucket: number): number {
  return MIN_MS * GROWTH ** bucket;
}

/** Rounds to 3 decimals, enough for milliseconds. */
export function round(value: number, decimals = 3): number {
  const factor = 10 ** decimals;
  return Math.round(value * factor) / factor;
}
