import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import sharp from 'sharp';
import { inspect, PictureError, resize, sha256, trustedVerdict, verdictOf } from '../../functions/todo-app/picture.ts';
import { cutWithEndMarker, withClaimedSize } from '../support/badPictures.ts';
import { makeJpeg } from '../support/source.ts';

const MAX = 10 * 1024 * 1024;
/** Far above what these small pictures need: the budget's own tests set their own. */
const BUDGET = 1024 * 1024 * 1024;
const LIMITS = { maxBytes: MAX, budgetBytes: BUDGET };

describe('pictures', async () => {
  const jpeg = await makeJpeg(5, 640, 480, true);

  it('decodes a real JPEG and names its bytes', async () => {
    assert.deepEqual(await inspect(jpeg, LIMITS), { mime: 'image/jpeg', width: 640, height: 480, sha256: sha256(jpeg) });
  });

  it('refuses bytes that only claim to be a picture', async () => {
    await assert.rejects(inspect(Buffer.from('<html>not a picture</html>'), LIMITS), PictureError);
    await assert.rejects(inspect(Buffer.alloc(0), LIMITS), PictureError);
  });

  it('refuses a JPEG cut in half, which has a valid header', async () => {
    await assert.rejects(inspect(jpeg.subarray(0, jpeg.length >> 1), LIMITS), PictureError);
  });

  it('refuses a JPEG whose scan was cut and closed with an end marker: the resize would fail on it', async () => {
    const broken = cutWithEndMarker(jpeg);
    await assert.rejects(resize(broken, 320, BUDGET), 'the resize refuses it');
    await assert.rejects(inspect(broken, LIMITS), PictureError, 'so the check refuses it too');
  });

  it('refuses a JPEG cut anywhere and closed with an end marker, its last lines too: the check reads every line', async () => {
    for (const seed of [11, 22, 33]) {
      const photo = await makeJpeg(seed, 160 + seed * 4, 120 + seed * 2, true);
      for (const keep of [0.7, 0.88, 0.95, 0.98]) await assert.rejects(inspect(cutWithEndMarker(photo, keep), LIMITS), PictureError, `seed ${seed}, cut at ${keep}`);
    }
  });

  it('refuses a header claiming 40000 x 40000 pixels, and bytes over MAX_IMAGE_BYTES', async () => {
    await assert.rejects(inspect(withClaimedSize(jpeg, 40_000, 40_000), LIMITS), /pixel limit/);
    await assert.rejects(inspect(jpeg, { ...LIMITS, maxBytes: jpeg.length - 1 }), /over MAX_IMAGE_BYTES/);
  });

  it('takes PNG, WebP, GIF and AVIF (which sharp calls heif) with their own media types', async () => {
    const as = async (format: 'png' | 'webp' | 'gif' | 'avif'): Promise<string> => (await inspect(await sharp(jpeg).toFormat(format).toBuffer(), LIMITS)).mime;
    assert.equal(await as('png'), 'image/png');
    assert.equal(await as('webp'), 'image/webp');
    assert.equal(await as('gif'), 'image/gif');
    assert.equal(await as('avif'), 'image/avif');
    assert.equal((await sharp(await resize(await sharp(jpeg).avif().toBuffer(), 320, BUDGET)).metadata()).width, 320, 'an AVIF resizes');
  });

  it('resizes to the width asked and never enlarges', async () => {
    assert.equal((await sharp(await resize(jpeg, 320, BUDGET)).metadata()).width, 320);
    assert.equal((await sharp(await resize(jpeg, 2000, BUDGET)).metadata()).width, 640);
  });

  it("lays a transparent picture on the page's background for the JPEG copy, not on black", async () => {
    // Left half clear, right half opaque red: the clear half must come out as the page's #f6f6f4.
    const half = await sharp({ create: { width: 400, height: 200, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0 } } })
      .composite([{ input: { create: { width: 200, height: 200, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 1 } } }, left: 200, top: 0 }])
      .png()
      .toBuffer();
    const { data, info } = await sharp(await resize(half, 100, BUDGET)).raw().toBuffer({ resolveWithObject: true });
    const at = (x: number, y: number): number[] => [...data.subarray((y * info.width + x) * info.channels, (y * info.width + x) * info.channels + 3)];
    for (const [got, want] of [[at(10, 25), [0xf6, 0xf6, 0xf4]], [at(90, 25), [255, 0, 0]]] as const) {
      for (let i = 0; i < 3; i++) assert.ok(Math.abs(got[i]! - want[i]!) <= 6, `pixel ${JSON.stringify(got)}, expected about ${JSON.stringify(want)}`);
    }
  });

  it('refuses, from its header alone, a picture whose decode would take more than the budget', async () => {
    // A lossless WebP of 4096 x 4096 is 38 bytes of file; libwebp allocates 4 bytes a pixel for it (64 MiB).
    const tiny = await sharp({ create: { width: 4096, height: 4096, channels: 4, background: { r: 1, g: 2, b: 3, alpha: 0.5 } } }).webp({ lossless: true, effort: 0 }).toBuffer();
    await assert.rejects(inspect(tiny, { maxBytes: MAX, budgetBytes: 64 * 1024 * 1024 }), (error: PictureError) => {
      assert.equal(error.code, 'OVER_BUDGET');
      assert.match(error.message, /4096x4096 webp.*over the decode budget of 64 MiB \(DECODE_BUDGET_BYTES\)/);
      return true;
    });
    await assert.rejects(resize(tiny, 600, 64 * 1024 * 1024), /over the decode budget/, 'the resize prices itself too');
    assert.equal((await inspect(tiny, LIMITS)).width, 4096, 'within a larger budget it decodes');
  });

  it('trusts a saved verdict only for the bytes it names, this decode, a type a page can carry and a sane size', async () => {
    const picture = await inspect(jpeg, LIMITS);
    const saved = JSON.parse(JSON.stringify(verdictOf(picture))) as Record<string, unknown>;
    assert.deepEqual(trustedVerdict(saved, sha256(jpeg)), picture);
    assert.equal(trustedVerdict(saved, sha256(Buffer.from('other bytes'))), undefined, 'other bytes');
    assert.equal(trustedVerdict({ ...saved, rule: 'sharp failOn=truncated' }, picture.sha256), undefined, 'a laxer decode');
    assert.equal(trustedVerdict({ ...saved, mime: 'image/jpeg" onerror="alert(1)' }, picture.sha256), undefined, 'a type that would break the page');
    assert.equal(trustedVerdict({ ...saved, width: 40_000, height: 40_000 }, picture.sha256), undefined, 'over the pixel cap');
    assert.equal(trustedVerdict('garbage', picture.sha256), undefined);
    assert.equal(trustedVerdict(null, picture.sha256), undefined);
    assert.equal(trustedVerdict({ ...saved, photoId: '237' }, picture.sha256)?.photoId, '237', "the source's id of the photo is kept");
    assert.equal(trustedVerdict({ ...saved, photoId: '<i>' }, picture.sha256)?.photoId, undefined, 'an id that is not a number is dropped');
  });

  // concurrency(1) is not asserted: on glibc, this machine's, sharp already picks 1 by itself,
  // so the check could not fail here; it matters on Alpine's musl.
  it("turns libvips' operation cache off: a function with one picture every few minutes never hits it", async () => {
    await inspect(jpeg, LIMITS);
    assert.equal(sharp.cache().memory.max, 0);
  });
});
