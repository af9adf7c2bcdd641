// Bad input: a typo in stack.yml must stop the start with one line that names
// the setting, and whatever a client sends, through the gateway or straight at
// the pod, gets a 4xx or the page: never a file by its path, never a crash.
// Requests go over raw sockets (node:net) where fetch would clean the path up.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { entry, repoRoot, startFunction, type FunctionProcess } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { makeJpeg, startSource, type ImageSource } from '../support/source.ts';

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  output: string;
  ms: number;
}

/** Starts `node dist/index.js` with exactly this environment and waits for it to exit (killed after the bound). */
function startExpectingExit(env: Record<string, string>, boundMs = 10_000): Promise<Exit> {
  const started = performance.now();
  const child = spawn(process.execPath, [entry], { cwd: repoRoot, env: { PATH: process.env.PATH ?? '', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), boundMs);
  return new Promise((resolve) => {
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, ms: performance.now() - started });
    });
  });
}

/** Runs the jobs a few at a time: thirty node start-ups at once would make "fast" meaningless on two cores. */
async function inBatches<T, R>(items: T[], size: number, job: (item: T) => Promise<R>): Promise<R[]> {
  const results: R[] = [];
  for (let i = 0; i < items.length; i += size) results.push(...(await Promise.all(items.slice(i, i + size).map(job))));
  return results;
}

interface RawAnswer {
  status: number;
  head: string;
  body: Buffer;
}

