// The image as faas-cli would build it, without Docker: `npm run shrinkwrap`
// lays out build/todo-app/, the Dockerfile's own stages are replayed in a
// temporary copy (its npm ci and tsc steps, its COPYs between stages), and
// the template's fprocess is started with the environment of-watchdog passes
// on. A user's first request gets the page with the picture.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, existsSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { repoRoot } from '../support/fn.ts';
import { freePort, waitForPort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';
import { inStage, replayContext, type Replay } from '../support/deploy-dockerfile.ts';

interface StackFn {
  lang: string;
  handler: string;
  environment: Record<string, string>;
}

const stack = parse(readFileSync(path.join(repoRoot, 'stack.yml'), 'utf8')) as { functions: Record<string, StackFn> };
const fn = stack.functions['todo-app']!;
const templateYml = parse(readFileSync(path.join(repoRoot, 'template', fn.lang, 'template.yml'), 'utf8')) as { fprocess: string };
/**
 * The runtime dependencies' bound in the image: sharp with libvips (19.3 MB for linux-x64
 * glibc here, 19.2 for the image's musl), pino, got, proper-lockfile; the wrapper's body-parser.
 */
const FUNCTION_DEPS_MB = 22;
const WRAPPER_DEPS_MB = 2;

function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => path.join(entry.parentPath, entry.name));
}

function bytesUnder(dir: string): number {
  return filesUnder(dir).reduce((sum, file) => sum + statSync(file).size, 0);
}

// The function's UID in the image (USER 12000:12000): used when these tests run as root.
const APP_UID = 12000;

/**
 * This Node, where the image's user can run it: scripts/node22.mjs may have installed it under
 * root's home, which UID 12000 cannot enter. A hard link (or a copy) in the scratch folder can be.
 */
function nodeForAppUser(scratch: string): string {
  const target = path.join(scratch, 'node');
  if (existsSync(target)) return target;
  try {
    linkSync(process.execPath, target);
  } catch {
    copyFileSync(process.execPath, target);
    chmodSync(target, 0o755);
  }
  return target;
}

function portIsFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

