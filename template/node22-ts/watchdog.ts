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
  portVariable: 'upstream_url' | 'PORT';
  /**
   * After SIGTERM the watchdog still forwards for this long (healthcheck_interval,
   * default write_timeout). Infinity: it never stops (time.Tick of 0 or less is nil in Go).
   * 0 without a watchdog: stop accepting at once.
   */
  drainMs: number;
  /** How long the watchdog then waits for requests in flight (write_timeout); 0 without a watchdog. */
  finishMs: number;
  /** exec_timeout: the watchdog answers 504 to a request that takes longer; undefined when unbounded. */
  requestTimeoutMs: number | undefined;
  /** of-watchdog's lock file, when the function (not the watchdog) must write it: suppress_lock=true. */
  lockFile: string | undefined;
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

const NANOS: Record<string, number> = { ns: 1, us: 1e3, 'µs': 1e3, 'μs': 1e3, ms: 1e6, s: 1e9, m: 60e9, h: 3600e9 };

/** Go's time.ParseDuration ("1m30s", "500ms", "-2h", "0"), in milliseconds; undefined where Go returns an error. */
export function parseGoDuration(text: string): number | undefined {
  let rest = text;
  let sign = 1;
  if (rest.startsWith('-') || rest.startsWith('+')) {
    sign = rest.startsWith('-') ? -1 : 1;
    rest = rest.slice(1);
  }
  if (rest === '0') return 0;
  if (rest === '') return undefined;
  let nanos = 0;
  while (rest !== '') {
    const part = /^(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)/.exec(rest);
    // Go requires a digit before or after the dot, and a unit after every number.
    if (!part || (part[1] === '' && (part[2] ?? '') === '')) return undefined;
    nanos += Number(`${part[1] || '0'}.${part[2] || '0'}`) * NANOS[part[3]!]!;
    rest = rest.slice(part[0].length);
  }
  // Go's Duration is an int64 of nanoseconds: larger values are an error.
  if (nanos > 2 ** 63 - 1) return undefined;
  return (sign * nanos) / 1e6;
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
  if (upstream === undefined || upstream.trim() === '') {
    const raw = env.PORT?.trim();
    return {
      watchdog: false,
      host: undefined,
      port: raw === undefined || raw === '' ? 3000 : port('PORT', raw),
      portVariable: 'PORT',
      drainMs: 0,
      finishMs: 0,
      requestTimeoutMs: undefined,
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
    port: url.port === '' ? 80 : port('upstream_url', url.port),
    portVariable: 'upstream_url',
    drainMs: interval > 0 ? interval : Infinity,
    finishMs: Math.max(0, writeTimeout),
    // http_runner.go: an exec_timeout of 0 (or less) means no deadline.
    requestTimeoutMs: execTimeout > 0 ? execTimeout : undefined,
    lockFile: suppressLock ? lockFilePath(env) : undefined,
  };
}
