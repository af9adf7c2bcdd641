// npm run bench [-- --short] [-- --out DIR]
//
// The function beside the limit for Node on this machine (bench/baseline.ts, a
// bare node:http server with one prebuilt Buffer of the same page), in one run:
// warm throughput and latency, cold start, a stale burst on 4 replicas, the
// cost of a refresh, peak RSS, page bytes. Progress on stderr, the table on
// stdout, figures in DIR/latest.json and DIR/latest.md (DIR: bench/results;
// the short mode writes short.json and short.md so it never replaces the
// committed full figures). BENCH_SHORT=1 is --short.
//
// Every server is a process of its own (`node <entry>`, as the container runs
// it), and so is the load generator (autocannon's CLI); the bench process only
// starts them, times single requests and the bursts, and reads /proc.
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../test/support/fn.ts';
import { freePort } from '../test/support/ports.ts';
import { makeJpeg, startSource, type ImageSource } from '../test/support/source.ts';
import { build, type Build } from './build.ts';
import { autocannon, machine, median, peakRssMb, request, round, sleep, writeVolume, type LoadResult } from './lib.ts';
import { markdown, table, targets, type Results } from './report.ts';

const { values: args } = parseArgs({
  options: {
    short: { type: 'boolean', default: process.env.BENCH_SHORT === '1' || process.env.BENCH_SHORT === 'true' },
    out: { type: 'string', default: process.env.BENCH_OUT },
    help: { type: 'boolean', short: 'h' },
  },
});
if (args.help) {
  process.stdout.write(
    'npm run bench [-- --short] [-- --out DIR]\n' +
      '  --short    everything small and fast (CI); also BENCH_SHORT=1\n' +
      '  --out DIR  where latest.json/latest.md (short: short.json/short.md) go; default bench/results\n',
  );
  process.exit(0);
}

const SHORT = args.short === true;
const SETTINGS = SHORT
  ? { coldRuns: 3, connections: 10, seconds: 2, rounds: 1, warmupSeconds: 1, staleReps: 1, refreshRuns: 1 }
  : { coldRuns: 9, connections: 10, seconds: 10, rounds: 3, warmupSeconds: 3, staleReps: 3, refreshRuns: 5 };
/** Lorem Picsum's /1200 is about 135 kB; makeJpeg's noise at 685 x 685 gives as much. */
const IMAGE = { width: 685, height: 685, noise: true };
const BURST = { replicas: 4, requests: 100, sourceDelayMs: 1500, ttlSeconds: 5 };
const RESIZE_WIDTH = 600;

const began = performance.now();
function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

let code: Build;
let source: ImageSource;
let volumes: string;
let volumeCount = 0;

function volume(image: Buffer, fetchedAt: number): string {
  const dir = path.join(volumes, `v${++volumeCount}`);
  writeVolume(dir, image, fetchedAt);
  return dir;
}

/** The function's configuration in the bench: production defaults, a local source. */
function fnEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { IMAGE_DIR: dir, IMAGE_URL: source.url, LOG_LEVEL: 'info', ...extra };
}

type Side = 'function' | 'baseline';
const entryOf = (side: Side): string => (side === 'function' ? code.functionEntry : code.baselineEntry);
/** ABBA: each side goes first as often as the other. */
const orderOf = (i: number): Side[] => (i % 2 === 0 ? ['function', 'baseline'] : ['baseline', 'function']);

// ---------------------------------------------------------------- warm load

