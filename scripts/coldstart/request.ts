// One timed GET with node:http, no client library in between: the figures are
// what a browser on a fresh connection would see. A new socket per request
// (agent: false) because a cold start is met by a new connection, and the warm
// figure is only comparable if it pays the same connect.
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import { ToolError } from './errors.ts';

export interface PageTiming {
  /** From the start of the request to the response headers (the first byte). */
  ttfbMs: number;
  /** From the start of the request to the last byte of the body. */
  totalMs: number;
  status: number;
  contentType: string;
  bytes: number;
}


export interface GetOptions {
  timeoutMs: number;
  headers?: Record<string, string>;
  /** Count time from this performance.now() instead of the request start (local mode: from spawn). */
  startedAt?: number;
}

interface RawAnswer {
  ttfbMs: number;
  totalMs: number;
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export function rawGet(url: string, options: GetOptions): Promise<RawAnswer> {
  const target = new URL(url);
  const client = target.protocol === 'https:' ? https : http;
  const started = options.startedAt ?? performance.now();
  return new Promise((resolve, reject) => {
    const req = client.get(target, { agent: false, headers: { 'User-Agent': 'todo-app-coldstart', ...options.headers } }, (res) => {
      const ttfbMs = performance.now() - started;
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ ttfbMs, totalMs: performance.now() - started, status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }),
      );
      res.on('error', reject);
    });
    req.setTimeout(options.timeoutMs, () => req.destroy(new ToolError(`no answer from ${url} within ${options.timeoutMs} ms`, 'ETIMEDOUT')));
    req.on('error', reject);
  });
}

/** GETs the page and checks it is one: 200 and text/html. Every failure is a ToolError. */
export async function timePage(url: string, options: GetOptions): Promise<PageTiming> {
  let answer: RawAnswer;
  try {
    answer = await rawGet(url, options);
  } catch (error) {
    if (error instanceof ToolError) throw error;
    throw new ToolError(describeNetworkError(error, url) ?? `GET ${url} failed: ${(error as Error).message}`, 'EREQUEST');
  }
  const contentType = String(answer.headers['content-type'] ?? '');
  if (answer.status !== 200 || !contentType.startsWith('text/html')) {
    const excerpt = answer.body.subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim();
    throw new ToolError(
      `GET ${url} answered ${answer.status} ${contentType || '(no content-type)'}, expected 200 text/html${excerpt ? `: ${excerpt}` : ''}`,
      'ENOTPAGE',
    );
  }
  return { ttfbMs: answer.ttfbMs, totalMs: answer.totalMs, status: answer.status, contentType, bytes: answer.body.length };
}

/** The first answer of a cold run, whatever it was, and the page that came after it. */
export interface ColdTiming extends PageTiming {
  /** The first answer: a 200 page, or a 5xx or 3xx the platform gave before the function could answer. */
  first: { status: number; ttfbMs: number };
  /** The status of every answer before the 200 page, in order (connections refused are no answer). */
  before: number[];
}

export interface UntilPageOptions extends GetOptions {
  /** Pause between a non-page answer and the next request. */
  retryMs: number;
  /** Give up this long after the start (startedAt, or the first request). */
  boundMs: number;
  /** Connection errors that mean "nothing listens yet" (local mode) rather than a failure. */
  notYet?: (error: NodeJS.ErrnoException) => boolean;
}

/**
 * GETs until a 200 text/html page comes, each time on a new connection, and times
 * both the first answer (a platform may answer 500 or 503 while the function starts,
 * or 3xx) and the page, from `startedAt` (default: the first request's start).
 */
export async function untilPage(url: string, options: UntilPageOptions): Promise<ColdTiming> {
  const startedAt = options.startedAt ?? performance.now();
  const before: number[] = [];
  let first: ColdTiming['first'] | undefined;
  for (;;) {
    let answer: RawAnswer | undefined;
    try {
      answer = await rawGet(url, { ...options, startedAt });
    } catch (error) {
      if (error instanceof ToolError) throw error;
      if (!options.notYet?.(error as NodeJS.ErrnoException)) {
        throw new ToolError(describeNetworkError(error, url) ?? `GET ${url} failed: ${(error as Error).message}`, 'EREQUEST');
      }
    }
    if (answer !== undefined) {
      first ??= { status: answer.status, ttfbMs: answer.ttfbMs };
      const contentType = String(answer.headers['content-type'] ?? '');
      if (answer.status === 200 && contentType.startsWith('text/html')) {
        return { ttfbMs: answer.ttfbMs, totalMs: answer.totalMs, status: 200, contentType, bytes: answer.body.length, first, before };
      }
      before.push(answer.status);
      if (answer.status === 200 || (answer.status >= 400 && answer.status < 500 && answer.status !== 429)) {
        // Not a platform still starting the function: waiting would not help.
        const excerpt = answer.body.subarray(0, 200).toString('utf8').replace(/\s+/g, ' ').trim();
        throw new ToolError(`GET ${url} answered ${answer.status} ${contentType || '(no content-type)'}, expected 200 text/html${excerpt ? `: ${excerpt}` : ''}`, 'ENOTPAGE');
      }
    }
    if (performance.now() - startedAt > options.boundMs) {
      throw new ToolError(`no 200 page from ${url} within ${Math.round(options.boundMs / 1000)} s${before.length ? `; answers: ${before.join(', ')}` : ''}`, 'ETIMEDOUT');
    }
    await new Promise((resolve) => setTimeout(resolve, options.retryMs));
  }
}

/** A connection error worth a plain sentence (host down, wrong port, DNS). */
export function describeNetworkError(error: unknown, url: string): string | undefined {
  const code = (error as NodeJS.ErrnoException).code;
  switch (code) {
    case 'ECONNREFUSED':
      return `cannot connect to ${url}: connection refused (is the URL right and the port open?)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `cannot resolve the host of ${url}`;
    case 'ECONNRESET':
      return `the connection to ${url} was reset`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return `cannot reach ${url}: no route to host`;
    case 'ETIMEDOUT':
      return (error as Error).message;
    default:
      return undefined;
  }
}
