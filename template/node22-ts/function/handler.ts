// A new node22-ts function, written the way the official OpenFaaS node templates take one
// (docs.openfaas.com/languages/node): export default (or module.exports) a handler of
// (event, context); what it returns is the answer, or it answers with
// context.status(201).headers({...}).succeed(body) or context.fail(error).
// The types are here so this folder compiles on its own in your editor; the template's
// README lists the whole contract and the hooks (init, ready, close) it adds.

export interface FunctionEvent {
  /** Parsed by Content-Type: text/* a string, JSON an object, a form an object; RAW_BODY=true a Buffer. */
  body: unknown;
  headers: Record<string, string | string[] | undefined>;
  method: string;
  query: Record<string, string | string[] | undefined>;
  path: string;
}

export interface FunctionContext {
  status(): number;
  status(code: number): FunctionContext;
  headers(): Record<string, string | number | string[]>;
  headers(values: Record<string, string | number | string[]>): FunctionContext;
  succeed(value?: unknown): void;
  fail(error?: unknown): void;
}

export default async (event: FunctionEvent, context: FunctionContext): Promise<unknown> => {
  return {
    method: event.method,
    path: event.path,
    query: event.query,
    body: event.body ?? null,
    contentType: event.headers['content-type'] ?? null,
  };
};
