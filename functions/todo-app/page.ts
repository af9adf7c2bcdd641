// The page is the same bytes until the image changes: it is rendered once per
// image into a Buffer with its headers, and every request sends that Buffer.
import { createHash } from 'node:crypto';

export interface Page {
  body: Buffer;
  etag: string;
  /** The download time in whole seconds, as Last-Modified says it. */
  lastModified: number;
  headers: Record<string, string | number>;
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
}

const STYLE = [
  'body{margin:0;font-family:system-ui,sans-serif;background:#f6f6f4;color:#222}',
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
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return {
    body,
    etag,
    lastModified: Math.floor(input.fetchedAt / 1000) * 1000,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      ETag: etag,
      'Last-Modified': httpDate(input.fetchedAt),
      'Cache-Control': 'no-cache',
      ...SECURITY_HEADERS,
    },
  };
}

export function renderUnavailable(retryAfterSeconds: number, source: URL): Page {
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
    etag: '',
    lastModified: 0,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      'Retry-After': retryAfterSeconds,
      'Cache-Control': 'no-store',
      ...SECURITY_HEADERS,
    },
  };
}

/** True when an If-None-Match header names this ETag (weak comparison, RFC 9110 13.1.2). */
export function matchesEtag(header: string | undefined, etag: string): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  return header.split(',').some((tag) => tag.trim().replace(/^W\//, '') === etag);
}

/**
 * Whether the client's copy is current (RFC 9110 13.2.2): If-None-Match decides when it is
 * sent; otherwise If-Modified-Since, a valid HTTP date not before Last-Modified.
 */
export function notModified(headers: Record<string, string | string[] | undefined>, page: Page): boolean {
  const inm = headers['if-none-match'];
  if (inm !== undefined) return matchesEtag(Array.isArray(inm) ? inm.join(',') : inm, page.etag);
  const ims = headers['if-modified-since'];
  if (typeof ims !== 'string') return false;
  const since = Date.parse(ims);
  return !Number.isNaN(since) && page.lastModified <= since;
}
