// The image built for real with a container engine (DOCKER_BIN names a docker
// CLI with BuildKit: the Dockerfile's COPY --chmod needs it; skipped without
// one). This machine reaches no image registry: node:22-alpine and
// ghcr.io/openfaas/of-watchdog:0.11.6 must be there already (stand-ins built
// locally will do: the test measures only the layers the Dockerfile adds), and
// the build runs on the host's network. What it holds: the project's layers on
// top of node:22-alpine, sharp's WebAssembly build absent, and the image
// serving the page read-only as UID 12000 behind its of-watchdog, through a
// `docker stop` with no 5xx.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chownSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readStack, shrinkwrap } from '../../scripts/shrinkwrap.ts';
import { eventually, repoRoot } from '../support/fn.ts';
import { freePort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const docker = process.env.DOCKER_BIN;
/** The project's layers on top of node:22-alpine: 56 MB before this bound (two fwatchdog copies, sharp's wasm build). */
const PROJECT_LAYERS_MB = 36;
const tag = `todo-app:test-${process.pid}`;

const run = (...args: string[]): string => execFileSync(docker!, args, { encoding: 'utf8', env: { ...process.env, DOCKER_BUILDKIT: '1' }, stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 * 1024 * 1024 });

describe('the image built with docker', { skip: docker ? false : 'set DOCKER_BIN to a docker CLI with BuildKit to run it', timeout: 600_000 }, () => {
  let source: ImageSource;
  let volume: string;
  before(async () => {
    const fn = readStack(path.join(repoRoot, 'stack.yml')).functions['todo-app']!;
    const context = shrinkwrap(repoRoot, 'todo-app', fn);
    run('build', '--network', 'host', '-t', tag, context);
    source = await startSource();
    volume = mkdtempSync(path.join(os.tmpdir(), 'todo-docker-volume-'));
    if (process.getuid?.() === 0) chownSync(volume, 12000, 12000);
  });
  after(async () => {
    await source?.close();
    if (volume) rmSync(volume, { recursive: true, force: true });
    try {
      run('rmi', '-f', tag);
    } catch {
      // already gone
    }
  });

  it(`adds at most ${PROJECT_LAYERS_MB} MB to node:22-alpine, with fwatchdog once and no sharp WebAssembly build`, () => {
    const size = (image: string): number => Number(run('image', 'inspect', image, '--format', '{{.Size}}').trim());
    const added = size(tag) - size('node:22-alpine');
    process.stderr.write(`# the image's layers on top of node:22-alpine: ${(added / 1e6).toFixed(2)} MB\n`);
    assert.ok(added < PROJECT_LAYERS_MB * 1e6, `${added} bytes`);
    const fwatchdogLayers = run('history', '--no-trunc', '--format', '{{.CreatedBy}}', tag)
      .split('\n')
      .filter((line) => /fwatchdog/.test(line) && !/^(ENV|CMD|HEALTHCHECK)/.test(line));
    assert.equal(fwatchdogLayers.length, 1, fwatchdogLayers.join('\n'));
    const listing = run('run', '--rm', '--entrypoint', 'sh', tag, '-c', 'ls /home/app/dist/function/node_modules/@img; ls -l /usr/bin/fwatchdog');
    assert.doesNotMatch(listing, /sharp-wasm32/);
    assert.match(listing, /^-rwxr-xr-x/m);
  });

  it('serves the page read-only as UID 12000 behind of-watchdog, and stops with no 5xx', async () => {
    const port = await freePort();
    const name = `todo-app-test-${process.pid}`;
    run('run', '-d', '--name', name, '--network', 'host', '--read-only', '--tmpfs', '/tmp', '-v', `${volume}:/data/images`, '-e', `port=${port}`, '-e', `IMAGE_URL=${source.url}`, tag);
    try {
      await eventually(async () => (await fetch(`http://127.0.0.1:${port}/_/health`).catch(() => undefined))?.status === 200, 30_000, 'the container is ready');
      const page = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /data:image\/jpeg;base64,/);
      assert.equal(run('exec', name, 'id', '-u').trim(), '12000');
      const codes = new Map<number, number>();
      let stopping = true;
      const load = (async () => {
        while (stopping) {
          const code = await fetch(`http://127.0.0.1:${port}/`).then(async (r) => (await r.arrayBuffer(), r.status), () => 0);
          codes.set(code, (codes.get(code) ?? 0) + 1);
          if (code === 0) return;
          await new Promise((r) => setTimeout(r, 50));
        }
      })();
      await new Promise((resolve) => spawn(docker!, ['stop', name]).once('exit', resolve));
      stopping = false;
      await load;
      assert.equal([...codes].filter(([code]) => code >= 500).length, 0, JSON.stringify([...codes]));
      assert.ok((codes.get(200) ?? 0) > 0, 'answered while stopping');
      assert.equal(run('inspect', name, '--format', '{{.State.ExitCode}}').trim(), '0');
      assert.match(run('logs', name), /"msg":"stopped"/);
    } finally {
      run('rm', '-f', name);
    }
  });
});
