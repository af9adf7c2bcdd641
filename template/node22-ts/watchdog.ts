// What of-watchdog's environment means for the process it starts. The wrapper
// reads the same variables the watchdog reads, the way the watchdog reads them
// (openfaas/of-watchdog config/config.go), so both agree on every timeline:
// where to listen, when the platform stops forwarding after SIGTERM, how long a
// request may take, and who writes the health lock file.
import path from 'node:path';

export interface Platform {
  /** True when of-watchdog (http mode) forwards to us: upstream_url is set. */
  watchdog: boolean;
  /** Where to listen; undefined host means every interface. */
  host: string | undefined;
  port: number;
  /** Which variable chose the port, for the error line when it is taken. */
  portVariable: 'upstream_url' | 'http_port' | 'PORT';
  /**
   * After SIGTERM the watchdog still forwards for this long (healthcheck_interval,
   * default write_timeout). Infinity: it never stops (time.Tick of 0 or less is nil in Go).
   * 0 without a watchdog: stop accepting at once.
   */
  drainMs: number;
  /** How long the watchdog then waits for requests in flight (write_timeout); 0 without a watchdog. */
  finishMs: number;
  /**
   * exec_timeout: the watchdog answers 504 to a request that takes longer (its default 30 s);
   * without a watchdog, exec_timeout when set. Undefined when unbounded.
   */
  requestTimeoutMs: number | undefined;
  /** of-watchdog's lock file, when the function (not the watchdog) must write it: suppress_lock=true. */
  lockFile: string | undefined;
}

/** Where the function listens without a watchdog and without PORT; the image's upstream_url names the same port. */
export const DEFAULT_PORT = 3000;
/**
 * Without a watchdog the kubelet sends SIGKILL 30 s after SIGTERM (the default
 * terminationGracePeriodSeconds). The function's own work (a refresh, a volume lock) gets the
 * first 20 s; the answers it then releases, and every other answer in flight, get until 25 s to
 * leave the process: 5 s to spare before the SIGKILL.
 */
export const CLOSE_ALONE_MS = 20_000;
export const DELIVER_ALONE_MS = 25_000;
/**
 * A request the watchdog accepted just before its healthcheck_interval ended reaches us a moment
 * later: keep listening this much longer, and end the function's work this much sooner.
 */
export const WATCHDOG_MARGIN_MS = 1_000;
/**
 * The longest delay setTimeout takes (2^31 - 1 ms, 24.8 days): a longer one prints a
 * TimeoutOverflowWarning and fires after 1 ms (lib/internal/timers.js). write_timeout=720h means
 * "far away", so it is clamped to this, never turned into "now".
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

export interface ShutdownPlan {
  /** Keep accepting for this long after the signal (Infinity: until killed). */
  acceptMs: number;
  /** The function's own work (a refresh, the volume lock) must be over within this. */
  withinMs: number;
  /** Then the answers in flight get this long to leave before the process exits anyway. */
  finishMs: number;
}

const timer = (ms: number): number => Math.min(Math.max(0, ms), MAX_TIMER_MS);

/**
 * of-watchdog (PID 1 in the container) passes SIGTERM on at once, forwards for
 * healthcheck_interval, drains for up to write_timeout and exits: the function's work must be
 * over before the earliest of those exits. Without it (Knative's queue-proxy has drained
 * already, or a terminal's Ctrl-C) stop accepting at once. Every figure fits setTimeout.
 */
export function shutdownPlan(platform: Platform, signal: NodeJS.Signals): ShutdownPlan {
  if (!platform.watchdog || signal !== 'SIGTERM') return { acceptMs: 0, withinMs: CLOSE_ALONE_MS, finishMs: DELIVER_ALONE_MS };
  return {
    acceptMs: Number.isFinite(platform.drainMs) ? timer(platform.drainMs + WATCHDOG_MARGIN_MS) : Infinity,
    withinMs: Number.isFinite(platform.drainMs) ? timer(platform.drainMs - WATCHDOG_MARGIN_MS) : CLOSE_ALONE_MS,
    finishMs: timer(platform.finishMs),
  };
}

export class PlatformError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
    value: string,
  ) {
    super(`${variable}: ${reason}, got ${JSON.stringify(value)}`);
  }
}

const UNIT_NANOS: Record<string, bigint> = { ns: 1n, us: 1_000n, 'µs': 1_000n, 'μs': 1_000n, ms: 1_000_000n, s: 1_000_000_000n, m: 60_000_000_000n, h: 3_600_000_000_000n };
const MAX = 1n << 63n;

/**
 * Go's time.ParseDuration ("1m30s", "500ms", "-2h", ".5s", "0"), in milliseconds; undefined where
 * Go returns an error. A port of src/time/format.go, overflow rules and all: integers exact
 * (uint64 there, BigInt here), fractions through float64 as Go does.
 */
