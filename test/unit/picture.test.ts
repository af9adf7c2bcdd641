import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { inspect, PictureError, resize, sniffMime } from '../../functions/todo-app/picture.ts';
import { makeJpeg } from '../support/source.ts';

describe('pictures', async () => {
  const jpeg = await makeJpeg(5, 640, 480, true);

  it('decodes a real JPEG', async () => {
    assert.deepEqual(await inspect(jpeg), { mime: 'image/jpeg', width: 640, height: 480 });
  });

  it('refuses bytes that only claim to be a picture', async () => {
    await assert.rejects(inspect(Buffer.from('<html>not a picture</html>')), PictureError);
  });

  it('refuses a JPEG cut in half, which has a valid header', async () => {
    await assert.rejects(inspect(jpeg.subarray(0, jpeg.length >> 1)), PictureError);
  });

  it('names the type from the first bytes without a decoder', async () => {
    assert.equal(sniffMime(jpeg), 'image/jpeg');
    assert.equal(sniffMime(await sharp(jpeg).png().toBuffer()), 'image/png');
    assert.equal(sniffMime(await sharp(jpeg).webp().toBuffer()), 'image/webp');
    assert.equal(sniffMime(Buffer.from('hello, world!')), undefined);
  });

  it('resizes to the width asked and never enlarges', async () => {
    assert.equal((await sharp(await resize(jpeg, 320)).metadata()).width, 320);
    assert.equal((await sharp(await resize(jpeg, 2000)).metadata()).width, 640);
  });
});
