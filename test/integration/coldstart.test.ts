// The cold-start tool (npm run coldstart), run as a user runs it: a child
// process with arguments, against a stand-in gateway that really stops and
// starts function processes. No timed assertions: CI checks that the tool
// works and that its figures are well formed, not how fast this machine is.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import type net from 'node:net';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { repoRoot, startFunction } from '../support/fn.ts';
import { startGateway, type StandInGateway } from '../support/gateway.ts';
import { freePort } from '../support/ports.ts';
import { startSource, type ImageSource } from '../support/source.ts';

interface ToolRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

function coldstart(args: string[], env: Record<string, string> = {}): Promise<ToolRun> {
  // The user's own OpenFaaS login must not leak into a test, nor the runner's marker.
  const { NODE_TEST_CONTEXT, OPENFAAS_PASSWORD, OPENFAAS_USER, OPENFAAS_URL, ...inherited } = process.env;
  const childEnv: NodeJS.ProcessEnv = { ...inherited, LOG_LEVEL: 'warn', ...env };
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', path.join(repoRoot, 'scripts/coldstart.ts'), ...args],
      { cwd: repoRoot, env: childEnv, timeout: 60_000 },
      (error, stdout, stderr) => resolve({ code: error ? ((error as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

interface Figures {
  ttfbMs: { p50: number; p95: number; min: number; max: number };
  totalMs: { p50: number; p95: number; min: number; max: number };
}

function assertFigures(figures: Figures, what: string): void {
  for (const kind of ['ttfbMs', 'totalMs'] as const) {
    for (const stat of ['p50', 'p95', 'min', 'max'] as const) {
      const value = figures[kind][stat];
      assert.ok(typeof value === 'number' && Number.isFinite(value) && value > 0, `${what} ${kind}.${stat} is a positive number, got ${value}`);
    }
    assert.ok(figures[kind].min <= figures[kind].p50 && figures[kind].p50 <= figures[kind].p95 && figures[kind].p95 <= figures[kind].max, `${what} ${kind} ordered`);
  }
}

function assertSamples(report: Record<string, any>, runs: number): void {
  assert.equal(report.runs, runs);
  assert.equal(report.samples.length, runs);
  assertFigures(report.cold, 'cold');
  assertFigures(report.warm, 'warm');
  for (const sample of report.samples) {
    for (const call of [sample.cold, sample.warm]) {
      assert.equal(call.status, 200);
      assert.match(call.contentType, /^text\/html/);
      assert.ok(call.bytes > 1000, 'the whole page with the image inline');
      assert.ok(call.totalMs >= call.ttfbMs);
    }
    assert.ok(sample.cold.first.ttfbMs > 0 && sample.cold.first.ttfbMs <= sample.cold.ttfbMs, 'the first answer comes first');
    assert.equal(sample.cold.first.status, sample.cold.before[0] ?? 200, 'the first answer is the page, or the first of those before it');
    assert.ok(sample.waitedMs >= 0);
  }
  const statuses = report.samples.map((sample: any) => sample.cold.first.status);
  const tally: Record<string, number> = {};
  for (const status of statuses) tally[status] = (tally[status] ?? 0) + 1;
  assert.deepEqual(report.firstAnswers.statuses, tally, 'each run counted once, by its first answer');
  assert.equal(report.firstAnswers.count5xx, statuses.filter((s: number) => s >= 500).length);
}

/** A kubectl on PATH that passes `kubectl scale deployment <name> -n <ns> --replicas=N` to the stand-in's Kubernetes API. */
function kubectlFor(gateway: StandInGateway): { dir: string; calls: string } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'coldstart-kubectl-'));
  const calls = path.join(dir, 'calls');
  writeFileSync(
    path.join(dir, 'kubectl'),
    `#!${process.execPath}
const fs = require('node:fs');
const args = process.argv.slice(2);
fs.appendFileSync(${JSON.stringify(calls)}, args.join(' ') + '\\n');
const [verb, kind, name] = args;
const ns = args[args.indexOf('-n') + 1];
const replicas = Number(args.find((a) => a.startsWith('--replicas='))?.split('=')[1]);
if (verb !== 'scale' || kind !== 'deployment') { console.error('error: this kubectl only scales'); process.exit(1); }
fetch(${JSON.stringify(gateway.url)} + '/apis/apps/v1/namespaces/' + ns + '/deployments/' + name + '/scale', {
  method: 'PATCH', headers: { 'Content-Type': 'application/merge-patch+json' }, body: JSON.stringify({ spec: { replicas } }),
}).then(async (res) => {
  if (res.status !== 200) { console.error('Error from server (NotFound): ' + (await res.json()).message); process.exit(1); }
  console.log('deployment.apps/' + name + ' scaled');
});
`,
  );
  chmodSync(path.join(dir, 'kubectl'), 0o755);
  return { dir, calls };
}

let source: ImageSource;
let volume: string;
const functionEnv = (): Record<string, string> => ({ IMAGE_DIR: volume, IMAGE_URL: source.url, LOG_LEVEL: 'warn' });

before(async () => {
  source = await startSource({ width: 600, height: 600, noise: true });
  volume = mkdtempSync(path.join(os.tmpdir(), 'coldstart-volume-'));
});

after(async () => {
  await source.close();
  rmSync(volume, { recursive: true, force: true });
});

describe('npm run coldstart', { timeout: 60_000 }, () => {
  test('--help explains each mode with an example', async () => {
    const { code, stdout } = await coldstart(['--help']);
    assert.equal(code, 0);
    for (const mode of ['openfaas', 'knative', 'local']) {
      assert.match(stdout, new RegExp(`^  ${mode} `, 'm'), `mode ${mode} explained`);
      assert.match(stdout, new RegExp(`npm run coldstart -- ${mode} `), `example for ${mode}`);
    }
    for (const option of ['--gateway', '--user', '--password', '--function', '--namespace', '--url', '--host', '--idle', '--json', '--runs', '--image-dir']) {
      assert.ok(stdout.includes(option), `${option} documented`);
    }
  });

  test('a mode is required and an unknown one is a usage error', async () => {
    const none = await coldstart([]);
    assert.equal(none.code, 2);
    assert.match(none.stderr, /name a mode/);
    const unknown = await coldstart(['lambda']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown mode "lambda"/);
  });
});

describe('openfaas mode against a stand-in gateway', { timeout: 60_000 }, () => {
  // Every gateway is closed after the suite even when a test fails half way:
  // a leaked one keeps a function process and the test run alive.
  const gateways: StandInGateway[] = [];
  const gatewayWith = async (options: Parameters<typeof startGateway>[0]): Promise<StandInGateway> => {
    const gateway = await startGateway(options);
    gateways.push(gateway);
    return gateway;
  };
  after(async () => {
    await Promise.all(gateways.map((gateway) => gateway.close()));
  });

  test('each cold run scales to zero, stops the process, and the timed call starts a new one', async () => {
    const gateway = await gatewayWith({ env: functionEnv() });
    assert.equal(gateway.starts, 1, 'the deployed function has one replica');
    // The image on the volume first: a cold start with no download follows a hold within the gateway's cache.
    assert.equal((await fetch(`${gateway.url}/function/todo-app/`)).status, 200);
    const { code, stdout, stderr } = await coldstart(['openfaas', '--gateway', gateway.url, '--password', gateway.password, '-n', '2', '--json']);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.mode, 'openfaas');
    assert.equal(report.target, `${gateway.url}/function/todo-app/`);
    assertSamples(report, 2);
    assert.equal(gateway.stops, 2, 'one scale-down per run');
    assert.equal(gateway.starts, 3, 'the first replica plus one real process start per cold run');
    assert.equal(gateway.heldRequests, 2, 'each cold call was held by the gateway while it scaled from zero');
    assert.deepEqual(gateway.scaleRequests, [
      { serviceName: 'todo-app', replicas: 0 },
      { serviceName: 'todo-app', replicas: 0 },
    ]);
    assert.equal(gateway.availableReplicas(), 1, 'left with the one replica it had');
    assert.match(stderr, /waiting out the gateway's replica cache \(250 ms\)/, 'progress on stderr');
    assert.equal(gateway.cachedMisses, 0, "no cold call fell inside the gateway's replica cache (a 503 with no endpoint)");
    assert.deepEqual(report.firstAnswers.statuses, { 200: 2 }, 'each first answer was the page');
    assert.equal(report.coldFrom, 'the first request');
  });

  test('without --json it prints p50/p95 of cold and warm calls; the password may come from OPENFAAS_PASSWORD', async () => {
    const gateway = await gatewayWith({ env: functionEnv(), user: 'ops', namespace: 'fn' });
    const { code, stdout, stderr } = await coldstart(['openfaas', '--gateway', `${gateway.url}/`, '--user', 'ops', '--namespace', 'fn', '-n', '1'], {
      OPENFAAS_PASSWORD: gateway.password,
    });
    assert.equal(code, 0, stderr);
    assert.match(stdout, /p50\s+p95/);
    for (const row of ['first answer', 'cold TTFB', 'cold total', 'warm TTFB', 'warm total']) assert.match(stdout, new RegExp(`^${row}\\s+[\\d.]+ ms\\s+[\\d.]+ ms`, 'm'));
    assert.match(stdout, /^first answers: 200 x1 \(0 runs answered 5xx first, 0 3xx\)$/m);
    assert.match(stdout, /\/function\/todo-app\.fn\//, 'a namespaced function is called as name.namespace');
    assert.equal(gateway.starts, 2);
  });

  const CE_SOURCES = [/gateway\/scaling\/ranges\.go/, /pkg\/handlers\/replica_updater\.go/, /pkg\/handlers\/informers\.go/];

  test("OpenFaaS CE through its gateway: the scale to 0 is accepted and made 1 (ranges.go); the tool explains why CE never stays at zero and exits 3", async () => {
    const gateway = await gatewayWith({ env: functionEnv(), ce: true });
    const { code, stdout, stderr } = await coldstart(['openfaas', '--gateway', gateway.url, '--password', gateway.password, '-n', '2']);
    assert.equal(code, 3, stderr);
    assert.equal(stdout, '', 'no figures when nothing was cold');
    assert.match(stderr, /accepted the scale to 0 but keeps todo-app at 1 replica/);
    assert.match(stderr, /OpenFaaS CE never lets a function stay at zero replicas/);
    for (const source of CE_SOURCES) assert.match(stderr, source);
    assert.match(stderr, /Standard or Pro/);
    assert.match(stderr, /--label com\.openfaas\.scale\.zero=true/);
    assert.match(stderr, /Knative/);
    assert.match(stderr, /--kubectl-scale/, 'what CE can measure instead');
    assert.deepEqual(gateway.scaleRequests, [{ serviceName: 'todo-app', replicas: 1 }], 'the provider got 1, not 0');
    assert.equal(gateway.starts, 1, 'no cold start happened');
    assert.equal(gateway.stops, 0);
  });

  test('faas-netes CE called directly answers 400 to a scale to 0 (replica_updater.go): quoted, explained, exit 3', async () => {
    const provider = await gatewayWith({ env: functionEnv(), ce: true, gateway: false });
    const { code, stderr } = await coldstart(['openfaas', '--gateway', provider.url, '--password', provider.password, '-n', '1']);
    assert.equal(code, 3, stderr);
    assert.match(stderr, /answered 400 "replicas cannot be set to 0 in OpenFaaS CE"/);
    for (const source of CE_SOURCES) assert.match(stderr, source);
    assert.equal(provider.desiredReplicas(), 1);
  });

  test('OpenFaaS CE with --kubectl-scale: faas-netes puts the Deployment back to 1 (informers.go), and each run times the replacement pod from the scale, labelled as such', async () => {
    const gateway = await gatewayWith({ env: functionEnv(), ce: true });
    const kubectl = kubectlFor(gateway);
    try {
      const { code, stdout, stderr } = await coldstart(['openfaas', '--kubectl-scale', '--gateway', gateway.url, '--password', gateway.password, '-n', '2', '--json'], {
        PATH: `${kubectl.dir}:${process.env.PATH}`,
      });
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout);
      assertSamples(report, 2);
      assert.equal(report.coldFrom, 'the kubectl scale to 0');
      assert.match(report.details.cold, /a replacement pod, not a scale from zero/);
      assert.match(report.notes.join(' '), /ranges\.go.*informers\.go/);
      for (const sample of report.samples) assert.ok(sample.replicasBackAfterMs >= 0, 'faas-netes had put the replicas back');
      assert.deepEqual(readFileSync(kubectl.calls, 'utf8').trim().split('\n'), Array(2).fill('scale deployment todo-app -n openfaas-fn --replicas=0'));
      assert.equal(gateway.stops, 2, 'each scale stopped the pod');
      assert.equal(gateway.starts, 3, 'and a replacement started');
      assert.equal(gateway.desiredReplicas(), 1);
      assert.match(stderr, /from the scale, .*200 page/);
    } finally {
      rmSync(kubectl.dir, { recursive: true, force: true });
    }
  });

  test('a provider without readiness (faasd) answers 500 before the function listens: the tool counts it and waits for the page', async () => {
    // The function takes 400 ms to listen, longer than the gateway's 100 ms poll, as any container does.
    const slow = { ...functionEnv(), NODE_OPTIONS: `--require ${path.join(repoRoot, 'test/fixtures/slow-start.cjs')}`, SLOW_START_MS: '400' };
    const gateway = await gatewayWith({ env: slow, readiness: false });
    const { code, stdout, stderr } = await coldstart(['openfaas', '--gateway', gateway.url, '--password', gateway.password, '-n', '2', '--json']);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout);
    assertSamples(report, 2);
    assert.deepEqual(report.firstAnswers.statuses, { 500: 2 }, "faas-provider's proxy: Can't reach service");
    assert.equal(report.firstAnswers.count5xx, 2);
    for (const sample of report.samples) assert.ok(sample.cold.ttfbMs > sample.cold.first.ttfbMs, 'the page came later');
    const table = await coldstart(['openfaas', '--gateway', gateway.url, '--password', gateway.password, '-n', '1']);
    assert.match(table.stdout, /^first answers: 500 x1 \(1 run answered 5xx first, 0 3xx\)$/m);
  });

  test('wrong credentials: exit 1 with a message that says 401, and nothing is scaled', async () => {
    const gateway = await gatewayWith({ env: functionEnv(), replicas: 0 });
    const { code, stderr } = await coldstart(['openfaas', '--gateway', gateway.url, '--password', 'wrong', '-n', '1']);
    assert.equal(code, 1);
    assert.match(stderr, /401 Unauthorized/);
    assert.match(stderr, /--password|OPENFAAS_PASSWORD/);
    assert.ok(gateway.unauthorized >= 1);
    assert.deepEqual(gateway.scaleRequests, []);
    const missing = await coldstart(['openfaas', '--gateway', gateway.url, '-n', '1']);
    assert.equal(missing.code, 2, 'no password at all is a usage error');
    assert.match(missing.stderr, /OPENFAAS_PASSWORD/);
  });

  test('an unreachable gateway or an unknown function ends non-zero with a plain message', async () => {
    const closed = await freePort();
    const unreachable = await coldstart(['openfaas', '--gateway', `http://127.0.0.1:${closed}`, '--password', 'x', '-n', '1']);
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /gateway is unreachable: cannot connect .* connection refused/);
    const gateway = await gatewayWith({ env: functionEnv(), replicas: 0 });
    const unknown = await coldstart(['openfaas', '--gateway', gateway.url, '--password', gateway.password, '--function', 'nope', '-n', '1']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no function "nope"/);
  });
});

