// The figures' shape, the targets of issue 5, and the two renderings: a plain
// table for the terminal and the markdown that goes into the README.
import type { LoadResult, Machine } from './lib.ts';

interface Side {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  mbPerSec: number;
  rounds: LoadResult[];
}

interface Cold {
  medianMs: number;
  minMs: number;
  maxMs: number;
  samplesMs: number[];
}

interface Burst {
  medianMs: number;
  maxMs: number;
}

interface Refresh {
  imageWidth: number | null;
  /** The first refresh of a process: pays the lazy imports (proper-lockfile, got, sharp). */
  firstMs: number;
  /** The next refresh of the same process. */
  nextMs: number;
  firstSamplesMs: number[];
  nextSamplesMs: number[];
  peakRssMb: number;
}

export interface Target {
  name: string;
  value: number;
  limit: string;
  met: boolean;
}

export interface Results {
  date: string;
  mode: 'full' | 'short';
  machine: Machine;
  loadGenerator: string;
  image: { bytes: number; width: number; height: number; noise: boolean; made: string };
  warm: { connections: number; secondsPerRound: number; rounds: number; function: Side; baseline: Side; throughputRatio: number };
  coldStart: { runs: number; function: Cold; baseline: Cold; ratio: number };
  staleBurst: {
    replicas: number;
    requests: number;
    sourceDelayMs: number;
    ttlSeconds: number;
    repetitions: number;
    fresh: Burst;
    stale: Burst & { downloads: number };
    medianRatio: number;
    reps: Array<{ fresh: Burst & { downloads: number }; stale: Burst & { downloads: number } }>;
  };
  refresh: { original: Refresh; resized: Refresh };
  rss: { functionPeakMb: number; baselinePeakMb: number; afterRefreshPeakMb: number };
  bytes: { page: number; image: number; ratio: number };
  targets: Target[];
  durationSeconds: number;
}

export function targets(r: Results): Target[] {
  return [
    { name: 'warm throughput, function / baseline', value: r.warm.throughputRatio, limit: '>= 0.8', met: r.warm.throughputRatio >= 0.8 },
    { name: 'cold start median, function / baseline', value: r.coldStart.ratio, limit: '<= 1.25', met: r.coldStart.ratio <= 1.25 },
    { name: 'stale burst downloads (worst repetition)', value: r.staleBurst.stale.downloads, limit: '= 1', met: r.staleBurst.reps.every((rep) => rep.stale.downloads === 1) },
    { name: 'stale burst median, stale / fresh', value: r.staleBurst.medianRatio, limit: '<= 1.5', met: r.staleBurst.medianRatio <= 1.5 },
    { name: 'peak RSS after the load (MB)', value: r.rss.functionPeakMb, limit: '<= 120', met: r.rss.functionPeakMb <= 120 },
    { name: 'page bytes / image bytes', value: r.bytes.ratio, limit: '<= 1.4', met: r.bytes.ratio <= 1.4 },
  ];
}

const n = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (value: number): string => (value >= 100 ? n(value) : n(value, 1));
const mark = (met: boolean): string => (met ? 'met' : '**missed**');

function rows(r: Results): string[][] {
  const t = Object.fromEntries(r.targets.map((x) => [x.name, x]));
  const target = (name: string): [string, string] => [t[name]!.limit.replace('>=', '≥').replace('<=', '≤'), mark(t[name]!.met)];
  const w = r.warm;
  const c = r.coldStart;
  const s = r.staleBurst;
  const burstWhat = `${s.requests} requests at once on ${s.replicas} replicas, source ${s.sourceDelayMs / 1000} s`;
  return [
    ['figure', 'todo-app', 'bare node:http', 'ratio', 'target', ''],
    [`warm throughput (req/s, ${w.connections} connections, ${w.rounds} x ${w.secondsPerRound} s)`, n(w.function.reqPerSec), n(w.baseline.reqPerSec), n(w.throughputRatio, 2), ...target('warm throughput, function / baseline')],
    ['warm latency p50 / p99 (ms)', `${ms(w.function.p50Ms)} / ${ms(w.function.p99Ms)}`, `${ms(w.baseline.p50Ms)} / ${ms(w.baseline.p99Ms)}`, '', '', ''],
    [`cold start, spawn → first 200 with the page (median of ${c.runs}, ms)`, ms(c.function.medianMs), ms(c.baseline.medianMs), n(c.ratio, 2), ...target('cold start median, function / baseline')],
    ['peak RSS after the load (MB)', n(r.rss.functionPeakMb, 1), n(r.rss.baselinePeakMb, 1), '', ...target('peak RSS after the load (MB)')],
    ['page bytes / image bytes', `${n(r.bytes.page)} / ${n(r.bytes.image)}`, 'same page', n(r.bytes.ratio, 2), ...target('page bytes / image bytes')],
    ['', 'stale burst', 'fresh burst', '', '', ''],
    [`downloads (${burstWhat})`, n(s.stale.downloads), n(s.reps.reduce((m, rep) => Math.max(m, rep.fresh.downloads), 0)), '', ...target('stale burst downloads (worst repetition)')],
    [`latency median / max (ms, ${s.repetitions} repetition${s.repetitions === 1 ? '' : 's'})`, `${ms(s.stale.medianMs)} / ${ms(s.stale.maxMs)}`, `${ms(s.fresh.medianMs)} / ${ms(s.fresh.maxMs)}`, n(s.medianRatio, 2), ...target('stale burst median, stale / fresh')],
    ['', 'first in a process', 'next', '', '', ''],
    [`refresh cost, stale request → new page (median of ${r.refresh.original.firstSamplesMs.length}, ms)`, ms(r.refresh.original.firstMs), ms(r.refresh.original.nextMs), '', '', ''],
    [`same with IMAGE_WIDTH=${r.refresh.resized.imageWidth}`, ms(r.refresh.resized.firstMs), ms(r.refresh.resized.nextMs), '', '', ''],
    ['peak RSS after refreshes (MB, sharp loaded)', n(r.rss.afterRefreshPeakMb, 1), '', '', '', ''],
  ];
}

function about(r: Results): string {
  const m = r.machine;
  return (
    `${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node}, ${r.date.slice(0, 16).replace('T', ' ')} UTC, ` +
    `\`npm run bench\` (${r.mode} mode, ${r.durationSeconds} s). Load: ${r.loadGenerator}. ` +
    `Image: ${n(r.image.bytes)} bytes (${r.image.made}, about Picsum's 1200 x 1200).`
  );
}

export function table(r: Results): string {
  const all = rows(r).map((row) => row.map((cell) => cell.replace(/\*\*/g, '')));
  const widths = all[0]!.map((_, i) => Math.max(...all.map((row) => row[i]!.length)));
  const line = (row: string[]): string => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ').trimEnd();
  return `\n${about(r)}\n\n${all.map(line).join('\n')}\n\n`;
}

export function markdown(r: Results): string {
  const all = rows(r);
  const head = all[0]!;
  const body = all.slice(1).map((row) => (row[0] === '' ? row.map((cell) => (cell === '' ? '' : `*${cell}*`)) : row));
  const line = (row: string[]): string => `| ${row.join(' | ')} |`;
  return [
    about(r),
    '',
    line(head),
    line(head.map((_, i) => (i === 0 ? '---' : '---:'))),
    ...body.map(line),
    '',
  ].join('\n');
}
