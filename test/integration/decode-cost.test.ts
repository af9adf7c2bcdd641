// decodeCost.ts prices a decode from the header alone; this holds the price against
// what libvips really takes: the function's own check and resize (dist/), each in a
// fresh process, measured as the rise of its peak resident set. One picture per way
// a decoder holds memory (streamed, whole frame, coefficients, planes), each pass.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import sharp from 'sharp';
import { decodeCost } from '../../functions/todo-app/decodeCost.ts';
import { repoRoot } from '../support/fn.ts';

const KINDS = [
  'jpeg-noise-2048',
  'jpeg-progressive-444-2048',
  'png16-rgba-2048',
  'png-interlaced-2048',
  'png-palette-2048',
  'gif-2048',
  'webp-lossless-noise-1536',
  'webp-lossy-2048',
  'avif-2048',
  'avif-rgba-12bit-1024',
];
/** The check (1 x 1), the bench's width, and one near the picture's own. */
const PASSES: Array<number | undefined> = [undefined, 600, 1200];

const run = promisify(execFile);

function makePicture(kind: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'test/fixtures/make-picture.mjs'), kind, file], { stdio: 'ignore' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`make-picture ${kind}: exit ${code}`))));
  });
}

async function measure(file: string, width: number | undefined): Promise<number> {
  const { stdout } = await run(process.execPath, [path.join(repoRoot, 'test/fixtures/measure-decode.cjs'), file, width === undefined ? 'check' : String(width)]);
  return (JSON.parse(stdout) as { peakBytes: number }).peakBytes;
}

describe("the decode's price, read from the header, is never below what the decode really takes", () => {
  let root: string;
  before(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'todo-cost-'));
    for (let i = 0; i < KINDS.length; i += 2) await Promise.all(KINDS.slice(i, i + 2).map((kind) => makePicture(kind, path.join(root, kind))));
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('for every format the function serves, for the check and for the resize', async () => {
    const rows: string[] = [];
    const jobs = KINDS.flatMap((kind) => PASSES.map((width) => ({ kind, width })));
    for (let i = 0; i < jobs.length; i += 2) {
      await Promise.all(
        jobs.slice(i, i + 2).map(async ({ kind, width }) => {
          const file = path.join(root, kind);
          const price = decodeCost(await sharp(file).metadata(), width);
          const taken = await measure(file, width);
          rows.push(`${kind.padEnd(26)} ${String(width ?? 'check').padEnd(5)} took ${(taken / 2 ** 20).toFixed(1).padStart(6)} MiB, priced ${(price / 2 ** 20).toFixed(1).padStart(6)} MiB`);
          assert.ok(taken <= price, `${kind} into ${width ?? '1 x 1'}: took ${taken} bytes, priced ${price}`);
        }),
      );
    }
    process.stderr.write(`${rows.map((row) => `# ${row}`).join('\n')}\n`);
  });
});