/** Sends bytes as they are and reads until the server closes; status 0 means no answer before the close. */
function raw(port: number, request: string | Buffer, timeoutMs = 10_000): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms for ${JSON.stringify(String(request).slice(0, 80))}`));
    }, timeoutMs);
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    // The server may answer and close while we are still sending (431, 413): what it sent still counts.
    socket.on('error', () => undefined);
    socket.on('close', () => {
      clearTimeout(timer);
      const all = Buffer.concat(chunks);
      const split = all.indexOf('\r\n\r\n');
      const head = split === -1 ? all.toString('latin1') : all.subarray(0, split).toString('latin1');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(head)?.[1] ?? 0);
      resolve({ status, head, body: split === -1 ? Buffer.alloc(0) : all.subarray(split + 4) });
    });
    socket.write(request);
  });
}

function header(answer: RawAnswer, name: string): string | undefined {
  return new RegExp(`^${name}: *(.*)$`, 'im').exec(answer.head)?.[1]?.trim();
}

describe('bad settings stop the start with one line that names the setting', () => {
  let source: ImageSource;
  let dir: string;

  before(async () => {
    source = await startSource();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-badinput-'));
    fs.writeFileSync(path.join(dir, 'a-file'), 'not a folder');
  });
  after(async () => {
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('a good value of every setting starts the function (the baseline the bad values differ from)', async () => {
    const port = await freePort();
    const fn = await startFunction({
      PORT: String(port),
      IMAGE_URL: source.url,
      IMAGE_DIR: path.join(dir, 'images'),
      IMAGE_TTL_SECONDS: '60',
      IMAGE_WIDTH: '640',
      FETCH_TIMEOUT_MS: '5000',
      MAX_IMAGE_BYTES: '2000000',
      ENABLE_SHUTDOWN: 'false',
      LOG_LEVEL: 'warn',
      LOG_FILE: path.join(dir, 'logs', 'todo-app.log'),
    });
    try {
      await waitForPort(port, 5000);
      assert.equal(fn.child.exitCode, null);
    } finally {
      await fn.kill();
    }
  });

  const bad: Array<[string, string]> = [
    ['PORT', 'abc'],
    ['PORT', '0'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['IMAGE_URL', 'ftp://example.com/1200'],
    ['IMAGE_URL', 'not a url'],
    ['IMAGE_URL', 'file:///etc/passwd'],
    ['IMAGE_URL', 'javascript:alert(1)'],
    ['IMAGE_TTL_SECONDS', '-1'],
    ['IMAGE_TTL_SECONDS', '0'],
    ['IMAGE_TTL_SECONDS', '1.5'],
    ['IMAGE_TTL_SECONDS', 'abc'],
    ['IMAGE_TTL_SECONDS', '1e3'],
    ['IMAGE_WIDTH', '0'],
    ['IMAGE_WIDTH', 'abc'],
    ['IMAGE_WIDTH', '-640'],
    ['IMAGE_WIDTH', '100000'],
    ['FETCH_TIMEOUT_MS', 'abc'],
    ['FETCH_TIMEOUT_MS', '-1'],
    ['FETCH_TIMEOUT_MS', '0'],
    ['FETCH_TIMEOUT_MS', '10s'],
    ['MAX_IMAGE_BYTES', '10MB'],
    ['MAX_IMAGE_BYTES', '-1'],
    ['MAX_IMAGE_BYTES', '0'],
    ['ENABLE_SHUTDOWN', 'maybe'],
    ['ENABLE_SHUTDOWN', 'on please'],
    ['LOG_LEVEL', 'loud'],
    ['LOG_LEVEL', 'verbose'],
  ];

  test(`${bad.length} bad values, each: exit code not 0, fast, exactly one line naming the variable and quoting the value`, async () => {
    const exits = await inBatches(bad, 4, async ([name, value]) => ({
      name,
      value,
      exit: await startExpectingExit({ IMAGE_URL: source.url, IMAGE_DIR: path.join(dir, 'images'), [name]: value }),
    }));
    for (const { name, value, exit } of exits) {
      const what = `${name}=${JSON.stringify(value)}`;
      assert.equal(exit.signal, null, `${what}: the process stops by itself (it was still running after 10 s)`);
      assert.notEqual(exit.code, 0, `${what}: exit code not 0`);
      const lines = exit.output.trimEnd().split('\n');
      assert.equal(lines.length, 1, `${what}: exactly one line of output, got:\n${exit.output}`);
      assert.ok(lines[0]!.startsWith(`${name}: `), `${what}: the line names the variable: ${lines[0]}`);
      assert.ok(lines[0]!.includes(JSON.stringify(value)), `${what}: the line quotes the value: ${lines[0]}`);
      assert.ok(exit.ms < 5000, `${what}: stopped in ${Math.round(exit.ms)} ms`);
    }
  });

  test('LOG_FILE that is no regular file, or cannot be one: exit code not 0, at once, one line naming LOG_FILE and saying why', async () => {
    const fifo = path.join(dir, 'log-fifo');
    const readFifo = path.join(dir, 'log-fifo-read');
    for (const file of [fifo, readFifo]) assert.equal(spawnSync('mkfifo', [file]).status, 0, `mkfifo ${file}`);
    // A reader on the second FIFO: the function's open would succeed, and a full pipe would then block every log line.
    const reader = fs.openSync(readFifo, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
    const places: Array<[string, RegExp]> = [
      [dir, /^LOG_FILE: must be a regular file, not a folder, got "/],
      [path.join(dir, 'a-file', 'todo-app.log'), /^LOG_FILE: a part of its folder path is a file, not a folder \((ENOTDIR|EEXIST)\), got "/],
      [path.join(dir, 'a-file', 'deeper', 'todo-app.log'), /^LOG_FILE: a part of its folder path is a file, not a folder \((ENOTDIR|EEXIST)\), got "/],
      [fifo, /^LOG_FILE: must be a regular file, not a FIFO, got "/],
      [readFifo, /^LOG_FILE: must be a regular file, not a FIFO, got "/],
      ['/dev/null', /^LOG_FILE: must be a regular file, not a character device, got "/],
      // Node's recursive mkdir spins for ever there (ENOENT under a folder that exists).
      ['/proc/todo-app-logs/todo-app.log', /^LOG_FILE: its folder cannot be created \(ENOENT\), got "/],
    ];
    try {
      for (const [place, line] of places) {
        const exit = await startExpectingExit({ IMAGE_URL: source.url, IMAGE_DIR: path.join(dir, 'images'), LOG_FILE: place });
        const lines = exit.output.trimEnd().split('\n');
        assert.equal(exit.signal, null, `LOG_FILE=${place}: the process stops by itself`);
        assert.notEqual(exit.code, 0, `LOG_FILE=${place}: exit code not 0`);
        assert.equal(lines.length, 1, `LOG_FILE=${place}: exactly one line, got:\n${exit.output}`);
        assert.match(lines[0]!, line);
        assert.ok(exit.ms < 5000, `LOG_FILE=${place}: stopped in ${Math.round(exit.ms)} ms`);
      }
    } finally {
      fs.closeSync(reader);
    }
    assert.equal(fs.readFileSync(path.join(dir, 'a-file'), 'utf8'), 'not a folder', 'the file in the way is untouched');
  });
});

describe('bad HTTP gets a 4xx or the page: never a file by its path, never a crash', () => {
  let source: ImageSource;
  let dir: string;
  let fn: FunctionProcess;
  let image: Buffer;
  let stamp: string;

  before(async () => {
    source = await startSource();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-badhttp-'));
    image = await makeJpeg(7);
    stamp = new Date().toISOString();
    fs.writeFileSync(path.join(dir, 'image.jpg'), image);
    fs.writeFileSync(path.join(dir, '.ts'), stamp);
    fn = await startFunction({ IMAGE_URL: source.url, IMAGE_DIR: dir, LOG_LEVEL: 'info' });
  });
  after(async () => {
    await fn?.kill();
    await source.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const request = (method: string, target: string, extra = ''): string =>
    `${method} ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\n${extra}Connection: close\r\n\r\n`;

  /** What every answer must be: a 4xx, or the page; never the file on the volume; and the process serves on. */
  const assertSafe = async (what: string, answer: RawAnswer, allowed: (status: number) => boolean = (s) => s >= 400 && s < 500): Promise<void> => {
    const isPage = answer.status === 200 && /^Content-Type: text\/html/im.test(answer.head) && answer.body.includes('data:image/jpeg;base64,');
    assert.ok(isPage || allowed(answer.status), `${what}: a 4xx or the page, got ${answer.status}:\n${answer.head}`);
    assert.equal(answer.body.indexOf(image), -1, `${what}: the body never carries image.jpg's bytes`);
    assert.notEqual(answer.body.toString('utf8').trim(), stamp, `${what}: the body is never .ts`);
    assert.equal(fn.child.exitCode, null, `${what}: the process lives:\n${fn.output()}`);
    const next = await raw(fn.port, request('GET', '/'));
    assert.equal(next.status, 200, `${what}: the next request gets the page`);
  };

  test('other methods on / : 405 with Allow; made-up and malformed methods: 400', async () => {
    for (const method of ['PUT', 'DELETE', 'PATCH', 'OPTIONS', 'TRACE']) {
      const answer = await raw(fn.port, request(method, '/', 'Content-Length: 0\r\n'));
      assert.equal(answer.status, 405, `${method} /`);
      assert.equal(header(answer, 'Allow'), 'GET, HEAD, POST', `${method} / names the allowed methods`);
      await assertSafe(`${method} /`, answer);
    }
    for (const method of ['FOO', 'BREW', 'get', 'G\u00c9T', 'GET\tX']) {
      const answer = await raw(fn.port, request(method, '/'));
      assert.equal(answer.status, 400, `${JSON.stringify(method)} / is refused by the HTTP parser`);
      await assertSafe(`${JSON.stringify(method)} /`, answer);
    }
    const head = await raw(fn.port, request('HEAD', '/'));
    assert.equal(head.status, 200, 'HEAD / is the page without its body');
    assert.equal(head.body.length, 0);
  });

  test('very long URLs and headers: 431 past the 16 KB limit, the page below it', async () => {
    const cases: Array<[string, string, number]> = [
      ['a 100 kB path', request('GET', `/${'a'.repeat(100_000)}`), 431],
      ['a 100 kB query string', request('GET', `/?q=${'a'.repeat(100_000)}`), 431],
      ['a 20 kB header', request('GET', '/', `X-Long: ${'a'.repeat(20_000)}\r\n`), 431],
      ['3000 small headers', request('GET', '/', Array.from({ length: 3000 }, (_, i) => `X-H${i}: v\r\n`).join('')), 431],
      ['a 10 kB query string, under the limit', request('GET', `/?q=${'a'.repeat(10_000)}`), 200],
      ['a 10 kB cookie, under the limit', request('GET', '/', `Cookie: c=${'a'.repeat(10_000)}\r\n`), 200],
    ];
    for (const [what, text, status] of cases) {
      const answer = await raw(fn.port, text);
      assert.equal(answer.status, status, what);
      await assertSafe(what, answer);
    }
  });

  test('odd paths and query strings: the page for / with a query, 4xx for the rest, never the file', async () => {
    const page = ['/', '/?a=1', '/?a=1&a=2', '/?a=%zz', '/?', '/?../image.jpg'];
    // Not valid request targets: a 4xx or the page are both fine.
    const either = ['/#x', '/?#'];
    const other = [
      '/../image.jpg',
      '/%2e%2e/',
      '/%2e%2e/image.jpg',
      '/..%2fimage.jpg',
      '/%2fimage.jpg',
      '/image.jpg',
      '//image.jpg',
      '/.ts',
      '/.refresh.lock',
      '/./',
      '//',
      '/..\\image.jpg',
      '/%00',
      '/%',
      '/;a',
      '/index.html',
      '/_shutdown',
      `${dir}/image.jpg`,
      `/${encodeURIComponent(path.join(dir, 'image.jpg'))}`,
      'image.jpg',
      '*',
      'http://127.0.0.1/image.jpg',
    ];
    for (const target of page) {
      const answer = await raw(fn.port, request('GET', target));
      assert.equal(answer.status, 200, `GET ${target} is the page`);
      await assertSafe(`GET ${target}`, answer);
    }
    for (const target of either) await assertSafe(`GET ${target}`, await raw(fn.port, request('GET', target)));
    for (const target of other) {
      const answer = await raw(fn.port, request('GET', target));
      assert.notEqual(answer.status, 200, `GET ${target} is not served`);
      await assertSafe(`GET ${target}`, answer);
    }
    assert.deepEqual(fs.readFileSync(path.join(dir, 'image.jpg')), image, 'the volume is untouched');
    assert.equal(fs.readFileSync(path.join(dir, '.ts'), 'utf8'), stamp);
  });

  test('garbage, broken framing and bodies: a 4xx, and the process serves on', async () => {
    const cases: Array<[string, string | Buffer]> = [
      ['a line of garbage', 'HELLO WORLD\r\n\r\n'],
      ['a NUL in a header', request('GET', '/', 'X-Bad: a\u0000b\r\n')],
      ['no Host header', 'GET / HTTP/1.1\r\nConnection: close\r\n\r\n'],
      ['the HTTP/2 preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'],
      ['HTTP/9.9', 'GET / HTTP/9.9\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n'],
      ['both Content-Length and chunked', request('POST', '/', 'Content-Length: 5\r\nTransfer-Encoding: chunked\r\n') + '0\r\n\r\n'],
      ['a bad chunk size', request('POST', '/', 'Transfer-Encoding: chunked\r\n') + 'zz\r\nhello\r\n0\r\n\r\n'],
      ['random bytes', Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 256))],
    ];
    for (const [what, text] of cases) {
      const answer = await raw(fn.port, text);
      await assertSafe(what, answer);
    }
    // An 8 MB body: the function reads none, so the page is answered at once and the body
    // is read and dropped. With Connection: close the server may close while the client is still
    // sending, and the kernel may then reset before the client reads the answer: a reset is allowed,
    // as long as the page is what usually arrives.
    const big = request('POST', '/', `Content-Length: ${8 * 1024 * 1024}\r\n`) + 'a'.repeat(8 * 1024 * 1024);
    const statuses: number[] = [];
    for (let i = 0; i < 5; i++) {
      const answer = await raw(fn.port, big);
      statuses.push(answer.status);
      if (answer.status !== 0) await assertSafe('an 8 MB body', answer);
    }
    assert.ok(statuses.every((status) => status === 200 || status === 0), `the page or a reset: ${statuses.join(', ')}`);
    assert.ok(statuses.includes(200), `the page is written, not lost to a destroyed socket: ${statuses.join(', ')}`);
    assert.equal((await raw(fn.port, request('GET', '/'))).status, 200, 'the process serves on');

    // A client that goes away half way through its request.
    await new Promise<void>((resolve) => {
      const socket = net.connect(fn.port, '127.0.0.1', () => {
        socket.write('GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ');
        socket.destroy();
        resolve();
      });
    });
    await assertSafe('a client gone half way', { status: 400, head: '', body: Buffer.alloc(0) });
    assert.doesNotMatch(fn.output(), /handler failed/, 'no handler error was logged');
  });
});
