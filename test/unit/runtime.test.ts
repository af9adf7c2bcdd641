// The container runs Node 22 (node:22-alpine): npm test runs the suite on it,
// through scripts/node22.mjs, whatever Node the machine has.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { repoRoot } from '../support/fn.ts';

describe('the runtime', () => {
  it("runs on the container's Node major, the one package.json's engines names", () => {
    const engines = (JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { engines: { node: string } }).engines.node;
    assert.equal(engines, '>=22');
    assert.equal(Number(process.versions.node.split('.')[0]), 22, `npm test runs on ${process.version}`);
  });
});
