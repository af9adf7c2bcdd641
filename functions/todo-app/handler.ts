// The OpenFaaS entry, on node22-ts's own contract: a named handle(event, context) that
// answers through the context, with its hooks (init, ready, close, maxBodyBytes). The
// official node templates take a default export instead; node22-ts runs both
// (template/node22-ts/README.md). One route serves the page; the rest is answered
// plainly and never touches a file.
import { ConfigError, loadConfig, memoryLimit, type Config } from './config.js';
import { ImageCache } from './imageCache.js';
import { createLog, type Logger } from './log.js';
import { precondition, renderUnavailable, type Page } from './page.js';
import { withoutCredentials } from './source.js';
import { Volume, volumeAdvice, type VolumeState } from './volume.js';

export interface FunctionEvent {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
}

export interface FunctionContext {
  status(code: number): FunctionContext;
  headers(values: Record<string, string | number>): FunctionContext;
  succeed(body?: string | Buffer): void;
}

let config: Config;
let log: Logger;
let cache: ImageCache;
/** LOG_LEVEL=debug logs every request with the image's age: decided once, off the hot path at info. */
let debugRequests = false;
let listeningOn: string | undefined;
let startLogged = false;
let volumeState: VolumeState;

/** This function never reads a request body: the wrapper discards bodies unread. */
export const maxBodyBytes = 0;

/** Called by the wrapper before it listens: a bad setting stops the start here. */
export async function init(start: { requestTimeoutMs?: number | undefined; maxUnsentBytes?: number } = {}): Promise<void> {
  // Node ignores SIGXFSZ so that a write past a file size limit fails with EFBIG. proper-lockfile's
  // signal-exit listens for it and re-raises it when no one else does, which kills the process
  // mid-refresh: a listener of our own keeps it a write error that the refresh logs.
  process.on('SIGXFSZ', () => undefined);
  config = loadConfig(process.env, memoryLimit, start.maxUnsentBytes ?? 0);
  checkAgainstPlatform(config, start.requestTimeoutMs);
  log = createLog(config.logLevel, config.logFile, () => {
    if (listeningOn !== undefined) logStart();
  });
  debugRequests = log.isLevelEnabled('debug');
  const volume = new Volume(config.imageDir, log);
  cache = new ImageCache(config, volume, log);
  // Side by side: the probe of the folder and the read of what it holds are independent file
  // operations, and a cold start waits for both. A folder made by state() holds nothing to read.
  const [state] = await Promise.all([volume.state(), cache.load().catch(() => false)]);
  volumeState = state;
  // Said now, before any request: a volume that cannot keep the image defeats the reason for the
  // volume, and the first download is too late to learn it. Loading pino for it costs a start only here.
  const advice = volumeAdvice(volumeState);
  if (advice !== undefined) log.warn({ ...volumeState, fix: advice }, volumeWarning(volumeState));
}

/**
 * The start line loads pino (10-16 ms of blocked event loop on Node 22): it waits for this
 * long without a request, so the requests a gateway held during a scale from zero are all
 * answered first; and for no longer than the cap, so a busy start still says it started.
 */
const START_LINE_QUIET_MS = 50;
const START_LINE_CAP_MS = 1_000;
let startTimer: NodeJS.Timeout | undefined;
let startDeadline = Infinity;

function scheduleStartLine(): void {
  clearTimeout(startTimer);
  startTimer = setTimeout(logStart, Math.max(0, Math.min(START_LINE_QUIET_MS, startDeadline - Date.now())));
}

/** Called by the wrapper once it listens. */
export function ready(listening: { url: string }): void {
  listeningOn = listening.url;
  startDeadline = Date.now() + START_LINE_CAP_MS;
  scheduleStartLine();
}

function logStart(): void {
  if (startLogged) return;
  startLogged = true;
  clearTimeout(startTimer);
  const { imageUrl, ...rest } = config;
  const age = cache.age();
  const image = { ...age, state: cache.fresh() ? 'fresh' : age.ageSeconds === undefined ? 'none' : 'stale' };
  log.info({ url: listeningOn, image, volume: volumeState, settings: { ...rest, imageUrl: withoutCredentials(imageUrl) } }, 'todo-app started');
}

