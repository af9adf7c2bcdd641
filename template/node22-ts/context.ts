// The context a handler answers with, as the official template's FunctionContext behaves
// (openfaas/templates template/node22/index.js): status() and headers() set, or give back
// when called with nothing; succeed(value) answers as Express's res.send does; fail(error)
// answers with the error's text, 500 unless another status was set. The framing is the
// wrapper's: a Content-Length a handler sets is never trusted.
import type http from 'node:http';
import { closeAfterAnswer } from './bodies.js';
import type { InFlight } from './inFlight.js';
import { reportError } from './report.js';

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
