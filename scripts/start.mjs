// `npm start`: the function on this machine, `node dist/index.js` as the
// container runs it, with ./data/images as the volume unless IMAGE_DIR says
// otherwise. It builds first, and only what changed (scripts/build.mjs: nothing
// when nothing did). In a terminal its JSON log lines are pretty-printed
// (pino-pretty); piped or redirected they stay JSON, as the platform keeps them.
// stderr (where a bad setting or a taken port is reported) passes through
// untouched, and this process ends with the function's own exit code.
//
// The process tree: npm -> node scripts/node22.mjs -> this script -> node
// dist/index.js. npm runs a script through `sh -c` (@npmcli/run-script
// lib/make-spawn-args.js, `shell: scriptShell`, true by default); package.json's
// `exec` replaces that shell with node22.mjs. SIGTERM or SIGINT to any one of
// them stops all four and frees the port:
// - npm passes SIGINT and SIGTERM on to the script's process and waits for it
//   (@npmcli/run-script lib/signal-manager.js, forwardedSignals, for a script run
//   with stdio 'inherit' as `npm start` is), then ends as that process ended. With
//   a shell in between (`a && b`) the signal stopped at the shell: SIGTERM killed
//   it and left its children running, SIGINT was ignored while it waited.
// - node22.mjs passes both on to this script, and this script to the function.
// - The function, stopped by a signal of its own, exits; then so does each parent.
import { spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import os from 'node:os';
import readline from 'node:readline';
import { build } from './build.mjs';

try {
  build();
} catch (error) {
  process.stderr.write(`npm start: ${error.message}\n`);
  process.exit(1);
}

const require = createRequire(import.meta.url);
const env = { ...process.env, IMAGE_DIR: process.env.IMAGE_DIR || './data/images' };
// Its own process group: a Ctrl-C reaches it once, from here, not also from the terminal.
const child = spawn(process.execPath, ['dist/index.js'], { env, stdio: ['ignore', 'pipe', 'inherit'], detached: true });

const pretty = process.stdout.isTTY
  ? require('pino-pretty').prettyFactory({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,fn' })
  : undefined;
readline.createInterface({ input: child.stdout, crlfDelay: Infinity }).on('line', (line) => {
  if (pretty && line.startsWith('{')) {
    try {
      process.stdout.write(pretty(JSON.parse(line)));
      return;
    } catch {
      // not JSON after all: as it is
    }
  }
  process.stdout.write(`${line}\n`);
});

// Ctrl-C and a supervisor's SIGTERM are passed on; a second Ctrl-C makes the function quit at once.
// One Ctrl-C in a terminal reaches this process twice, close together: from the terminal (this
// process is in its foreground process group) and from node22.mjs, which passes on what npm
// passed on. Within ONE_KEYPRESS_MS it is the same keypress.
const ONE_KEYPRESS_MS = 500;
let lastInterrupt = -Infinity;
process.on('SIGINT', () => {
  if (performance.now() - lastInterrupt > ONE_KEYPRESS_MS) child.kill('SIGINT');
  lastInterrupt = performance.now();
});
process.on('SIGTERM', () => child.kill('SIGTERM'));
// The terminal closed: stop the function too, it would be left without its output.
process.on('SIGHUP', () => child.kill('SIGTERM'));
process.on('exit', () => child.kill('SIGKILL'));
child.on('exit', (code, signal) => {
  // A shell's convention for a process ended by a signal: 128 + its number.
  process.exitCode = code ?? 128 + (os.constants.signals[signal] ?? 0);
});
child.on('error', (error) => {
  process.stderr.write(`npm start: ${error.message}\n`);
  process.exitCode = 1;
});
