// npm run bench [-- --short] [-- --out DIR]
//
// The function beside the floor for Node on this machine, in one run: the floor
// is bench/floor.cts, a bare CommonJS node:http server with one prebuilt Buffer
// of the same page; bench/bare-esm.ts, the same server as an ES module, is a
// second row for comparison. Measured: warm throughput and latency, cold start,
// a burst of requests right at the start, a stale burst on 4 replicas, the cost
// of a refresh, peak RSS, page bytes and, with OF_WATCHDOG_BIN, the warm load
// through of-watchdog. Progress on stderr, the table on stdout, figures in
// DIR/latest.json and DIR/latest.md (DIR: bench/results; the short mode writes
// short.json and short.md so it never replaces the committed full figures).
// BENCH_SHORT=1 is --short. `npm run bench` runs it on Node 22, the container's.
//
// Every server is a process of its own (`node <entry>`, as the container runs
// it), and so is the load generator (autocannon's CLI); the bench process only
// starts them, times single requests and the bursts, and reads /proc.
import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../test/support/fn.ts';
import { freePort } from '../test/support/ports.ts';
import { makeJpeg, startSource, type ImageSource } from '../test/support/source.ts';
import { nginxUnavailable, startEdgeCache } from '../test/support/edge-cache.ts';
import { startWatchdog } from '../test/support/watchdog.ts';
import { createMemoryCgroup, memoryCgroupsUnavailable, STACK_MEMORY_LIMIT_BYTES, watchAnon } from '../test/support/memoryCgroup.ts';
import { build, type Build } from './build.ts';
import { accepts, autocannon, machine, median, peakRssMb, quantile, request, round, sleep, spread, type Answer, type LoadResult } from './lib.ts';
import { createLog } from '../functions/todo-app/log.ts';
import { inspect, verdictOf } from '../functions/todo-app/picture.ts';
import { Volume } from '../functions/todo-app/volume.ts';
import { markdown, table, targets, type Results, type WarmSide } from './report.ts';

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
      '  --out DIR  where latest.json/latest.md (short: short.json/short.md) go; default bench/results\n' +
      'OF_WATCHDOG_BIN=/path/to/fwatchdog adds the warm load through of-watchdog (its metrics port 8081 must be free)\n',
  );
  process.exit(0);
}

const SHORT = args.short === true;
const SETTINGS = SHORT
  ? { coldRuns: 3, startBurstRuns: 3, connections: 10, seconds: 2, rounds: 1, warmupSeconds: 1, staleReps: 1, refreshRuns: 1, soakSeconds: 4 }
  : { coldRuns: 25, startBurstRuns: 9, connections: 10, seconds: 10, rounds: 3, warmupSeconds: 3, staleReps: 3, refreshRuns: 5, soakSeconds: 30 };
/** Lorem Picsum's /1200 is about 135 kB; makeJpeg's noise at 685 x 685 gives as much. */
const IMAGE = { width: 685, height: 685, noise: true };
const BURST = { replicas: 4, requests: 100, sourceDelayMs: 1500, ttlSeconds: 5 };
/** Requests fired at once as soon as a new server's port accepts: a scale from zero with a queue behind it. */
const START_BURST = 50;
const RESIZE_WIDTH = 600;
/**
 * The edge cache of k8s-volumes/cache/ (Debian's nginx) in front of 3 replicas: reads per second
 * at the cache against one replica direct, and, with a short TTL, how many requests reach
 * the replicas per TTL while it is read without a pause.
 */
const EDGE = SHORT ? { replicas: 3, ttlSeconds: 2, ttls: 3 } : { replicas: 3, ttlSeconds: 5, ttls: 3 };

const began = performance.now();
function progress(message: string): void {
  process.stderr.write(`[bench ${((performance.now() - began) / 1000).toFixed(1).padStart(5)} s] ${message}\n`);
}

let code: Build;
let source: ImageSource;
let volumes: string;
let volumeCount = 0;