async function warm(image: Buffer): Promise<Results['warm'] & { bytes: Results['bytes']; rss: Omit<Results['rss'], 'afterRefreshPeakMb'> }> {
  const dir = volume(image, Date.now());
  const servers: Record<Side, FunctionProcess> = {
    function: await startFunction(fnEnv(dir), { entry: code.functionEntry, cwd: code.dir }),
    baseline: await startFunction(fnEnv(dir), { entry: code.baselineEntry, cwd: code.dir }),
  };
  try {
    const [fnPage, basePage] = await Promise.all([request(servers.function.url), request(servers.baseline.url)]);
    if (fnPage.status !== 200 || basePage.status !== 200) throw new Error(`pages: function ${fnPage.status}, baseline ${basePage.status}`);
    if (!fnPage.body.equals(basePage.body) || fnPage.etag !== basePage.etag) {
      throw new Error('the baseline does not serve the same bytes as the function: the comparison would be unfair');
    }
    progress(`warm: same page from both (${fnPage.body.length} bytes, ETag ${fnPage.etag}); warm-up ${SETTINGS.warmupSeconds} s each`);
    for (const side of orderOf(0)) await autocannon(servers[side].url, SETTINGS.connections, SETTINGS.warmupSeconds);
    const runs: Record<Side, LoadResult[]> = { function: [], baseline: [] };
    const before = source.downloads;
    for (let round = 0; round < SETTINGS.rounds; round++) {
      for (const side of orderOf(round)) {
        const result = await autocannon(servers[side].url, SETTINGS.connections, SETTINGS.seconds);
        runs[side].push(result);
        progress(
          `warm round ${round + 1}/${SETTINGS.rounds} ${side.padEnd(8)}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.mbPerSec.toFixed(0)} MB/s`,
        );
      }
    }
    if (source.downloads !== before) throw new Error('the function downloaded during the warm load: the image was not fresh');
    const sum = (side: Side) => {
      const list = runs[side];
      const requests = list.reduce((n, r) => n + r.requests, 0);
      const seconds = list.reduce((n, r) => n + r.seconds, 0);
      return {
        reqPerSec: round(requests / seconds, 0),
        p50Ms: median(list.map((r) => r.p50Ms)),
        p99Ms: median(list.map((r) => r.p99Ms)),
        mbPerSec: round(median(list.map((r) => r.mbPerSec)), 1),
        rounds: list,
      };
    };
    const fn = sum('function');
    const base = sum('baseline');
    const rss = { functionPeakMb: round(peakRssMb(servers.function.child.pid!)), baselinePeakMb: round(peakRssMb(servers.baseline.child.pid!)) };
    progress(`warm: peak RSS function ${rss.functionPeakMb} MB, baseline ${rss.baselinePeakMb} MB`);
    return {
      connections: SETTINGS.connections,
      secondsPerRound: SETTINGS.seconds,
      rounds: SETTINGS.rounds,
      function: fn,
      baseline: base,
      throughputRatio: round(fn.reqPerSec / base.reqPerSec, 3),
      bytes: { page: fnPage.body.length, image: image.length, ratio: round(fnPage.body.length / image.length, 3) },
      rss,
    };
  } finally {
    await Promise.all([servers.function.kill(), servers.baseline.kill()]);
  }
}

// ---------------------------------------------------------------- cold start

/** Spawn to the first 200 that carries the whole page, polling every 2 ms on new connections. */
async function coldStart(side: Side, dir: string, pageBytes: number): Promise<number> {
  const port = await freePort();
  const started = performance.now();
  const server = await startFunction({ ...fnEnv(dir), PORT: String(port) }, { entry: entryOf(side), cwd: code.dir, waitReady: false });
  try {
    for (;;) {
      const answer = await request(`http://127.0.0.1:${port}/`, 'GET', 10_000).catch(() => undefined);
      if (answer?.status === 200 && answer.body.length === pageBytes) return performance.now() - started;
      if (answer !== undefined) throw new Error(`${side} cold start: ${answer.status} with ${answer.body.length} bytes`);
      if (performance.now() - started > 20_000) throw new Error(`${side} cold start: no page within 20 s\n${server.output()}`);
      await sleep(2);
    }
  } finally {
    await server.kill();
  }
}

async function cold(image: Buffer, pageBytes: number): Promise<Results['coldStart']> {
  const dir = volume(image, Date.now());
  const runs: Record<Side, number[]> = { function: [], baseline: [] };
  // One unmeasured start of each: node's binary and the modules in the page cache.
  for (const side of orderOf(0)) await coldStart(side, dir, pageBytes);
  for (let i = 0; i < SETTINGS.coldRuns; i++) {
    for (const side of orderOf(i)) runs[side].push(round(await coldStart(side, dir, pageBytes)));
    progress(`cold start ${i + 1}/${SETTINGS.coldRuns}: function ${runs.function.at(-1)} ms, baseline ${runs.baseline.at(-1)} ms`);
  }
  const fn = median(runs.function);
  const base = median(runs.baseline);
  return {
    runs: SETTINGS.coldRuns,
    function: { medianMs: round(fn), minMs: Math.min(...runs.function), maxMs: Math.max(...runs.function), samplesMs: runs.function },
    baseline: { medianMs: round(base), minMs: Math.min(...runs.baseline), maxMs: Math.max(...runs.baseline), samplesMs: runs.baseline },
    ratio: round(fn / base, 3),
  };
}

