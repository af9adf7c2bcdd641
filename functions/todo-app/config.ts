// Settings come from the environment only, every one optional. A value that does
// not parse stops the start: a typo in stack.yml must not become a silent default.
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

export function loadConfig(env: Env = process.env): Config {
  const logLevel = read(env, 'LOG_LEVEL') ?? 'info';
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}`, logLevel);
  }
  const width = read(env, 'IMAGE_WIDTH');
  return {
    imageUrl: imageUrl(env),
    imageDir: path.resolve(read(env, 'IMAGE_DIR') ?? './data/images'),
    ttlMs: wholeNumber(env, 'IMAGE_TTL_SECONDS', 600, 1, YEAR_SECONDS) * 1000,
    imageWidth: width === undefined ? undefined : wholeNumber(env, 'IMAGE_WIDTH', 0, 16, 8192),
    fetchTimeoutMs: wholeNumber(env, 'FETCH_TIMEOUT_MS', 10_000, 100, 600_000),
    maxImageBytes: wholeNumber(env, 'MAX_IMAGE_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
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
