// A stand-in for of-watchdog in http mode, run as its own process
// (`node --import tsx test/support/of-watchdog.ts`) and configured by the same
// environment as the real one. Each rule is ported from openfaas/of-watchdog
// at 9bdadb1 (the files named beside it); where Go's net/http decides, the
// comment says so. tests start it through startWatchdog() (watchdog.ts), which
// runs the real binary instead when OF_WATCHDOG_BIN names one.
//
// Not ported: modes other than http, max_inflight (429), jwt_auth, metrics on
// :8081, buffer_http, the streaming proxy for SSE/websockets.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { intOrDuration } from '../../template/node22-ts/watchdog.ts';

const env = process.env;

// log.Printf with Go's default flags: "2006/01/02 15:04:05 message".
function log(message: string): void {
  const now = new Date();
  const pad = (n: number): string => String(n).padStart(2, '0');
  const stamp = `${now.getFullYear()}/${pad(now.getMonth() + 1)}/${pad(now.getDate())} ${pad(now.getHours())}:${pad(now.getMinutes())}:${pad(now.getSeconds())}`;
  process.stderr.write(`${stamp} ${message}\n`);
}

function exitWith(code: number, message: string): never {
  process.stderr.write(message);
  process.exit(code);
}

// config/config.go New(): the variables and their defaults.
const writeTimeout = intOrDuration(env.write_timeout, 30_000);
const config = {
  // getInt: strconv.Atoi, and a value that does not parse is 0 (a random port).
  port: env.port === undefined ? 8080 : /^[+-]?\d+$/.test(env.port) ? Number(env.port) : 0,
  readTimeout: intOrDuration(env.read_timeout, 30_000),
  writeTimeout,
  execTimeout: intOrDuration(env.exec_timeout, 30_000),
  healthcheckInterval: intOrDuration(env.healthcheck_interval, writeTimeout),
  // function_process wins over fprocess, http_upstream_url over upstream_url.
  fprocess: env.function_process ?? env.fprocess ?? '',
  upstreamUrl: env.http_upstream_url ?? env.upstream_url ?? '',
  // getBool: exactly "true" or "1".
  suppressLock: env.suppress_lock === 'true' || env.suppress_lock === '1',
  // strconv.ParseBool, default true.
  prefixLogs: !/^(0|f|F|false|FALSE|False)$/.test(env.prefix_logs ?? 'true'),
  readyPath: env.ready_path ?? '',
  mode: env.mode ?? 'streaming',
};
if (writeTimeout === 0) exitWith(1, 'Error loading config: HTTP write timeout must be over 0s');
if (config.fprocess === '') exitWith(1, 'Error loading config: provide a "function_process" or "fprocess" environmental variable for your function');
if (config.mode !== 'http') exitWith(1, `this stand-in runs only mode=http, got ${JSON.stringify(config.mode)}`);
if (config.upstreamUrl === '') exitWith(1, 'For "mode=http" you must specify a valid URL for "http_upstream_url"');
const upstream = new URL(config.upstreamUrl);

// pkg/watchdog.go: the lock file is filepath.Join(os.TempDir(), ".lock"); os.TempDir is $TMPDIR or /tmp.
const lockFile = path.join(env.TMPDIR || '/tmp', '.lock');
let acceptingConnections = false;
const lockFilePresent = (): boolean => fs.existsSync(lockFile);

// executor/http_runner.go Start(): fork fprocess (split on spaces), pass its stdout and stderr
// on line by line, forward SIGTERM at once, and die when the function dies with an error.
const [command, ...args] = config.fprocess.split(' ');
log(`Forking: ${command}, arguments: [${args.join(' ')}]`);
const child = spawn(command!, args, { stdio: ['pipe', 'pipe', 'pipe'] });
for (const [name, from, to] of [
  ['stdout', child.stdout!, process.stdout],
  ['stderr', child.stderr!, process.stderr],
] as const) {
  log(`Started logging: ${name} from function.`);
  readline.createInterface({ input: from, crlfDelay: Infinity }).on('line', (line) => {
    to.write(config.prefixLogs ? `${new Date().toISOString()} ${name}: ${line}\n` : `${line}\n`);
  });
}
child.on('exit', (code, signal) => {
  // cmd.Wait() returns an error for a non-zero exit or a signal: log.Fatalf exits 1.
  // A clean exit 0 is not an error: the watchdog goes on without an upstream.
  if (code !== 0) {
    log(`Forked function has terminated: ${signal ? `signal: ${signal}` : `exit status ${code}`}`);
    process.exit(1);
  }
});

