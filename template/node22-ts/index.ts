// The HTTP wrapper of the node22-ts template: generic, it knows nothing of the
// function it serves. It keeps the OpenFaaS node contract,
// handle(event, context) with context.status(n).headers({...}).succeed(body),
// and adds what a function needs to live on a platform: init() before it
// listens, ready() once it does, close() on SIGTERM, and maxBodyBytes (0 for a
// function that never reads bodies: they are then discarded, never buffered).
//
// Under of-watchdog it follows the watchdog's own timeline (watchdog.ts): it
// listens on upstream_url's host, writes the health lock file only once it can
// answer (suppress_lock=true), and after SIGTERM answers for as long as the
// watchdog forwards, then finishes what is in flight.
import http from 'node:http';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { InFlight } from './inFlight.js';
import { healthLock, live, type ListeningInfo, type ShutdownInfo } from './lifecycle.js';
import { fatal, reportError } from './report.js';
import { DEFAULT_MAX_UNSENT_BYTES } from './unsentBodies.js';
import { readPlatform, type Platform } from './watchdog.js';

export type { ListeningInfo, ShutdownInfo };

export interface FunctionEvent {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: http.IncomingHttpHeaders;
  /** The request body, up to maxBodyBytes; undefined when there is none or the function reads none. */
  body: Buffer | undefined;
}

export interface FunctionContext {
  status(code: number): FunctionContext;
  headers(values: Record<string, string | number>): FunctionContext;
  /** A string or Buffer is sent as is; an object or array as JSON. */
  succeed(body?: string | Buffer | object): void;
  fail(error: unknown): void;
}

export interface StartInfo {
  /** of-watchdog's exec_timeout: an answer later than this is replaced by its 504. Undefined: no such bound. */
  requestTimeoutMs: number | undefined;
}

export interface FunctionModule {
  handle(event: FunctionEvent, context: FunctionContext): unknown;
  init?(start: StartInfo): Promise<void> | void;
  /** Once the wrapper listens (and has written of-watchdog's lock file). */
  ready?(listening: ListeningInfo): void;
  close?(shutdown: ShutdownInfo): Promise<void> | void;
  /** The largest body the function reads; 0: it reads none. Default 1 MiB. */
  maxBodyBytes?: number;
}

const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/**
 * A body nobody reads is read and dropped up to this much (a small POST stays a kept-alive
 * request); past it the wrapper stops reading, and TCP holds the sender back: no memory is spent
 * on it and no garbage made of it.
 */
const DISCARD_LIMIT_BYTES = 64 * 1024;
/** Then the answer goes out with Connection: close, and the connection is dropped this long after it. */
const LINGER_MS = 2_000;
/** Node's default (300 s) would let a slow upload hold a connection and its buffer for 5 minutes. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Below the request timeout: Node refuses a headers timeout above it, and its default (60 s) is. */
const HEADERS_TIMEOUT_MS = 20_000;

/** Status codes whose answers carry no body and no Content-Length (RFC 9110 6.4.1, 8.6). */
function bodiless(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200);
}

class Context implements FunctionContext {
  private code = 200;
  private values: Record<string, string | number> = {};
  private done = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly inFlight: InFlight,
  ) {}

  status(code: number): this {
    this.code = code;
    return this;
  }

  headers(values: Record<string, string | number>): this {
    // A copy: the caller's object is often a shared constant.
    this.values = { ...values };
    return this;
  }

  succeed(body?: string | Buffer | object): void {
    if (this.done) return;
    this.done = true;
    const headers: Record<string, string | number> = {};
    let typed = false;
    for (const [name, value] of Object.entries(this.values)) {
      const lower = name.toLowerCase();
      // The framing is ours: a Content-Length that is not the bytes sent breaks the kept-alive connection.
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      if (lower === 'content-type') typed = true;
      headers[name] = value;
    }
    if (bodiless(this.code)) {
      closeAfterAnswer(this.req, this.res, headers);
      this.res.writeHead(this.code, headers).end();
      return;
    }
    let payload: string | Buffer = '';
    if (typeof body === 'string' || Buffer.isBuffer(body)) payload = body;
    else if (body !== undefined) {
      payload = JSON.stringify(body);
      if (!typed) headers['Content-Type'] = 'application/json';
    }
    const bytes = Buffer.byteLength(payload);
    headers['Content-Length'] = bytes;
    closeAfterAnswer(this.req, this.res, headers);
    this.res.writeHead(this.code, headers);
    // A HEAD answer has the GET's headers and no body.
    if (this.req.method === 'HEAD') this.res.end();
    else this.inFlight.send(this.res, payload, bytes);
  }

  fail(error: unknown): void {
    if (this.done) return;
    this.done = true;
    reportError('handler failed', error);
    if (this.res.headersSent) {
      this.res.destroy();
      return;
    }
    const message = 'Internal Server Error\n';
    this.res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': message.length });
    this.res.end(this.req.method === 'HEAD' ? undefined : message);
  }
}

function pathOf(url: string): string {
  const mark = url.indexOf('?');
  return (mark === -1 ? url : url.slice(0, mark)) || '/';
}

