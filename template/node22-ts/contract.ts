// The handler contract: what function/handler.js may export, the event it is given, the
// context it answers with, and what its return value means.
//
// The official OpenFaaS node contract (openfaas/templates template/node22/index.js, and
// docs.openfaas.com/languages/node): module.exports, or export default, is
// (event, context, callback) => value. A value it returns is the body when it has not called
// context.succeed() or fail(); the event's body is parsed by Content-Type (bodies.ts).
//
// This template's own contract, kept for the functions written for it (todo-app): a named
// export handle(event, context), whose event.body is the raw Buffer (maxBodyBytes), and which
// answers only through the context. The lifecycle hooks (init, ready, close, maxBodyBytes) are
// named exports under either contract.
import type http from 'node:http';
import path from 'node:path';
import querystring from 'node:querystring';
import { pathToFileURL } from 'node:url';
import { closeAfterAnswer } from './bodies.js';
import type { InFlight } from './inFlight.js';
import type { ListeningInfo, ShutdownInfo } from './lifecycle.js';
import { reportError } from './report.js';

export interface FunctionEvent<Body = unknown> {
  /** Official handlers: parsed by Content-Type. handle(): the raw bytes, or undefined. */
  body: Body;
  headers: http.IncomingHttpHeaders;
  method: string;
  /** The query string as node:querystring reads it (Express 5's "simple" parser): a repeated key gives an array. */
  query: Record<string, string | string[] | undefined>;
  path: string;
}

export type HeaderValues = Record<string, string | number | string[]>;

export interface FunctionContext {
  /** Without an argument: the status set so far (200 by default). */
  status(): number;
  status(code: number): FunctionContext;
  /** Without an argument: the headers set so far. */
  headers(): HeaderValues;
  headers(values: HeaderValues): FunctionContext;
  /** Strings as they are, Buffers as bytes, anything else as JSON. */
  succeed(value?: unknown): void;
  /** The status (500 unless another error status was set) and the error's text. */
  fail(error?: unknown): void;
}

export type Callback = (error: unknown, value?: unknown) => void;

/** openfaas/templates node22: module.exports = async (event, context, callback) => value. */
export type Handler = (event: FunctionEvent, context: FunctionContext, callback: Callback) => unknown;

export interface StartInfo {
  /** The request deadline: of-watchdog's exec_timeout. Undefined: no such bound. */
  requestTimeoutMs: number | undefined;
}

export interface Hooks {
  init?(start: StartInfo): Promise<void> | void;
  /** Once the wrapper listens (and has written of-watchdog's lock file). */
  ready?(listening: ListeningInfo): void;
  close?(shutdown: ShutdownInfo): Promise<void> | void;
  /** handle() only: the largest body the function reads; 0: it reads none. Default 1 MiB. */
  maxBodyBytes?: number;
}

/** This template's own contract: handle(event, context), answering only through the context. */
export interface FunctionModule extends Hooks {
  handle(event: FunctionEvent<Buffer | undefined>, context: FunctionContext): unknown;
}

export type Loaded =
  | { kind: 'official'; handler: Handler; hooks: Hooks }
  | { kind: 'handle'; handler: FunctionModule['handle']; hooks: Hooks };

export class ContractError extends Error {}

/**
 * The handler, compiled beside the wrapper in function/. The wrapper is CommonJS (require() of
 * Node's built-ins costs a fraction of an ESM import of them at start-up); a handler compiled
 * as ESM loads through require() too on Node 22, or through import() where that cannot
 * (top-level await).
 */
