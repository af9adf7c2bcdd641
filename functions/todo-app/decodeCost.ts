// What one decode of a picture takes in memory, read from its header alone
// (sharp's metadata(): no pixel decoded), so a picture over the budget is
// refused before libvips allocates anything for it. A few kB of file can
// claim 8192 x 8192 pixels, and some decoders hold every one of them at once.
//
// Every pass the function makes is one sequential pass of libvips (sharp's
// default access), into a small output: the check squeezes each line into one
// pixel (a column as tall as the picture: every line and every pixel is read),
// the page's copy shrinks to IMAGE_WIDTH. What such a pass holds, by format
// (libvips 8.18 as sharp 0.35 ships it; measured as peak RSS over 2048^2 to
// 8192^2 pictures, flat and noise, into the column and widths 1 to 2400; the
// estimate below was above every measurement, by 1.14x at the closest, an
// 8192^2 GIF into 600 px):
//
// - JPEG, baseline: streams, a few MCU rows; libjpeg shrinks on load by 2, 4
//   or 8 when the output is that much smaller. Progressive: libjpeg keeps every
//   DCT coefficient of the image, 2 bytes a sample (6 bytes a pixel at 4:4:4).
// - PNG: streams, unless interlaced: then spng decodes the whole image first.
// - GIF: libnsgif decodes into a full RGBA frame, 4 bytes a pixel, whatever
//   the palette; an animation keeps the previous frame too.
// - WebP: libwebp's lossless decoder allocates 4 bytes a pixel of the whole
//   image, and any decode holds its output frame, about 16 bytes a pixel of it
//   (YUV, RGBA and libvips' copy), at the scale sharp asks of it (1/shrink).
// - AVIF (HEIF): libheif and dav1d decode the whole image into planes, then
//   RGB: 18-21 bytes a pixel at 8 bits, 27 at 12 bits.
// - Every pass: libvips' read-ahead window, up to about 2,000 input lines
//   (2,600 counted), the output frame (the JPEG encoder keeps its coefficients:
//   6 bytes a pixel; 12 counted with the EXIF rotation's copy), and 16 MiB of
//   fixed cost (threads, buffers, the encoder).
import type { Metadata } from 'sharp';

const MIB = 1024 * 1024;
const FIXED_BYTES = 16 * MIB;
/** Input lines libvips' sequential pipeline may hold at once (measured up to ~2,100). */
const WINDOW_LINES = 2600;
/** Per output pixel: the JPEG encoder's coefficients and the rotated copy. */
const OUTPUT_BYTES_PER_PIXEL = 12;
/** Per pixel of the frame a WebP decode produces. */
const WEBP_FRAME_BYTES_PER_PIXEL = 16;

const BYTES_PER_SAMPLE: Record<string, number> = { uchar: 1, char: 1, ushort: 2, short: 2, uint: 4, int: 4, float: 4, double: 8, complex: 8, dpcomplex: 16 };

/** The pixels a pass puts out: one column for the check, else `target` wide, never enlarged. */
function outputOf(width: number, height: number, target: number | undefined): { width: number; height: number } {
  if (target === undefined) return { width: 1, height };
  if (width <= target) return { width, height };
  return { width: target, height: Math.max(1, Math.round((height * target) / width)) };
}

/** libjpeg's shrink on load as sharp picks it (2, 4, 8), counted one step lower: never overestimated. */
function jpegShrinkOnLoad(shrink: number): number {
  for (const factor of [8, 4, 2]) if (factor * 2 <= shrink) return factor;
  return 1;
}

/**
 * The most memory, in bytes, that one sequential pass of libvips over the first
 * frame takes: into one column (`target` undefined, the check; no shrink on
 * load then) or `target` pixels wide.
 */
export function decodeCost(meta: Metadata, target?: number): number {
  const width = meta.width ?? 0;
  const height = meta.pageHeight ?? meta.height ?? 0;
  const pixels = width * height;
  const animated = (meta.pages ?? 1) > 1;
  // libnsgif always decodes to RGBA; the others to what the header says.
  const bands = meta.format === 'gif' ? 4 : Math.max(1, meta.channels ?? 4);
  const sample = BYTES_PER_SAMPLE[meta.depth ?? ''] ?? 8;
  const out = outputOf(width, height, target);
  const shrink = Math.max(1, Math.min(width / out.width, height / out.height));
  let decoder = 0;
  let lineWidth = width;
  switch (meta.format) {
    case 'jpeg':
      if (meta.isProgressive) decoder = pixels * bands * 2;
      lineWidth = Math.ceil(width / jpegShrinkOnLoad(shrink));
      break;
    case 'png':
      if (meta.isProgressive) decoder = pixels * bands * sample;
      break;
    case 'gif':
      decoder = pixels * 4 * (animated ? 2 : 1);
      break;
    case 'webp':
      decoder = pixels * 4 + Math.min(pixels, (4 * pixels) / (shrink * shrink)) * WEBP_FRAME_BYTES_PER_PIXEL + (animated ? pixels * 4 * 2 : 0);
      break;
    case 'heif':
      decoder = pixels * (16 + 3 * bands * sample);
      break;
    default:
      // Not a format the function serves; counted as a whole frame held twice.
      decoder = pixels * bands * sample * 2;
  }
  return FIXED_BYTES + decoder + WINDOW_LINES * lineWidth * bands * sample + out.width * out.height * OUTPUT_BYTES_PER_PIXEL;
}

export function mebibytes(bytes: number): string {
  return (bytes / MIB).toFixed(bytes < 10 * MIB ? 1 : 0);
}
