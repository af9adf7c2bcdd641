// Handlers written for the official OpenFaaS node templates run on node22-ts as they
// are. One test per rule of the documented contract, each naming where the rule is
// written: openfaas/templates template/node22/index.js (at 69ca16a) and
// function/handler.js, docs.openfaas.com/languages/node (openfaas/docs
// docs/languages/node.md at eac50c7), and the callback and redirect examples of
// openfaas-incubator/node8-express-template's README. Each runs through the wrapper
// directly and behind the watchdog stand-in (the real of-watchdog with OF_WATCHDOG_BIN).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import ts from 'typescript';
import { eventually, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { startWatchdog, type Watchdog } from '../support/watchdog.ts';
import { wrapperWith, type WrapperRoot } from '../support/wrapper-root.ts';

const fixtures = path.join(repoRoot, 'test/fixtures/official');

/** The handler file as the image has it: JavaScript as written, TypeScript compiled to CommonJS. */
function handlerFiles(fixture: string): Record<string, string> {
  const source = fs.readFileSync(path.join(fixtures, fixture), 'utf8');
  if (!fixture.endsWith('.ts')) return { 'handler.js': source };
  const compiled = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true } });
  return { 'handler.js': compiled.outputText };
}

interface Running {
  url: string;
  output(): string;
  stop(): Promise<void>;
}

type Mode = 'direct' | 'watchdog';

async function start(fixture: string, mode: Mode, env: Record<string, string> = {}): Promise<Running> {
  const root: WrapperRoot = wrapperWith(handlerFiles(fixture), fixture === 'esm.js' ? 'module' : 'commonjs');
  if (mode === 'direct') {
    const fn: FunctionProcess = await startFunction(env, { entry: root.entry });
    return { url: fn.url, output: fn.output, stop: async () => void (await fn.kill(), root.remove()) };
  }
  const w: Watchdog = await startWatchdog({ fprocess: `node ${root.entry}`, ...env });
  await eventually(async () => (await fetch(`${w.url}/_/health`).catch(() => undefined))?.status === 200, 15_000, `${fixture} is ready behind the watchdog\n${w.output()}`);
  return { url: w.url, output: w.output, stop: async () => void (await w.destroy(), root.remove()) };
}

interface Answer {
  status: number;
  type: string | null;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json(): unknown;
}

async function call(base: string, pathAndQuery: string, init: RequestInit = {}): Promise<Answer> {
  const res = await fetch(`${base}${pathAndQuery}`, { redirect: 'manual', ...init });
  const bytes = Buffer.from(await res.arrayBuffer());
  const text = bytes.toString('utf8');
  return { status: res.status, type: res.headers.get('content-type'), headers: res.headers, bytes, text, json: () => JSON.parse(text) };
}

const json = (value: unknown): RequestInit => ({ method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(value) });

