// Request bodies, read the way each handler contract reads them.
//
// The official contract (openfaas/templates template/node22/index.js) parses a body with
// body-parser by its Content-Type: text/* as a string, application/json as JSON,
// application/x-www-form-urlencoded as an object (extended: qs), each up to 100kb; with
// RAW_BODY=true every type as a Buffer up to MAX_RAW_SIZE; JSON up to MAX_JSON_SIZE. A request
// without a Content-Type is taken as text/plain. body-parser and its dependencies load on the
// first request that has a body: a GET-only function never pays for them.
//
// The named `handle` contract (this template's) gets the raw bytes as a Buffer, up to the
// function's maxBodyBytes; 0 means the body is never kept.
import type http from 'node:http';

/** body-parser's own default limit, the official template's for every parser. */
const DEFAULT_LIMIT = '100kb';

/**
 * A body nobody reads is read and dropped up to this much (a small POST stays a kept-alive
 * request); past it the wrapper stops reading, and TCP holds the sender back: no memory is spent
 * on it and no garbage made of it.
 */
const DISCARD_LIMIT_BYTES = 64 * 1024;
/** Then the answer goes out with Connection: close, and the connection is dropped this long after it. */
const LINGER_MS = 2_000;

export interface BodySettings {
  /** RAW_BODY=true: every body as a Buffer. */
  raw: boolean;
  rawLimit: string | number;
  jsonLimit: string | number;
}

export class SettingError extends Error {}

/** RAW_BODY, MAX_RAW_SIZE, MAX_JSON_SIZE as the official template reads them; a size bytes cannot parse stops the start. */
export function readBodySettings(env: NodeJS.ProcessEnv): BodySettings {
  const size = (variable: string): string => {
    const raw = env[variable];
    // index.js: `process.env.MAX_RAW_SIZE || defaultMaxSize`.
    if (!raw) return DEFAULT_LIMIT;
    // body-parser reads the limit with bytes.parse, and a value it cannot read (null) means no
    // limit at all: refused here instead.
    const bytes = require('bytes') as { parse(value: string): number | null };
    const parsed = bytes.parse(raw);
    if (parsed === null || !Number.isFinite(parsed) || parsed < 0) {
      throw new SettingError(`${variable}: must be a size such as 100kb, 512kb or 5mb, got ${JSON.stringify(raw)}`);
    }
    return raw;
  };
  return { raw: env.RAW_BODY === 'true', rawLimit: size('MAX_RAW_SIZE'), jsonLimit: size('MAX_JSON_SIZE') };
}

type Middleware = (req: http.IncomingMessage, res: http.ServerResponse, next: (error?: unknown) => void) => void;

interface BodyParser {
  json(options: { limit: string | number }): Middleware;
  raw(options: { type: string; limit: string | number }): Middleware;
  text(options: { type: string }): Middleware;
  urlencoded(options: { extended: boolean }): Middleware;
}

/** A body-parser error: http-errors with the status to answer (400, 413, 415) and whether its message may be shown. */
export interface BodyError {
  status: number;
  expose: boolean;
  message: string;
}

let parsers: Middleware[] | undefined;

/** The official template's middleware chain, built on first use. */
function officialParsers(settings: BodySettings): Middleware[] {
  if (parsers === undefined) {
    const bodyParser = require('body-parser') as BodyParser;
    parsers = settings.raw
      ? [bodyParser.raw({ type: '*/*', limit: settings.rawLimit })]
      : [bodyParser.text({ type: 'text/*' }), bodyParser.json({ limit: settings.jsonLimit }), bodyParser.urlencoded({ extended: true })];
  }
  return parsers;
}

/**
 * The official event's body: parsed by type, undefined when the request has none or no parser
 * takes its type. Rejects with a BodyError.
 */
export function officialBody(req: http.IncomingMessage, res: http.ServerResponse, settings: BodySettings): Promise<unknown> {
  // type-is hasBody, body-parser's test: a Content-Length (even 0) or a Transfer-Encoding.
  if (req.headers['transfer-encoding'] === undefined && req.headers['content-length'] === undefined) return Promise.resolve(undefined);
  const chain = officialParsers(settings);
  const parsed = req as http.IncomingMessage & { body?: unknown };
  return new Promise((resolve, reject) => {
    const step = (at: number): void => {
      if (at === chain.length) {
        resolve(parsed.body);
        return;
      }
      chain[at]!(req, res, (error?: unknown) => (error === undefined ? step(at + 1) : reject(error)));
    };
    step(0);
  });
}

export function hasBody(req: http.IncomingMessage): boolean {
  return req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
}

export function readBody(req: http.IncomingMessage, limit: number): Promise<Buffer> {
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
export function discardBody(req: http.IncomingMessage): Promise<void> {
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
export function closeAfterAnswer(req: http.IncomingMessage, res: http.ServerResponse, headers: Record<string, string | number | string[]>): void {
  if (req.complete || !hasBody(req)) return;
  headers.Connection = 'close';
  res.once('finish', () => {
    const socket = req.socket;
    socket.end();
    setTimeout(() => socket.destroy(), LINGER_MS).unref();
  });
}
