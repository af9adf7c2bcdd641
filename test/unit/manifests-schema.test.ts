// Every manifest a user applies is valid against the Kubernetes and Knative
// schemas (kubernetes-models 4.5, @kubernetes-models/knative 2.4), as the API
// server would see it: after kustomize, and for OpenFaaS after the patch meets
// faas-netes' Deployment.
import assert from 'node:assert/strict';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  faasNetesDeployment,
  kustomize,
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

describe('the manifests against the schemas', () => {
  it('validates every manifest file in k8s-volumes/', () => {
    const seen: string[] = [];
    for (const file of yamlFiles(volumesDir)) {
      if (path.basename(file) === 'kustomization.yaml' || file === PATCH) continue;
      for (const doc of readYaml(file)) seen.push(`${rel(file)}: ${validate(doc)}`);
    }
    const kinds = new Set(seen.map((s) => s.split(': ')[1]));
    for (const kind of ['v1/PersistentVolume', 'v1/PersistentVolumeClaim', 'v1/ConfigMap', 'serving.knative.dev/v1/Service']) {
      assert.ok(kinds.has(kind), `no ${kind} among ${seen.join(', ')}`);
    }
  });

  it('validates what each kustomization sends to the API server', () => {
    for (const target of ['openfaas', 'knative', 'knative/features', 'volume/local', 'volume/default-class']) {
      const docs = kustomize(path.join(volumesDir, target));
      assert.ok(docs.length > 0, `${target} builds to nothing`);
      for (const doc of docs) validate(doc);
    }
  });

  it("validates faas-netes' Deployment for todo-app with the OpenFaaS patch applied", () => {
    const stack = readStack();
    const [patch] = readYaml(PATCH);
    assert.equal(patch!.apiVersion, undefined, 'the patch is a bare strategic-merge patch for kubectl patch');
    const patched = strategicMerge(faasNetesDeployment('todo-app', stack.functions['todo-app']!), patch) as Doc;
    assert.equal(validate(patched), 'apps/v1/Deployment');
  });

  it('fails on an invalid manifest, so a passing validation means something', () => {
    const [pv] = readYaml(path.join(volumesDir, 'volume/local/persistent-volume.yaml'));
    const [claim] = readYaml(path.join(volumesDir, 'volume/local/claim.yaml'));
    const [features] = readYaml(path.join(volumesDir, 'knative/features/config-features.yaml'));
    const [ksvc] = readYaml(path.join(volumesDir, 'knative/service.yaml'));
    const broken: Array<[string, Doc]> = [
      ['PV access mode as a string', { ...pv, spec: { ...pv!.spec, accessModes: 'ReadWriteOnce' } }],
      ['PV with an unknown reclaim policy', { ...pv, spec: { ...pv!.spec, persistentVolumeReclaimPolicy: 'Keep' } }],
      ['claim with a wrong volumeMode', { ...claim, spec: { ...claim!.spec, volumeMode: 'Folder' } }],
      ['ConfigMap with a number in data', { ...features, data: { 'kubernetes.podspec-persistent-volume-claim': 1 } }],
      ['Knative Service with a named containerPort', structuredClone(ksvc!)],
      ['Knative Service with a timeout as a string', { ...ksvc, spec: { template: { ...ksvc!.spec.template, spec: { ...ksvc!.spec.template.spec, timeoutSeconds: '30s' } } } }],
    ];
    broken[4]![1].spec.template.spec.containers[0].ports[0].containerPort = 'http';
    for (const [what, doc] of broken) {
      assert.throws(() => validate(doc), `${what} passed validation`);
    }
    const deployment = faasNetesDeployment('todo-app', readStack().functions['todo-app']!);
    delete deployment.spec.selector;
    assert.throws(() => validate(deployment), 'a Deployment without a selector passed validation');
  });
});
