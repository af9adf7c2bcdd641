// The figures' shape, the targets (issues 5 and 10), and the two renderings: a
// plain table for the terminal and the markdown that goes into the README.
import type { LoadResult, Machine, Spread } from './lib.ts';

export interface WarmSide {
  reqPerSec: number;
  p50Ms: number;
  p99Ms: number;
  mbPerSec: number;
  rounds: LoadResult[];
}

interface WarmLoad {
  connections: number;
  secondsPerRound: number;
  rounds: number;
}

interface Burst {
  medianMs: number;
  maxMs: number;
}

interface StartBurstSide {
  /** Medians over the runs of each run's p50 and p99 over its requests. */
  p50Ms: number;
  p99Ms: number;
  /** Median spawn → the port accepts, and spawn → the last byte of the burst's last answer. */
  acceptMs: number;
  lastByteMs: number;
  runs: Array<{ acceptMs: number; p50Ms: number; p99Ms: number; lastByteMs: number }>;
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
  /** Stable, for code: the row that shows it. */
  key: string;
  name: string;
  value: number;
  limit: string;
  met: boolean;
}

export interface Results {
  date: string;
  mode: 'full' | 'short';
  machine: Machine & { loadAverageAtEnd: number[] };
  loadGenerator: string;
  image: { bytes: number; width: number; height: number; noise: boolean; made: string };
  warm: WarmLoad & { function: WarmSide; floor: WarmSide; throughputRatio: number };
  /** Spawn → first 200 with the whole page; ratios of medians against the floor. */
  coldStart: { runs: number; function: Spread; floor: Spread; esm: Spread; ratio: number; esmRatio: number };
  startBurst: { requests: number; runs: number; function: StartBurstSide; floor: StartBurstSide; p50Ratio: number; p99Ratio: number };
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
  rss: { functionPeakMb: number; floorPeakMb: number; afterRefreshesOriginalMb: number; afterRefreshesResizedMb: number };
  bytes: { page: number; image: number; ratio: number };
  watchdog:
    | { measured: false; note: string }
    | (WarmLoad & { measured: true; version: string; watchdog: WarmSide; direct: WarmSide; throughputRatio: number });
  edge:
    | { measured: false; note: string }
    | (WarmLoad & {
        measured: true;
        version: string;
        replicas: number;
        cache: WarmSide;
        direct: WarmSide;
        throughputRatio: number;
        /** A short TTL, read without a pause through the cache: what reaches the replicas. */
        perTtl: { ttlSeconds: number; seconds: number; reads: number; reachedReplicas: number; perTtl: number; downloads: number };
      });
  memorySoak:
    | { measured: false; note: string }
    | {
        measured: true;
        seconds: number;
        limitMiB: number;
        decodeBudgetMiB: number;
        imageWidth: number;
        refreshes: number;
        stalledClients: number;
        reqPerSec: number;
        maxUsageMiB: number;
        peakAnonMiB: number;
        oomKills: number;
        alive: boolean;
      };
  targets: Target[];
  durationSeconds: number;
}

export function targets(r: Results): Target[] {
  const resizedRss = r.rss.afterRefreshesResizedMb;
  return [
    { key: 'throughput', name: 'warm throughput, function / floor', value: r.warm.throughputRatio, limit: '>= 0.8', met: r.warm.throughputRatio >= 0.8 },
    { key: 'coldStart', name: 'cold start median, function / floor', value: r.coldStart.ratio, limit: '<= 1.25', met: r.coldStart.ratio <= 1.25 },
    { key: 'rssAfterLoad', name: 'peak RSS after the load (MB)', value: r.rss.functionPeakMb, limit: '<= 120', met: r.rss.functionPeakMb <= 120 },
    { key: 'pageBytes', name: 'page bytes / image bytes', value: r.bytes.ratio, limit: '<= 1.4', met: r.bytes.ratio <= 1.4 },
    { key: 'staleDownloads', name: 'stale burst downloads (worst repetition)', value: r.staleBurst.stale.downloads, limit: '= 1', met: r.staleBurst.reps.every((rep) => rep.stale.downloads === 1) },
    { key: 'staleMedian', name: 'stale burst median, stale / fresh', value: r.staleBurst.medianRatio, limit: '<= 1.5', met: r.staleBurst.medianRatio <= 1.5 },
    { key: 'rssAfterRefreshes', name: `peak RSS after refreshes with IMAGE_WIDTH=${r.refresh.resized.imageWidth} (MB)`, value: resizedRss, limit: '<= 100', met: resizedRss <= 100 },
    ...(r.memorySoak.measured
      ? [
          {
            key: 'memorySoak',
            name: `peak anonymous memory in ${r.memorySoak.limitMiB} MiB under the soak (MiB), no OOM kill`,
            value: r.memorySoak.peakAnonMiB,
            limit: `<= ${r.memorySoak.limitMiB}`,
            met: r.memorySoak.oomKills === 0 && r.memorySoak.alive && r.memorySoak.peakAnonMiB <= r.memorySoak.limitMiB,
          },
        ]
      : []),
  ];
}