/**
 * A volume as the function leaves it after a download: image.jpg, .ts and the decode's verdict,
 * written by the function's own Volume.writeImage. Without the verdict a cold start would
 * decode the picture with sharp first, as it does once on a volume another app wrote.
 */
async function volume(image: Buffer, fetchedAt: number): Promise<string> {
  const dir = path.join(volumes, `v${++volumeCount}`);
  const saved = new Volume(dir, createLog('silent', undefined));
  await saved.prepare();
  await saved.writeImage(image, fetchedAt, verdictOf(await inspect(image, { maxBytes: 10 * 1024 * 1024, budgetBytes: 1024 * 1024 * 1024 })));
  return dir;
}

/** The function's configuration in the bench: production defaults, a local source. */
function fnEnv(dir: string, extra: Record<string, string> = {}): Record<string, string> {
  return { IMAGE_DIR: dir, IMAGE_URL: source.url, LOG_LEVEL: 'info', ...extra };
}

/** The function, the floor (bare CommonJS server) and the bare ESM server: all send the same page. */
type Server = 'function' | 'floor' | 'esm';
const SERVERS: Server[] = ['function', 'floor', 'esm'];
const entryOf = (server: Server): string => ({ function: code.functionEntry, floor: code.floorEntry, esm: code.esmEntry })[server];
/** ABBA: each of two goes first as often as the other. */
const abba = <T>(pair: [T, T], i: number): T[] => (i % 2 === 0 ? pair : [pair[1], pair[0]]);
/** Each of three goes first, second and last in turn. */
const rotation = <T>(list: T[], i: number): T[] => list.map((_, k) => list[(k + i) % list.length]!);

/** A comparison is fair only if every server sends the same bytes with the same ETag. */
function samePage(answers: Record<string, Answer>): Answer {
  const [first, ...others] = Object.entries(answers);
  for (const [name, answer] of [first!, ...others]) if (answer.status !== 200) throw new Error(`${name} answered ${answer.status}`);
  for (const [name, answer] of others) {
    if (!answer.body.equals(first![1].body) || answer.etag !== first![1].etag) {
      throw new Error(`${name} does not send the same page as ${first![0]} (${answer.body.length} vs ${first![1].body.length} bytes, ETag ${answer.etag} vs ${first![1].etag}): the comparison would be unfair`);
    }
  }
  return first![1];
}

// ---------------------------------------------------------------- warm load

/** Warm-up each, then ABBA rounds of autocannon on two origins; totals and medians per origin. */
async function warmLoad<K extends string>(urls: Record<K, string>, names: [K, K], what: string): Promise<Record<K, WarmSide>> {
  for (const name of names) await autocannon(urls[name], SETTINGS.connections, SETTINGS.warmupSeconds);
  const runs = { [names[0]]: [], [names[1]]: [] } as unknown as Record<K, LoadResult[]>;
  for (let i = 0; i < SETTINGS.rounds; i++) {
    for (const name of abba(names, i)) {
      const result = await autocannon(urls[name], SETTINGS.connections, SETTINGS.seconds);
      runs[name].push(result);
      progress(
        `${what} round ${i + 1}/${SETTINGS.rounds} ${name.padEnd(8)}: ${Math.round(result.reqPerSec)} req/s, p50 ${result.p50Ms} ms, p99 ${result.p99Ms} ms, ${result.mbPerSec.toFixed(0)} MB/s`,
      );
    }
  }
  const sum = (list: LoadResult[]): WarmSide => ({
    reqPerSec: round(list.reduce((n, r) => n + r.requests, 0) / list.reduce((n, r) => n + r.seconds, 0), 0),
    p50Ms: median(list.map((r) => r.p50Ms)),
    p99Ms: median(list.map((r) => r.p99Ms)),
    mbPerSec: round(median(list.map((r) => r.mbPerSec)), 1),
    rounds: list,
  });
  return { [names[0]]: sum(runs[names[0]]), [names[1]]: sum(runs[names[1]]) } as Record<K, WarmSide>;
}

