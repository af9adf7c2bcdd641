// The HTTP wrapper of the node22-ts template: generic, it knows nothing of the function it
// serves. Each idea is a module of its own:
//   handlerModule.ts  what function/handler.js exports: the official OpenFaaS node
//                     handler, or this template's handle(), and the hooks beside either
//   contract.ts       the event, and what a handler's return value or throw answers
//   context.ts        the context it answers with
//   bodies.ts         request bodies, as each contract reads them
//   lifecycle.ts      listen, ready (of-watchdog's lock file), SIGTERM and the other signals
//   watchdog.ts       of-watchdog's environment and timeline: port, exec_timeout, the drain
//   inFlight.ts       answers until their last byte has left; unsentBodies.ts, what they hold
//   report.ts         the wrapper's own lines on stderr
// This file wires them: one request in, one answer out.
import http from 'node:http';
import { closeAfterAnswer, discardBody, hasBody, officialBody, readBody, readBodySettings, SettingError, type BodyError, type BodySettings } from './bodies.js';
import { Context } from './context.js';
import { answerWithin, eventOf, invoke, pathOf } from './contract.js';
import { loadHandler, type Loaded } from './handlerModule.js';
import { InFlight } from './inFlight.js';
import { healthLock, live } from './lifecycle.js';
import { fatal } from './report.js';
import { DEFAULT_MAX_UNSENT_BYTES } from './unsentBodies.js';
import { readPlatform, type Platform } from './watchdog.js';

export type { FunctionContext, HeaderValues } from './context.js';
export type { FunctionEvent } from './contract.js';
export type { Callback, FunctionModule, Handler, Hooks, StartInfo } from './handlerModule.js';
export type { ListeningInfo, ShutdownInfo } from './lifecycle.js';

/** handle()'s default maxBodyBytes. */
const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;
/** Node's default (300 s) would let a slow upload hold a connection and its buffer for 5 minutes. */
const REQUEST_TIMEOUT_MS = 30_000;
/** Below the request timeout: Node refuses a headers timeout above it, and its default (60 s) is. */
const HEADERS_TIMEOUT_MS = 20_000;
/** Longer than any proxy's idle timeout (of-watchdog's client drops idle connections after 500 ms): the proxy closes first. */
const KEEP_ALIVE_TIMEOUT_MS = 65_000;

/** MAX_UNSENT_BYTES: a whole number of bytes, at least 1 MiB (a page or two of the usual sizes). */
function maxUnsentBytes(raw: string | undefined): number {
  if (raw === undefined || raw.trim() === '') return DEFAULT_MAX_UNSENT_BYTES;
  const value = Number(raw.trim());
  if (!/^\d+$/.test(raw.trim()) || value < 1024 * 1024) fatal(`MAX_UNSENT_BYTES: must be a whole number of bytes, at least 1048576, got ${JSON.stringify(raw)}`);
  return value;
}

/** The wrapper's own answer to a body it cannot take (too large, not parseable). */
function answerPlain(req: http.IncomingMessage, res: http.ServerResponse, status: number, text: string): void {
  if (res.headersSent) return;
  const headers = { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': Buffer.byteLength(text) };
  closeAfterAnswer(req, res, headers);
  res.writeHead(status, headers).end(text);
}

async function main(): Promise<void> {
  let platform: Platform;
  try {
    platform = readPlatform(process.env);
  } catch (error) {
    fatal((error as Error).message);
  }
  const lock = healthLock(platform);
  const unsentBound = maxUnsentBytes(process.env.MAX_UNSENT_BYTES);
  const inFlight = new InFlight(unsentBound);

  let loaded: Loaded;
  try {
    loaded = await loadHandler(__dirname);
    await loaded.hooks.init?.({ requestTimeoutMs: platform.requestTimeoutMs, maxUnsentBytes: unsentBound });
  } catch (error) {
    fatal(error instanceof Error ? error.message : String(error));
  }
  const { hooks } = loaded;
  const official = loaded.kind === 'official';
  let bodySettings: BodySettings;
  try {
    bodySettings = readBodySettings(process.env);
  } catch (error) {
    fatal(error instanceof SettingError ? error.message : String(error));
  }
  const maxBodyBytes = hooks.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;

  const run = (req: http.IncomingMessage, res: http.ServerResponse, body: unknown): void => {
    const context = new Context(req, res, inFlight);
    const event = eventOf(req, body);
    invoke(loaded, event, context);
    answerWithin(context, res, platform.requestTimeoutMs, event);
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
    if (official) {
      // index.js: a request without a Content-Type is taken as text/plain, in the event's headers too.
      req.headers['content-type'] ||= 'text/plain';
      officialBody(req, res, bodySettings).then(
        (body) => run(req, res, body),
        // body-parser's http-errors: 413 past the limit, 400 for a body its type cannot parse, 415 for a charset it cannot read.
        (error: BodyError) => answerPlain(req, res, error.status ?? 400, `${error.expose === false ? http.STATUS_CODES[error.status] : error.message}\n`),
      );
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
      () => answerPlain(req, res, 413, 'Payload Too Large\n'),
    );
  });
  server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;

  const life = live(server, platform, lock, inFlight, {
    ready: (listening) => hooks.ready?.(listening),
    close: (shutdown) => hooks.close?.(shutdown),
  });
}

void main();
