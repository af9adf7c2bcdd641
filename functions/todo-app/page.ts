// The page is the same bytes until the image changes: it is rendered once per
// image into a Buffer with its headers, and every request sends that Buffer.
import { createHash } from 'node:crypto';

export interface Page {
  body: Buffer;
  etag: string;
  headers: Record<string, string | number>;
}

export interface PageInput {
  image: Buffer;
  mime: string;
  fetchedAt: number;
  nextDueAt: number;
}

const STYLE = [
  'body{margin:0;font-family:system-ui,sans-serif;background:#f6f6f4;color:#222}',
  'main{max-width:72rem;margin:0 auto;padding:1rem}',
  'h1{font-size:1.6rem;margin:.5rem 0 1rem}',
  'img{display:block;max-width:100%;max-height:80vh;width:auto;height:auto;border-radius:4px}',
  'p{color:#555;font-size:.9rem}',
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

function shell(title: string, content: string): string {
  return (
    '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">' +
    '<meta name="viewport" content="width=device-width, initial-scale=1">' +
    // An empty data: icon keeps the browser from asking for /favicon.ico.
    `<link rel="icon" href="data:,"><title>${title}</title><style>${STYLE}</style></head>` +
    `<body><main><h1>Todo app</h1>${content}</main></body></html>\n`
  );
}

function time(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}">${iso.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}</time>`;
}

export function renderPage(input: PageInput): Page {
  const html = shell(
    'Todo app',
    `<img src="data:${input.mime};base64,${input.image.toString('base64')}" alt="The image of the hour, a random photo from Lorem Picsum">` +
      `<p>Fetched ${time(input.fetchedAt)}; the next image is due after ${time(input.nextDueAt)}.</p>`,
  );
  const body = Buffer.from(html, 'utf8');
  const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
  return {
    body,
    etag,
    headers: {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Length': body.length,
      ETag: etag,
      'Cache-Control': 'no-cache',
      ...SECURITY_HEADERS,
    },
  };
}

export function renderUnavailable(retryAfterSeconds: number): Page {
  const body = Buffer.from(
    shell(
      'Todo app: image unavailable',
      `<p>The image of the hour could not be fetched from its source yet. Please try again in ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'}.</p>`,
    ),
    'utf8',
  );
  return {
    body,
    etag: '',
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
