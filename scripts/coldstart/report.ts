// What every mode hands back, and the two ways it is shown: a table for people
// (stdout) and one JSON object for machines (`--json`).
import type { ColdTiming, PageTiming } from './request.ts';
import { summarize, type Summary } from './stats.ts';

export interface Run {
  /** The first request after the function had no replica, and any after it until the 200 page. */
  cold: ColdTiming;
  /** The request right after, on the replica the cold one started. */
  warm: PageTiming;
  /** How long the tool waited for zero replicas (or the process to stop) before the cold request. */
  waitedMs: number;
  /** OpenFaaS CE, --kubectl-scale: when faas-netes had put the Deployment back to 1, after the scale to 0. */
  replicasBackAfterMs?: number;
}

export interface ModeResult {
  mode: 'openfaas' | 'knative' | 'local';
  /** What was timed: the URL, or the command in local mode. */
  target: string;
  runs: Run[];
  /** Mode-specific facts: function, namespace, how the tool waited, the volume. */
  details: Record<string, unknown>;
  notes: string[];
  /** Where the cold figures count from, when not from the first request (local: the spawn). */
  coldFrom?: string;
}

export interface Figures {
  ttfbMs: Summary;
  totalMs: Summary;
}

/** What the first answer of each cold run was: a platform may answer before the function can. */
export interface FirstAnswers {
  /** Time to the first byte of the first answer, whatever its status. */
  ttfbMs: Summary;
  /** How many runs' first answer had each status, e.g. {"200": 4, "500": 1}. */
  statuses: Record<string, number>;
  /** Runs whose first answer was a 5xx (a provider without readiness, a gap with no endpoints) or a 3xx. */
  count5xx: number;
  count3xx: number;
}

export interface Report {
  tool: 'todo-app coldstart';
  mode: ModeResult['mode'];
  target: string;
  runs: number;
  /** Each run's first answer; then `cold`: from the first request (or the event named in `coldFrom`) to the 200 page. */
  firstAnswers: FirstAnswers;
  coldFrom: string;
  cold: Figures;
  warm: Figures;
  /** cold p50 / warm p50, total time: how many times slower the first request is. */
  coldOverWarm: { ttfb: number; total: number };
  samples: Array<{ cold: ColdTiming; warm: PageTiming; waitedMs: number; replicasBackAfterMs?: number }>;
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

/** One cold run in a progress line: the first answer, and the page when it came later. */
export function coldSummary(cold: ColdTiming): string {
  const page = `200 page: first byte ${cold.ttfbMs.toFixed(1)} ms, last byte ${cold.totalMs.toFixed(1)} ms`;
  if (cold.before.length === 0) return page;
  return `first answer ${cold.first.status} after ${cold.first.ttfbMs.toFixed(1)} ms (${cold.before.length} answer(s) before the page: ${cold.before.join(', ')}); ${page}`;
}

function firstAnswers(timings: ColdTiming[]): FirstAnswers {
  const statuses: Record<string, number> = {};
  for (const { first } of timings) statuses[first.status] = (statuses[first.status] ?? 0) + 1;
  const count = (low: number): number => timings.filter(({ first }) => first.status >= low && first.status < low + 100).length;
  return { ttfbMs: summarize(timings.map((t) => t.first.ttfbMs)), statuses, count5xx: count(500), count3xx: count(300) };
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
    firstAnswers: firstAnswers(result.runs.map((r) => r.cold)),
    coldFrom: result.coldFrom ?? 'the first request',
    cold,
    warm,
    coldOverWarm: { ttfb: ratio(cold.ttfbMs.p50, warm.ttfbMs.p50), total: ratio(cold.totalMs.p50, warm.totalMs.p50) },
    samples: result.runs.map((r) => ({
      cold: { ...r.cold, ttfbMs: ms(r.cold.ttfbMs), totalMs: ms(r.cold.totalMs), first: { ...r.cold.first, ttfbMs: ms(r.cold.first.ttfbMs) } },
      warm: { ...r.warm, ttfbMs: ms(r.warm.ttfbMs), totalMs: ms(r.warm.totalMs) },
      waitedMs: Math.round(r.waitedMs),
      ...(r.replicasBackAfterMs === undefined ? {} : { replicasBackAfterMs: Math.round(r.replicasBackAfterMs) }),
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
  const row = (label: string, s: Summary): string => `${label.padEnd(14)}${cell(s.p50)}${cell(s.p95)}${cell(s.min)}${cell(s.max)}`;
  const { statuses, count5xx, count3xx } = report.firstAnswers;
  const seen = Object.entries(statuses)
    .sort(([a], [b]) => Number(a) - Number(b))
    .map(([status, n]) => `${status} x${n}`)
    .join(', ');
  const lines = [
    `cold start of ${report.target} (${report.mode}, ${report.runs} run${report.runs === 1 ? '' : 's'})`,
    '',
    `${''.padEnd(14)}${'p50'.padStart(11)}${'p95'.padStart(11)}${'min'.padStart(11)}${'max'.padStart(11)}`,
    row('first answer', report.firstAnswers.ttfbMs),
    row('cold TTFB', report.cold.ttfbMs),
    row('cold total', report.cold.totalMs),
    row('warm TTFB', report.warm.ttfbMs),
    row('warm total', report.warm.totalMs),
    '',
    `first answers: ${seen} (${count5xx} run${count5xx === 1 ? '' : 's'} answered 5xx first, ${count3xx} 3xx)`,
    `first answer: its first byte, whatever its status; cold: to the first 200 page, counted from ${report.coldFrom}.`,
    `cold/warm (p50): TTFB x${report.coldOverWarm.ttfb}, total x${report.coldOverWarm.total}; page ${report.samples[0]?.cold.bytes ?? 0} bytes`,
    'p95 is by nearest rank: with fewer than 20 runs it is the slowest run.',
  ];
  for (const note of report.notes) lines.push(`note: ${note}`);
  return `${lines.join('\n')}\n`;
}