export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let negative = false;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    negative = rest.startsWith('-');
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let total = 0n;
  while (rest !== '') {
    // leadingInt: digits, an error past 1<<63.
    const whole = /^\d*/.exec(rest)![0];
    rest = rest.slice(whole.length);
    let value = 0n;
    for (const digit of whole) {
      value = value * 10n + BigInt(digit);
      if (value > MAX) return undefined;
    }
    // leadingFraction: digits after the dot, those that would overflow are dropped.
    let fraction = 0n;
    let scale = 1;
    let fractionDigits = -1;
    if (rest.startsWith('.')) {
      const digits = /^\.(\d*)/.exec(rest)![1]!;
      rest = rest.slice(1 + digits.length);
      fractionDigits = digits.length;
      let overflow = false;
      for (const digit of digits) {
        if (overflow) continue;
        const next = fraction * 10n + BigInt(digit);
        if (fraction > (MAX - 1n) / 10n || next > MAX) {
          overflow = true;
          continue;
        }
        fraction = next;
        scale *= 10;
      }
    }
    if (whole === '' && fractionDigits <= 0) return undefined; // no digits at all
    // The unit is every byte up to the next digit or dot.
    const unit = /^[^\d.]*/.exec(rest)![0];
    rest = rest.slice(unit.length);
    const nanos = UNIT_NANOS[unit];
    if (nanos === undefined) return undefined; // missing or unknown unit
    if (value > MAX / nanos) return undefined;
    value *= nanos;
    if (fraction > 0n) {
      value += BigInt(Math.trunc(Number(fraction) * (Number(nanos) / scale)));
      if (value > MAX) return undefined;
    }
    total += value;
    if (total > MAX) return undefined;
  }
  if (!negative && total > MAX - 1n) return undefined;
  return (negative ? -Number(total) : Number(total)) / 1e6;
}

/**
 * config.go parseIntOrDurationValue: a whole number >= 0 is seconds ("5" is 5 s),
 * else a Go duration, else the fallback (a typo silently means the default there too).
 */
export function intOrDuration(raw: string | undefined, fallbackMs: number): number {
  if (raw === undefined) return fallbackMs;
  // strconv.Atoi: an optional sign and decimal digits, nothing else.
  if (/^[+-]?\d+$/.test(raw) && Number(raw) >= 0) return Number(raw) * 1000;
  return parseGoDuration(raw) ?? fallbackMs;
}

function port(variable: string, raw: string): number {
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < 1 || value > 65535) {
    throw new PlatformError(variable, 'must be a whole number from 1 to 65535', raw);
  }
  return value;
}

/** pkg/watchdog.go: filepath.Join(os.TempDir(), ".lock"), and Go's os.TempDir on Unix is $TMPDIR, else /tmp. */
function lockFilePath(env: NodeJS.ProcessEnv): string {
  return path.join(env.TMPDIR || '/tmp', '.lock');
}

export function readPlatform(env: NodeJS.ProcessEnv): Platform {
  // config.go: http_upstream_url wins over upstream_url.
  const upstream = env.http_upstream_url ?? env.upstream_url;
  // openfaas/templates node22 index.js: `process.env.http_port || 3000`.
  const httpPort = env.http_port?.trim() || undefined;
  if (upstream === undefined || upstream.trim() === '') {
    // http_port, the official templates' own variable, wins over Knative's PORT.
    const [variable, raw] = httpPort !== undefined ? (['http_port', httpPort] as const) : (['PORT', env.PORT?.trim()] as const);
    // Nobody enforces exec_timeout here, but the image states it (Knative runs the image's ENV): honour it when set.
    const execTimeout = env.exec_timeout === undefined ? 0 : intOrDuration(env.exec_timeout, 0);
    return {
      watchdog: false,
      host: undefined,
      port: raw === undefined || raw === '' ? DEFAULT_PORT : port(variable, raw),
      portVariable: variable,
      drainMs: 0,
      finishMs: 0,
      requestTimeoutMs: execTimeout > 0 ? execTimeout : undefined,
      lockFile: undefined,
    };
  }
  let url: URL | undefined;
  try {
    url = new URL(upstream);
  } catch {
    url = undefined;
  }
  if (url?.protocol !== 'http:' || url.hostname === '') {
    throw new PlatformError('upstream_url', 'must be a URL such as http://127.0.0.1:3000', upstream);
  }
  const listenPort = url.port === '' ? 80 : port('upstream_url', url.port);
  if (httpPort !== undefined && port('http_port', httpPort) !== listenPort) {
    throw new PlatformError('http_port', `must be unset or upstream_url's port (${listenPort}), where of-watchdog forwards`, httpPort);
  }
  // config.go: every timeout defaults to 30 s; healthcheck_interval defaults to write_timeout.
  const writeTimeout = intOrDuration(env.write_timeout, 30_000);
  const interval = intOrDuration(env.healthcheck_interval, writeTimeout);
  const execTimeout = intOrDuration(env.exec_timeout, 30_000);
  // config.go getBool: exactly "true" or "1".
  const suppressLock = env.suppress_lock === 'true' || env.suppress_lock === '1';
  return {
    watchdog: true,
    // The watchdog dials upstream_url's host: listen there only (loopback), so the pod's
    // IP on this port does not bypass it.
    host: url.hostname.replace(/^\[(.*)\]$/, '$1'),
    port: listenPort,
    portVariable: 'upstream_url',
    drainMs: interval > 0 ? interval : Infinity,
    finishMs: Math.max(0, writeTimeout),
    // http_runner.go: an exec_timeout of 0 (or less) means no deadline.
    requestTimeoutMs: execTimeout > 0 ? execTimeout : undefined,
    lockFile: suppressLock ? lockFilePath(env) : undefined,
  };
}
