// What every mode hands back, and the two ways it is shown: a table for people
// (stdout) and one JSON object for machines (`--json`).
import type { PageTiming } from './request.ts';
import { summarize, type Summary } from './stats.ts';

export interface Run {
  /** The first request after the function had no replica. */
  cold: PageTiming;
  /** The request right after, on the replica the cold one started. */
  warm: PageTiming;
  /** How long the tool waited for zero replicas (or the process to stop) before the cold request. */
  waitedMs: number;
}

export interface ModeResult {
  mode: 'openfaas' | 'knative' | 'local';
  /** What was timed: the URL, or the command in local mode. */
  target: string;
  runs: Run[];
  /** Mode-specific facts: function, namespace, how the tool waited, the volume. */
  details: Record<string, unknown>;
  notes: string[];
}

export interface Figures {
  ttfbMs: Summary;
  totalMs: Summary;
}

export interface Report {
  tool: 'todo-app coldstart';
  mode: ModeResult['mode'];
  target: string;
  runs: number;
  cold: Figures;
  warm: Figures;
  /** cold p50 / warm p50, total time: how many times slower the first request is. */
  coldOverWarm: { ttfb: number; total: number };
  samples: Array<{ cold: PageTiming; warm: PageTiming; waitedMs: number }>;
  details: Record<string, unknown>;
  notes: string[];
  node: string;
  platform: string;
  date: string;
}

const ms = (n: number): number => Math.round(n * 10) / 10;

function figures(timings: PageTiming[]): Figures {
  return { ttfbMs: summarize(timings.map((t) => t.ttfbMs)), totalMs: summarize(timings.map((t) => t.totalMs)) };
}

export function buildReport(result: ModeResult, now = new Date()): Report {
  const cold = figures(result.runs.map((r) => r.cold));
  const warm = figures(result.runs.map((r) => r.warm));
  const ratio = (a: number, b: number): number => (b > 0 ? Math.round((a / b) * 10) / 10 : Number.NaN);
  return {
    tool: 'todo-app coldstart',
    mode: result.mode,
    target: result.target,
    runs: result.runs.length,
    cold,
    warm,
    coldOverWarm: { ttfb: ratio(cold.ttfbMs.p50, warm.ttfbMs.p50), total: ratio(cold.totalMs.p50, warm.totalMs.p50) },
    samples: result.runs.map((r) => ({
      cold: { ...r.cold, ttfbMs: ms(r.cold.ttfbMs), totalMs: ms(r.cold.totalMs) },
      warm: { ...r.warm, ttfbMs: ms(r.warm.ttfbMs), totalMs: ms(r.warm.totalMs) },
      waitedMs: Math.round(r.waitedMs),
    })),
    details: result.details,
    notes: result.notes,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    date: now.toISOString(),
  };
}

export function formatReport(report: Report): string {
  const cell = (n: number): string => `${n.toFixed(1)} ms`.padStart(11);
  const row = (label: string, s: Summary): string => `${label.padEnd(12)}${cell(s.p50)}${cell(s.p95)}${cell(s.min)}${cell(s.max)}`;
  const lines = [
    `cold start of ${report.target} (${report.mode}, ${report.runs} run${report.runs === 1 ? '' : 's'})`,
    '',
    `${''.padEnd(12)}${'p50'.padStart(11)}${'p95'.padStart(11)}${'min'.padStart(11)}${'max'.padStart(11)}`,
    row('cold TTFB', report.cold.ttfbMs),
    row('cold total', report.cold.totalMs),
    row('warm TTFB', report.warm.ttfbMs),
    row('warm total', report.warm.totalMs),
    '',
    `cold/warm (p50): TTFB x${report.coldOverWarm.ttfb}, total x${report.coldOverWarm.total}; page ${report.samples[0]?.cold.bytes ?? 0} bytes`,
    'p95 is by nearest rank: with fewer than 20 runs it is the slowest run.',
  ];
  for (const note of report.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