async function warm(image: Buffer): Promise<Results['warm'] & { bytes: Results['bytes']; rss: Pick<Results['rss'], 'functionPeakMb' | 'floorPeakMb'> }> {
  const dir = await volume(image, Date.now());
  const servers = Object.fromEntries(
    await Promise.all(SERVERS.map(async (s) => [s, await startFunction(fnEnv(dir), { entry: entryOf(s), cwd: code.dir })] as const)),
  ) as Record<Server, FunctionProcess>;
  try {
    const answers = Object.fromEntries(await Promise.all(SERVERS.map(async (s) => [s, await request(servers[s].url)] as const)));
    const page = samePage(answers);
    progress(`warm: the same page from all three (${page.body.length} bytes, ETag ${page.etag}); warm-up ${SETTINGS.warmupSeconds} s each`);
    // The ESM server is for the cold start only: the same node:http answers the same way once warm.
    await servers.esm.kill();
    const before = source.downloads;
    const load = await warmLoad({ function: servers.function.url, floor: servers.floor.url }, ['function', 'floor'], 'warm');
    if (source.downloads !== before) throw new Error('the function downloaded during the warm load: the image was not fresh');
    const rss = { functionPeakMb: round(peakRssMb(servers.function.child.pid!)), floorPeakMb: round(peakRssMb(servers.floor.child.pid!)) };
    progress(`warm: peak RSS function ${rss.functionPeakMb} MB, floor ${rss.floorPeakMb} MB`);
    return {
      connections: SETTINGS.connections,
      secondsPerRound: SETTINGS.seconds,
      rounds: SETTINGS.rounds,
      ...load,
      throughputRatio: round(load.function.reqPerSec / load.floor.reqPerSec, 3),
      bytes: { page: page.body.length, image: image.length, ratio: round(page.body.length / image.length, 3) },
      rss,
    };
  } finally {
    await Promise.all(SERVERS.map((s) => servers[s].kill()));
  }
}

// ---------------------------------------------------------------- cold start

/** A server of the given kind spawned on a free port, not waited for; the clock starts just before spawn(). */
async function spawnServer(server: Server, dir: string): Promise<{ process: FunctionProcess; started: number; url: string; port: number }> {
  const port = await freePort();
  const started = performance.now();
  const child = await startFunction({ ...fnEnv(dir), PORT: String(port) }, { entry: entryOf(server), cwd: code.dir, waitReady: false });
  return { process: child, started, url: `http://127.0.0.1:${port}/`, port };
}

const START_TIMEOUT_MS = 20_000;

/** Spawn to the first 200 that carries the whole page, polling every 2 ms on new connections. */
async function coldStart(server: Server, dir: string, pageBytes: number): Promise<number> {
  const { process: child, started, url } = await spawnServer(server, dir);
  try {
    for (;;) {
      const answer = await request(url, 'GET', 10_000).catch(() => undefined);
      if (answer?.status === 200 && answer.body.length === pageBytes) return performance.now() - started;
      if (answer !== undefined) throw new Error(`${server} cold start: ${answer.status} with ${answer.body.length} bytes`);
      if (performance.now() - started > START_TIMEOUT_MS) throw new Error(`${server} cold start: no page within 20 s\n${child.output()}`);
      await sleep(2);
    }
  } finally {
    await child.kill();
  }
}

async function cold(image: Buffer, pageBytes: number): Promise<Results['coldStart']> {
  const dir = await volume(image, Date.now());
  const samples: Record<Server, number[]> = { function: [], floor: [], esm: [] };
  // One unmeasured start of each: node's binary and the modules in the page cache.
  for (const server of SERVERS) await coldStart(server, dir, pageBytes);
  for (let i = 0; i < SETTINGS.coldRuns; i++) {
    for (const server of rotation(SERVERS, i)) samples[server].push(round(await coldStart(server, dir, pageBytes)));
    progress(`cold start ${i + 1}/${SETTINGS.coldRuns}: ${SERVERS.map((s) => `${s} ${samples[s].at(-1)} ms`).join(', ')}`);
  }
  const [fn, floor, esm] = SERVERS.map((s) => spread(samples[s])) as [ReturnType<typeof spread>, ReturnType<typeof spread>, ReturnType<typeof spread>];
  return {
    runs: SETTINGS.coldRuns,
    function: fn,
    floor,
    esm,
    ratio: round(fn.medianMs / floor.medianMs, 3),
    esmRatio: round(esm.medianMs / floor.medianMs, 3),
  };
}