export async function loadHandler(dir: string): Promise<Loaded> {
  const file = path.join(dir, 'function', 'handler.js');
  let module: unknown;
  try {
    module = require(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
    module = await import(pathToFileURL(file).href);
  }
  return pick(module, path.relative(dir, file));
}

/** What a module exports, in the start's error line. */
function described(module: unknown): string {
  if (typeof module === 'function') return 'a function';
  if (module === null || typeof module !== 'object') return JSON.stringify(module) ?? String(module);
  const names = Object.keys(module).filter((name) => name !== '__esModule');
  return names.length === 0 ? 'nothing' : names.map((name) => `${name} (${typeof (module as Record<string, unknown>)[name]})`).join(', ');
}

function pick(module: unknown, file: string): Loaded {
  const exported = module as Record<string, unknown> | null | undefined;
  // module.exports = fn (CommonJS), or export default fn (ESM, or TypeScript compiled to CommonJS).
  const official = typeof module === 'function' ? module : typeof exported?.default === 'function' ? exported.default : undefined;
  const handle = typeof exported?.handle === 'function' ? exported.handle : undefined;
  const hooks = (exported ?? {}) as Hooks;
  if (official !== undefined && handle !== undefined && official !== handle) {
    throw new ContractError(`${file}: two handlers, a default export (module.exports or export default) and handle(): export one of them`);
  }
  if (official !== undefined) return { kind: 'official', handler: official as Handler, hooks };
  if (handle !== undefined) return { kind: 'handle', handler: handle as FunctionModule['handle'], hooks };
  throw new ContractError(
    `${file}: no handler: export a function (module.exports = async (event, context) => ..., or export default), or a function named handle; it exports ${described(module)}`,
  );
}

function pathOf(url: string): string {
  const mark = url.indexOf('?');
  return (mark === -1 ? url : url.slice(0, mark)) || '/';
}

export function eventOf<Body>(req: http.IncomingMessage, body: Body): FunctionEvent<Body> {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  const query = mark === -1 ? {} : querystring.parse(url.slice(mark + 1));
  return { body, headers: req.headers, method: req.method ?? 'GET', query, path: pathOf(url) };
}

export { pathOf };

/** Status codes whose answers carry no body and no Content-Length (RFC 9110 6.4.1, 8.6). */
function bodiless(status: number): boolean {
  return status === 204 || status === 304 || (status >= 100 && status < 200);
}

/**
 * Express 5's res.send, which the official template answers with: a string is text/html, a
 * Buffer application/octet-stream, unless the handler set a Content-Type; null and undefined
 * are no body. Anything else is JSON, application/json (Express sends a plain object or array
 * as text/html, JSON.stringify'd: a reflected value would then be markup; JSON is said to be JSON here).
 */
function bodyOf(value: unknown): { payload: string | Buffer; type: string | undefined } {
  if (value === undefined || value === null) return { payload: '', type: undefined };
  if (typeof value === 'string') return { payload: value, type: 'text/html; charset=utf-8' };
  if (Buffer.isBuffer(value)) return { payload: value, type: 'application/octet-stream' };
  if (ArrayBuffer.isView(value)) return { payload: Buffer.from(value.buffer, value.byteOffset, value.byteLength), type: 'application/octet-stream' };
  return { payload: JSON.stringify(value) ?? '', type: 'application/json; charset=utf-8' };
}

/** index.js: `err.toString ? err.toString() : err`; fail() with nothing is an empty body (its callback sees no error). */
function textOf(error: unknown): string {
  return error === undefined || error === null ? '' : String(error);
}

export class Context implements FunctionContext {
  private code = 200;
  private values: HeaderValues = {};
  private done = false;

  constructor(
    private readonly req: http.IncomingMessage,
    private readonly res: http.ServerResponse,
    private readonly inFlight: InFlight,
  ) {}

  /** succeed or fail was called, or the wrapper answered for the handler. */
  answered(): boolean {
    return this.done;
  }

  status(): number;
  status(code: number): this;
  status(code?: number): number | this {
    if (code === undefined) return this.code;
    this.code = code;
    return this;
  }

  headers(): HeaderValues;
  headers(values: HeaderValues): this;
  headers(values?: HeaderValues): HeaderValues | this {
    if (values === undefined) return this.values;
    // A copy: the caller's object is often a shared constant.
    this.values = { ...values };
    return this;
  }

  succeed(value?: unknown): void {
    if (this.done) return;
    let body: { payload: string | Buffer; type: string | undefined };
    try {
      body = bodyOf(value);
    } catch (error) {
      // A value JSON cannot write (a cycle, a BigInt): the handler's error.
      this.fail(error);
      return;
    }
    this.done = true;
    this.send(this.code, this.values, body.payload, body.type);
  }

  fail(error?: unknown): void {
    if (this.done) return;
    reportError('handler failed', error);
    // openfaas/templates node22 index.js: 500 unless the handler set another status first.
    this.answerError(this.code === 200 ? 500 : this.code, textOf(error));
  }

  /** A handler that threw, or gave no answer in time: 500, with its text only in the log. */
  crash(msg: string, error: unknown): void {
    if (this.done) return;
    reportError(msg, error);
    this.answerError(500, 'Internal Server Error\n');
  }

  private answerError(status: number, text: string): void {
    this.done = true;
    if (this.res.headersSent) {
      this.res.destroy();
      return;
    }
    this.send(status, {}, text, 'text/plain; charset=utf-8');
  }

  private send(status: number, values: HeaderValues, payload: string | Buffer, defaultType: string | undefined): void {
    const headers: HeaderValues = {};
    let typed = false;
    for (const [name, value] of Object.entries(values)) {
      const lower = name.toLowerCase();
      // The framing is ours: a Content-Length that is not the bytes sent breaks the kept-alive connection.
      if (lower === 'content-length' || lower === 'transfer-encoding') continue;
      if (lower === 'content-type') typed = true;
      headers[name] = value;
    }
    if (bodiless(status)) {
      closeAfterAnswer(this.req, this.res, headers);
      this.res.writeHead(status, headers).end();
      return;
    }
    if (!typed && defaultType !== undefined) headers['Content-Type'] = defaultType;
    const bytes = Buffer.byteLength(payload);
    headers['Content-Length'] = bytes;
    closeAfterAnswer(this.req, this.res, headers);
    this.res.writeHead(status, headers);
    // A HEAD answer has the GET's headers and no body.
    if (this.req.method === 'HEAD') this.res.end();
    else this.inFlight.send(this.res, payload, bytes);
  }
}

/**
 * Calls the handler. Official: its returned value (awaited) is the body unless it answered
 * already (index.js: `if (!fnContext.cbCalled) fnContext.succeed(res)`); a callback error, a
 * throw or a rejection is fail()'s answer. handle(): only the context answers; a throw or a
 * rejection is a 500 with the error in the log only.
 */
export function invoke(loaded: Loaded, event: FunctionEvent, context: Context): void {
  if (loaded.kind === 'handle') {
    try {
      const result = loaded.handler(event as FunctionEvent<Buffer | undefined>, context);
      if (result instanceof Promise) result.catch((error: unknown) => context.crash('handler failed', error));
    } catch (error) {
      context.crash('handler failed', error);
    }
    return;
  }
  const callback: Callback = (error, value) => (error ? context.fail(error) : context.succeed(value));
  let result: unknown;
  try {
    result = loaded.handler(event, context, callback);
  } catch (error) {
    context.fail(error);
    return;
  }
  // index.js: Promise.resolve(handler(...)), so a thenable counts as a promise.
  if (typeof (result as PromiseLike<unknown> | undefined)?.then !== 'function') {
    if (!context.answered()) context.succeed(result);
    return;
  }
  Promise.resolve(result).then(
    (value: unknown) => {
      if (!context.answered()) context.succeed(value);
    },
    (error: unknown) => context.fail(error),
  );
}

/**
 * An answer later than exec_timeout is replaced by of-watchdog's empty 504: the wrapper answers
 * a handler that has given none this long before it, with a 500 and a line that says so.
 */
export const ANSWER_MARGIN_MS = 500;

/** Arms the deadline of a handler that has not answered yet; undefined bound: none. */
export function answerWithin(context: Context, res: http.ServerResponse, requestTimeoutMs: number | undefined, event: FunctionEvent): void {
  if (requestTimeoutMs === undefined || context.answered()) return;
  const ms = Math.max(0, requestTimeoutMs - ANSWER_MARGIN_MS);
  const timer = setTimeout(() => {
    context.crash('handler gave no answer', `${event.method} ${event.path}: neither a value, succeed() nor fail() within ${ms} ms (exec_timeout ${requestTimeoutMs} ms)`);
  }, ms);
  res.once('close', () => clearTimeout(timer));
}
