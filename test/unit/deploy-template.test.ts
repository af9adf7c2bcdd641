// `faas-cli up` must find what stack.yml names, and the image must be built
// the way OpenFaaS templates are: a pinned of-watchdog in http mode in front
// of the wrapper's port, a non-root user, dependencies from lockfiles.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';
import { loadConfig } from '../../functions/todo-app/config.ts';
import { repoRoot } from '../support/fn.ts';
import { readStack } from '../support/deploy-manifests.ts';
import { readPlatform } from '../../template/node22-ts/watchdog.ts';
import { parseDockerfile, parseEnv, type Stage } from '../support/deploy-dockerfile.ts';

const stack = readStack();
const fn = stack.functions['todo-app']!;
const templateDir = path.join(repoRoot, 'template', fn.lang);
const handlerDir = path.resolve(repoRoot, fn.handler);
const readJson = (file: string): Record<string, any> => JSON.parse(readFileSync(file, 'utf8'));
const stages = parseDockerfile(readFileSync(path.join(templateDir, 'Dockerfile'), 'utf8'));
const ship = stages.at(-1)!;
const shipEnv = Object.assign({}, ...ship.instructions.filter((i) => i.keyword === 'ENV').map((i) => parseEnv(i.args))) as Record<string, string>;
const runs = (stage: Stage): string[] => stage.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
const seconds = (duration: string): number => {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(duration);
  assert.ok(m, `duration ${duration}`);
  return Number(m[1]) * ({ ms: 0.001, s: 1, m: 60 }[m[2] ?? 's'] ?? 1);
};

