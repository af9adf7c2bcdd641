// `npm test` runs this, and the image build runs `npm test` (turn it off with
// --build-arg TEST_ENABLED=false). Node 22 runs TypeScript as it is: no build step here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import handler, { type FunctionContext } from './handler.ts';

const context = {} as FunctionContext;

test('answers with what it was sent', async () => {
  const answer = await handler({ body: 'hi', headers: { 'content-type': 'text/plain' }, method: 'POST', query: { name: 'x' }, path: '/hello' }, context);
  assert.deepEqual(answer, { method: 'POST', path: '/hello', query: { name: 'x' }, body: 'hi', contentType: 'text/plain' });
});