const n = (value: number, digits = 0): string => value.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const ms = (value: number): string => (value >= 100 ? n(value) : n(value, 1));
const mark = (met: boolean): string => (met ? 'met' : '**missed**');
/** A median with its interquartile range. */
const iqr = (s: Spread): string => `${ms(s.medianMs)} (${ms(s.p25Ms)}–${ms(s.p75Ms)})`;

function rows(r: Results): string[][] {
  const target = (key: string): [string, string] => {
    const t = r.targets.find((x) => x.key === key);
    if (t === undefined) throw new Error(`no target ${key}`);
    return [t.limit.replace('>=', '≥').replace('<=', '≤'), mark(t.met)];
  };
  const w = r.warm;
  const c = r.coldStart;
  const b = r.startBurst;
  const s = r.staleBurst;
  const burstWhat = `${s.requests} requests at once on ${s.replicas} replicas, source ${s.sourceDelayMs / 1000} s`;
  const load = (l: WarmLoad) => `${l.connections} connections, ${l.rounds} x ${l.secondsPerRound} s`;
  const wd = r.watchdog;
  return [
    ['figure', 'todo-app', 'floor: bare CommonJS node:http', 'ratio', 'target', ''],
    [`warm throughput (req/s, ${load(w)})`, n(w.function.reqPerSec), n(w.floor.reqPerSec), n(w.throughputRatio, 2), ...target('throughput')],
    ['warm latency p50 / p99 (ms)', `${ms(w.function.p50Ms)} / ${ms(w.function.p99Ms)}`, `${ms(w.floor.p50Ms)} / ${ms(w.floor.p99Ms)}`, '', '', ''],
    [`cold start, spawn → first 200 with the page (median (IQR) of ${c.runs}, ms)`, iqr(c.function), iqr(c.floor), n(c.ratio, 2), ...target('coldStart')],
    ['cold start of a bare ESM server, same page, in place of todo-app', iqr(c.esm), iqr(c.floor), n(c.esmRatio, 2), '', ''],
    [
      `burst at start: ${b.requests} GETs once the port accepts, p50 / p99 (ms, median of ${b.runs})`,
      `${ms(b.function.p50Ms)} / ${ms(b.function.p99Ms)}`,
      `${ms(b.floor.p50Ms)} / ${ms(b.floor.p99Ms)}`,
      `${n(b.p50Ratio, 2)} / ${n(b.p99Ratio, 2)}`,
      '',
      '',
    ],
    [`burst at start: spawn → last byte of all ${b.requests} answers (ms, median of ${b.runs})`, ms(b.function.lastByteMs), ms(b.floor.lastByteMs), n(b.function.lastByteMs / b.floor.lastByteMs, 2), '', ''],
    ['peak RSS after the load (MB)', n(r.rss.functionPeakMb, 1), n(r.rss.floorPeakMb, 1), '', ...target('rssAfterLoad')],
    ['page bytes / image bytes', `${n(r.bytes.page)} / ${n(r.bytes.image)}`, 'same page', n(r.bytes.ratio, 2), ...target('pageBytes')],
    ['', 'stale burst', 'fresh burst', '', '', ''],
    [`downloads (${burstWhat})`, n(s.stale.downloads), n(s.reps.reduce((m, rep) => Math.max(m, rep.fresh.downloads), 0)), '', ...target('staleDownloads')],
    [`latency median / max (ms, ${s.repetitions} repetition${s.repetitions === 1 ? '' : 's'})`, `${ms(s.stale.medianMs)} / ${ms(s.stale.maxMs)}`, `${ms(s.fresh.medianMs)} / ${ms(s.fresh.maxMs)}`, n(s.medianRatio, 2), ...target('staleMedian')],
    ['', 'first in a process', 'next', '', '', ''],
    [`refresh cost, stale request → new page (median of ${r.refresh.original.firstSamplesMs.length}, ms)`, ms(r.refresh.original.firstMs), ms(r.refresh.original.nextMs), '', '', ''],
    [`same with IMAGE_WIDTH=${r.refresh.resized.imageWidth}`, ms(r.refresh.resized.firstMs), ms(r.refresh.resized.nextMs), '', '', ''],
    [`peak RSS after refreshes with IMAGE_WIDTH=${r.refresh.resized.imageWidth} (MB, sharp loaded)`, n(r.rss.afterRefreshesResizedMb, 1), '', '', ...target('rssAfterRefreshes')],
    ['peak RSS after refreshes, original size (MB)', n(r.rss.afterRefreshesOriginalMb, 1), '', '', '', ''],
    ...soakRows(r),
    ['', 'through of-watchdog', 'direct', '', '', ''],
    wd.measured
      ? [`warm throughput through of-watchdog ${wd.version} (req/s, ${load(wd)})`, n(wd.watchdog.reqPerSec), n(wd.direct.reqPerSec), n(wd.throughputRatio, 2), '', '']
      : ['warm throughput through of-watchdog', wd.note, '', '', '', ''],
    ...(wd.measured ? [['warm latency p50 / p99 through of-watchdog (ms)', `${ms(wd.watchdog.p50Ms)} / ${ms(wd.watchdog.p99Ms)}`, `${ms(wd.direct.p50Ms)} / ${ms(wd.direct.p99Ms)}`, '', '', '']] : []),
    ['', 'through the edge cache', 'direct to one replica', '', '', ''],
    ...edgeRows(r.edge, load),
  ];
}

