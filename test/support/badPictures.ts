// Pictures broken the ways real ones break: a transfer cut short, a writer that
// closed the file with an end marker it never reached, a header that lies about
// the size. Each keeps a valid JPEG start, so only a decode can tell.
import sharp from 'sharp';

/** The first half of the scan data, then the end-of-image marker: a whole header, a broken scan. */
export function cutWithEndMarker(jpeg: Buffer, keep = 0.5): Buffer {
  return Buffer.concat([jpeg.subarray(0, Math.floor(jpeg.length * keep)), Buffer.from([0xff, 0xd9])]);
}

/** The same JPEG whose frame header claims another size (a 40000 x 40000 "photo" in a few kB). */
export function withClaimedSize(jpeg: Buffer, width: number, height: number): Buffer {
  const forged = Buffer.from(jpeg);
  for (let at = 2; at + 9 < forged.length; ) {
    if (forged[at] !== 0xff) break;
    const marker = forged[at + 1]!;
    // SOF0..SOF2: length (2), precision (1), height (2), width (2).
    if (marker >= 0xc0 && marker <= 0xc2) {
      forged.writeUInt16BE(height, at + 5);
      forged.writeUInt16BE(width, at + 7);
      return forged;
    }
    at += 2 + forged.readUInt16BE(at + 2);
  }
  throw new Error('no frame header in this JPEG');
}

/** True when sharp decodes every pixel with its strictest everyday setting, the one the page's pictures must pass. */
export async function decodesStrictly(bytes: Buffer): Promise<boolean> {
  try {
    await sharp(bytes, { failOn: 'warning', limitInputPixels: 8192 * 8192 }).stats();
    return true;
  } catch {
    return false;
  }
}
