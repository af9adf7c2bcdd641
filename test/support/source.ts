// A stand-in for Lorem Picsum on 127.0.0.1: `/1200` answers 302 to a real JPEG,
// like picsum.photos does. Every image answer is counted and is a different
// picture, and the source can be switched into each way a real upstream fails.
import http from 'node:http';
import type net from 'node:net';
import sharp from 'sharp';
import { cutWithEndMarker } from './badPictures.ts';

export type SourceMode =
  | 'ok'
  | 'error' // 503 from the source, as Picsum's outages did
  | 'hang' // accepts the request, never answers
  | 'drop' // headers and half the body, then the connection is cut
  | 'not-image' // says image/jpeg, sends HTML
  | 'wrong-type' // a real JPEG, labelled text/html
  | 'huge' // streams past any size cap, chunked, no content-length
  | 'loop' // redirects forever
  | 'trickle' // a real JPEG, a few bytes at a time
  | 'corrupt'; // a whole JPEG header, the scan cut short and closed with an end marker

export interface SourceOptions {
  width?: number;
  height?: number;
  /** Delay before the image answer starts, in ms. */
  delayMs?: number;
  /** How many distinct pictures to prepare (served round robin). */
  pictures?: number;
  /** Random noise makes the JPEG as large as a real photo. */
  noise?: boolean;
  /** AVIF instead of JPEG, labelled image/avif. */
  format?: 'jpeg' | 'avif';
  /** These pictures instead of made ones, each with its own content-type. */
  given?: Array<{ bytes: Buffer; type: string }>;
  /** The address to listen on (default 127.0.0.1); IMAGE_URL names it. */
  host?: string;
}

export interface ImageSource {
  /** The URL the function is given as IMAGE_URL. */
  url: string;
  port: number;
  /** Image answers started (the function's downloads). */
  downloads: number;
  /** Requests of any kind, redirects included. */
  requests: number;
  mode: SourceMode;
  delayMs: number;
  /** The bytes of the picture served by download n (1-based). */
  served: Buffer[];
  pictures: Buffer[];
  /** When set, `/1200` answers 302 to this Location instead of to a picture of its own. */
  redirectTo: string | undefined;
  close(): Promise<void>;
}

export async function makeJpeg(seed: number, width = 320, height = 240, noise = false): Promise<Buffer> {
  const background = { r: (seed * 67) % 256, g: (seed * 131 + 40) % 256, b: (seed * 29 + 90) % 256 };
  const image = sharp({
    create: noise
      ? { width, height, channels: 3, background, noise: { type: 'gaussian', mean: 128, sigma: 20 } }
      : { width, height, channels: 3, background },
  });
  return image.jpeg({ quality: 80 }).toBuffer();
}

export async function startSource(options: SourceOptions = {}): Promise<ImageSource> {
  const count = options.given?.length ?? options.pictures ?? 4;
  const pictures: Buffer[] = options.given?.map((picture) => picture.bytes) ?? [];
  for (let i = pictures.length; i < count; i++) {
    const jpeg = await makeJpeg(i + 1, options.width, options.height, options.noise);
    pictures.push(options.format === 'avif' ? await sharp(jpeg).avif().toBuffer() : jpeg);
  }
  const made = options.format === 'avif' ? 'image/avif' : 'image/jpeg';
  const typeOf = (index: number): string => options.given?.[index]?.type ?? made;
  const sockets = new Set<net.Socket>();
  const state: ImageSource = {
    url: '',
    port: 0,
    downloads: 0,
    requests: 0,
    mode: 'ok',
    delayMs: options.delayMs ?? 0,
    served: [],
    pictures,
    redirectTo: undefined,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  const server = http.createServer((req, res) => {
    state.requests++;
    const url = req.url ?? '/';
    if (state.mode === 'loop') {
      res.writeHead(302, { Location: url === '/1200' ? '/loop/1' : `/loop/${Number(url.split('/')[2] ?? 0) + 1}` }).end();
      return;
    }
    if (url === '/1200' && state.redirectTo !== undefined) {
      res.writeHead(302, { Location: state.redirectTo }).end();
      return;
    }
    if (url === '/1200') {
      res.writeHead(302, { Location: `/id/${(state.downloads % count) + 1}/1200/1200.jpg` }).end();
      return;
    }
    if (!url.startsWith('/id/')) {
      res.writeHead(404).end();
      return;
    }
    const n = ++state.downloads;
    const picture = pictures[(n - 1) % count]!;
    const type = typeOf((n - 1) % count);
    const answer = (): void => {
      switch (state.mode) {
        case 'error':
          res.writeHead(503, { 'Content-Type': 'text/plain', 'Retry-After': '1' }).end('unavailable');
          return;
        case 'hang':
          return;
        case 'drop':
          res.writeHead(200, { 'Content-Type': type, 'Content-Length': picture.length });
          res.write(picture.subarray(0, picture.length >> 1), () => res.destroy());
          return;
        case 'corrupt': {
          const broken = cutWithEndMarker(picture);
          res.writeHead(200, { 'Content-Type': type, 'Content-Length': broken.length }).end(broken);
          return;
        }
        case 'not-image':
          res.writeHead(200, { 'Content-Type': 'image/jpeg' }).end('<html><body>not a picture</body></html>');
          return;
        case 'wrong-type':
          res.writeHead(200, { 'Content-Type': 'text/html' }).end(picture);
          return;
        case 'huge': {
          res.writeHead(200, { 'Content-Type': 'image/jpeg' });
          const block = Buffer.alloc(64 * 1024, 0xff);
          let sent = 0;
          const pump = (): void => {
            while (sent < 64 * 1024 * 1024) {
              sent += block.length;
              if (!res.write(block)) {
                res.once('drain', pump);
                return;
              }
            }
            res.end();
          };
          res.on('close', () => (sent = Infinity));
          pump();
          return;
        }
        case 'trickle': {
          res.writeHead(200, { 'Content-Type': type, 'Content-Length': picture.length, 'Picsum-ID': String(n) });
          let at = 0;
          const timer = setInterval(() => {
            const step = Math.max(1, picture.length >> 6);
            res.write(picture.subarray(at, at + step));
            at += step;
            if (at >= picture.length) {
              clearInterval(timer);
              state.served.push(picture);
              res.end();
            }
          }, 50);
          res.on('close', () => clearInterval(timer));
          return;
        }
        default:
          state.served.push(picture);
          res
            .writeHead(200, { 'Content-Type': type, 'Content-Length': picture.length, 'Picsum-ID': String((n - 1) % count + 1) })
            .end(picture);
      }
    };
    if (state.delayMs > 0) {
      const timer = setTimeout(answer, state.delayMs);
      res.on('close', () => clearTimeout(timer));
    } else {
      answer();
    }
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  const host = options.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, () => resolve()));
  state.port = (server.address() as net.AddressInfo).port;
  state.url = `http://${host.includes(':') ? `[${host}]` : host}:${state.port}/1200`;
  return state;
}
