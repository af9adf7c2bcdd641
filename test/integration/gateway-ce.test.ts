// The OpenFaaS CE path of docs/deploy.md, against the stand-in gateway with
// faas-netes' rules (test/support/faas-netes-ce.ts) and a stand-in registry
// where k3d's would be: stack.yml deploys as it is, the Standard/Pro
// scale-to-zero step gets CE's 400 with its words, only an image that can
// be fetched anonymously is deployed, and nothing stays at zero replicas. Requests are built as faas-cli builds
// them (test/support/faas-cli-deploy.ts).
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { readStack } from '../support/deploy-manifests.ts';
import { eventually } from '../support/fn.ts';
import { deploy, deployRequest } from '../support/faas-cli-deploy.ts';
import { isAnonymous, mayUseHttp, parseReference, validateScalingLabels } from '../support/faas-netes-ce.ts';
import { startGateway, type GatewayOptions, type StandInGateway } from '../support/gateway.ts';
import { startRegistry, type StandInRegistry } from '../support/registry.ts';
import { startSource, type ImageSource } from '../support/source.ts';

const fn = readStack().functions['todo-app']!;
const ref = parseReference(fn.image)!;
const SCALE_TO_ZERO = ['com.openfaas.scale.zero=true', 'com.openfaas.scale.zero-duration=15m'];

let source: ImageSource;
let volume: string;
let registry: StandInRegistry;
const gateways: StandInGateway[] = [];

before(async () => {
  source = await startSource({ width: 300, height: 300 });
  volume = mkdtempSync(path.join(os.tmpdir(), 'gateway-ce-volume-'));
  registry = await startRegistry({ images: [`${ref.repository}:${ref.reference}`] });
});

after(async () => {
  await Promise.all(gateways.map((g) => g.close()));
  await registry.close();
  await source.close();
  rmSync(volume, { recursive: true, force: true });
});

/** A gateway whose cluster DNS resolves stack.yml's registry to the stand-in, as k3d's CoreDNS entry does. */
async function gateway(options: Partial<GatewayOptions> = {}): Promise<StandInGateway> {
  const g = await startGateway({
    env: { IMAGE_DIR: volume, IMAGE_URL: source.url, LOG_LEVEL: 'warn' },
    ce: true,
    deployed: false,
    resolveRegistry: (r) => (r === ref.registry ? registry.address : r),
    ...options,
  });
  gateways.push(g);
  return g;
}

const auth = (g: StandInGateway): { user: string; password: string } => ({ user: g.user, password: g.password });

