// Every manifest a user applies is valid against the Kubernetes and Knative
// schemas (kubernetes-models 4.5, @kubernetes-models/knative 2.4), as the API
// server would see it: after kustomize, for OpenFaaS after the patch meets
// faas-netes' Deployment, and for Knative's flags after the merge patch meets
// config-features as serving-core.yaml ships it.
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import {
  TARGETS,
  faasNetesDeployment,
  kustomize,
  mergePatch,
  readStack,
  readYaml,
  strategicMerge,
  validate,
  volumesDir,
  type Doc,
} from '../support/deploy-manifests.ts';

function yamlFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((entry) => {
    const full = path.join(dir, entry);
    if (statSync(full).isDirectory()) return yamlFiles(full);
    return /\.ya?ml$/.test(entry) ? [full] : [];
  });
}

const rel = (file: string): string => path.relative(volumesDir, file);
const PATCH = path.join(volumesDir, 'openfaas/deployment-patch.yaml');
const FEATURES_PATCH = path.join(volumesDir, 'knative/features-patch.yaml');
const FLAGS = ['kubernetes.podspec-persistent-volume-claim', 'kubernetes.podspec-persistent-volume-write'];

/**
 * config-features as serving-core.yaml creates it, in the parts a patch must
 * keep (knative/serving 1.17, config/core/configmaps/features.yaml): the
 * labels the config validation webhook selects on
 * (config/core/webhooks/configmap-validation.yaml), the checksum annotation
 * and the _example block. The block's text here is a stand-in.
 */
const servingCoreFeatures = (): Doc => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: {
    name: 'config-features',
    namespace: 'knative-serving',
    labels: { 'app.kubernetes.io/name': 'knative-serving', 'app.kubernetes.io/component': 'controller', 'app.kubernetes.io/version': '1.17.0' },
    annotations: { 'knative.dev/example-checksum': '63a13754' },
  },
  data: { _example: '# the documented defaults, as comments\n' },
});

/** Keyed lists sorted by their merge key: kubectl orders merged items its own way, and order carries no meaning there. */
function byMergeKey(value: unknown): unknown {
  if (Array.isArray(value)) {
    const items = value.map(byMergeKey);
    const key = ['name', 'mountPath', 'containerPort'].find((k) => items.every((i) => i && typeof i === 'object' && k in (i as Doc)));
    return key ? [...items].sort((a, b) => String((a as Doc)[key]).localeCompare(String((b as Doc)[key]))) : items;
  }
  if (value && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, byMergeKey(v)]));
  return value;
}

const kubectlHere = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status === 0;

