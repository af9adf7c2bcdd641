// The two targets that run the image without faas-netes: Knative (no
// of-watchdog, the wrapper alone behind queue-proxy) and plain Kubernetes
// (the course's Deployment + Service + Ingress, of-watchdog in front). Each
// check lists problems; every check is also run on a broken copy, so a green
// run means the manifests pass checks that do fail.
import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import {
  checkCacheTarget,
  checkKnativeTarget,
  checkPlainTarget,
  kustomize,
  readImageFacts,
  readStack,
  volumesDir,
  wrapperCloseBoundMs,
  type Doc,
} from '../support/deploy-manifests.ts';

const fn = readStack().functions['todo-app']!;
const image = readImageFacts(fn);
const closeBound = wrapperCloseBoundMs();
const plainDocs = (): Doc[] => kustomize(path.join(volumesDir, 'kubernetes'));
const knativeDocs = (): Doc[] => kustomize(path.join(volumesDir, 'knative'));
const find = (docs: Doc[], kind: string): Doc => docs.find((d) => d.kind === kind && d.apiVersion !== 'serving.knative.dev/v1')!;
const ksvc = (docs: Doc[]): Doc => docs.find((d) => d.apiVersion === 'serving.knative.dev/v1')!;

/** Runs the check on a copy broken by `breakIt` and expects a problem matching `expected`. */
function assertCaught(check: (docs: Doc[]) => string[], docs: () => Doc[], breakIt: (docs: Doc[]) => void, expected: RegExp): void {
  const copy = docs();
  breakIt(copy);
  const problems = check(copy);
  assert.ok(problems.some((p) => expected.test(p)), `expected a problem matching ${expected}, got ${JSON.stringify(problems)}`);
}

