// The floor as it was before the function compiled to CommonJS, kept for
// comparison: the same bare node:http server as floor.cts, but an ES module,
// so `import http from 'node:http'` goes through Node's ESM wrapper of the
// built-in (on Node 22 that reads every export, and node:http's lazy getters
// load undici, tls, http2, zlib). The same page from the same volume, read the
// way an ESM app reads it (top-level await); its cold start minus the floor's is
// what ESM costs a server before it serves a byte.
//
// Environment: PORT, IMAGE_DIR, IMAGE_URL, IMAGE_TTL_SECONDS (default 600), as the function.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { renderPage } from '../functions/todo-app/page.ts';

const dir = path.resolve(process.env.IMAGE_DIR ?? './data/images');
const ttlMs = Number(process.env.IMAGE_TTL_SECONDS ?? 600) * 1000;
const [image, stamp, verdict] = await Promise.all([readFile(path.join(dir, 'image.jpg')), readFile(path.join(dir, '.ts'), 'utf8'), readFile(path.join(dir, '.image.jpg.verified'), 'utf8')]);
const fetchedAt = Date.parse(stamp.trim());
const { photoId } = JSON.parse(verdict) as { photoId?: string };
const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs, source: new URL(process.env.IMAGE_URL ?? 'https://picsum.photos/1200'), photoId });

// The function's headers as they are now, made once: the floor pays nothing per second for its Cache-Control.
const headers = page.headersAt(Date.now());

http
  .createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(page.body);
  })
  .listen(Number(process.env.PORT ?? 3000));