/** `kubectl patch --local`: how kubectl itself applies a patch file to a manifest, offline. */
function kubectlPatch(doc: Doc, type: 'merge' | 'strategic', patchFile: string): Doc {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kubectl-patch-'));
  try {
    const file = path.join(dir, 'doc.yaml');
    writeFileSync(file, stringify(doc));
    const out = execFileSync('kubectl', ['patch', '--local', '-f', file, '--type', type, '--patch-file', patchFile, '-o', 'json'], { encoding: 'utf8' });
    return JSON.parse(out) as Doc;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('the manifests against the schemas', () => {
  it('validates every manifest file in k8s-volumes/', () => {
    const seen: string[] = [];
    for (const file of yamlFiles(volumesDir)) {
      if (path.basename(file) === 'kustomization.yaml' || file === PATCH || file === FEATURES_PATCH) continue;
      for (const doc of readYaml(file)) seen.push(`${rel(file)}: ${validate(doc)}`);
    }
    const kinds = new Set(seen.map((s) => s.split(': ')[1]));
    for (const kind of [
      'v1/PersistentVolume',
      'v1/PersistentVolumeClaim',
      'serving.knative.dev/v1/Service',
      'apps/v1/Deployment',
      'v1/Service',
      'networking.k8s.io/v1/Ingress',
      'v1/Namespace',
    ]) {
      assert.ok(kinds.has(kind), `no ${kind} among ${seen.join(', ')}`);
    }
  });

  it('validates what each kustomization sends to the API server', () => {
    for (const target of TARGETS) {
      const docs = kustomize(path.join(volumesDir, target));
      assert.ok(docs.length > 0, `${target} builds to nothing`);
      for (const doc of docs) validate(doc);
    }
  });

  it("validates faas-netes' Deployment for todo-app with the OpenFaaS patch applied, and kubectl applies the patch the same way", () => {
    const stack = readStack();
    const [patch] = readYaml(PATCH);
    assert.equal(patch!.apiVersion, undefined, 'the patch is a bare strategic-merge patch for kubectl patch');
    const base = faasNetesDeployment('todo-app', stack.functions['todo-app']!);
    const patched = strategicMerge(base, patch) as Doc;
    assert.equal(validate(patched), 'apps/v1/Deployment');
    if (kubectlHere) assert.deepEqual(byMergeKey(kubectlPatch(base, 'strategic', PATCH).spec.template.spec), byMergeKey(patched.spec.template.spec));
  });

  it("Knative's flags: a merge patch that turns both on and keeps what serving-core.yaml set", () => {
    const [patch] = readYaml(FEATURES_PATCH);
    assert.deepEqual(Object.keys(patch!), ['data'], 'a bare merge patch of data only, for kubectl patch --type merge');
    assert.deepEqual(patch!.data, Object.fromEntries(FLAGS.map((f) => [f, 'enabled'])));
    const before = servingCoreFeatures();
    const after = mergePatch(before, patch) as Doc;
    assert.equal(validate(after), 'v1/ConfigMap');
    assert.deepEqual(after.metadata, before.metadata, 'labels (the webhook objectSelector) and the checksum stay');
    assert.equal(after.data._example, before.data._example);
    for (const flag of FLAGS) assert.equal(after.data[flag], 'enabled');
    if (kubectlHere) {
      const byKubectl = kubectlPatch(before, 'merge', FEATURES_PATCH);
      assert.deepEqual(byKubectl.data, after.data);
      assert.deepEqual(byKubectl.metadata.labels, before.metadata.labels);
    }
  });

  it('fails on an invalid manifest, so a passing validation means something', () => {
    const [pv] = readYaml(path.join(volumesDir, 'volume/local/persistent-volume.yaml'));
    const [claim] = readYaml(path.join(volumesDir, 'volume/local/claim.yaml'));
    const [ksvc] = readYaml(path.join(volumesDir, 'knative/service.yaml'));
    const [plain] = readYaml(path.join(volumesDir, 'kubernetes/deployment.yaml'));
    const [service] = readYaml(path.join(volumesDir, 'kubernetes/service.yaml'));
    const [ingress] = readYaml(path.join(volumesDir, 'kubernetes/ingress.yaml'));
    const broken: Array<[string, Doc]> = [
      ['PV access mode as a string', { ...pv, spec: { ...pv!.spec, accessModes: 'ReadWriteOnce' } }],
      ['PV with an unknown reclaim policy', { ...pv, spec: { ...pv!.spec, persistentVolumeReclaimPolicy: 'Keep' } }],
      ['claim with a wrong volumeMode', { ...claim, spec: { ...claim!.spec, volumeMode: 'Folder' } }],
      ['ConfigMap with a number in data', mergePatch(servingCoreFeatures(), { data: { [FLAGS[0]!]: 1 } }) as Doc],
      ['Knative Service with a named containerPort', structuredClone(ksvc!)],
      ['Knative Service with a timeout as a string', { ...ksvc, spec: { template: { ...ksvc!.spec.template, spec: { ...ksvc!.spec.template.spec, timeoutSeconds: '30s' } } } }],
      ['Deployment without a selector', { ...plain, spec: { ...plain!.spec, selector: undefined } }],
      ['Deployment with a probe port as a float', structuredClone(plain!)],
      ['Service with a port name for its port', { ...service, spec: { ...service!.spec, ports: [{ ...service!.spec.ports[0], port: 'http' }] } }],
      ['Ingress with an unknown pathType', structuredClone(ingress!)],
    ];
    broken[4]![1].spec.template.spec.containers[0].ports[0].containerPort = 'http';
    broken[7]![1].spec.template.spec.containers[0].readinessProbe.httpGet.port = 80.5;
    broken[9]![1].spec.rules[0].http.paths[0].pathType = 'Folder';
    for (const [what, doc] of broken) {
      assert.throws(() => validate(JSON.parse(JSON.stringify(doc)) as Doc), `${what} passed validation`);
    }
  });
});