// ---------------------------------------------------------------- stale burst

/** `count` requests at once, round robin over the replicas, each on its own connection; latencies in ms. */
async function burst(urls: string[], count: number): Promise<number[]> {
  const answers = await Promise.all(Array.from({ length: count }, (_, i) => request(urls[i % urls.length]!)));
  for (const answer of answers) if (answer.status !== 200) throw new Error(`burst: a request got ${answer.status}`);
  return answers.map((a) => a.ms);
}

const burstFigures = (ms: number[]) => ({ medianMs: round(median(ms)), maxMs: round(Math.max(...ms)) });

async function staleBurstOnce(image: Buffer, rep: number) {
  source.delayMs = BURST.sourceDelayMs;
  const stampedAt = Date.now();
  const dir = volume(image, stampedAt);
  const expiresAt = stampedAt + BURST.ttlSeconds * 1000;
  const env = fnEnv(dir, { IMAGE_TTL_SECONDS: String(BURST.ttlSeconds) });
  const replicas = await Promise.all(Array.from({ length: BURST.replicas }, () => startFunction(env, { entry: code.functionEntry, cwd: code.dir })));
  try {
    const urls = replicas.map((r) => r.url);
    const before = source.downloads;
    await burst(urls, BURST.requests); // warm-up, as the replicas of a warm service are
    const fresh = await burst(urls, BURST.requests);
    if (Date.now() > expiresAt - 250) throw new Error(`the fresh burst ended too close to the TTL (${BURST.ttlSeconds} s): the machine is too slow for this bench`);
    const freshDownloads = source.downloads - before;
    const oldEtag = (await request(urls[0]!, 'HEAD')).etag;
    await sleep(expiresAt + 20 - Date.now()); // just after the TTL
    const stale = await burst(urls, BURST.requests);
    // The burst is served; now the one refresh lands on every replica.
    const refreshed = performance.now();
    await eventually(
      async () => (await Promise.all(urls.map((u) => request(u, 'HEAD')))).every((a) => a.etag !== oldEtag),
      20_000,
      'every replica serves the refreshed page',
    );
    const refreshMs = performance.now() - refreshed;
    const downloads = source.downloads - before;
    progress(
      `stale burst ${rep}/${SETTINGS.staleReps}: fresh median ${round(median(fresh))} ms max ${round(Math.max(...fresh))} ms; ` +
        `stale median ${round(median(stale))} ms max ${round(Math.max(...stale))} ms; ${downloads} download(s); all replicas refreshed ${Math.round(refreshMs)} ms after the burst`,
    );
    return { fresh: { ...burstFigures(fresh), downloads: freshDownloads }, stale: { ...burstFigures(stale), downloads } };
  } finally {
    await Promise.all(replicas.map((r) => r.kill()));
    source.delayMs = 0;
  }
}

async function staleBurst(image: Buffer): Promise<Results['staleBurst']> {
  const reps = [];
  for (let i = 1; i <= SETTINGS.staleReps; i++) reps.push(await staleBurstOnce(image, i));
  const fresh = { medianMs: median(reps.map((r) => r.fresh.medianMs)), maxMs: Math.max(...reps.map((r) => r.fresh.maxMs)) };
  const stale = {
    medianMs: median(reps.map((r) => r.stale.medianMs)),
    maxMs: Math.max(...reps.map((r) => r.stale.maxMs)),
    downloads: Math.max(...reps.map((r) => r.stale.downloads)),
  };
  return { ...BURST, repetitions: reps.length, fresh, stale, medianRatio: round(stale.medianMs / fresh.medianMs, 3), reps };
}

// ---------------------------------------------------------------- refresh cost

/** From the request that finds the page stale to the first answer with the new ETag (HEAD polled every 5 ms). */
async function timeRefresh(url: string): Promise<{ ms: number; at: number }> {
  const started = performance.now();
  const trigger = await request(url);
  if (trigger.status !== 200) throw new Error(`refresh: the stale request got ${trigger.status}`);
  for (;;) {
    const head = await request(url, 'HEAD');
    if (head.etag !== trigger.etag) return { ms: performance.now() - started, at: Date.now() };
    if (performance.now() - started > 30_000) throw new Error('refresh: no new page within 30 s');
    await sleep(5);
  }
}