describe('stack.yml and the template', () => {
  it("names a template that exists and a handler folder with the function's entry and package.json", () => {
    // faas-cli reads the scalar as written (a YAML reader here sees the number 1).
    assert.match(readFileSync(path.join(repoRoot, 'stack.yml'), 'utf8'), /^version: "?1\.0"?$/m);
    assert.equal(stack.provider.name, 'openfaas');
    assert.equal(stack.provider.gateway, 'http://127.0.0.1:8080');
    const template = parse(readFileSync(path.join(templateDir, 'template.yml'), 'utf8')) as Record<string, string>;
    assert.equal(template.language, fn.lang);
    assert.ok(template.welcome_message?.trim(), 'template.yml has a welcome_message');
    assert.equal(fn.handler, './functions/todo-app');
    assert.ok(existsSync(path.join(handlerDir, 'handler.ts')), 'the handler folder has handler.ts');
    assert.ok(existsSync(path.join(handlerDir, 'package.json')) && existsSync(path.join(handlerDir, 'package-lock.json')));
    assert.match(fn.image, /^[a-z0-9.-]+(:\d+)?\/[a-z0-9._/-]+:[\w.-]+$/, 'a lower-case image name with a tag');
  });

  it('sets an environment the function accepts, with IMAGE_DIR absolute and no PORT', () => {
    const env = fn.environment;
    for (const [name, value] of Object.entries(env)) assert.equal(typeof value, 'string', `${name} must be a string in stack.yml`);
    const read = new Set([...readFileSync(path.join(handlerDir, 'config.ts'), 'utf8').matchAll(/'([A-Z][A-Z_]+)'/g)].map((m) => m[1]));
    for (const name of Object.keys(env)) assert.ok(read.has(name), `the function never reads ${name}`);
    assert.ok(path.posix.isAbsolute(env.IMAGE_DIR!), 'IMAGE_DIR is an absolute path on the volume');
    assert.equal(env.PORT, undefined, 'of-watchdog forwards to the wrapper default port');
    assert.equal(env.LOG_FILE, undefined, 'the root file system is read-only');
    const config = loadConfig(env); // throws, naming the variable, on a bad value
    assert.equal(config.imageDir, env.IMAGE_DIR);
    assert.equal(config.enableShutdown, false);
  });

  it('labels OpenFaaS CE accepts (scale to zero is a --label step, docs/deploy.md), requests and limits, and a read-only root file system', () => {
    const labels = fn.labels;
    for (const [name, value] of Object.entries(labels)) assert.equal(typeof value, 'string', `label ${name} must be a string`);
    // CE's full rule set is checked by deploying stack.yml to the stand-in gateway (test/integration/gateway-ce.test.ts).
    assert.notEqual(labels['com.openfaas.scale.zero'], 'true', 'OpenFaaS CE answers 400 to scale to zero');
    assert.equal(labels['com.openfaas.scale.zero-duration'], undefined, 'OpenFaaS CE answers 400 to any zero-duration');
    const min = Number(labels['com.openfaas.scale.min']);
    const max = Number(labels['com.openfaas.scale.max']);
    assert.ok(min >= 1 && max >= min, `min ${min} max ${max}`);
    assert.ok(fn.requests?.memory && fn.requests?.cpu && fn.limits?.memory, 'requests and limits');
    assert.equal(fn.readonly_root_filesystem, true);
  });

  it('pins of-watchdog and runs it in http mode, forwarding to the port the wrapper listens on by default', () => {
    const watchdog = stages.find((s) => s.image.startsWith('ghcr.io/openfaas/of-watchdog:'));
    assert.ok(watchdog, 'a stage FROM ghcr.io/openfaas/of-watchdog');
    assert.match(watchdog.image, /^ghcr\.io\/openfaas\/of-watchdog:\d+\.\d+\.\d+$/, 'a pinned version, not latest');
    assert.ok(ship.instructions.some((i) => i.keyword === 'COPY' && i.args.includes(`--from=${watchdog.name}`) && i.args.includes('/fwatchdog')));
    assert.equal(shipEnv.mode, 'http');
    const upstream = new URL(shipEnv.upstream_url!);
    assert.equal(upstream.hostname, '127.0.0.1');
    // The wrapper listens on upstream_url's port (test/integration/wrapper.test.ts);
    // its own default without a watchdog is the same 3000, so `npm start` and the image agree.
    assert.equal(Number(upstream.port), readPlatform({}).port);
    assert.equal(readPlatform(shipEnv).port, readPlatform({}).port);
    const template = parse(readFileSync(path.join(templateDir, 'template.yml'), 'utf8')) as Record<string, string>;
    assert.equal(shipEnv.fprocess, template.fprocess);
    assert.equal(shipEnv.fprocess, 'node dist/index.js');
    assert.equal(shipEnv.prefix_logs, 'false');
    const exec = seconds(shipEnv.exec_timeout!);
    assert.ok(exec > Number(fn.environment.FETCH_TIMEOUT_MS) / 1000, 'exec_timeout leaves room for one download');
    assert.ok(seconds(shipEnv.read_timeout!) >= exec && seconds(shipEnv.write_timeout!) >= exec);
    const cmd = ship.instructions.find((i) => i.keyword === 'CMD');
    assert.equal(cmd?.args, '["fwatchdog"]');
    const healthcheck = ship.instructions.find((i) => i.keyword === 'HEALTHCHECK');
    assert.match(healthcheck?.args ?? '', /\/tmp\/\.lock/);
  });

  it('runs as a non-root user, on Node 22 Alpine, with dependencies from lockfiles installed in the image', () => {
    const user = ship.instructions.filter((i) => i.keyword === 'USER').at(-1)?.args;
    assert.ok(user, 'a USER in the final stage');
    const uid = user.split(':')[0]!;
    assert.match(uid, /^\d+$/, 'a numeric USER, so Kubernetes can check runAsNonRoot');
    assert.notEqual(Number(uid), 0);
    for (const stage of stages.filter((s) => s !== stages[0])) assert.equal(stage.image, 'node:22-alpine', stage.name);
    assert.ok(stages.length >= 3, 'multi-stage: watchdog, build, runtime');
    const all = stages.flatMap(runs);
    assert.ok(all.includes('npm ci'), "npm ci for the template's build tools");
    assert.ok(all.includes('cd function && npm ci'), "npm ci in function/ for the function's types");
    assert.ok(all.some((r) => /^npx tsc -p tsconfig\.json$/.test(r)));
    // npm 11, not node:22-alpine's 10.9, which installs sharp's WebAssembly build besides the native one.
    assert.equal(all.filter((r) => /^npx -y npm@11\.\d+\.\d+ ci --omit=dev$/.test(r)).length, 2, "production dependencies only, the wrapper's and the function's, from their lockfiles");
    assert.ok(!all.some((r) => /\bnpm (i|install)\b/.test(r)), 'npm ci, never npm install');
    // Nothing from the host's node_modules: sharp must be installed for musl.
    for (const copy of stages.flatMap((s) => s.instructions).filter((i) => i.keyword === 'COPY' && !i.args.includes('--from='))) {
      assert.ok(!copy.args.includes('node_modules'), `COPY ${copy.args}`);
    }
    const ignore = readFileSync(path.join(templateDir, '.dockerignore'), 'utf8').split('\n');
    for (const entry of ['node_modules', 'function/node_modules', 'dist']) assert.ok(ignore.includes(entry), `.dockerignore ${entry}`);
  });

  it('copies fwatchdog once with its mode, runs the function\'s tests unless TEST_ENABLED=false, and says what the package.json files are', () => {
    const dockerfile = readFileSync(path.join(templateDir, 'Dockerfile'), 'utf8');
    const copy = ship.instructions.find((i) => i.keyword === 'COPY' && i.args.includes('/fwatchdog'));
    assert.match(copy?.args ?? '', /--chmod=755/);
    assert.ok(!stages.flatMap(runs).some((r) => /chmod/.test(r)), 'a RUN chmod copies the binary into a layer again');
    const build = stages.find((st) => st.name === 'build')!;
    assert.ok(build.instructions.some((i) => i.keyword === 'ARG' && i.args === 'TEST_ENABLED=true'));
    assert.ok(runs(build).includes('[ "$TEST_ENABLED" = "false" ] && echo "skipping tests" || (cd function && npm test --if-present)'));
    const wrapper = readJson(path.join(templateDir, 'package.json'));
    assert.match(dockerfile, new RegExp(`/home/app/package.json +the template's \\("type": "${wrapper.type}"\\)`));
    assert.doesNotMatch(dockerfile, /"type": "module"/, 'no package.json here is an ES module package');
  });

  it("pins the function's and the wrapper's dependencies to the root package.json's, with a lockfile in step", () => {
    const root = readJson(path.join(repoRoot, 'package.json'));
    const pkg = readJson(path.join(handlerDir, 'package.json'));
    const wrapper = readJson(path.join(templateDir, 'package.json'));
    assert.equal(pkg.name, 'todo-app-function');
    assert.equal(pkg.type, 'commonjs', 'CommonJS: require() of the built-ins is the cheap start (README, Speed)');
    // The root installs what dist/ runs with: the function's dependencies and the wrapper's.
    assert.deepEqual(root.dependencies, { ...pkg.dependencies, ...wrapper.dependencies });
    // Only type declarations tsc needs in the image's build stage, at the root's versions.
    for (const [name, version] of Object.entries(pkg.devDependencies ?? {})) {
      assert.match(name, /^@types\//);
      assert.equal(version, root.devDependencies[name], name);
    }
    const lock = readJson(path.join(handlerDir, 'package-lock.json'));
    assert.deepEqual(lock.packages[''].dependencies, pkg.dependencies, 'package-lock.json is stale: npm install --package-lock-only');
    assert.deepEqual(lock.packages[''].devDependencies ?? {}, pkg.devDependencies ?? {});
    for (const [name, version] of Object.entries(pkg.dependencies as Record<string, string>)) {
      assert.equal(lock.packages[`node_modules/${name}`]?.version, version, name);
    }
  });

  it("pins the template's build tools, typescript 5.9 and @types/node, with a lockfile in step", () => {
    const pkg = readJson(path.join(templateDir, 'package.json'));
    assert.equal(pkg.type, 'commonjs', 'dist/index.js is CommonJS');
    // body-parser as openfaas/templates node22 has it (^2.2.0 there, exact here); bytes reads MAX_RAW_SIZE at start as body-parser does.
    assert.deepEqual(Object.keys(pkg.dependencies).sort(), ['body-parser', 'bytes'], 'the official parsers, nothing else');
    assert.match(pkg.dependencies['body-parser'], /^2\.\d+\.\d+$/);
    for (const [name, version] of Object.entries(pkg.dependencies as Record<string, string>)) {
      assert.equal(JSON.parse(readFileSync(path.join(templateDir, 'package-lock.json'), 'utf8')).packages[`node_modules/${name}`]?.version, version, name);
    }
    assert.equal(pkg.devDependencies.typescript, '5.9.3');
    assert.match(pkg.devDependencies['@types/node'], /^2[02]\.\d+\.\d+$/, 'an exact @types/node 20 or 22');
    const lock = readJson(path.join(templateDir, 'package-lock.json'));
    assert.deepEqual(lock.packages[''].devDependencies, pkg.devDependencies);
  });
});