describe('OpenFaaS CE, as faas-netes checks a deploy', { timeout: 60_000 }, () => {
  test('stack.yml deploys as it is: PUT finds nothing, POST creates it, the image is HEADed anonymously, the function answers', async () => {
    const g = await gateway();
    const heads = registry.seen.length;
    const outcome = await deploy(g.url, auth(g), deployRequest('todo-app', fn));
    assert.deepEqual(outcome.calls.map((c) => `${c.method} ${c.status}`), ['PUT 404', 'POST 202'], outcome.output);
    assert.ok(registry.seen.slice(heads).includes(`HEAD /v2/${ref.repository}/manifests/${ref.reference}`), `registry saw ${registry.seen.slice(heads)}`);
    assert.equal(g.deployment?.image, fn.image);
    assert.equal(g.deployment?.envProcess, 'node dist/index.js', "faas-cli sends the template's fprocess");
    const page = await fetch(`${g.url}/function/todo-app/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
    const again = await deploy(g.url, auth(g), deployRequest('todo-app', fn, { env: ['ENABLE_SHUTDOWN=true'] }));
    assert.deepEqual(again.calls.map((c) => `${c.method} ${c.status}`), ['PUT 202'], 'a second deploy is a rolling update');
    assert.equal(g.deployment?.envVars?.ENABLE_SHUTDOWN, 'true', '--env over the stack');
  });

  test("the Standard/Pro scale-to-zero step is refused with CE's 400 and words, on deploy and on update", async () => {
    const g = await gateway();
    const request = deployRequest('todo-app', fn, { labels: SCALE_TO_ZERO });
    assert.equal(request.labels?.['com.openfaas.scale.max'], fn.labels['com.openfaas.scale.max'], '--label merges over the stack labels');
    const first = await deploy(g.url, auth(g), request);
    assert.deepEqual(first.calls.map((c) => c.status), [400]);
    assert.equal(first.output, 'Unexpected status: 400, message: validation failed: com.openfaas.scale.zero not available for Community Edition\n');
    assert.equal(g.deployment, undefined);
    await deploy(g.url, auth(g), deployRequest('todo-app', fn));
    const update = await deploy(g.url, auth(g), deployRequest('todo-app', fn, { labels: ['com.openfaas.scale.zero-duration=15m'] }));
    assert.equal(update.output, 'Unexpected status: 400, message: validation failed: com.openfaas.scale.zero-duration not available for Community Edition\n');
  });

  test('every CE limit on the scaling labels, and what passes', () => {
    const cases: Array<[Record<string, string>, string | undefined]> = [
      [{ 'com.openfaas.scale.zero': 'true' }, 'com.openfaas.scale.zero not available for Community Edition'],
      [{ 'com.openfaas.scale.zero': 'false' }, undefined],
      [{ 'com.openfaas.scale.zero-duration': '15m' }, 'com.openfaas.scale.zero-duration not available for Community Edition'],
      [{ 'com.openfaas.scale.target': '50' }, 'com.openfaas.scale.target not available for Community Edition'],
      [{ 'com.openfaas.scale.type': 'rps' }, 'com.openfaas.scale.type not available for Community Edition'],
      [{ 'com.openfaas.scale.max': '6' }, 'com.openfaas.scale.max is set too high for Community Edition'],
      [{ 'com.openfaas.scale.max': '5' }, undefined],
      [{ 'com.openfaas.scale.min': '6' }, 'com.openfaas.scale.min is set too high for Community Edition'],
      [{ 'com.openfaas.scale.max': 'lots' }, undefined],
      [fn.labels, undefined],
    ];
    for (const [labels, expected] of cases) assert.equal(validateScalingLabels(labels), expected, JSON.stringify(labels));
  });

  test('OpenFaaS Standard/Pro takes the same labels and scales the function to zero', async () => {
    const g = await gateway({ ce: false });
    const outcome = await deploy(g.url, auth(g), deployRequest('todo-app', fn, { labels: SCALE_TO_ZERO }));
    assert.equal(outcome.status, 202, outcome.output);
    assert.equal(g.deployment?.labels?.['com.openfaas.scale.zero'], 'true');
    const scale = await fetch(`${g.url}/system/scale-function/todo-app`, {
      method: 'POST',
      headers: { Authorization: `Basic ${Buffer.from(`${g.user}:${g.password}`).toString('base64')}` },
      body: JSON.stringify({ serviceName: 'todo-app', replicas: 0 }),
    });
    assert.equal(scale.status, 202);
  });

  test('CE never stays at 0: the gateway makes a scale to 0 a 1 (ranges.go), faas-netes refuses it when called directly, and puts a Deployment scaled to 0 back to 1', async () => {
    const scaleTo = (g: StandInGateway, replicas: number): Promise<Response> =>
      fetch(`${g.url}/system/scale-function/todo-app`, {
        method: 'POST',
        headers: { Authorization: `Basic ${Buffer.from(`${g.user}:${g.password}`).toString('base64')}` },
        body: JSON.stringify({ serviceName: 'todo-app', replicas }),
      });
    const g = await gateway({ deployed: true });
    const through = await scaleTo(g, 0);
    assert.equal(through.status, 202, 'accepted');
    assert.deepEqual(g.scaleRequests, [{ serviceName: 'todo-app', replicas: 1 }], 'the provider got 1');
    assert.equal(g.desiredReplicas(), 1);
    await scaleTo(g, 9);
    assert.equal(g.scaleRequests.at(-1)!.replicas, 5, 'and at most 5');

    const direct = await gateway({ deployed: true, gateway: false });
    const refused = await scaleTo(direct, 0);
    assert.equal(refused.status, 400);
    assert.equal(await refused.text(), 'replicas cannot be set to 0 in OpenFaaS CE\n');

    // kubectl scale --replicas=0 goes to Kubernetes, not to the gateway: faas-netes' informer undoes it.
    const scaled = await fetch(`${direct.url}/apis/apps/v1/namespaces/openfaas-fn/deployments/todo-app/scale`, { method: 'PATCH', body: JSON.stringify({ spec: { replicas: 0 } }) });
    assert.equal(scaled.status, 200);
    assert.equal(direct.desiredReplicas(), 0, 'the Deployment is at 0 for a moment');
    await eventually(() => direct.desiredReplicas() === 1, 5000, 'faas-netes puts it back to 1');
    await eventually(() => direct.availableReplicas() === 1, 15_000, 'and a new pod serves');
  });

  test('a private image is refused on deploy with 400; on update faas-netes answers 200 and keeps the old image', async () => {
    const closed = await startRegistry({ images: [`${ref.repository}:${ref.reference}`], private: true });
    try {
      const g = await gateway({ resolveRegistry: (r) => (r === ref.registry ? closed.address : r) });
      const refused = await deploy(g.url, auth(g), deployRequest('todo-app', fn));
      assert.equal(refused.output, 'Unexpected status: 400, message: the Community Edition license agreement only allows public images\n');
      assert.ok(closed.seen.includes('GET /token'), 'an anonymous token was asked for, as go-containerregistry does on a Bearer challenge');
      assert.equal(g.deployment, undefined);

      const open = await gateway();
      await deploy(open.url, auth(open), deployRequest('todo-app', fn));
      const privateImage = { ...fn, image: `${ref.registry}/private/todo-app:0.2.0` };
      const update = await deploy(open.url, auth(open), deployRequest('todo-app', privateImage));
      assert.deepEqual(update.calls.map((c) => `${c.method} ${c.status} "${c.body}"`), ['PUT 200 ""'], 'update.go writes no answer for this error');
      assert.equal(open.deployment?.image, fn.image, 'the Deployment keeps its image');
    } finally {
      await closed.close();
    }
  });

  test('other refusals: a registry the cluster cannot reach, a bad name, another namespace', async () => {
    const g = await gateway({ resolveRegistry: (r) => r });
    // Without k3d's DNS entry the name does not resolve from the gateway's pod.
    const unreachable = await deploy(g.url, auth(g), deployRequest('todo-app', { ...fn, image: 'k3d-registry.invalid:5000/todo-app:0.1.0' }));
    assert.equal(unreachable.status, 400);
    assert.match(unreachable.output, /only allows public images/);
    const badName = await deploy(g.url, auth(g), deployRequest('Todo_App', fn));
    assert.equal(badName.output, 'Unexpected status: 400, message: validation failed: service: (Todo_App) is invalid, must be a valid DNS entry\n');
    const otherNs = await deploy(g.url, auth(g), deployRequest('todo-app', fn, { namespace: 'default' }));
    assert.equal(otherNs.output, 'Unexpected status: 400, message: namespace must be: openfaas-fn\n');
  });
});

describe("go-containerregistry's rules that decide whether CE can reach a local registry", () => {
  test('names: Docker Hub defaults, registries with a port, digests', () => {
    assert.deepEqual(parseReference('alpine'), { registry: 'index.docker.io', repository: 'library/alpine', reference: 'latest' });
    assert.deepEqual(parseReference('k3d-registry.localhost:5000/todo-app:0.1.0'), { registry: 'k3d-registry.localhost:5000', repository: 'todo-app', reference: '0.1.0' });
    assert.deepEqual(parseReference('ghcr.io/me/todo-app@sha256:abc'), { registry: 'ghcr.io', repository: 'me/todo-app', reference: 'sha256:abc' });
    assert.equal(parseReference('Bad Name'), undefined);
  });

  test("plain http only for local names: *.localhost (k3d's registry), localhost:, loopback, RFC 1918", () => {
    for (const local of ['k3d-registry.localhost:5000', 'registry.local', 'localhost:5000', '127.0.0.1:5000', '10.0.0.5:5000', '172.18.0.2:5000', '192.168.1.2']) assert.ok(mayUseHttp(local), local);
    for (const remote of ['ghcr.io', 'index.docker.io', 'registry.example.com:5000', '172.32.0.1:5000', 'mylocalhost.com']) assert.ok(!mayUseHttp(remote), remote);
  });

  test('a registry that answers only plain http on a name that is not local is not public to CE', async () => {
    // 127.0.0.1 itself may use http; a public-looking name mapped to the same server may not.
    assert.equal(await isAnonymous(`${registry.address}/${ref.repository}:${ref.reference}`), undefined);
    assert.equal(
      await isAnonymous(`registry.example.com:5000/${ref.repository}:${ref.reference}`, () => registry.address),
      'the Community Edition license agreement only allows public images',
    );
  });
});