// executor/http_runner.go makeProxyClient: keep-alive, idle connections dropped after 500 ms.
const agent = new http.Agent({ keepAlive: true, maxFreeSockets: 100, timeout: 500 });

function forward(req: http.IncomingMessage, res: http.ServerResponse, retried = false): void {
  const startedAt = performance.now();
  const seconds = (): string => ((performance.now() - startedAt) / 1000).toFixed(6);
  // http_runner.go Run(): the upstream URL is upstream_url + the request URI, unchanged.
  const target = new URL(config.upstreamUrl + (req.url ?? ''));
  // Every header is copied (hop-by-hop ones too: this is not httputil.ReverseProxy) and the
  // Host is kept. Go's Transport writes Host, User-Agent and the framing itself, and asks for
  // gzip when the caller did not (net/http transport.go, unless HEAD or a Range request).
  const headers: http.OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (!['content-length', 'transfer-encoding', 'trailer'].includes(name)) headers[name] = value;
  }
  headers['user-agent'] ??= 'Go-http-client/1.1';
  if (req.headers['accept-encoding'] === undefined && req.headers.range === undefined && req.method !== 'HEAD') headers['accept-encoding'] = 'gzip';
  // The body is r.Body, of unknown length to http.NewRequest: Go sends it chunked;
  // a request without one (http.NoBody) goes with none.
  const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0;
  if (hasBody) headers['transfer-encoding'] = 'chunked';
  const execTimedOut = { value: false };
  const upstreamReq = http.request({ host: target.hostname, port: target.port || 80, method: req.method, path: target.pathname + target.search, headers, agent });
  // exec_timeout: a context deadline on the whole upstream call (0 means none).
  const deadline =
    config.execTimeout > 0
      ? setTimeout(() => {
          execTimedOut.value = true;
          upstreamReq.destroy(new Error('context deadline exceeded'));
        }, config.execTimeout)
      : undefined;
  upstreamReq.on('response', (answer) => {
    // copyHeaders: every upstream header, then X-Duration-Seconds.
    const out: http.OutgoingHttpHeaders = { ...answer.headers };
    out['x-duration-seconds'] = seconds();
    res.writeHead(answer.statusCode ?? 500, out);
    answer.pipe(res);
    answer.on('end', () => {
      clearTimeout(deadline);
      if (!String(req.headers['user-agent'] ?? '').startsWith('kube-probe')) {
        log(`${req.method} ${req.url} - ${answer.statusCode} ${answer.statusMessage} - ContentLength: ${answer.headers['content-length'] ?? '-1'}B (${seconds().slice(0, 6)}s)`);
      }
    });
    answer.on('error', () => res.destroy());
  });
  upstreamReq.on('error', (error) => {
    clearTimeout(deadline);
    if (res.headersSent) {
      res.destroy();
      return;
    }
    // Go's Transport retries a request without a body that failed on a reused idle
    // connection before any answer (net/http transport.go, shouldRetryRequest).
    if (!retried && !hasBody && upstreamReq.reusedSocket && !execTimedOut.value) {
      forward(req, res, true);
      return;
    }
    log(`Upstream HTTP request error: ${error.message}`);
    if (execTimedOut.value) log(`Upstream HTTP killed due to exec_timeout: ${config.execTimeout / 1000}s`);
    // A deadline gives 504, anything else (refused, reset) 500; both with no body.
    res.writeHead(execTimedOut.value ? 504 : 500, { 'X-Duration-Seconds': seconds(), 'X-OpenFaaS-Internal': 'of-watchdog', 'Content-Length': 0 });
    res.end();
  });
  if (hasBody) req.pipe(upstreamReq);
  else upstreamReq.end();
}

// pkg/watchdog.go makeHealthHandler: GET is 200 "OK" only while accepting and the lock file exists.
function health(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET') return void res.writeHead(405, { 'Content-Length': 0 }).end();
  if (!acceptingConnections || !lockFilePresent()) return void res.writeHead(503, { 'Content-Length': 0 }).end();
  res.writeHead(200, { 'Content-Type': 'text/plain; charset=utf-8', 'Content-Length': 2 }).end('OK');
}

