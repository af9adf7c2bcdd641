// Percentiles by nearest rank: every figure printed is one that was measured.
// With 7 runs p95 is the slowest run; say so rather than interpolate.
export interface Summary {
  p50: number;
  p95: number;
  min: number;
  max: number;
}

export function percentile(values: number[], p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1]!;
}

export function summarize(values: number[]): Summary {
  const round = (n: number): number => Math.round(n * 10) / 10;
  return {
    p50: round(percentile(values, 50)),
    p95: round(percentile(values, 95)),
    min: round(Math.min(...values)),
    max: round(Math.max(...values)),
  };
}