async function refreshCost(image: Buffer, width: number | undefined) {
  const first: number[] = [];
  const again: number[] = [];
  let peakMb = 0;
  for (let i = 1; i <= SETTINGS.refreshRuns; i++) {
    const dir = volume(image, Date.now() - 3_600_000); // stale from the start
    const env = fnEnv(dir, { IMAGE_TTL_SECONDS: '1', ...(width === undefined ? {} : { IMAGE_WIDTH: String(width) }) });
    const fn = await startFunction(env, { entry: code.functionEntry, cwd: code.dir });
    try {
      await sleep(100);
      const one = await timeRefresh(fn.url);
      first.push(round(one.ms));
      await sleep(one.at + 1_100 - Date.now()); // the new image is past its 1 s TTL
      const two = await timeRefresh(fn.url);
      again.push(round(two.ms));
      peakMb = Math.max(peakMb, peakRssMb(fn.child.pid!));
      progress(`refresh ${width === undefined ? 'original' : `IMAGE_WIDTH=${width}`} ${i}/${SETTINGS.refreshRuns}: first in the process ${first.at(-1)} ms, next ${again.at(-1)} ms`);
    } finally {
      await fn.kill();
    }
  }
  return { imageWidth: width ?? null, firstMs: median(first), nextMs: median(again), firstSamplesMs: first, nextSamplesMs: again, peakRssMb: round(peakMb) };
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  progress(`${SHORT ? 'short' : 'full'} mode; building the function and the baseline`);
  code = await build();
  progress(`built in ${Math.round(code.ms)} ms into ${code.dir}`);
  volumes = path.join(code.dir, 'volumes');
  try {
    source = await startSource({ ...IMAGE, pictures: 4 });
    const image = await makeJpeg(100, IMAGE.width, IMAGE.height, IMAGE.noise);
    progress(`image: ${image.length} bytes (makeJpeg ${IMAGE.width} x ${IMAGE.height}, noise); source pictures ${source.pictures.map((p) => p.length).join(', ')} bytes`);

    const w = await warm(image);
    const coldStartFigures = await cold(image, w.bytes.page);
    const burstFiguresAll = await staleBurst(image);
    const refreshOriginal = await refreshCost(image, undefined);
    const refreshResized = await refreshCost(image, RESIZE_WIDTH);

    const { bytes, rss, ...warmFigures } = w;
    const results: Results = {
      date: new Date().toISOString(),
      mode: SHORT ? 'short' : 'full',
      machine: machine(os),
      loadGenerator: `autocannon 8 CLI in its own process, ${SETTINGS.connections} connections, on the same ${os.availableParallelism()}-core machine as the server`,
      image: { bytes: image.length, ...IMAGE, made: `makeJpeg(100, ${IMAGE.width}, ${IMAGE.height}, true)` },
      warm: warmFigures,
      coldStart: coldStartFigures,
      staleBurst: burstFiguresAll,
      refresh: { original: refreshOriginal, resized: refreshResized },
      rss: { ...rss, afterRefreshPeakMb: Math.max(refreshOriginal.peakRssMb, refreshResized.peakRssMb) },
      bytes,
      targets: [],
      durationSeconds: 0,
    };
    results.targets = targets(results);
    results.durationSeconds = round((performance.now() - began) / 1000);

    const dir = path.resolve(args.out ?? path.join(repoRoot, 'bench/results'));
    mkdirSync(dir, { recursive: true });
    const name = SHORT ? 'short' : 'latest';
    writeFileSync(path.join(dir, `${name}.json`), `${JSON.stringify(results, null, 2)}\n`);
    writeFileSync(path.join(dir, `${name}.md`), markdown(results));
    process.stdout.write(table(results));
    progress(`done in ${results.durationSeconds} s; wrote ${path.join(dir, `${name}.json`)} and ${name}.md`);
  } finally {
    await source?.close();
    code.remove();
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`bench failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  process.exitCode = 1;
  // Child processes are SIGKILLed by test/support/fn.ts on exit.
  setTimeout(() => process.exit(1), 100).unref();
});
