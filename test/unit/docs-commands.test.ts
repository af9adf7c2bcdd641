// The guides' commands, read as a reader runs them: every repository file
// they name exists, every npm script is in package.json, every coldstart
// option is one the tool parses, and every faas-cli, k3d and kubectl flag is
// one the real tool has (test/support/cli-flags.ts, derived from their
// sources; kubectl's also against the kubectl on PATH, when there is one).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { options as coldstartOptions } from '../../scripts/coldstart.ts';
import { KUBECTL, flagsOf } from '../support/cli-flags.ts';
import { checkCommands, pathSpans, shellBlocks, splitCommands, type CheckContext } from '../support/doc-commands.ts';
import { repoRoot } from '../support/fn.ts';
import { kustomize, volumesDir } from '../support/deploy-manifests.ts';

const GUIDES = ['README.md', 'docs/deploy.md', 'docs/coldstart.md', 'k8s-volumes/README.md'];
const read = (file: string): string => readFileSync(path.join(repoRoot, file), 'utf8');
const context = (): CheckContext => ({
  coldstart: { options: coldstartOptions as unknown as Record<string, { short?: string }>, modes: ['openfaas', 'knative', 'local'] },
  kubectlUsed: new Map(),
});

describe("the guides' shell commands", () => {
  it('name only files that exist, scripts in package.json, and flags the tools have', () => {
    const ctx = context();
    const problems = GUIDES.flatMap((file) => checkCommands(read(file), file, ctx));
    assert.deepEqual(problems, []);
    // The deploy guide really has commands for every tool checked.
    const words = new Set(splitCommands(shellBlocks(read('docs/deploy.md')).map((b) => b.text).join('\n'), 'docs/deploy.md').map((c) => c.words[0]));
    for (const tool of ['k3d', 'kubectl', 'faas-cli', 'docker', 'npm', 'curl', 'helm']) assert.ok(words.has(tool), `docs/deploy.md has no ${tool} command`);
    assert.ok((ctx.kubectlUsed?.size ?? 0) >= 8, 'kubectl verbs were checked');
  });

  it('keeps the README\'s two first commands exactly', () => {
    const [first] = shellBlocks(read('README.md'));
    const lines = first!.text.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim());
    assert.deepEqual(lines, ['npm ci && npm start', 'npm ci && npm test']);
  });

  it('name only repository paths that exist in their `code` spans (build/ comes from npm run shrinkwrap)', () => {
    // A Sources section names files of other repositories.
    const ownPart = (file: string): string => read(file).split(/\n## Sources\n/)[0]!;
    const missing = GUIDES.flatMap((file) =>
      pathSpans(ownPart(file))
        .filter((s) => !s.path.startsWith('build/'))
        .filter((s) => !existsSync(path.resolve(repoRoot, path.dirname(file), s.path)) && !existsSync(path.join(repoRoot, s.path)))
        .map((s) => `${file}:${s.line} ${s.path}`),
    );
    assert.deepEqual(missing, []);
  });

  it("patch the Knative Service only where its \"test\" operations hold on k8s-volumes/knative's Service (the crash test's env index)", () => {
    const service = kustomize(path.join(volumesDir, 'knative')).find((d) => d.apiVersion === 'serving.knative.dev/v1')!;
    const patches = splitCommands(shellBlocks(read('docs/deploy.md')).map((b) => b.text).join('\n'), 'docs/deploy.md')
      .map((c) => c.words)
      .filter((w) => w[0] === 'kubectl' && w[1] === 'patch' && w[2] === 'ksvc' && w.includes('json'));
    assert.ok(patches.length > 0, 'the guide patches the Knative Service');
    for (const words of patches) {
      const ops = JSON.parse(words[words.indexOf('-p') + 1]!) as Array<{ op: string; path: string; value: unknown }>;
      const tests = ops.filter((o) => o.op === 'test');
      assert.ok(tests.length > 0, 'a JSON patch by index guards itself with a "test" op');
      for (const { path: pointer, value } of tests) {
        const found = pointer.split('/').slice(1).reduce<any>((at, key) => at?.[key], service);
        assert.equal(found, value, pointer);
      }
    }
  });

  it('use kubectl flags that the kubectl on PATH has too (when there is one)', (t) => {
    if (spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' }).status !== 0) {
      t.diagnostic('kubectl is not installed: checked against the table only');
      return;
    }
    const ctx = context();
    for (const file of GUIDES) checkCommands(read(file), file, ctx);
    const global = execFileSync('kubectl', ['options'], { encoding: 'utf8' });
    for (const [verb, used] of ctx.kubectlUsed!) {
      const help = execFileSync('kubectl', [...verb.split(' '), '--help'], { encoding: 'utf8' }) + global;
      for (const flag of used) {
        const long = flag.startsWith('--') ? flag : undefined;
        const present = long ? help.includes(`${long}=`) : new RegExp(`^\\s+${flag}, --`, 'm').test(help);
        assert.ok(present, `kubectl ${verb} ${flag}: not in this kubectl's help`);
      }
      assert.ok(KUBECTL[verb], verb);
    }
  });

  it('catch a missing file, an unknown flag, a script or a coldstart option that do not exist, and a late shrinkwrap', () => {
    const broken = [
      '```sh',
      'kubectl apply -k k8s-volumes/knative/features',
      'faas-cli deploy -f stack.yml --labels com.openfaas.scale.zero=true',
      'faas-cli up -f stacks.yml',
      'k3d cluster create --agent 2',
      'kubectl patch configmap config-features --type merge --patch-files x.yaml',
      'kubectl rollout wait deploy/todo-app',
      'npm run deploy',
      'npm run coldstart -- knative --url http://127.0.0.1:8090 --hots todo-app.default.example.com',
      'npm run coldstart -- lambda -n 3',
      'docker build -t x build/todo-app',
      'npm run shrinkwrap',
      'cat docs/nothing.md',
      '```',
    ].join('\n');
    const problems = checkCommands(broken, 'broken.md', context());
    const expected = [
      /k8s-volumes\/knative\/features does not exist/,
      /faas-cli deploy has no flag --labels/,
      /-f stacks\.yml does not exist/,
      /k3d cluster create has no flag --agent$/,
      /kubectl patch has no flag --patch-files/,
      /kubectl rollout wait: not in the flag table/,
      /npm run deploy: no such script/,
      /coldstart has no option --hots/,
      /coldstart has no mode lambda/,
      /build\/todo-app exists only after npm run shrinkwrap/,
      /docs\/nothing\.md does not exist/,
    ];
    for (const pattern of expected) assert.ok(problems.some((p) => pattern.test(p)), `${pattern} not reported; got ${JSON.stringify(problems, null, 1)}`);
    assert.equal(problems.length, expected.length, JSON.stringify(problems, null, 1));
  });

  it('reads shell the way a reader types it: continuations, comments, pipes, quotes, $(...)', () => {
    const commands = splitCommands(
      "kubectl get secret -n openfaas basic-auth -o jsonpath='{.data.x}' | base64 -d \\\n  | faas-cli login --username admin --password-stdin   # log in\nexport P=$(kubectl get pods -o name | wc -l) && echo \"a b\" &",
      'x',
    ).map((c) => c.words.join(' '));
    assert.deepEqual(commands, [
      'kubectl get secret -n openfaas basic-auth -o jsonpath={.data.x}',
      'base64 -d',
      'faas-cli login --username admin --password-stdin',
      'kubectl get pods -o name',
      'wc -l',
      'export P=$SUBST',
      'echo a b',
    ]);
    assert.ok(flagsOf('faas-cli', 'up')?.has('--label'), "up takes deploy's flags");
    assert.ok(!flagsOf('faas-cli', 'push')?.has('--label'));
  });
});
