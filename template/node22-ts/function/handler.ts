// A new node22-ts function. The wrapper (../index.ts in the image) calls handle()
// for every request; init() and close() are optional, see template.yml's notes.
// The types are here so this folder compiles on its own in your editor.

export interface FunctionEvent {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer | undefined;
}

export interface FunctionContext {
  status(code: number): FunctionContext;
  headers(values: Record<string, string | number>): FunctionContext;
  succeed(body?: string | Buffer | object): void;
  fail(error: unknown): void;
}

export async function handle(event: FunctionEvent, context: FunctionContext): Promise<void> {
  context.status(200).succeed({
    method: event.method,
    path: event.path,
    query: event.query,
    body: event.body?.toString('utf8') ?? null,
    contentType: event.headers['content-type'] ?? null,
  });
}