describe('local mode', { timeout: 60_000 }, () => {
  test('with no options and no network: warms a temporary volume from its own source, then times 2 starts', async () => {
    const { code, stdout, stderr } = await coldstart(['local', '-n', '2', '--json']);
    assert.equal(code, 0, stderr);
    const report = JSON.parse(stdout);
    assert.equal(report.mode, 'local');
    assertSamples(report, 2);
    assert.equal(report.details.volume, 'a warm-up process');
    assert.equal(report.details.downloadsDuringRuns, 0, 'every timed start found the image on the volume');
    assert.ok(report.details.imageBytes > 50_000, 'a photo-sized image');
    assert.match(stderr, /run 2\/2: from spawn, 200 page: first byte/);
  });

  test('a given folder is warmed once from --image-url and then used as found', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'coldstart-local-'));
    try {
      const before = source.downloads;
      const first = await coldstart(['local', '-n', '2', '--json', '--image-dir', dir, '--image-url', source.url]);
      assert.equal(first.code, 0, first.stderr);
      assert.equal(source.downloads - before, 1, 'one download, by the warm-up process');
      assert.ok(readFileSync(path.join(dir, 'image.jpg')).length > 0);
      const second = await coldstart(['local', '-n', '2', '--json', '--image-dir', dir, '--image-url', source.url]);
      assert.equal(second.code, 0, second.stderr);
      assert.equal(JSON.parse(second.stdout).details.volume, 'the folder as found');
      assert.equal(source.downloads - before, 1, 'a warm folder needs no download');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a missing build is named with the fix', async () => {
    const { code, stderr } = await coldstart(['local', '-n', '1', '--entry', path.join(os.tmpdir(), 'no-such-build/index.js')]);
    assert.equal(code, 1);
    assert.match(stderr, /npm run build/);
  });
});

