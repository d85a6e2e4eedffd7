/**
 * A small Prometheus registry and its text exposition format (version 0.0.4): counters, gauges
 * and histograms with labels. Enough for ballast's few dozen series; no client library needed.
 */
type Labels = Record<string, string>;

const labelKey = (labels: Labels) => JSON.stringify(Object.entries(labels).sort(([a], [b]) => (a < b ? -1 : 1)));
const escapeValue = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const formatLabels = (labels: Labels, extra: Labels = {}) => {
  const all = Object.entries({ ...labels, ...extra });
  return all.length ? `{${all.map(([k, v]) => `${k}="${escapeValue(v)}"`).join(',')}}` : '';
};
const formatNumber = (n: number) => (Number.isNaN(n) ? 'NaN' : n === Infinity ? '+Inf' : n === -Infinity ? '-Inf' : String(n));

interface Metric {
  name: string;
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels);
    const entry = this.values.get(key) ?? { labels, value: 0 };
    entry.value += by;
    this.values.set(key, entry);
  }
  /** A series that exists at 0 from the start, so rate() and absent() behave before the first event. */
  zero(labels: Labels = {}): void {
    this.inc(labels, 0);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels))?.value ?? 0;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values.values()].map((e) => `${this.name}${formatLabels(e.labels)} ${formatNumber(e.value)}`)];
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, { labels: Labels; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
  ) {}
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), { labels, value });
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(labelKey(labels))?.value;
  }
  /** Forgets every series: for gauges rebuilt whole at each scrape (the runs waiting now). */
  reset(): void {
    this.values.clear();
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...[...this.values.values()].map((e) => `${this.name}${formatLabels(e.labels)} ${formatNumber(e.value)}`)];
  }
}

export class Histogram implements Metric {
  private readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    private readonly buckets: number[],
  ) {}
  observe(value: number, labels: Labels = {}): void {
    const entry = this.entry(labels);
    this.buckets.forEach((le, i) => {
      if (value <= le) entry.counts[i]!++;
    });
    entry.sum += value;
    entry.count++;
  }
  zero(labels: Labels = {}): void {
    this.entry(labels);
  }
  private entry(labels: Labels) {
    const key = labelKey(labels);
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    return entry;
  }
  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const e of this.values.values()) {
      this.buckets.forEach((le, i) => lines.push(`${this.name}_bucket${formatLabels(e.labels, { le: formatNumber(le) })} ${e.counts[i]}`));
      lines.push(`${this.name}_bucket${formatLabels(e.labels, { le: '+Inf' })} ${e.count}`);
      lines.push(`${this.name}_sum${formatLabels(e.labels)} ${formatNumber(e.sum)}`, `${this.name}_count${formatLabels(e.labels)} ${e.count}`);
    }
    return lines;
  }
}

export class Registry {
  private readonly metrics: Metric[] = [];
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets: number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  private add<M extends Metric>(metric: M): M {
    if (this.metrics.some((m) => m.name === metric.name)) throw new Error(`metric ${metric.name} registered twice`);
    this.metrics.push(metric);
    return metric;
  }
  render(): string {
    return `${this.metrics.flatMap((m) => m.render()).join('\n')}\n`;
  }
}
