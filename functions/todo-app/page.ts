// The page is the same bytes until the image changes: it is rendered once per
// image into a Buffer with its headers, and every request sends that Buffer.
import { createHash } from 'node:crypto';
import type fresh from 'fresh';
import { DEFAULT_CACHE_POLICY, pageCacheControl, secondsLeft, unavailableCacheControl, type CachePolicy } from './caching.js';

export type HeaderValues = Record<string, string | number>;

export interface Page {
  body: Buffer;
  etag: string;
  /** The download time in whole seconds, as Last-Modified says it. */
  lastModified: number;
  /** When the next image is due: the download time plus the TTL. */
  expiresAt: number;
  /** The 200's headers at `now`; Cache-Control counts the seconds left, so the set is rebuilt at most once a second. */
  headersAt(now: number): HeaderValues;
  /** The 304's at `now`: the validators and the same Cache-Control (RFC 9110 15.4.5). */
  notModifiedHeadersAt(now: number): HeaderValues;
}

/** The 503 page: no image to show yet. */
export interface Unavailable {
  body: Buffer;
  headers: HeaderValues;
}

export interface PageInput {
  image: Buffer;
  mime: string;
  fetchedAt: number;
  /** IMAGE_TTL_SECONDS: the page says how often the photo changes. */
  ttlMs: number;
  /** IMAGE_URL: the page names where the photo comes from. */
  source: URL;
  /** Lorem Picsum's id of the photo (its Picsum-ID header), when the source gave one. */
  photoId?: string | undefined;
  /** The CACHE_* settings: what caches in front are told (caching.ts). */
  caching?: CachePolicy | undefined;
}

/** The page's background: the resized copy lays a transparent picture on it (picture.ts). */
export const PAGE_BACKGROUND = '#f6f6f4';

const STYLE = [
  `body{margin:0;font-family:system-ui,sans-serif;background:${PAGE_BACKGROUND};color:#222}`,
  'main{max-width:72rem;margin:0 auto;padding:1rem;text-align:center}',
  'h1{font-size:1.6rem;margin:.5rem 0 .25rem}',
  '.lede{margin:0 0 1rem;color:#444}',
  'figure{margin:0}',
  'img{display:block;margin:0 auto;max-width:100%;max-height:80vh;width:auto;height:auto;border-radius:4px}',
  'figcaption,p{color:#555;font-size:.9rem}',
  'figcaption{margin-top:.5rem}',
  'a{color:inherit}',
  'footer{margin-top:1.5rem;color:#777;font-size:.8rem}',
].join('');

const styleHash = createHash('sha256').update(STYLE).digest('base64');

/** Only inline data images and this page's own style; nothing to fetch, nothing to run. */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'",
  'img-src data:',
  `style-src 'sha256-${styleHash}'`,
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'Referrer-Policy': 'no-referrer',
};

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** What the page is, in its heading and, before the app's name, in its title. */
const HEADING = 'Random photo';
const APP = 'todo-app';

/** Every page the function sends: what it is on top, whose it is at the foot. */
function shell(title: string, content: string, head = ''): string {
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    head +
    // An empty data: icon keeps the browser from asking for /favicon.ico.
    `<link rel="icon" href="data:,"><title>${title} · ${APP}</title><style>${STYLE}</style></head>` +
    `<body><main><h1>${HEADING}</h1>${content}<footer>${APP}, the project of the DevOps with Kubernetes course</footer></main></body></html>\n`
  );
}

