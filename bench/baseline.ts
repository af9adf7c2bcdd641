// The limit for Node here: a bare node:http server that answers every request
// with one prebuilt Buffer. The page is rendered by the function's own page.ts
// from the image on the same volume, with the same TTL, so the bytes (and the
// ETag) are the function's to the byte. It reads the volume at start as the
// function does, so a cold start of this server is the floor for a cold start
// of the function: node itself, node:http, one file read, one render.
//
// Environment: PORT, IMAGE_DIR, IMAGE_TTL_SECONDS (default 600), as the function.
import { readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { renderPage } from '../functions/todo-app/page.ts';

const dir = path.resolve(process.env.IMAGE_DIR ?? './data/images');
const ttlMs = Number(process.env.IMAGE_TTL_SECONDS ?? 600) * 1000;
const [image, stamp] = await Promise.all([readFile(path.join(dir, 'image.jpg')), readFile(path.join(dir, '.ts'), 'utf8')]);
const fetchedAt = Date.parse(stamp.trim());
const page = renderPage({ image, mime: 'image/jpeg', fetchedAt, ttlMs, source: new URL(process.env.IMAGE_URL ?? 'https://picsum.photos/1200') });

http
  .createServer((_req, res) => {
    res.writeHead(200, page.headers);
    res.end(page.body);
  })
  .listen(Number(process.env.PORT ?? 3000));
