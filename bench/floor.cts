// The floor for a cold start and for throughput on this Node: the smallest
// server that can send the function's page. CommonJS, so `node:http` comes
// through require(), which on Node 22 costs a fraction of an ESM import of it.
// It reads the volume synchronously at start, as a minimal app would, and the
// page is rendered by the function's own page.ts (compiled to CommonJS too) from
// the same image, with the same TTL: the bytes and the ETag are the function's.
// What a cold start of this server costs is node itself, node:http, two file
// reads and one render: all the function cannot do without.
//
// Environment: PORT, IMAGE_DIR, IMAGE_URL, IMAGE_TTL_SECONDS (default 600), as the function.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { renderPage } from '../functions/todo-app/page.ts';

const dir = path.resolve(process.env.IMAGE_DIR ?? './data/images');
const ttlMs = Number(process.env.IMAGE_TTL_SECONDS ?? 600) * 1000;
const image = readFileSync(path.join(dir, 'image.jpg'));
const fetchedAt = Date.parse(readFileSync(path.join(dir, '.ts'), 'utf8').trim());
// The photo's id, when the source gave one, is in the verdict the function saved beside the image.
const photoId = (JSON.parse(readFileSync(path.join(dir, '.image.jpg.verified'), 'utf8')) as { photoId?: string }).photoId;
const source = new URL(process.env.IMAGE_URL ?? 'https://picsum.photos/1200');
const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs, source, photoId });

// The function's headers as they are now, made once: the floor pays nothing per second for its Cache-Control.
const headers = page.headersAt(Date.now());

http
  .createServer((_req, res) => {
    res.writeHead(200, headers);
    res.end(page.body);
  })
  .listen(Number(process.env.PORT ?? 3000));