function volumeWarning(volume: VolumeState): string {
  const what = volume.state === 'not creatable' ? 'cannot be created' : volume.state === 'read-only' ? 'is on a read-only file system' : 'is not writable';
  return `IMAGE_DIR ${what}; images will live in memory only`;
}

/**
 * The first visitor waits up to FETCH_TIMEOUT_MS for the image; behind of-watchdog that wait
 * must end before its exec_timeout, or the visitor gets the watchdog's empty 504 instead of our 503 page.
 */
const PLATFORM_MARGIN_MS = 1_000;

function checkAgainstPlatform(settings: Config, requestTimeoutMs: number | undefined): void {
  if (requestTimeoutMs === undefined || settings.fetchTimeoutMs <= requestTimeoutMs - PLATFORM_MARGIN_MS) return;
  throw new ConfigError(
    'FETCH_TIMEOUT_MS',
    `must be at most ${requestTimeoutMs - PLATFORM_MARGIN_MS}, 1 s below of-watchdog's exec_timeout (${requestTimeoutMs} ms), or the first visitor gets the watchdog's 504`,
    String(settings.fetchTimeoutMs),
  );
}

/** SIGTERM (every scale-down and rollout) or Ctrl-C: the refresh in flight ends, or is given up, within the platform's bound. */
export async function close(shutdown: { signal: string; withinMs: number }): Promise<void> {
  const inFlight = cache.refreshInFlight();
  log.info({ signal: shutdown.signal, refreshInFlight: inFlight, withinMs: shutdown.withinMs }, inFlight ? 'stopping: ending the refresh in flight' : 'stopping');
  await cache.close(Math.min(config.fetchTimeoutMs, shutdown.withinMs));
  log.info('stopped');
}

const TEXT = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

function send(event: FunctionEvent, context: FunctionContext, page: Page | undefined): void {
  if (page === undefined) {
    const unavailable = renderUnavailable(cache.retryAfterSeconds(), config.imageUrl, config.caching);
    context.status(503).headers(unavailable.headers).succeed(unavailable.body);
  } else {
    const verdict = precondition(event.method, event.headers, page);
    if (verdict === 'not-modified') {
      context.status(304).headers(page.notModifiedHeadersAt(Date.now())).succeed();
    } else if (verdict === 'failed') {
      context.status(412).headers({ ...TEXT, ETag: page.etag }).succeed('Precondition Failed\n');
    } else {
      context.status(200).headers(page.headersAt(Date.now())).succeed(page.body);
    }
  }
  if (!startLogged) scheduleStartLine();
}

export function handle(event: FunctionEvent, context: FunctionContext): void | Promise<void> {
  if (debugRequests) log.debug({ method: event.method, path: event.path, ...cache.age() }, 'request');
  if (event.path === '/' || event.path === '') {
    // POST too: faas-cli invoke and the OpenFaaS portal call a function with POST.
    if (event.method !== 'GET' && event.method !== 'HEAD' && event.method !== 'POST') {
      context.status(405).headers({ ...TEXT, Allow: 'GET, HEAD, POST' }).succeed('Method Not Allowed\n');
      return;
    }
    const page = cache.fresh();
    if (page !== undefined) return send(event, context, page);
    return cache.current().then((current) => send(event, context, current));
  }
  if (event.path === '/_shutdown' && config.enableShutdown) {
    // Only the course's GET: a HEAD from a probe or a link checker must never end the process.
    if (event.method !== 'GET') {
      context.status(405).headers({ ...TEXT, Allow: 'GET' }).succeed('Method Not Allowed\n');
      return;
    }
    // The course's crash test: die as a crash would, lock and all, with exit code 1.
    log.warn('GET /_shutdown: exiting with code 1 (ENABLE_SHUTDOWN=true)');
    context.status(200).headers(TEXT).succeed('Shutting down\n');
    setTimeout(() => process.exit(1), 100);
    return;
  }
  context.status(404).headers(TEXT).succeed('Not Found\n');
}