// pkg/readiness.go: like health, or the function's own ready_path when set.
function ready(req: http.IncomingMessage, res: http.ServerResponse): void {
  if (req.method !== 'GET') return void res.writeHead(405, { 'Content-Length': 0 }).end();
  if (!acceptingConnections || !lockFilePresent()) return void res.writeHead(503, { 'Content-Length': 0 }).end();
  if (config.readyPath !== '') {
    req.url = config.readyPath;
    return forward(req, res);
  }
  res.writeHead(200, { 'Content-Length': 0 }).end();
}

// http.Server{ReadTimeout, WriteTimeout, MaxHeaderBytes: 1 << 20} (Go adds 4096 bytes of slack).
const server = http.createServer({ requestTimeout: config.readTimeout || 0, maxHeaderSize: (1 << 20) + 4096 }, (req, res) => {
  // WriteTimeout: from the end of the request headers, the answer must be written in time or the connection is closed.
  const writeDeadline = setTimeout(() => req.socket.destroy(), config.writeTimeout);
  res.once('close', () => clearTimeout(writeDeadline));
  const route = (req.url ?? '/').split('?')[0];
  // http.HandleFunc exact paths; everything else is the function.
  if (route === '/_/health') return health(req, res);
  if (route === '/_/ready') return ready(req, res);
  forward(req, res);
});
const connections = new Set<net.Socket>();
const active = new Set<net.Socket>();
server.on('connection', (socket) => {
  connections.add(socket);
  socket.on('close', () => {
    connections.delete(socket);
    active.delete(socket);
  });
});
server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) => {
  active.add(req.socket);
  res.once('finish', () => active.delete(req.socket));
});

log(`Timeouts: read: ${config.readTimeout}ms write: ${config.writeTimeout}ms hard: ${config.execTimeout}ms health: ${config.healthcheckInterval}ms`);
server.listen(config.port, () => {
  log(`Listening on port: ${config.port}`);
  // listenUntilShutdown: the lock file is written right after the listener starts, unless
  // suppress_lock says the function writes it; then accepting is true at once.
  if (!config.suppressLock) {
    try {
      fs.mkdirSync(path.dirname(lockFile), { recursive: true });
      fs.writeFileSync(lockFile, '', { mode: 0o660 });
      log(`Writing lock-file to: ${lockFile}`);
    } catch (error) {
      log(`Error: cannot write ${lockFile}. To disable lock-file set env suppress_lock=true: ${(error as Error).message}`);
      process.exit(1);
    }
  } else {
    log('Warning: "suppress_lock" is enabled. No automated health-checks will be in place for your function.');
  }
  acceptingConnections = true;
});

// listenUntilShutdown, on SIGTERM: mark unhealthy and remove the lock file at once, keep
// serving for healthcheck_interval (time.Tick of 0 or less never fires), then
// Server.Shutdown with write_timeout: stop listening, close idle connections, wait for
// the active ones, and exit 0 whether or not they finished.
process.on('SIGTERM', () => {
  // http_runner.go: its own signal.Notify passes SIGTERM to the function at once.
  child.kill('SIGTERM');
  log(`SIGTERM: no new connections in ${config.healthcheckInterval}ms`);
  acceptingConnections = false;
  log(`Removing lock-file : ${lockFile}`);
  fs.rmSync(lockFile, { force: true });
  if (!(config.healthcheckInterval > 0)) return;
  setTimeout(() => {
    log(`No new connections allowed, draining: ${active.size} requests`);
    server.close();
    const sweep = (): void => {
      for (const socket of connections) if (!active.has(socket)) socket.destroy();
    };
    sweep();
    const poll = setInterval(() => {
      sweep();
      if (connections.size === 0) finish();
    }, 10);
    const bound = setTimeout(() => {
      log('Error in Shutdown: context deadline exceeded');
      finish();
    }, config.writeTimeout);
    const finish = (): void => {
      clearInterval(poll);
      clearTimeout(bound);
      log(`Exiting. Active connections: ${active.size}`);
      process.exit(0);
    };
  }, config.healthcheckInterval);
});