// ---------------------------------------------------------------- burst at start

/**
 * Spawn, poll until the port accepts a TCP connection (a new one every 2 ms), then at once
 * START_BURST GETs, each on its own connection, each timed from its creation to its last byte.
 * Work a server defers past its first answer is paid here by the requests behind it.
 */
async function burstAtStartOnce(server: 'function' | 'floor', dir: string, pageBytes: number) {
  const { process: child, started, url, port } = await spawnServer(server, dir);
  let alive = true;
  void child.exited.then(() => (alive = false));
  try {
    while (!(await accepts(port))) {
      if (!alive || performance.now() - started > START_TIMEOUT_MS) throw new Error(`${server} never accepted on ${port}\n${child.output()}`);
      await sleep(2);
    }
    const acceptMs = performance.now() - started;
    const answers = await Promise.all(Array.from({ length: START_BURST }, () => request(url)));
    const lastByteMs = performance.now() - started;
    for (const a of answers) if (a.status !== 200 || a.body.length !== pageBytes) throw new Error(`${server} burst at start: ${a.status} with ${a.body.length} bytes`);
    const ms = answers.map((a) => a.ms);
    return { acceptMs: round(acceptMs), p50Ms: round(quantile(ms, 0.5)), p99Ms: round(quantile(ms, 0.99)), lastByteMs: round(lastByteMs) };
  } finally {
    await child.kill();
  }
}