describe('plain Kubernetes: Deployment + Service + Ingress', () => {
  const check = (docs: Doc[]): string[] => checkPlainTarget(docs, fn, image);

  it("runs stack.yml's image and settings as built, of-watchdog probed like faas-netes does, the claim over IMAGE_DIR, reachable through the Ingress", () => {
    assert.deepEqual(check(plainDocs()), []);
    const deployment = find(plainDocs(), 'Deployment');
    assert.equal(deployment.metadata.namespace, 'todo-app');
    assert.equal(image.watchdogPort, 8080, "the image's of-watchdog listens on its default port");
  });

  it('catches a Deployment that loses the claim, mounts it elsewhere, or mounts it read-only', () => {
    const pod = (docs: Doc[]): Doc => find(docs, 'Deployment').spec.template.spec;
    assertCaught(check, plainDocs, (d) => (pod(d).containers[0].volumeMounts = pod(d).containers[0].volumeMounts.filter((m: Doc) => m.mountPath !== '/data/images')), /no claim mounted/);
    assertCaught(check, plainDocs, (d) => (pod(d).containers[0].volumeMounts[0].mountPath = '/data/other'), /no claim mounted/);
    assertCaught(check, plainDocs, (d) => (pod(d).containers[0].volumeMounts[0].readOnly = true), /no claim mounted/);
    assertCaught(check, plainDocs, (d) => (pod(d).volumes = pod(d).volumes.filter((v: Doc) => v.name !== 'temp')), /emptyDir at \/tmp/);
  });

  it('catches probes that do not reach the watchdog, and a command that skips it', () => {
    const container = (docs: Doc[]): Doc => find(docs, 'Deployment').spec.template.spec.containers[0];
    assertCaught(check, plainDocs, (d) => (container(d).readinessProbe.httpGet.path = '/'), /readinessProbe is not of-watchdog's/);
    assertCaught(check, plainDocs, (d) => (container(d).livenessProbe.httpGet.port = 3000), /livenessProbe is not of-watchdog's/);
    assertCaught(check, plainDocs, (d) => delete container(d).readinessProbe, /readinessProbe is not/);
    assertCaught(check, plainDocs, (d) => (container(d).command = ['node', 'dist/index.js']), /override the image's CMD/);
    // faas-netes' other probe form is accepted: cat /tmp/.lock.
    const exec = plainDocs();
    container(exec).livenessProbe = { exec: { command: ['cat', '/tmp/.lock'] } };
    assert.deepEqual(check(exec), []);
  });

  it("catches a grace period shorter than of-watchdog's shutdown, a Service or Ingress that misses, other settings or image", () => {
    const deployment = (docs: Doc[]): Doc => find(docs, 'Deployment');
    assertCaught(check, plainDocs, (d) => delete deployment(d).spec.template.spec.terminationGracePeriodSeconds, /terminationGracePeriodSeconds 30 is not above/);
    assertCaught(check, plainDocs, (d) => (find(d, 'Service').spec.selector = { app: 'other' }), /does not select/);
    assertCaught(check, plainDocs, (d) => (find(d, 'Service').spec.ports[0].targetPort = 3000), /targetPort/);
    assertCaught(check, plainDocs, (d) => (find(d, 'Ingress').spec.rules[0].http.paths[0].backend.service.name = 'todo'), /Ingress does not route/);
    assertCaught(check, plainDocs, (d) => (deployment(d).spec.template.spec.containers[0].env[0].value = '/data'), /IMAGE_DIR is "\/data"/);
    assertCaught(check, plainDocs, (d) => (deployment(d).spec.template.spec.containers[0].image = 'ghcr.io/x/todo-app:1'), /image .* is not stack.yml's/);
    assertCaught(check, plainDocs, (d) => (find(d, 'PersistentVolumeClaim').metadata.namespace = 'default'), /claim is not in the Deployment's namespace/);
  });
});

describe('Knative: the wrapper alone behind queue-proxy', () => {
  const check = (docs: Doc[]): string[] => checkKnativeTarget(docs, fn, image, closeBound);

  it("runs the image's fprocess with upstream_url empty, readiness on /_/health, a read-only root with /tmp on an emptyDir, and a timeout past the drain", () => {
    assert.ok(closeBound !== undefined && closeBound > 0, "the wrapper's shutdown bound is found in the template");
    assert.deepEqual(check(knativeDocs()), []);
    const container = ksvc(knativeDocs()).spec.template.spec.containers[0];
    assert.deepEqual(container.command, ['node', 'dist/index.js']);
    assert.equal(image.workdir, '/home/app', 'the command is relative to the image WORKDIR');
  });

  it('catches a Service that still expects the watchdog, or uses what Knative reserves', () => {
    const container = (docs: Doc[]): Doc => ksvc(docs).spec.template.spec.containers[0];
    assertCaught(check, knativeDocs, (d) => (container(d).env = container(d).env.filter((e: Doc) => e.name !== 'upstream_url')), /upstream_url is not set to ""/);
    assertCaught(check, knativeDocs, (d) => delete container(d).command, /is not the image's fprocess/);
    assertCaught(check, knativeDocs, (d) => container(d).env.push({ name: 'PORT', value: '3000' }), /PORT is reserved/);
    assertCaught(check, knativeDocs, (d) => (container(d).ports[0].containerPort = 8012), /port 8012 is reserved/);
    assertCaught(check, knativeDocs, (d) => (container(d).volumeMounts[1].mountPath = '/dev'), /\/dev is a reserved mount path/);
    assertCaught(check, knativeDocs, (d) => (container(d).readinessProbe.periodSeconds = 2), /periodSeconds is set/);
    assertCaught(check, knativeDocs, (d) => (container(d).readinessProbe.httpGet.path = '/'), /not GET \/_\/health/);
  });

  it("catches a timeout that SIGKILLs the wrapper during its shutdown, a writable root, a fixed replica, and the claim elsewhere", () => {
    const spec = (docs: Doc[]): Doc => ksvc(docs).spec.template.spec;
    assertCaught(check, knativeDocs, (d) => (spec(d).timeoutSeconds = 30), /timeoutSeconds 30 is not above/);
    assertCaught(check, knativeDocs, (d) => (spec(d).containers[0].securityContext.readOnlyRootFilesystem = false), /not read-only/);
    assertCaught(check, knativeDocs, (d) => (ksvc(d).spec.template.metadata.annotations['autoscaling.knative.dev/min-scale'] = '1'), /no scale to zero/);
    assertCaught(check, knativeDocs, (d) => (spec(d).containers[0].volumeMounts[0].mountPath = '/srv'), /no claim mounted/);
    assertCaught(check, knativeDocs, (d) => (find(d, 'PersistentVolumeClaim').metadata.namespace = 'openfaas-fn'), /claim is not in the Service's namespace/);
  });
});

describe('the edge cache: nginx in front of the function', () => {
  const cacheDocs = (): Doc[] => kustomize(path.join(volumesDir, 'cache'));
  const check = (docs: Doc[]): string[] => checkCacheTarget(docs, plainDocs());
  const pod = (docs: Doc[]): Doc => find(docs, 'Deployment').spec.template.spec;
  const conf = (docs: Doc[]): Doc => find(docs, 'ConfigMap').data;

  it("runs the ConfigMap's nginx.conf read-only, writes only to its emptyDirs, answers on the port it listens on, and fronts the plain target's Service", () => {
    assert.deepEqual(check(cacheDocs()), []);
    assert.equal(find(cacheDocs(), 'Deployment').metadata.namespace, 'todo-app');
  });

  it('catches a config nginx cannot write, a port or probe that misses, a lost cache rule, another upstream', () => {
    assertCaught(check, cacheDocs, (d) => (pod(d).volumes = pod(d).volumes.filter((v: Doc) => v.name !== 'tmp')), /\/tmp\/nginx.pid: nginx writes it/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace('/var/cache/todo-app', '/var/cache/nginx')), /\/var\/cache\/nginx: nginx writes it/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace('listen 8080;', 'listen 80;')), /nginx listens on 80/);
    assertCaught(check, cacheDocs, (d) => (pod(d).containers[0].readinessProbe.httpGet.path = '/'), /readinessProbe is not GET/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace('proxy_cache_lock on;', '')), /proxy_cache_lock on is missing/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace(' updating error', ' error')), /lacks updating/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace('proxy_hide_header Cache-Control;', '')), /proxy_hide_header Cache-Control is missing/);
    assertCaught(check, cacheDocs, (d) => (conf(d)['nginx.conf'] = conf(d)['nginx.conf'].replace('todo-app.todo-app.svc.cluster.local:80;', 'todo-app:80;')), /not the function's Service/);
    assertCaught(check, cacheDocs, (d) => (find(d, 'Ingress').spec.rules[0].http.paths[0].backend.service.name = 'todo-app'), /does not route \/ to the cache/);
    assertCaught(check, cacheDocs, (d) => (pod(d).containers[0].securityContext.readOnlyRootFilesystem = false), /not read-only/);
  });
});

describe('one image everywhere', () => {
  it('stack.yml, the Knative Service and the plain Deployment name the same image, in the k3d registry of docs/deploy.md', () => {
    const plain = find(plainDocs(), 'Deployment').spec.template.spec.containers[0].image;
    const knative = ksvc(knativeDocs()).spec.template.spec.containers[0].image;
    assert.equal(plain, fn.image);
    assert.equal(knative, fn.image);
    assert.match(fn.image, /^k3d-registry\.localhost:5000\//);
  });
});
