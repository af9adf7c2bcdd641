// Settings come from the environment only, every one optional. A value that does
// not parse stops the start: a typo in stack.yml must not become a silent default.
import os from 'node:os';
import path from 'node:path';
import { DEFAULT_STALE_IF_ERROR_SECONDS, DEFAULT_STALE_WHILE_REVALIDATE_SECONDS, type CachePolicy } from './caching.js';

export interface Config {
  imageUrl: URL;
  imageDir: string;
  ttlMs: number;
  /** Width of the page's copy of the image; undefined keeps the original. */
  imageWidth: number | undefined;
  fetchTimeoutMs: number;
  maxImageBytes: number;
  /** The most memory one decode of a picture may take (DECODE_BUDGET_BYTES, or derived from the memory limit). */
  decodeBudgetBytes: number;
  /** The memory limit the budget was derived from; undefined when DECODE_BUDGET_BYTES set it. */
  memoryLimitBytes: number | undefined;
  enableShutdown: boolean;
  logLevel: string;
  logFile: string | undefined;
  /** What the page tells caches in front: CACHE_MAX_AGE_SECONDS and the two stale windows. */
  caching: CachePolicy;
}

export class ConfigError extends Error {
  constructor(
    readonly variable: string,
    reason: string,
    value: string,
  ) {
    super(`${variable}: ${reason}, got ${JSON.stringify(value)}`);
    this.name = 'ConfigError';
  }
}

type Env = Record<string, string | undefined>;

const YEAR_SECONDS = 365 * 24 * 3600;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function read(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function wholeNumber(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = read(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) {
    throw new ConfigError(name, `must be a whole number from ${min} to ${max}`, raw);
  }
  return value;
}

function imageUrl(env: Env): URL {
  const raw = read(env, 'IMAGE_URL') ?? 'https://picsum.photos/1200';
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new ConfigError('IMAGE_URL', 'must be an absolute http or https URL', raw);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ConfigError('IMAGE_URL', 'must be an http or https URL', raw);
  }
  return url;
}

function flag(env: Env, name: string): boolean {
  const raw = read(env, name);
  if (raw === undefined) return false;
  if (/^(true|1|yes)$/i.test(raw)) return true;
  if (/^(false|0|no)$/i.test(raw)) return false;
  throw new ConfigError(name, 'must be true or false', raw);
}

const MIB = 1024 * 1024;
/**
 * What the process holds besides a decode: Node, V8's heap, got, pino, sharp and libvips
 * loaded (measured: 45-55 MiB of anonymous memory after refreshes at 600 px), with room for
 * malloc's arenas.
 */
export const PROCESS_RESERVE_BYTES = 64 * MIB;
/**
 * Copies of a picture the function holds while a new one is decoded, each up to
 * MAX_IMAGE_BYTES (a page is the picture in base64, 4/3 of it): the download's bytes, the page
 * built from them and the page still served. Older pages that slow clients still read are
 * the wrapper's to bound (its MAX_UNSENT_BYTES, passed to init()), and counted apart.
 */
export const PICTURE_COPIES = 3;

/**
 * The memory limit of this process: its cgroup's (v2 memory.max, or v1 memory.limit_in_bytes,
 * found through /proc/self/cgroup, as libuv reads it for process.constrainedMemory()), or the
 * machine's memory when there is none or it is larger.
 */
export function memoryLimit(): number {
  const constrained = process.constrainedMemory();
  const machine = os.totalmem();
  return constrained > 0 && constrained < machine ? constrained : machine;
}

/**
 * The decode budget when DECODE_BUDGET_BYTES is unset: the memory limit less what the process
 * holds anyway (PROCESS_RESERVE_BYTES, PICTURE_COPIES pictures, and what slow clients may pin:
 * `unsentBytes`, the wrapper's MAX_UNSENT_BYTES). In stack.yml's 256 MiB with the defaults
 * (MAX_IMAGE_BYTES 10 MiB, MAX_UNSENT_BYTES 32 MiB): 256 - 64 - 30 - 32 = 130 MiB. Never below
 * 0: a limit too small for the reserve refuses every picture that needs decoding, and says why.
 */
export function derivedDecodeBudget(limitBytes: number, maxImageBytes: number, unsentBytes = 0): number {
  return Math.max(0, limitBytes - PROCESS_RESERVE_BYTES - PICTURE_COPIES * maxImageBytes - unsentBytes);
}

/** `unsentBytes`: what answers queued to slow clients may pin, as the wrapper bounds it (StartInfo.maxUnsentBytes). */
export function loadConfig(env: Env = process.env, limitBytes: () => number = memoryLimit, unsentBytes = 0): Config {
  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`, logLevel);
  }
  const width = read(env, 'IMAGE_WIDTH');
  const maxImageBytes = wholeNumber(env, 'MAX_IMAGE_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024);
  const budget = read(env, 'DECODE_BUDGET_BYTES');
  const memoryLimitBytes = budget === undefined ? limitBytes() : undefined;
  return {
    imageUrl: imageUrl(env),
    imageDir: path.resolve(read(env, 'IMAGE_DIR') ?? './data/images'),
    ttlMs: wholeNumber(env, 'IMAGE_TTL_SECONDS', 600, 1, YEAR_SECONDS) * 1000,
    imageWidth: width === undefined ? undefined : wholeNumber(env, 'IMAGE_WIDTH', 0, 16, 8192),
    fetchTimeoutMs: wholeNumber(env, 'FETCH_TIMEOUT_MS', 10_000, 100, 600_000),
    maxImageBytes,
    decodeBudgetBytes:
      memoryLimitBytes === undefined ? wholeNumber(env, 'DECODE_BUDGET_BYTES', 0, 16 * MIB, 1024 * 1024 * MIB) : derivedDecodeBudget(memoryLimitBytes, maxImageBytes, unsentBytes),
    memoryLimitBytes,
    enableShutdown: flag(env, 'ENABLE_SHUTDOWN'),
    logLevel,
    logFile: read(env, 'LOG_FILE'),
    caching: {
      // Unset: until the next image is due. 0 turns caching off.
      maxAgeSeconds: read(env, 'CACHE_MAX_AGE_SECONDS') === undefined ? undefined : wholeNumber(env, 'CACHE_MAX_AGE_SECONDS', 0, 0, YEAR_SECONDS),
      staleWhileRevalidateSeconds: wholeNumber(env, 'CACHE_STALE_WHILE_REVALIDATE_SECONDS', DEFAULT_STALE_WHILE_REVALIDATE_SECONDS, 0, YEAR_SECONDS),
      staleIfErrorSeconds: wholeNumber(env, 'CACHE_STALE_IF_ERROR_SECONDS', DEFAULT_STALE_IF_ERROR_SECONDS, 0, YEAR_SECONDS),
    },
  };
}