function edgeRows(e: Results['edge'], load: (l: WarmLoad) => string): string[][] {
  if (!e.measured) return [['reads per second at the edge cache (nginx)', e.note, '', '', '', '']];
  const t = e.perTtl;
  return [
    [`reads per second at the edge cache, nginx ${e.version} in front of ${e.replicas} replicas (req/s, ${load(e)})`, n(e.cache.reqPerSec), n(e.direct.reqPerSec), n(e.throughputRatio, 2), '', ''],
    ['latency p50 / p99 at the edge cache (ms)', `${ms(e.cache.p50Ms)} / ${ms(e.cache.p99Ms)}`, `${ms(e.direct.p50Ms)} / ${ms(e.direct.p99Ms)}`, '', '', ''],
    [
      `requests reaching the replicas per TTL (TTL ${t.ttlSeconds} s, ${n(t.reads)} reads in ${t.seconds} s through the cache, ${t.downloads} downloads)`,
      n(t.perTtl, 2),
      `${n(t.reads / (t.seconds / t.ttlSeconds))} (every read)`,
      '',
      '',
      '',
    ],
  ];
}

function soakRows(r: Results): string[][] {
  const m = r.memorySoak;
  if (!m.measured) return [['', 'in a 256 MiB memory cgroup', '', '', '', ''], ['peak memory under a soak with refreshes and stalled clients', m.note, '', '', '', '']];
  const t = r.targets.find((x) => x.key === 'memorySoak')!;
  return [
    ['', `in a ${m.limitMiB} MiB memory cgroup`, 'decode budget', '', '', ''],
    [
      `peak memory, max usage / anonymous (MiB; ${m.seconds} s soak at ${n(m.reqPerSec)} req/s, ${m.refreshes} refreshes at ${m.imageWidth} px, ${m.stalledClients} stalled clients; ${m.oomKills} OOM kills)`,
      `${n(m.maxUsageMiB, 1)} / ${n(m.peakAnonMiB, 1)}`,
      n(m.decodeBudgetMiB),
      '',
      t.limit.replace('<=', '≤'),
      mark(t.met),
    ],
  ];
}

function about(r: Results): string {
  const m = r.machine;
  const load = (l: number[]) => l.map((v) => v.toFixed(2)).join(' ');
  return (
    `${m.cpu}, ${m.cores} cores, ${m.memoryGb} GB, Node ${m.node} (the machine's node: ${m.machineNode}), ` +
    `${r.date.slice(0, 16).replace('T', ' ')} UTC, \`npm run bench\` (${r.mode} mode, ${r.durationSeconds} s), ` +
    `load average ${load(m.loadAverageAtStart)} at the start, ${load(m.loadAverageAtEnd)} at the end. Load: ${r.loadGenerator}. ` +
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