function time(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`;
}

/** "every 10 minutes", "every hour", "every 90 seconds": how the TTL reads. */
export function every(ttlMs: number): string {
  const seconds = Math.round(ttlMs / 1000);
  const [count, unit] = seconds % 3600 === 0 ? [seconds / 3600, 'hour'] : seconds % 60 === 0 ? [seconds / 60, 'minute'] : [seconds, 'second'];
  return count === 1 ? `every ${unit}` : `every ${count} ${unit}s`;
}

/** The source by name: Lorem Picsum for picsum.photos, else its host. */
export function sourceName(source: URL): string {
  return source.hostname === 'picsum.photos' ? 'Lorem Picsum' : source.host;
}

/** Lorem Picsum's ids are small numbers; anything else from a header or the volume is not shown. */
export function photoIdOf(value: unknown): string | undefined {
  return typeof value === 'string' && /^\d{1,10}$/.test(value) ? value : undefined;
}

/** HTTP dates have whole seconds: Last-Modified and If-Modified-Since compare in seconds. */
function httpDate(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toUTCString();
}

export function renderPage(input: PageInput): Page {
  const from = escape(sourceName(input.source));
  // Picsum's image answers name the photo, not its author: its info page does, so link there.
  const id = photoIdOf(input.photoId);
  const credit =
    id === undefined
      ? `A photo from ${from}`
      : input.source.hostname === 'picsum.photos'
        ? `Photo ${id} from Lorem Picsum (<a href="https://picsum.photos/id/${id}/info">author and source</a>)`
        : `Photo ${id} from ${from}`;
  const html = shell(
    HEADING,
    `<p class="lede">A new photo from ${from} ${every(input.ttlMs)}.</p>` +
      `<figure><img src="data:${input.mime};base64,${input.image.toString('base64')}" alt="A random photo from ${from}">` +
      `<figcaption>${credit}, fetched ${time(input.fetchedAt)}. The first visit after ${time(input.fetchedAt + input.ttlMs)} brings the next one.</figcaption></figure>`,
  );
  const body = Buffer.from(html, 'utf8');
  // The bytes name the page: the same image with the same settings is the same ETag on every replica.
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  // Never in the future (RFC 9110 8.8.2.1): a download time a little ahead of this clock, from a
  // replica whose clock runs ahead, is said as now.
  const modified = Math.min(input.fetchedAt, Date.now());
  const lastModified = httpDate(modified);
  const base: HeaderValues = {
    'Content-Type': 'text/html; charset=utf-8',
    'Content-Length': body.length,
    ETag: etag,
    'Last-Modified': lastModified,
    ...SECURITY_HEADERS,
  };
  const caching = input.caching ?? DEFAULT_CACHE_POLICY;
  const expiresAt = input.fetchedAt + input.ttlMs;
  // The hot path sends one of these two objects as they are; a new pair once a second at most.
  let left = NaN;
  let full: HeaderValues = base;
  let validators: HeaderValues = base;
  const at = (now: number): void => {
    const seconds = secondsLeft(caching, expiresAt, now);
    if (seconds === left) return;
    left = seconds;
    const cacheControl = pageCacheControl(caching, seconds);
    full = { ...base, 'Cache-Control': cacheControl };
    validators = { ETag: etag, 'Last-Modified': lastModified, 'Cache-Control': cacheControl };
  };
  return {
    body,
    etag,
    lastModified: Math.floor(modified / 1000) * 1000,
    expiresAt,
    headersAt(now) {
      at(now);
      return full;
    },
    notModifiedHeadersAt(now) {
      at(now);
      return validators;
    },
  };
}

export function renderUnavailable(retryAfterSeconds: number, source: URL, caching: CachePolicy = DEFAULT_CACHE_POLICY): Unavailable {
  const wait = `${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}`;
  const body = Buffer.from(
    shell(
      `${HEADING} unavailable`,
      `<p>The photo could not be fetched from ${escape(sourceName(source))} yet. This page tries again in ${wait}.</p>`,
      // A refresh without script: the CSP allows none.
      `<meta http-equiv="refresh" content="${retryAfterSeconds}">`,
    ),
    'utf8',
  );
  return {
    body,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      'Retry-After': retryAfterSeconds,
      'Cache-Control': unavailableCacheControl(caching, retryAfterSeconds),
      ...SECURITY_HEADERS,
    },
  };
}

const DAY = '(Mon|Tue|Wed|Thu|Fri|Sat|Sun)';
const MONTH = '(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)';
const TIME = '\\d\\d:\\d\\d:\\d\\d';
/** RFC 9110 5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must still read. */
const HTTP_DATE = [
  new RegExp(`^${DAY}, \\d\\d ${MONTH} \\d{4} ${TIME} GMT$`),
  new RegExp(`^(Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), \\d\\d-${MONTH}-\\d\\d ${TIME} GMT$`),
  new RegExp(`^${DAY} ${MONTH} [ \\d]\\d ${TIME} \\d{4}$`),
];

/** An HTTP-date as an IMF-fixdate, or undefined for anything else ("2027", "yesterday"): a recipient ignores those. */
export function httpDateOf(value: string | undefined): string | undefined {
  if (value === undefined || !HTTP_DATE.some((form) => form.test(value))) return undefined;
  // asctime carries no zone: it is GMT, never the local time of whoever reads it.
  const ms = Date.parse(value.endsWith('GMT') ? value : `${value} GMT`);
  return Number.isNaN(ms) ? undefined : new Date(ms).toUTCString();
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value.join(', ') : value;
}

let freshLoaded: typeof fresh | undefined;

function freshModule(): typeof fresh {
  freshLoaded ??= require('fresh') as typeof fresh;
  return freshLoaded;
}

/**
 * What the conditional headers make of a request for the page (RFC 9110 13.1-13.2): 'not-modified'
 * (304) only for GET and HEAD; 'failed' (412) when another method carries an If-None-Match that
 * matches; else 'send'. jshttp's fresh (Express and Koa's) makes the GET/HEAD decision, with two
 * points of RFC 9110 settled before it: If-Modified-Since counts only as a valid HTTP-date (fresh
 * takes anything Date.parse reads, "2027" included), and a request's Cache-Control: no-cache is not
 * passed (fresh then answers 200, where 13.1.2 says an origin MUST answer 304).
 */
export function precondition(method: string, headers: Record<string, string | string[] | undefined>, page: Page): 'send' | 'not-modified' | 'failed' {
  const noneMatch = single(headers['if-none-match']);
  // Most requests carry neither validator: no need to load fresh (2 ms of a cold start) for them.
  if (noneMatch === undefined && headers['if-modified-since'] === undefined) return 'send';
  const fresh = freshModule();
  const representation = { etag: page.etag, 'last-modified': httpDate(page.lastModified) };
  if (method !== 'GET' && method !== 'HEAD') {
    // 13.1.3: If-Modified-Since only for GET and HEAD; 13.1.2: a false If-None-Match is a 412 for the rest.
    return noneMatch !== undefined && fresh({ 'if-none-match': noneMatch }, representation) ? 'failed' : 'send';
  }
  // 13.1.3: If-Modified-Since is ignored when If-None-Match is sent.
  const modifiedSince = noneMatch === undefined ? httpDateOf(single(headers['if-modified-since'])?.trim()) : undefined;
  return fresh({ 'if-none-match': noneMatch, 'if-modified-since': modifiedSince }, representation) ? 'not-modified' : 'send';
}
