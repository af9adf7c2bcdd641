// The handler contract: the event a handler is given and what its answer is. The official
// OpenFaaS node contract (openfaas/templates template/node22/index.js, and
// docs.openfaas.com/languages/node): a value the handler returns is the body when it has not
// called context.succeed() or fail(); the event's body is parsed by Content-Type (bodies.ts).
// This template's handle() gets the raw Buffer and answers only through the context.
// What a module may export is handlerModule.ts; the context, context.ts.
import type http from 'node:http';
import type querystring from 'node:querystring';
import type { Context } from './context.js';
import type { Callback, FunctionModule, Loaded } from './handlerModule.js';

export interface FunctionEvent<Body = unknown> {
  /** Official handlers: parsed by Content-Type. handle(): the raw bytes, or undefined. */
  body: Body;
  headers: http.IncomingHttpHeaders;
  method: string;
  /** The query string as node:querystring reads it (Express 5's "simple" parser): a repeated key gives an array. */
  query: Record<string, string | string[] | undefined>;
  path: string;
}

export function pathOf(url: string): string {
  const mark = url.indexOf('?');
  return (mark === -1 ? url : url.slice(0, mark)) || '/';
}

export function eventOf<Body>(req: http.IncomingMessage, body: Body): FunctionEvent<Body> {
  const url = req.url ?? '/';
  const mark = url.indexOf('?');
  // Loaded with the first query string: most requests to a page carry none, and a cold start pays its require.
  const query = mark === -1 ? {} : (require('node:querystring') as typeof querystring).parse(url.slice(mark + 1));
  return { body, headers: req.headers, method: req.method ?? 'GET', query, path: pathOf(url) };
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
