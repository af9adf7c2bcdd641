// The image must land on the volume on both engines: each target mounts a
// claim over the IMAGE_DIR the function is given, the claim binds to the
// course's volume, and the replicas fit the claim's access mode.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/fn.ts';
import {
  claimOver,
  faasNetesDeployment,
  kustomize,
  readKustomization,
  readStack,
  readYaml,
  strategicMerge,
  volumesDir,
  type Doc,
} from '../support/deploy-manifests.ts';
import { parseDockerfile, parseEnv } from '../support/deploy-dockerfile.ts';

const stack = readStack();
const fn = stack.functions['todo-app']!;
const imageDir = fn.environment.IMAGE_DIR!;
const byKind = (docs: Doc[], kind: string): Doc[] => docs.filter((d) => d.kind === kind);
const one = (docs: Doc[], kind: string): Doc => {
  const found = byKind(docs, kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0]!;
};

// The image's environment, as the Dockerfile's final stage sets it.
const dockerfile = parseDockerfile(readFileSync(path.join(repoRoot, 'template', fn.lang, 'Dockerfile'), 'utf8'));
const imageEnv = Object.assign({}, ...dockerfile.at(-1)!.instructions.filter((i) => i.keyword === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;

/** Whether every pod that mounts the claim is sure to run on one node. */
function pinnedToOneNode(docs: Doc[], claim: Doc): boolean {
  return byKind(docs, 'PersistentVolume').some(
    (pv) =>
      pv.spec.storageClassName === claim.spec.storageClassName &&
      pv.spec.local !== undefined &&
      pv.spec.nodeAffinity?.required?.nodeSelectorTerms?.length === 1,
  );
}

/** Max replicas that fit the claim's access modes. */
function maxReplicasFor(docs: Doc[], claim: Doc): number {
  const modes: string[] = claim.spec.accessModes;
  if (modes.includes('ReadWriteMany')) return Infinity;
  if (modes.includes('ReadWriteOncePod')) return 1;
  return pinnedToOneNode(docs, claim) ? Infinity : 1;
}

function storageBytes(quantity: string): number {
  const units: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9 };
  const m = /^(\d+)([A-Za-z]*)$/.exec(quantity);
  assert.ok(m && (m[2] === '' || units[m[2]!]), `storage quantity ${quantity}`);
  return Number(m[1]) * (m[2] ? units[m[2]]! : 1);
}

describe('the volume on each engine', () => {
  it("is the course's: a local volume at /tmp/kube on k3d-k3s-default-agent-0, manual, ReadWriteOnce, 1Gi, and its claim binds to it", () => {
    const docs = kustomize(path.join(volumesDir, 'volume/local'));
    const pv = one(docs, 'PersistentVolume');
    const claim = one(docs, 'PersistentVolumeClaim');
    assert.equal(pv.spec.local.path, '/tmp/kube');
    const terms = pv.spec.nodeAffinity.required.nodeSelectorTerms;
    assert.deepEqual(terms, [
      { matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: ['k3d-k3s-default-agent-0'] }] },
    ]);
    assert.equal(pv.spec.storageClassName, 'manual');
    assert.deepEqual(pv.spec.accessModes, ['ReadWriteOnce']);
    assert.equal(pv.spec.capacity.storage, '1Gi');
    assert.equal(pv.spec.persistentVolumeReclaimPolicy, 'Retain', 'deleting the claim must not delete the image');
    // What the binder checks: class, access modes, size.
    assert.equal(claim.spec.storageClassName, pv.spec.storageClassName);
    for (const mode of claim.spec.accessModes) assert.ok(pv.spec.accessModes.includes(mode), `the volume does not offer ${mode}`);
    assert.ok(storageBytes(claim.spec.resources.requests.storage) <= storageBytes(pv.spec.capacity.storage));
    assert.equal(claim.metadata.namespace, 'openfaas-fn');
  });

  it('has a claim for a default StorageClass, with the same name so either one can be mounted', () => {
    const claim = one(kustomize(path.join(volumesDir, 'volume/default-class')), 'PersistentVolumeClaim');
    assert.equal(claim.spec.storageClassName, undefined, 'no storageClassName: the default class provisions it');
    const local = one(kustomize(path.join(volumesDir, 'volume/local')), 'PersistentVolumeClaim');
    assert.equal(claim.metadata.name, local.metadata.name);
    assert.equal(claim.metadata.namespace, local.metadata.namespace);
    assert.match(readFileSync(path.join(volumesDir, 'volume/default-class/claim.yaml'), 'utf8'), /ReadWriteMany/, 'the comment on access modes');
  });

  it("OpenFaaS: the patch mounts the claim in openfaas-fn over stack.yml's IMAGE_DIR, beside faas-netes' /tmp", () => {
    assert.ok(path.posix.isAbsolute(imageDir), 'IMAGE_DIR in stack.yml is absolute');
    const docs = kustomize(path.join(volumesDir, 'openfaas'));
    const claim = one(docs, 'PersistentVolumeClaim');
    assert.equal(claim.metadata.namespace, 'openfaas-fn');
    const patch = readYaml(path.join(volumesDir, 'openfaas/deployment-patch.yaml'))[0];
    const deployment = strategicMerge(faasNetesDeployment('todo-app', fn), patch) as Doc;
    const pod = deployment.spec.template.spec;
    assert.equal(pod.containers.length, 1, 'the patch names the container faas-netes made (the function name)');
    const container = pod.containers[0];
    const over = claimOver(pod, container, imageDir);
    assert.ok(over, `no claim mounted over ${imageDir}`);
    assert.equal(over.claimName, claim.metadata.name);
    // faas-netes' emptyDir for of-watchdog's /tmp/.lock is still there, and still alone at /tmp.
    assert.deepEqual(
      container.volumeMounts.filter((m: Doc) => m.mountPath === '/tmp'),
      [{ name: 'temp', mountPath: '/tmp' }],
    );
    assert.equal(pod.volumes.filter((v: Doc) => v.name === 'temp').length, 1, 'the patch must not reuse the name "temp"');
    const max = Number(fn.labels['com.openfaas.scale.max']);
    assert.ok(max <= maxReplicasFor(docs, claim), `com.openfaas.scale.max ${max} does not fit the claim's ${claim.spec.accessModes}`);
    assert.match(readFileSync(path.join(volumesDir, 'openfaas/deployment-patch.yaml'), 'utf8'), /kubectl patch deployment todo-app -n openfaas-fn/);
  });

  it('Knative: the Service mounts the claim in its own namespace over its IMAGE_DIR, the same as stack.yml', () => {
    const docs = kustomize(path.join(volumesDir, 'knative'));
    const service = one(docs, 'Service');
    const claim = one(docs, 'PersistentVolumeClaim');
    assert.equal(claim.metadata.namespace, service.metadata.namespace, 'a claim is mounted only in its own namespace');
    const pod = service.spec.template.spec;
    const container = pod.containers[0];
    const env = Object.fromEntries(container.env.map((e: Doc) => [e.name, e.value])) as Record<string, string>;
    assert.equal(env.IMAGE_DIR, imageDir);
    for (const [name, value] of Object.entries(fn.environment)) assert.equal(env[name], value, `${name} differs from stack.yml`);
    const over = claimOver(pod, container, env.IMAGE_DIR!);
    assert.ok(over, `no claim mounted over ${env.IMAGE_DIR}`);
    assert.equal(over.claimName, claim.metadata.name);
    // Knative refuses mounts at its reserved paths.
    for (const mount of container.volumeMounts) assert.ok(!['/', '/dev', '/dev/log', '/tmp', '/var', '/var/log'].includes(mount.mountPath));
  });

  it('Knative: same image, port 8080, readiness on /_/health, scale from 0 to a max the access mode allows', () => {
    const docs = kustomize(path.join(volumesDir, 'knative'));
    const service = one(docs, 'Service');
    const claim = one(docs, 'PersistentVolumeClaim');
    const container = service.spec.template.spec.containers[0];
    assert.equal(container.image, fn.image);
    assert.deepEqual(container.ports.map((p: Doc) => p.containerPort), [8080]);
    assert.equal(container.readinessProbe.httpGet.path, '/_/health');
    const annotations = service.spec.template.metadata.annotations;
    assert.equal(annotations['autoscaling.knative.dev/min-scale'], '0');
    const max = Number(annotations['autoscaling.knative.dev/max-scale']);
    assert.ok(max >= 1 && max <= maxReplicasFor(docs, claim), `max-scale ${max} does not fit the claim's ${claim.spec.accessModes}`);
    // With a default-class ReadWriteOnce claim nothing pins the pods: then only 1 fits.
    const elsewhere = kustomize(path.join(volumesDir, 'volume/default-class'));
    assert.equal(maxReplicasFor(elsewhere, one(elsewhere, 'PersistentVolumeClaim')), 1);
  });

  it("Knative: the Service runs the image's own command and sets none of Knative's reserved variables", () => {
    const service = one(kustomize(path.join(volumesDir, 'knative')), 'Service');
    const container = service.spec.template.spec.containers[0];
    const names: string[] = container.env.map((e: Doc) => e.name);
    for (const reserved of ['PORT', 'K_SERVICE', 'K_CONFIGURATION', 'K_REVISION']) assert.ok(!names.includes(reserved), `${reserved} is reserved by Knative`);
    // Knative's PORT=8080 is the watchdog's port; the wrapper listens on the
    // image's upstream_url instead (test/integration/wrapper.test.ts), so no override is needed.
    assert.ok(!names.includes('fprocess'), 'the image\'s fprocess is used as is');
    assert.equal(new URL(imageEnv.upstream_url!).port, '3000');
  });

  it('Knative: the feature flags enable claims and writing to them', () => {
    const features = one(kustomize(path.join(volumesDir, 'knative/features')), 'ConfigMap');
    assert.equal(features.metadata.name, 'config-features');
    assert.equal(features.metadata.namespace, 'knative-serving');
    assert.equal(features.data['kubernetes.podspec-persistent-volume-claim'], 'enabled');
    assert.equal(features.data['kubernetes.podspec-persistent-volume-write'], 'enabled');
  });

  it('each kustomization lists files that exist, and kubectl kustomize agrees with this test (when kubectl is here)', (t) => {
    const targets = ['openfaas', 'knative', 'knative/features', 'volume/local', 'volume/default-class'];
    for (const target of targets) {
      const k = readKustomization(path.join(volumesDir, target));
      assert.ok(k.resources.length > 0, `${target} lists no resources`);
      kustomize(k.dir); // throws on a missing file
    }
    const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
    if (kubectl.status !== 0) {
      t.diagnostic('kubectl is not installed: checked with this test’s own kustomize only');
      return;
    }
    const ids = (docs: Doc[]): string[] => docs.map((d) => `${d.kind}/${d.metadata.namespace ?? ''}/${d.metadata.name}`).sort();
    for (const target of targets) {
      const built = execFileSync('kubectl', ['kustomize', path.join(volumesDir, target)], { encoding: 'utf8' });
      const docs = parseAllDocuments(built).map((d) => d.toJS() as Doc);
      assert.deepEqual(ids(docs), ids(kustomize(path.join(volumesDir, target))), target);
    }
  });
});