describe('the image, built from the shrinkwrapped context with the Dockerfile own steps', () => {
  let scratch: string;
  let replay: Replay;
  let source: ImageSource;
  let child: ChildProcess | undefined;
  let output = '';

  before(async () => {
    const shrink = spawnSync('npm', ['run', '--silent', 'shrinkwrap'], { cwd: repoRoot, encoding: 'utf8' });
    assert.equal(shrink.status, 0, `npm run shrinkwrap failed:\n${shrink.stdout}${shrink.stderr}`);
    ({ scratch, replay } = replayContext(path.join(repoRoot, 'build', 'todo-app')));
    source = await startSource();
  });

  after(async () => {
    child?.kill('SIGKILL');
    await source?.close();
    if (scratch) rmSync(scratch, { recursive: true, force: true });
  });

  it('replays the npm ci, npm ci in function/ and tsc steps, and skips only what needs Docker', () => {
    const ran = replay.ran.join('\n');
    assert.match(ran, /build:\d+ RUN npm ci$/m);
    assert.match(ran, /build:\d+ RUN cd function && npm ci$/m);
    assert.match(ran, /build:\d+ RUN npx tsc -p tsconfig\.json$/m);
    assert.match(ran, /build:\d+ RUN \[ "\$TEST_ENABLED" = "false" \] && echo "skipping tests" \|\| \(cd function && npm test --if-present\)$/m);
    assert.equal((ran.match(/runtime-deps:\d+ RUN npx -y npm@11\.\d+\.\d+ ci --omit=dev$/gm) ?? []).length, 2, "the wrapper's and the function's");
    assert.match(ran, /runtime-deps:\d+ RUN mkdir -p dist\/function\/node_modules && find node_modules dist\/function\/node_modules .* -delete$/m);
    for (const step of replay.skipped) {
      assert.match(step, /fwatchdog|addgroup|adduser|of-watchdog|watchdog/, `unexpected skipped step: ${step}`);
    }
  });

  it('ships dist/ and only production dependencies where dist/function can resolve them', () => {
    const app = inStage(replay.final, '/home/app');
    assert.ok(existsSync(path.join(app, 'dist/index.js')));
    assert.ok(existsSync(path.join(app, 'dist/function/handler.js')));
    const modules = path.join(app, 'dist/function/node_modules');
    for (const dep of ['got', 'sharp', 'pino', 'proper-lockfile']) {
      assert.ok(existsSync(path.join(modules, dep, 'package.json')), `${dep} is not in dist/function/node_modules`);
    }
    const lock = JSON.parse(readFileSync(inStage(replay.final, '/home/app/dist/function/package-lock.json'), 'utf8')) as {
      packages: Record<string, { dev?: boolean }>;
    };
    const devOnly = Object.entries(lock.packages).filter(([name, p]) => name && p.dev).map(([name]) => name);
    assert.ok(devOnly.length > 0);
    for (const name of devOnly) assert.ok(!existsSync(path.join(app, 'dist/function', name)), `dev dependency ${name} in the runtime`);
    for (const tool of ['typescript', '@types/node']) assert.ok(!existsSync(path.join(app, 'node_modules', tool)), `the template's build tool ${tool} leaked into the runtime`);
    assert.ok(existsSync(path.join(app, 'node_modules/body-parser/package.json')), "the wrapper's body-parser, beside dist/");
    assert.deepEqual(
      readdirSync(path.join(app, 'dist/function')).filter((f) => f.endsWith('.ts')),
      [],
      'TypeScript sources in the runtime',
    );
    const shipped = JSON.parse(readFileSync(path.join(app, 'package.json'), 'utf8')) as { type?: string };
    assert.equal(shipped.type, 'commonjs', 'dist/index.js is CommonJS: /home/app/package.json must say "type": "commonjs"');
  });

  it(`holds the runtime dependencies to ${FUNCTION_DEPS_MB} MB for the function and ${WRAPPER_DEPS_MB} MB for the wrapper, with nothing the platform does not load`, () => {
    const app = inStage(replay.final, '/home/app');
    const functionDeps = bytesUnder(path.join(app, 'dist/function/node_modules'));
    const wrapperDeps = bytesUnder(path.join(app, 'node_modules'));
    process.stderr.write(`# runtime dependencies: the function's ${(functionDeps / 1e6).toFixed(1)} MB, the wrapper's ${(wrapperDeps / 1e6).toFixed(2)} MB\n`);
    assert.ok(functionDeps < FUNCTION_DEPS_MB * 1e6, `the function's ${functionDeps} bytes`);
    assert.ok(wrapperDeps < WRAPPER_DEPS_MB * 1e6, `the wrapper's ${wrapperDeps} bytes`);
    // npm 10.9 (node:22-alpine's) installs sharp's WebAssembly build, wanted only by the freebsd and webcontainers builds it skips.
    for (const unloaded of ['@img/sharp-wasm32', '@emnapi/runtime']) assert.ok(!existsSync(path.join(app, 'dist/function/node_modules', unloaded)), `${unloaded} is in the image`);
    const leftovers = filesUnder(path.join(app, 'node_modules')).concat(filesUnder(path.join(app, 'dist/function/node_modules'))).filter((f) => /\.(d\.[mc]?ts|map|md|cc|gyp)$/.test(f));
    assert.deepEqual(leftovers, [], 'declarations, source maps, Markdown or C sources in the runtime');
  });

  it("serves the page with the picture through fprocess, with of-watchdog's environment", async () => {
    const final = replay.final;
    assert.equal(final.env.mode, 'http');
    const upstream = new URL(final.env.upstream_url!);
    const [command, ...args] = templateYml.fprocess.split(' ');
    assert.equal(final.env.fprocess, templateYml.fprocess, 'the image runs the fprocess template.yml names');
    assert.equal(command, 'node');

    // The volume, mounted at stack.yml's IMAGE_DIR, stands in the stage's root.
    const imageDir = inStage(final, fn.environment.IMAGE_DIR!);
    mkdirSync(imageDir, { recursive: true });
    // of-watchdog passes its own environment on: the image's ENV and the
    // function's from stack.yml; faas-netes sets no PORT.
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '',
      ...final.env,
      ...fn.environment,
      IMAGE_DIR: imageDir,
      IMAGE_URL: source.url,
    };
    // The wrapper listens on upstream_url's port; when another process on this
    // machine holds it, the watchdog's upstream moves to a free port (as a
    // changed upstream_url in the image would), never PORT, which the wrapper ignores here.
    let port = Number(upstream.port);
    if (!(await portIsFree(port))) {
      port = await freePort();
      env.upstream_url = `http://127.0.0.1:${port}`;
      process.stderr.write(`# port ${upstream.port} is taken on this machine: upstream_url moves to ${port}\n`);
    }
    // As the image's USER, the files root's: the function must need to write
    // nothing but IMAGE_DIR, as with readonly_root_filesystem.
    const asAppUser = process.getuid?.() === 0;
    if (asAppUser) chownSync(imageDir, APP_UID, APP_UID);
    child = spawn(asAppUser ? nodeForAppUser(scratch) : process.execPath, args, {
      cwd: final.root + path.posix.resolve(final.workdir),
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(asAppUser ? { uid: APP_UID, gid: APP_UID } : {}),
    });
    child.stdout!.setEncoding('utf8').on('data', (d: string) => (output += d));
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (output += d));
    let alive = true;
    child.once('exit', () => (alive = false));
    await waitForPort(port, 15_000, () => alive).catch((error: Error) => {
      throw new Error(`${error.message}\n--- output ---\n${output}`);
    });

    const res = await fetch(`http://127.0.0.1:${port}/`);
    const body = await res.text();
    assert.equal(res.status, 200, output);
    assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
    assert.match(body, /src="data:image\/(jpeg|webp|png);base64,[A-Za-z0-9+/=]{100,}"/);
    assert.equal(source.downloads, 1);
    assert.ok(existsSync(path.join(imageDir, 'image.jpg')), 'the image is on the volume');
  });
});
