// A test that needs what this machine does not allow (root for mount, prlimit)
// says so and is skipped on a developer's machine, visibly in the report. In CI
// (CI=true, as .ci/run sets) it fails instead: CI must run every test.
import type { TestContext } from 'node:test';

export function cannotRunHere(t: TestContext, why: string): void {
  if (process.env.CI === 'true') throw new Error(`CI runs every test, and this one cannot run here: ${why}`);
  t.skip(why);
  process.stderr.write(`# SKIPPED "${t.name}": ${why}\n`);
}
