// The image must land on the volume on every target: the claim binds to the
// course's volume and to no other, OpenFaaS' patch mounts it over the
// IMAGE_DIR the function is given, and the replicas fit the claim's access
// mode. (The Knative and plain Kubernetes targets: manifests-targets.test.ts.)
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { repoRoot } from '../support/fn.ts';
import {
  TARGETS,
  claimOver,
  faasNetesDeployment,
  kustomize,
  maxReplicasFor,
  readKustomization,
  readStack,
  readYaml,
  strategicMerge,
  volumesDir,
  type Doc,
} from '../support/deploy-manifests.ts';

const stack = readStack();
const fn = stack.functions['todo-app']!;
const imageDir = fn.environment.IMAGE_DIR!;
const byKind = (docs: Doc[], kind: string): Doc[] => docs.filter((d) => d.kind === kind);
const one = (docs: Doc[], kind: string): Doc => {
  const found = byKind(docs, kind);
  assert.equal(found.length, 1, `expected one ${kind}, found ${found.length}`);
  return found[0]!;
};

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
    assert.equal(claim.spec.volumeName, pv.metadata.name, 'pinned to our volume: a free "manual" volume of the student\'s own could take the claim');
  });

  it('every target that uses the course volume binds the same volume by name, and nothing else', () => {
    for (const target of ['openfaas', 'knative', 'kubernetes']) {
      const docs = kustomize(path.join(volumesDir, target));
      const pv = one(docs, 'PersistentVolume');
      const claim = one(docs, 'PersistentVolumeClaim');
      assert.equal(claim.spec.volumeName, pv.metadata.name, target);
      assert.equal(claim.metadata.name, 'todo-app-images', target);
    }
  });

  it('has a claim for a default StorageClass, with the same name so either one can be mounted', () => {
    const claim = one(kustomize(path.join(volumesDir, 'volume/default-class')), 'PersistentVolumeClaim');
    assert.equal(claim.spec.storageClassName, undefined, 'no storageClassName: the default class provisions it');
    assert.equal(claim.spec.volumeName, undefined, 'no volume of ours to pin to');
    const local = one(kustomize(path.join(volumesDir, 'volume/local')), 'PersistentVolumeClaim');
    assert.equal(claim.metadata.name, local.metadata.name);
    assert.equal(claim.metadata.namespace, local.metadata.namespace);
    const comment = readFileSync(path.join(volumesDir, 'volume/default-class/claim.yaml'), 'utf8');
    assert.match(comment, /ReadWriteMany/, 'the comment on access modes');
    assert.match(comment, /Multi-Attach/, 'the comment on rollouts across nodes');
  });

  it('has a ReadWriteMany claim for replicas on several nodes: a class the user names, no volume of ours, no node, the same name', () => {
    const docs = kustomize(path.join(volumesDir, 'volume/shared'));
    const claim = one(docs, 'PersistentVolumeClaim');
    assert.deepEqual(claim.spec.accessModes, ['ReadWriteMany']);
    assert.ok(typeof claim.spec.storageClassName === 'string' && claim.spec.storageClassName.length > 0, 'a storageClassName the user sets');
    assert.equal(claim.spec.volumeName, undefined, 'the class provisions it');
    assert.equal(byKind(docs, 'PersistentVolume').length, 0, 'no volume pinned to a node');
    const local = one(kustomize(path.join(volumesDir, 'volume/local')), 'PersistentVolumeClaim');
    assert.equal(claim.metadata.name, local.metadata.name);
    assert.equal(claim.metadata.namespace, local.metadata.namespace);
    assert.equal(maxReplicasFor(docs, claim), Infinity, 'any number of replicas on any nodes');
    assert.match(readFileSync(path.join(volumesDir, 'volume/shared/claim.yaml'), 'utf8'), /kubectl get storageclass/);
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

  it('each kustomization lists files that exist, and kubectl kustomize agrees with this test (when kubectl is here)', (t) => {
    for (const target of TARGETS) {
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
    for (const target of TARGETS) {
      const built = execFileSync('kubectl', ['kustomize', path.join(volumesDir, target)], { encoding: 'utf8' });
      const docs = parseAllDocuments(built).map((d) => d.toJS() as Doc);
      assert.deepEqual(ids(docs), ids(kustomize(path.join(volumesDir, target))), target);
    }
  });
});