function eventOf(req: http.IncomingMessage, body: Buffer | undefined): FunctionEvent {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const query: Record<string, string> = {};
  if (mark !== -1) {
    for (const [key, value] of new URLSearchParams(url.slice(mark + 1))) query[key] = value;
  }
  return { method: req.method ?? 'GET', path: pathOf(url), query, headers: req.headers, body };
}

function hasBody(req: http.IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new Error('body too large'));
        // Destroying the request would cut the socket before the 413 is written: stop keeping
        // the body and let it drain until the answer (Connection: close) ends the connection.
        req.removeAllListeners('data');
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

/**
 * For a function that reads no body: its bytes are read and dropped, never kept. A small body
 * ends before the answer and the connection stays reusable; past the limit the wrapper stops
 * reading and answers at once.
 */
function discardBody(req: http.IncomingMessage): Promise<void> {
  return new Promise((resolve) => {
    let seen = 0;
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen <= DISCARD_LIMIT_BYTES) return;
      req.pause();
      resolve();
    });
    req.once('end', resolve);
    req.once('error', () => resolve());
  });
}

/**
 * An answer sent while the request's body is still arriving cannot leave the connection
 * reusable: it says Connection: close, and the connection is ended once the answer is out,
 * dropped after a short linger (time for the client to read the answer before a reset).
 */
function closeAfterAnswer(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string | number>): void {
  if (req.complete || !hasBody(req)) return;
  headers.Connection = 'close';
  res.once('finish', () => {
    const socket = req.socket;
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}

/**
 * The handler, compiled beside us in function/. This file is CommonJS: require() of Node's
 * built-ins costs a fraction of an ESM import of them at start-up. A handler compiled as ESM
 * loads through require() too on Node 22, or through import() where that cannot (Node 20,
 * top-level await).
 */
async function loadFunction(): Promise<FunctionModule> {
  const file = path.join(__dirname, 'function', 'handler.js');
  try {
    return require(file) as FunctionModule;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
    return (await import(pathToFileURL(file).href)) as FunctionModule;
  }
}

/** MAX_UNSENT_BYTES: a whole number of bytes, at least 1 MiB (a page or two of the usual sizes). */
function maxUnsentBytes(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_UNSENT_BYTES;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || value < 1024 * 1024) fatal(`MAX_UNSENT_BYTES: must be a whole number of bytes, at least 1048576, got ${JSON.stringify(raw)}`);
  return value;
}

async function main(): Promise<void> {
  let platform: Platform;
  try {
    platform = readPlatform(process.env);
  } catch (error) {
    fatal((error as Error).message);
  }
  const lock = healthLock(platform);
  const inFlight = new InFlight(maxUnsentBytes(process.env.MAX_UNSENT_BYTES));

  let fn: FunctionModule;
  try {
    fn = await loadFunction();
    await fn.init?.({ requestTimeoutMs: platform.requestTimeoutMs });
  } catch (error) {
    fatal(error instanceof Error ? error.message : String(error));
  }
  const maxBodyBytes = fn.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const run = (req: http.IncomingMessage, res: http.ServerResponse, body: Buffer | undefined): void => {
    const context = new Context(req, res, inFlight);
    try {
      const result = fn.handle(eventOf(req, body), context);
      if (result instanceof Promise) result.catch((error: unknown) => context.fail(error));
    } catch (error) {
      context.fail(error);
    }
  };

  // of-watchdog's /_/health (pkg/watchdog.go makeHealthHandler), for a platform that starts us without it.
  const health = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    if (req.method !== 'GET') {
      res.writeHead(405, { 'Content-Length': 0 }).end();
      return;
    }
    if (life.closing()) res.writeHead(503, { 'Content-Length': 0 }).end();
    else res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 }).end('OK');
  };

  const server = http.createServer({ requestTimeout: REQUEST_TIMEOUT_MS, headersTimeout: HEADERS_TIMEOUT_MS }, (req, res) => {
    inFlight.track(req, res);
    if (life.stopped()) res.setHeader('Connection', 'close');
    if (!platform.watchdog && pathOf(req.url ?? '/') === '/_/health') {
      req.resume();
      health(req, res);
      return;
    }
    // A GET has no body: answer without waiting for the request stream to end.
    if (!hasBody(req)) {
      run(req, res, undefined);
      return;
    }
    if (maxBodyBytes === 0) {
      void discardBody(req).then(() => run(req, res, undefined));
      return;
    }
    readBody(req, maxBodyBytes).then(
      (body) => run(req, res, body),
      () => {
        if (!res.headersSent) res.writeHead(413, { Connection: 'close', 'Content-Length': 0 }).end();
      },
    );
  });
  // Longer than any proxy's idle timeout (of-watchdog's client drops idle connections after 500 ms):
  // the proxy closes first, so it never sends on a connection we are closing.
  server.keepAliveTimeout = 65_000;

  const life = live(server, platform, lock, inFlight, {
    ready: (listening) => fn.ready?.(listening),
    close: (shutdown) => fn.close?.(shutdown),
  });
}

void main();