// Side by side with the stand-in; one after the other with the real binary (its metrics port is fixed).
for (const mode of ['direct', 'watchdog'] as const) {
  describe(`official node22 handlers on node22-ts, ${mode === 'direct' ? 'through the wrapper directly' : 'behind the watchdog'}`, { timeout: 120_000 }, () => {
    const setups: Record<string, [string, Record<string, string>]> = {
      skeleton: ['skeleton.js', {}],
      echo: ['echo.js', {}],
      returns: ['returns.js', {}],
      callback: ['callback.js', {}],
      context: ['context.js', {}],
      esm: ['esm.js', {}],
      typescript: ['typescript.ts', {}],
      raw: ['echo.js', { RAW_BODY: 'true', MAX_RAW_SIZE: '512kb' }],
      bigJson: ['echo.js', { MAX_JSON_SIZE: '5mb' }],
    };
    const running = new Map<string, Running>();
    // The real watchdog always binds :8081 for metrics: one at a time, started when a test needs it.
    const oneAtATime = mode === 'watchdog' && Boolean(process.env.OF_WATCHDOG_BIN);
    const runningAs = async (name: string): Promise<Running> => {
      const known = running.get(name);
      if (known) return known;
      if (oneAtATime) {
        await Promise.all([...running.values()].map((r) => r.stop()));
        running.clear();
      }
      const [fixture, env] = setups[name]!;
      const started = await start(fixture, mode, env);
      running.set(name, started);
      return started;
    };
    const url = async (name: string): Promise<string> => (await runningAs(name)).url;
    before(async () => {
      if (!oneAtATime) await Promise.all(Object.keys(setups).map(runningAs));
    });
    after(async () => {
      await Promise.all([...running.values()].map((r) => r.stop()));
    });

    it("runs the template's own handler.js as faas-cli new writes it: the JSON body, stringified, and the content type (function/handler.js)", async () => {
      const res = await call(await url('skeleton'), '/', json({ hello: 'world' }));
      assert.equal(res.status, 200);
      assert.deepEqual(res.json(), { body: '{"hello":"world"}', 'content-type': 'application/json' });
    });

    it('parses an application/json body into an object (docs: "event.body will transform into an object")', async () => {
      const res = await call(await url('echo'), '/', json({ url: 'https://openfaas.com', n: 1 }));
      assert.deepEqual((res.json() as { body: unknown }).body, { url: 'https://openfaas.com', n: 1 });
    });

    it('gives a text/* body as a string (index.js: bodyParser.text({ type: "text/*" }))', async () => {
      const res = await call(await url('echo'), '/', { method: 'POST', headers: { 'Content-Type': 'text/csv' }, body: 'a,b\n1,2\n' });
      assert.equal((res.json() as { body: unknown }).body, 'a,b\n1,2\n');
    });

    it('takes a body without a Content-Type as text/plain, and says so in event.headers (index.js: addDefaultContentType)', async () => {
      const res = await call(await url('echo'), '/', { method: 'POST', body: new TextEncoder().encode('no type given') });
      assert.deepEqual(res.json(), { body: 'no type given', method: 'POST', path: '/', query: {}, contentType: 'text/plain' });
    });

    it('parses a urlencoded form with nested keys (index.js: bodyParser.urlencoded({ extended: true }))', async () => {
      const res = await call(await url('echo'), '/', { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=Ada&langs[]=js&langs[]=go&address[city]=London' });
      assert.deepEqual((res.json() as { body: unknown }).body, { name: 'Ada', langs: ['js', 'go'], address: { city: 'London' } });
    });

    it('has no body on a GET, and gives method, path and query (docs: "The Event object"; a repeated key is an array, as Express 5 parses it)', async () => {
      const res = await call(await url('echo'), '/orders/7?tag=a&tag=b&sort=asc');
      assert.deepEqual(res.json(), { body: '(undefined)', method: 'GET', path: '/orders/7', query: { tag: ['a', 'b'], sort: 'asc' }, contentType: 'text/plain' });
      const put = await call(await url('echo'), '/x', { method: 'PUT', ...{ headers: { 'Content-Type': 'application/json' }, body: '[1]' } });
      assert.deepEqual(put.json(), { body: [1], method: 'PUT', path: '/x', query: {}, contentType: 'application/json' });
    });

    it('answers 400 to a JSON body that does not parse, and 413 past 100kb (index.js: body-parser\'s default limit)', async () => {
      const bad = await call(await url('echo'), '/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: '{"open": ' });
      assert.equal(bad.status, 400);
      const big = await call(await url('echo'), '/', json({ blob: 'x'.repeat(150 * 1024) }));
      assert.equal(big.status, 413);
      const ok = await call(await url('echo'), '/', json({ after: 'the errors' }));
      assert.deepEqual((ok.json() as { body: unknown }).body, { after: 'the errors' }, 'and the function goes on');
    });

    it('takes JSON up to MAX_JSON_SIZE (docs: "Set the maximum JSON request body size")', async () => {
      const blob = 'y'.repeat(1024 * 1024);
      const res = await call(await url('bigJson'), '/', json({ blob }));
      assert.equal(res.status, 200);
      assert.equal(((res.json() as { body: { blob: string } }).body.blob).length, blob.length);
    });

    it('with RAW_BODY=true gives every body as a Buffer, up to MAX_RAW_SIZE (docs: "Access the raw body")', async () => {
      const bytes = Buffer.from([0, 1, 2, 200, 255]);
      const res = await call(await url('raw'), '/', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: bytes });
      assert.deepEqual((res.json() as { body: unknown }).body, { buffer: bytes.toString('base64') });
      const under = await call(await url('raw'), '/', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: Buffer.alloc(400 * 1024) });
      assert.equal(under.status, 200);
      const over = await call(await url('raw'), '/', { method: 'POST', headers: { 'Content-Type': 'image/png' }, body: Buffer.alloc(600 * 1024) });
      assert.equal(over.status, 413);
    });

    it('sends a returned value when the handler never called succeed(): strings, objects, arrays, Buffers, numbers, a promise (index.js: fnContext.succeed(res))', async () => {
      const string = await call(await url('returns'), '/string');
      assert.deepEqual([string.status, string.type, string.text], [200, 'text/html; charset=utf-8', 'Hello from OpenFaaS!']);
      const object = await call(await url('returns'), '/object');
      assert.deepEqual([object.status, object.type, object.json()], [200, 'application/json; charset=utf-8', { message: 'hi', list: [1, 2] }]);
      assert.deepEqual((await call(await url('returns'), '/array')).json(), [1, 'two', { three: 3 }]);
      const buffer = await call(await url('returns'), '/buffer');
      assert.equal(buffer.type, 'application/octet-stream');
      assert.deepEqual(buffer.bytes, Buffer.from([0, 1, 2, 255]));
      assert.equal((await call(await url('returns'), '/number')).text, '42');
      assert.deepEqual((await call(await url('returns'), '/later')).json(), { later: true });
      const nothing = await call(await url('returns'), '/nothing');
      assert.deepEqual([nothing.status, nothing.text], [200, '']);
    });

    it('keeps the first answer: succeed() then a returned value sends what succeed() was given (index.js: if (!fnContext.cbCalled))', async () => {
      const res = await call(await url('returns'), '/answered');
      assert.deepEqual([res.status, res.text], [202, 'first']);
    });

    it('passes a callback: callback(undefined, result) answers, callback(error) fails (node8-express-template README)', async () => {
      const ok = await call(await url('callback'), '/');
      assert.deepEqual([ok.status, ok.json()], [200, { result: 'message received' }]);
      const failed = await call(await url('callback'), '/error');
      assert.deepEqual([failed.status, failed.text], [500, 'Error: the callback failed']);
    });

    it('fail() answers 500 with the text it was given, or the status set before it (docs: "The Context object", "Authenticate a function")', async () => {
      const failed = await call(await url('context'), '/fail');
      assert.deepEqual([failed.status, failed.text], [500, 'Unable to process this event.']);
      const unauthorized = await call(await url('context'), '/unauthorized');
      assert.deepEqual([unauthorized.status, unauthorized.text], [401, 'Unauthorized']);
      const thrown = await call(await url('context'), '/throw');
      assert.deepEqual([thrown.status, thrown.text], [500, 'Error: the handler threw']);
      const context = await runningAs('context');
      await eventually(() => /"msg":"handler failed".*the handler threw/.test(context.output()), 5000, 'the error is logged');
    });

    it('status() and headers() set the answer and, called with nothing, give what was set (index.js FunctionContext)', async () => {
      const res = await call(await url('context'), '/getters');
      assert.equal(res.status, 201);
      assert.equal(res.headers.get('x-request-id'), 'abc');
      assert.deepEqual(res.json(), { status: 201, headers: { 'X-Request-Id': 'abc', 'Content-Type': 'application/json' } });
      const typed = await call(await url('context'), '/typed');
      assert.deepEqual([typed.type, typed.text], ['text/plain', 'plain text']);
    });

    it('redirects with a Location header and a 307 (node8-express-template README)', async () => {
      const res = await call(await url('context'), '/redirect');
      assert.deepEqual([res.status, res.headers.get('location'), res.text], [307, 'https://www.openfaas.com/', 'Page has moved.']);
    });

    it('loads an ESM handler, export default in a "type": "module" package', async () => {
      const res = await call(await url('esm'), '/', json({ a: 1 }));
      assert.deepEqual(res.json(), { esm: true, method: 'POST', body: { a: 1 } });
    });

    it('runs a TypeScript handler typed with the contract, export default compiled to CommonJS', async () => {
      const created = await call(await url('typescript'), '/', json({ item: 'tea', count: 2 }));
      assert.deepEqual([created.status, created.headers.get('x-order'), created.json()], [201, 'tea', { ordered: 2, of: 'tea' }]);
      const refused = await call(await url('typescript'), '/', json({ count: 2 }));
      assert.deepEqual([refused.status, refused.text], [400, 'an order needs an item']);
    });
  });
}

describe('what the wrapper checks at start, and a handler that never answers', { timeout: 60_000 }, () => {
  const roots: WrapperRoot[] = [];
  after(() => roots.forEach((root) => root.remove()));
  const withHandler = (source: string, type: 'module' | 'commonjs' = 'commonjs'): WrapperRoot => {
    const root = wrapperWith({ 'handler.js': source }, type);
    roots.push(root);
    return root;
  };
  const firstLines = async (source: string, env: Record<string, string> = {}, type: 'module' | 'commonjs' = 'commonjs'): Promise<{ code: number | null; lines: string[] }> => {
    const fn = await startFunction(env, { entry: withHandler(source, type).entry, waitReady: false });
    const exit = await fn.exited;
    return { code: exit.code, lines: fn.output().trim().split('\n') };
  };

  it('a module that exports no handler stops the start with one line naming the file and what it exports', async () => {
    const none = await firstLines("exports.init = () => {}; exports.maxBodyBytes = 0;\n");
    assert.deepEqual(none, {
      code: 1,
      lines: [
        'function/handler.js: no handler: export a function (module.exports = async (event, context) => ..., or export default), or a function named handle; it exports init (function), maxBodyBytes (number)',
      ],
    });
    const esmNone = await firstLines('export const handler = 1;\n', {}, 'module');
    assert.deepEqual(esmNone.lines, ['function/handler.js: no handler: export a function (module.exports = async (event, context) => ..., or export default), or a function named handle; it exports handler (number)']);
  });

  it('two handlers, a default export and handle(), stop the start with one line', async () => {
    const both = await firstLines('module.exports = async () => "a"; module.exports.handle = (event, context) => context.succeed("b");\n');
    assert.deepEqual(both, { code: 1, lines: ['function/handler.js: two handlers, a default export (module.exports or export default) and handle(): export one of them'] });
  });

  it('a bad MAX_RAW_SIZE, MAX_JSON_SIZE, MAX_UNSENT_BYTES or http_port stops the start with one line naming it', async () => {
    const handler = 'module.exports = async () => "ok";\n';
    assert.deepEqual((await firstLines(handler, { MAX_RAW_SIZE: 'lots' })).lines, ['MAX_RAW_SIZE: must be a size such as 100kb, 512kb or 5mb, got "lots"']);
    assert.deepEqual((await firstLines(handler, { MAX_JSON_SIZE: '-5mb' })).lines, ['MAX_JSON_SIZE: must be a size such as 100kb, 512kb or 5mb, got "-5mb"']);
    assert.deepEqual((await firstLines(handler, { MAX_UNSENT_BYTES: '10' })).lines, ['MAX_UNSENT_BYTES: must be a whole number of bytes, at least 1048576, got "10"']);
    assert.deepEqual((await firstLines(handler, { upstream_url: 'http://127.0.0.1:3000', http_port: '5000' })).lines, [
      `http_port: must be unset or upstream_url's port (3000), where of-watchdog forwards, got "5000"`,
    ]);
  });

  it("loads body-parser on the first request with a body, never for a GET (the official template loads it at start)", async () => {
    const trace = path.join(withHandler('module.exports = async (event) => ({ body: event.body ?? null });\n').dir, 'trace.txt');
    const entry = path.join(path.dirname(trace), 'index.js');
    const fn = await startFunction({ NODE_OPTIONS: `--import=${path.join(repoRoot, 'test/fixtures/trace-imports.mjs')}`, TRACE_IMPORTS_FILE: trace }, { entry });
    try {
      assert.deepEqual(await (await fetch(`${fn.url}/a?b=c`)).json(), { body: null });
      const traced = (): string => fs.readFileSync(trace, 'utf8');
      assert.ok(traced().includes('/function/handler.js'), 'the trace ran');
      assert.doesNotMatch(traced(), /\/node_modules\/(body-parser|raw-body|iconv-lite|qs)\//);
      assert.deepEqual(await (await fetch(`${fn.url}/`, json({ posted: true }))).json(), { body: { posted: true } });
      assert.match(traced(), /\/node_modules\/body-parser\//);
    } finally {
      await fn.kill();
    }
  });

  it('listens on http_port when there is no watchdog (index.js: process.env.http_port || 3000), before PORT', async () => {
    const port = await freePort();
    const fn = await startFunction({ http_port: String(port) }, { entry: withHandler('module.exports = async () => "on http_port";\n').entry, waitReady: false });
    try {
      await waitForPort(port, 10_000, () => fn.child.exitCode === null);
      assert.equal(await (await fetch(`http://127.0.0.1:${port}/`)).text(), 'on http_port');
    } finally {
      await fn.kill();
    }
  });

  it('a handler that never answers gets a 500 and a log line half a second before exec_timeout, alone and behind the watchdog, never its empty 504', async () => {
    const silent = [
      ['official', 'module.exports = () => new Promise(() => {});\n'],
      ['handle()', 'exports.handle = (event, context) => {};\n'],
    ] as const;
    for (const [kind, source] of silent) {
      const entry = withHandler(source).entry;
      const alone = await startFunction({ exec_timeout: '2s' }, { entry });
      const behind = await startWatchdog({ fprocess: `node ${entry}`, exec_timeout: '2s' });
      try {
        await eventually(async () => (await fetch(`${behind.url}/_/health`).catch(() => undefined))?.status === 200, 15_000, 'ready');
        for (const [where, base, output] of [['alone', alone.url, alone.output], ['behind the watchdog', behind.url, behind.output]] as const) {
          const began = Date.now();
          const res = await fetch(`${base}/wait`);
          const took = Date.now() - began;
          assert.deepEqual([res.status, await res.text()], [500, 'Internal Server Error\n'], `${kind}, ${where}`);
          assert.ok(took >= 1400 && took < 2000, `${kind}, ${where}: answered after ${took} ms`);
          await eventually(() => /"msg":"handler gave no answer".*GET \/wait: neither a value, succeed\(\) nor fail\(\) within 1500 ms/.test(output()), 5000, `${kind}, ${where}: the line`);
        }
      } finally {
        await alone.kill();
        await behind.destroy();
      }
    }
  });
});