/**
 * An ingress like Kourier's Envoy reached through a port-forward: it routes by
 * the Host header alone, and a host with no route is a 404.
 */
async function startIngress(routes: Record<string, string>): Promise<{ url: string; hosts: string[]; close(): Promise<void> }> {
  const hosts: string[] = [];
  const server = http.createServer((req, res) => {
    const host = req.headers.host ?? '';
    hosts.push(host);
    const upstream = routes[host];
    if (!upstream) {
      res.writeHead(404).end();
      return;
    }
    const target = new URL(upstream);
    const forward = http.request({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.writeHead(503).end());
    req.pipe(forward);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    hosts,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('knative mode', { timeout: 60_000 }, () => {
  test("--host reaches a route by its host through the ingress's address, as docs/deploy.md's port-forward does; without it the ingress answers 404", async () => {
    const fn = await startFunction(functionEnv());
    const ingress = await startIngress({ 'todo-app.default.example.com': fn.url });
    try {
      const { code, stdout, stderr } = await coldstart(['knative', '--url', ingress.url, '--host', 'todo-app.default.example.com', '--idle', '0', '-n', '2', '--json']);
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout);
      assertSamples(report, 2);
      assert.equal(report.details.host, 'todo-app.default.example.com');
      assert.deepEqual(new Set(ingress.hosts), new Set(['todo-app.default.example.com']), 'every call carried the Host header');
      const without = await coldstart(['knative', '--url', ingress.url, '--idle', '0', '-n', '1']);
      assert.equal(without.code, 1);
      assert.match(without.stderr, /answered 404/);
      const bad = await coldstart(['knative', '--url', ingress.url, '--host', 'http://todo-app', '--idle', '0']);
      assert.equal(bad.code, 2, 'a URL is not a host');
    } finally {
      await ingress.close();
      await fn.kill();
    }
  });

  test('--idle 0 against a plain URL times the calls without kubectl', async () => {
    const fn = await startFunction(functionEnv());
    try {
      const { code, stdout, stderr } = await coldstart(['knative', '--url', `${fn.url}/`, '--idle', '0', '-n', '2', '--json']);
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout);
      assert.equal(report.mode, 'knative');
      assert.equal(report.details.wait, 'idle');
      assert.equal(report.details.idleSeconds, 0);
      assertSamples(report, 2);
    } finally {
      await fn.kill();
    }
  });

  test('with kubectl it waits until the revision has no pod before the cold call', async () => {
    // A kubectl on PATH that lists one terminating pod, then none; it logs its arguments.
    const bin = mkdtempSync(path.join(os.tmpdir(), 'coldstart-kubectl-'));
    const calls = path.join(bin, 'calls');
    writeFileSync(
      path.join(bin, 'kubectl'),
      `#!/bin/sh
[ "$1" = version ] && exit 0
echo "$*" >> "${calls}"
if [ "$(wc -l < "${calls}")" -le 1 ]; then
  echo '{"items":[{"metadata":{"name":"todo-app-00001-deployment-abc","deletionTimestamp":"2025-01-01T00:00:00Z"},"status":{"phase":"Running"}}]}'
else
  echo '{"items":[]}'
fi
`,
    );
    chmodSync(path.join(bin, 'kubectl'), 0o755);
    const fn = await startFunction(functionEnv());
    try {
      const { code, stdout, stderr } = await coldstart(
        ['knative', '--url', fn.url, '--service', 'todo-app', '--namespace', 'apps', '-n', '1', '--json'],
        { PATH: `${bin}:${process.env.PATH}` },
      );
      assert.equal(code, 0, stderr);
      const report = JSON.parse(stdout);
      assert.deepEqual(report.details, { wait: 'kubectl', service: 'todo-app', namespace: 'apps' });
      assert.match(stderr, /todo-app-00001-deployment-abc Terminating/);
      const logged = readFileSync(calls, 'utf8').trim().split('\n');
      assert.equal(logged.length, 2, 'polled until the pod was gone');
      assert.equal(logged[0], 'get pods -n apps -l serving.knative.dev/service=todo-app -o json');
      assert.ok(report.samples[0].waitedMs > 0);

      // With --host, the service and namespace come from the route's host, not from the ingress's address.
      const ingress = await startIngress({ 'todo-app.default.example.com': fn.url });
      try {
        writeFileSync(calls, 'earlier\nearlier\n');
        const byHost = await coldstart(['knative', '--url', ingress.url, '--host', 'todo-app.default.example.com', '-n', '1', '--json'], { PATH: `${bin}:${process.env.PATH}` });
        assert.equal(byHost.code, 0, byHost.stderr);
        assert.equal(readFileSync(calls, 'utf8').trim().split('\n').at(-1), 'get pods -n default -l serving.knative.dev/service=todo-app -o json');
        assert.deepEqual(JSON.parse(byHost.stdout).details, { wait: 'kubectl', host: 'todo-app.default.example.com', service: 'todo-app', namespace: 'default' });
      } finally {
        await ingress.close();
      }
    } finally {
      await fn.kill();
      rmSync(bin, { recursive: true, force: true });
    }
  });
});
