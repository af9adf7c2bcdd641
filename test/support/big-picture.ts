// A picture source whose one picture makes todo-app's page about 8.6 MB, the
// size the tests used: 6.4 MB of JPEG (random pixels, 2800 x 2800,
// 23.5 MB decoded), base64 in the page. Every download gets the same bytes; the
// function still builds a new page Buffer from each one.
import crypto from 'node:crypto';
import http from 'node:http';
import type net from 'node:net';
import sharp from 'sharp';

/** side 2800 (the default): a 6.4 MB JPEG, an 8.6 MB page; 2000: 3.3 MB, a 4.4 MB page. */
export async function bigPictureSource(side = 2800): Promise<{ url: string; close(): Promise<void> }> {
  const jpeg = await sharp(crypto.randomBytes(side * side * 3), { raw: { width: side, height: side, channels: 3 } }).jpeg({ quality: 90 }).toBuffer();
  const sockets = new Set<net.Socket>();
  const server = http.createServer((_req, res) => res.writeHead(200, { 'Content-Type': 'image/jpeg', 'Content-Length': jpeg.length }).end(jpeg));
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}/picture.jpg`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
