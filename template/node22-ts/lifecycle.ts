// The server's life: where it listens, when it says it is ready (of-watchdog's lock file),
// and how it ends. On SIGTERM it keeps answering as long as the watchdog forwards
// (watchdog.ts), lets the function end its own work, stops listening, and exits once every
// answer in flight has left the process (inFlight.ts), within the platform's bound. Every
// other signal that ends a process still ends it, without leaving the lock file behind.
import fs from 'node:fs';
import type http from 'node:http';
import net from 'node:net';
import type { InFlight } from './inFlight.js';
import { fatal, reportError } from './report.js';
import { shutdownPlan, type Platform } from './watchdog.js';

export interface ShutdownInfo {
  signal: NodeJS.Signals;
  /** The function's own work (a refresh, a lock) must be over within this. */
  withinMs: number;
}

export interface ListeningInfo {
  /** Where the wrapper answers: http://localhost:PORT on every interface, else upstream_url's host. */
  url: string;
}

/**
 * Signals whose default action ends the process and that Node lets a program catch
 * (os.constants.signals, signal(7)). SIGTERM and SIGINT get the shutdown; these remove the lock
 * file and end the process as the signal would. Left out: SIGKILL and SIGSTOP (uncatchable);
 * SIGUSR1 (Node starts its inspector), SIGPIPE and SIGXFSZ (Node ignores them: a write fails
 * instead); SIGSEGV, SIGBUS, SIGFPE, SIGILL (a real fault cannot run JavaScript: the process
 * would hang, Node's docs on signal events); SIGPROF (V8's sampling profiler sends it).
 */
export const ENDING_SIGNALS: readonly NodeJS.Signals[] = [
  'SIGHUP', 'SIGQUIT', 'SIGTRAP', 'SIGABRT', 'SIGUSR2', 'SIGALRM', 'SIGSTKFLT',
  'SIGXCPU', 'SIGVTALRM', 'SIGIO', 'SIGPWR', 'SIGSYS',
];

/**
 * of-watchdog's lock file, written by the function once it listens when suppress_lock=true.
 * /tmp is an emptyDir that outlives a crashed container, and faas-netes probes from its first
 * second: the file lives only as long as this process. Removed at start (a run killed with
 * SIGKILL left it) and at every exit the process makes: process.exit, a crash, a signal.
 */
export interface HealthLock {
  write(): void;
  remove(): void;
}

/** Call first: a lock left by a killed run must go before anything else can take time. */
export function healthLock(platform: Platform): HealthLock {
  const file = platform.lockFile;
  const remove = (): void => {
    if (file !== undefined) fs.rmSync(file, { force: true });
  };
  remove();
  process.on('exit', remove);
  for (const signal of ENDING_SIGNALS) {
    const end = (): void => {
      remove();
      // With no listener left Node restores the default action, which the signal then takes.
      process.removeListener(signal, end);
      process.kill(process.pid, signal);
    };
    process.on(signal, end);
  }
  return {
    write: () => {
      if (file === undefined) return;
      try {
        fs.writeFileSync(file, '', { mode: 0o660 });
      } catch (error) {
        fatal(`suppress_lock: the function writes of-watchdog's lock file and cannot: ${file} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
      }
    },
    remove,
  };
}

export interface Life {
  /** SIGTERM came: the health check says so. */
  closing(): boolean;
  /** The server no longer listens: answers say Connection: close. */
  stopped(): boolean;
}

export interface LifeHooks {
  ready(listening: ListeningInfo): void;
  close(shutdown: ShutdownInfo): Promise<void> | void;
}

export function live(server: http.Server, platform: Platform, lock: HealthLock, inFlight: InFlight, hooks: LifeHooks): Life {
  let closing = false;
  let stopped = false;
  server.on('connection', (socket: net.Socket) => inFlight.connection(socket));

  const shutdown = (signal: NodeJS.Signals): void => {
    if (closing) {
      // A second Ctrl-C: the user does not want to wait.
      if (signal === 'SIGINT') process.exit(130);
      return;
    }
    closing = true;
    lock.remove();
    const { acceptMs, withinMs, finishMs } = shutdownPlan(platform, signal);
    const work = Promise.resolve()
      .then(() => hooks.close({ signal, withinMs }))
      .catch((error: unknown) => reportError('close failed', error));
    // healthcheck_interval of 0 or less: the watchdog never stops forwarding (Go's time.Tick
    // returns nil), so neither do we; the kubelet ends both after the grace period.
    if (acceptMs === Infinity) return;
    setTimeout(() => {
      stopped = true;
      // net.Server's close, not http.Server's: that one also destroys every connection whose
      // answer was ended, bytes still queued (closeIdleConnections). inFlight closes each
      // connection once its answers have left.
      net.Server.prototype.close.call(server);
      inFlight.stop();
      const bound = new Promise<void>((resolve) => setTimeout(resolve, finishMs).unref());
      // The function's work first: the answers it releases (a visitor waiting on a download) are then in flight.
      const done = work.then(() => inFlight.drained());
      void Promise.race([done, bound]).then(() => process.exit(0));
    }, acceptMs);
  };
  process.on('SIGTERM', shutdown);
  process.on('SIGINT', shutdown);

  server.on('error', (error: NodeJS.ErrnoException) => {
    const where = `${platform.host ?? '*'}:${platform.port}`;
    if (error.code === 'EADDRINUSE') fatal(`${platform.portVariable}: port ${platform.port} is in use by another process (${where})`);
    fatal(`${platform.portVariable}: cannot listen on ${where}: ${error.message}`);
  });
  server.listen({ port: platform.port, host: platform.host }, () => {
    lock.write();
    const host = platform.host === undefined ? 'localhost' : platform.host.includes(':') ? `[${platform.host}]` : platform.host;
    try {
      hooks.ready({ url: `http://${host}:${platform.port}` });
    } catch (error) {
      fatal(error instanceof Error ? error.message : String(error));
    }
  });
  return { closing: () => closing, stopped: () => stopped };
}