async function burstAtStart(image: Buffer, pageBytes: number): Promise<Results['startBurst']> {
  const dir = await volume(image, Date.now());
  type Run = Awaited<ReturnType<typeof burstAtStartOnce>>;
  const runs: Record<'function' | 'floor', Run[]> = { function: [], floor: [] };
  for (let i = 0; i < SETTINGS.startBurstRuns; i++) {
    for (const server of abba<'function' | 'floor'>(['function', 'floor'], i)) runs[server].push(await burstAtStartOnce(server, dir, pageBytes));
    const line = (s: 'function' | 'floor') => `${s} p50 ${runs[s].at(-1)!.p50Ms} ms p99 ${runs[s].at(-1)!.p99Ms} ms (accepting after ${runs[s].at(-1)!.acceptMs} ms)`;
    progress(`burst at start ${i + 1}/${SETTINGS.startBurstRuns}: ${line('function')}; ${line('floor')}`);
  }
  const figures = (list: Run[]) => ({
    p50Ms: round(median(list.map((r) => r.p50Ms))),
    p99Ms: round(median(list.map((r) => r.p99Ms))),
    acceptMs: round(median(list.map((r) => r.acceptMs))),
    lastByteMs: round(median(list.map((r) => r.lastByteMs))),
    runs: list,
  });
  const fn = figures(runs.function);
  const floor = figures(runs.floor);
  return {
    requests: START_BURST,
    runs: SETTINGS.startBurstRuns,
    function: fn,
    floor,
    p50Ratio: round(fn.p50Ms / floor.p50Ms, 3),
    p99Ratio: round(fn.p99Ms / floor.p99Ms, 3),
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
  const dir = await volume(image, stampedAt);
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
    const dir = await volume(image, Date.now() - 3_600_000); // stale from the start
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

// ---------------------------------------------------------------- memory in a cgroup

/**
 * A client that sends a request and never reads: its socket keeps the answer (a page version)
 * queued in the function for as long as the connection lives.
 */
function stalledClient(port: number): net.Socket {
  const socket = net.connect(port, '127.0.0.1', () => socket.write('GET / HTTP/1.1\r\nHost: bench\r\n\r\n'));
  socket.pause();
  socket.on('error', () => undefined);
  return socket;
}

/**
 * The function in a 256 MiB memory cgroup (stack.yml's limit), its decode budget derived from
 * it, under the warm load for soakSeconds while the picture is refreshed every second at 600 px
 * and one more stalled client connects every second: the cgroup's peak charge (page cache
 * included), the peak of its anonymous memory (memory.stat rss, sampled every 10 ms) and its
 * OOM kills. Needs root; without it the row says so.
 */
async function memorySoak(): Promise<Results['memorySoak']> {
  const unavailable = memoryCgroupsUnavailable();
  if (unavailable !== undefined) return { measured: false, note: `not measured (${unavailable})` };
  const group = createMemoryCgroup('bench');
  const anon = watchAnon(group);
  const dir = path.join(volumes, `soak-${++volumeCount}`);
  const fn = await startFunction(fnEnv(dir, { IMAGE_TTL_SECONDS: '1', IMAGE_WIDTH: String(RESIZE_WIDTH) }), { entry: code.functionEntry, cwd: code.dir, wrap: group.wrap });
  const stalled: net.Socket[] = [];
  try {
    await request(fn.url);
    const before = source.downloads;
    const opener = setInterval(() => stalled.push(stalledClient(fn.port)), 1000);
    stalled.push(stalledClient(fn.port));
    const load = await autocannon(fn.url, SETTINGS.connections, SETTINGS.soakSeconds);
    clearInterval(opener);
    const started = fn.logs().find((line) => line.msg === 'todo-app started') as { settings?: { decodeBudgetBytes?: number } } | undefined;
    const figures = {
      measured: true as const,
      seconds: SETTINGS.soakSeconds,
      limitMiB: round(STACK_MEMORY_LIMIT_BYTES / 2 ** 20),
      decodeBudgetMiB: round((started?.settings?.decodeBudgetBytes ?? NaN) / 2 ** 20),
      imageWidth: RESIZE_WIDTH,
      refreshes: source.downloads - before,
      stalledClients: stalled.length,
      reqPerSec: round(load.reqPerSec, 0),
      maxUsageMiB: round(group.maxUsageBytes() / 2 ** 20, 1),
      peakAnonMiB: round(anon.peakBytes() / 2 ** 20, 1),
      oomKills: group.oomKills(),
      alive: fn.child.exitCode === null && fn.child.signalCode === null,
    };
    progress(
      `memory soak in ${figures.limitMiB} MiB: ${figures.refreshes} refreshes at ${RESIZE_WIDTH} px, ${figures.stalledClients} stalled clients, ${figures.reqPerSec} req/s; ` +
        `max usage ${figures.maxUsageMiB} MiB, peak anonymous ${figures.peakAnonMiB} MiB, decode budget ${figures.decodeBudgetMiB} MiB, ${figures.oomKills} OOM kills`,
    );
    return figures;
  } finally {
    anon.stop();
    for (const socket of stalled) socket.destroy();
    await fn.kill();
    group.remove();
  }
}

// ---------------------------------------------------------------- through of-watchdog

/** `fwatchdog --version` prints `Version: 0.11.6	SHA: 9bdadb1` (through Go's log, on stderr). */
function watchdogVersion(bin: string): string {
  const run = spawnSync(bin, ['--version'], { encoding: 'utf8', timeout: 10_000 });
  const found = /Version:\s*(\S+)\s+SHA:\s*(\S+)/.exec(`${run.stdout ?? ''}${run.stderr ?? ''}`);
  return found ? `${found[1]} (${found[2]})` : 'unknown version';
}

/**
 * The warm load through of-watchdog (OF_WATCHDOG_BIN) and straight to the function behind it,
 * the same process, in ABBA rounds: what the extra proxy costs. On Knative queue-proxy already
 * is a proxy in front of the container, and the Service runs `node dist/index.js` without one.
 */
async function throughWatchdog(image: Buffer): Promise<Results['watchdog']> {
  const bin = process.env.OF_WATCHDOG_BIN;
  if (!bin) return { measured: false, note: 'not measured (set OF_WATCHDOG_BIN)' };
  const version = watchdogVersion(bin);
  // The real of-watchdog serves its metrics on a fixed port: a second one cannot start.
  if (await accepts(8081)) throw new Error('port 8081 (of-watchdog\'s metrics) is in use, probably by another of-watchdog: run again when it is free, or without OF_WATCHDOG_BIN');
  if (process.execPath.includes(' ')) throw new Error(`of-watchdog splits fprocess on spaces, and node's path has one: ${process.execPath}`);
  const dir = await volume(image, Date.now());
  const watchdog = await startWatchdog(fnEnv(dir, { fprocess: `${process.execPath} ${code.functionEntry}` }));
  try {
    const direct = `http://127.0.0.1:${watchdog.upstreamPort}/`;
    await eventually(async () => (await request(watchdog.url, 'GET', 10_000).catch(() => undefined))?.status === 200, 15_000, 'the function answers through of-watchdog');
    const page = samePage({ 'through of-watchdog': await request(watchdog.url), direct: await request(direct) });
    progress(`of-watchdog ${version}: the same page through it and direct (${page.body.length} bytes); warm-up ${SETTINGS.warmupSeconds} s each`);
    const load = await warmLoad({ watchdog: watchdog.url, direct }, ['watchdog', 'direct'], 'of-watchdog');
    return {
      measured: true,
      version,
      connections: SETTINGS.connections,
      secondsPerRound: SETTINGS.seconds,
      rounds: SETTINGS.rounds,
      ...load,
      throughputRatio: round(load.watchdog.reqPerSec / load.direct.reqPerSec, 3),
    };
  } finally {
    await watchdog.destroy();
  }
}

// ---------------------------------------------------------------- behind the edge cache

/** The replicas' own count of the requests that reached them: their LOG_LEVEL=debug `request` lines. */
const pageRequests = (replicas: FunctionProcess[]): number => replicas.reduce((n, r) => n + r.logs().filter((l) => l.msg === 'request' && l.path === '/').length, 0);

async function behindEdgeCache(image: Buffer): Promise<Results['edge']> {
  const unavailable = nginxUnavailable();
  if (unavailable !== undefined) return { measured: false, note: `not measured (${unavailable})` };
  const version = /nginx\/(\S+)/.exec(spawnSync('nginx', ['-v'], { encoding: 'utf8' }).stderr ?? '')?.[1] ?? 'unknown version';

  // Reads per second: a fresh image with the production TTL, the replicas at LOG_LEVEL=info.
  const dir = await volume(image, Date.now());
  const replicas = await Promise.all(Array.from({ length: EDGE.replicas }, () => startFunction(fnEnv(dir), { entry: code.functionEntry, cwd: code.dir })));
  const cache = await startEdgeCache(replicas.map((r) => `127.0.0.1:${r.port}`));
  let load: Record<'cache' | 'direct', WarmSide>;
  try {
    const page = samePage({ 'the edge cache': await request(`${cache.url}/`), direct: await request(replicas[0]!.url) });
    progress(`edge cache: nginx ${version} in front of ${EDGE.replicas} replicas, the same page (${page.body.length} bytes); warm-up ${SETTINGS.warmupSeconds} s each`);
    load = await warmLoad({ cache: `${cache.url}/`, direct: replicas[0]!.url }, ['cache', 'direct'], 'edge cache');
  } finally {
    await cache.close();
    await Promise.all(replicas.map((r) => r.kill()));
  }

  // Requests per TTL: a short TTL, the replicas counting the requests that reach them.
  const shortDir = await volume(image, Date.now());
  const counted = await Promise.all(
    Array.from({ length: EDGE.replicas }, () => startFunction(fnEnv(shortDir, { IMAGE_TTL_SECONDS: String(EDGE.ttlSeconds), LOG_LEVEL: 'debug' }), { entry: code.functionEntry, cwd: code.dir })),
  );
  const front = await startEdgeCache(counted.map((r) => `127.0.0.1:${r.port}`));
  try {
    const downloads = source.downloads;
    const seconds = EDGE.ttlSeconds * EDGE.ttls;
    const reads = await autocannon(`${front.url}/`, SETTINGS.connections, seconds);
    const reached = pageRequests(counted);
    const perTtl = round(reached / EDGE.ttls, 2);
    progress(`edge cache: ${reads.requests} reads in ${seconds} s (TTL ${EDGE.ttlSeconds} s), ${reached} reached the replicas: ${perTtl} per TTL; ${source.downloads - downloads} downloads`);
    return {
      measured: true,
      version,
      replicas: EDGE.replicas,
      connections: SETTINGS.connections,
      secondsPerRound: SETTINGS.seconds,
      rounds: SETTINGS.rounds,
      ...load,
      throughputRatio: round(load.cache.reqPerSec / load.direct.reqPerSec, 3),
      perTtl: { ttlSeconds: EDGE.ttlSeconds, seconds, reads: reads.requests, reachedReplicas: reached, perTtl, downloads: source.downloads - downloads },
    };
  } finally {
    await front.close();
    await Promise.all(counted.map((r) => r.kill()));
  }
}

// ---------------------------------------------------------------- main

async function main(): Promise<void> {
  // Before anything of ours runs: the load the other work on the machine puts on it.
  const host = machine(os);
  if (!process.version.startsWith('v22.')) progress(`warning: this is Node ${process.version}, not 22 (the container's): run it with npm run bench`);
  progress(`${SHORT ? 'short' : 'full'} mode on Node ${process.version} (machine's node ${host.machineNode}), load average ${host.loadAverageAtStart.join(' ')}; building`);
  code = await build();
  progress(`built in ${Math.round(code.ms)} ms into ${code.dir}`);
  volumes = path.join(code.dir, 'volumes');
  try {
    source = await startSource({ ...IMAGE, pictures: 4 });
    const image = await makeJpeg(100, IMAGE.width, IMAGE.height, IMAGE.noise);
    progress(`image: ${image.length} bytes (makeJpeg ${IMAGE.width} x ${IMAGE.height}, noise); source pictures ${source.pictures.map((p) => p.length).join(', ')} bytes`);

    const w = await warm(image);
    const coldStartFigures = await cold(image, w.bytes.page);
    const startBurstFigures = await burstAtStart(image, w.bytes.page);
    const burstFiguresAll = await staleBurst(image);
    const refreshOriginal = await refreshCost(image, undefined);
    const refreshResized = await refreshCost(image, RESIZE_WIDTH);
    const watchdogFigures = await throughWatchdog(image);
    const edgeFigures = await behindEdgeCache(image);
    const soakFigures = await memorySoak();

    const { bytes, rss, ...warmFigures } = w;
    const results: Results = {
      date: new Date().toISOString(),
      mode: SHORT ? 'short' : 'full',
      machine: { ...host, loadAverageAtEnd: os.loadavg().map((v) => round(v, 2)) },
      loadGenerator: `autocannon 8 CLI in its own process, ${SETTINGS.connections} connections, on the same ${os.availableParallelism()}-core machine as the server`,
      image: { bytes: image.length, ...IMAGE, made: `makeJpeg(100, ${IMAGE.width}, ${IMAGE.height}, true)` },
      warm: warmFigures,
      coldStart: coldStartFigures,
      startBurst: startBurstFigures,
      staleBurst: burstFiguresAll,
      refresh: { original: refreshOriginal, resized: refreshResized },
      rss: { ...rss, afterRefreshesOriginalMb: refreshOriginal.peakRssMb, afterRefreshesResizedMb: refreshResized.peakRssMb },
      bytes,
      watchdog: watchdogFigures,
      edge: edgeFigures,
      memorySoak: soakFigures,
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
