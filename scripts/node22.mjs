#!/usr/bin/env node
// `node scripts/node22.mjs <command> [args...]`: runs the command on Node 22, the
// container's runtime (node:22-alpine). With Node 22 or later on PATH it runs as
// is; otherwise Node 22 is installed once from the npm registry (the package
// node-<platform>-<arch>, which holds the official binary) into a cache folder
// and put first on PATH, so the command, and every `node` it starts, runs on 22.
// Plain JavaScript: it must run before anything is built, on any Node.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** The Node 22 release the tests and the benchmark run on when the machine's Node is older. */
const VERSION = '22.23.3';
const MAJOR = 22;

function fail(message) {
  process.stderr.write(`node22: ${message}\n`);
  process.exit(1);
}

function node22Bin() {
  if (Number(process.versions.node.split('.')[0]) >= MAJOR) return undefined;
  const pkg = `node-${process.platform}-${process.arch}`;
  const cache = process.env.TODO_APP_NODE_CACHE ?? path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'todo-app');
  const prefix = path.join(cache, `${pkg}-${VERSION}`);
  const bin = path.join(prefix, 'node_modules', pkg, 'bin');
  if (existsSync(path.join(bin, 'node'))) return bin;
  process.stderr.write(`node22: this is Node ${process.version}; installing Node ${VERSION} (${pkg}) from the npm registry into ${prefix}\n`);
  mkdirSync(prefix, { recursive: true });
  const npm = process.platform === 'win32' ? 'npm.cmd' : 'npm';
  const install = spawnSync(npm, ['install', '--prefix', prefix, '--no-save', '--no-package-lock', '--no-audit', '--no-fund', '--loglevel=error', `${pkg}@${VERSION}`], {
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (install.status !== 0 || !existsSync(path.join(bin, 'node'))) fail(`could not install ${pkg}@${VERSION} (npm exited with ${install.status}); install Node ${MAJOR} yourself`);
  return bin;
}

const [command, ...args] = process.argv.slice(2);
if (command === undefined) fail('usage: node scripts/node22.mjs <command> [args...]');
const bin = node22Bin();
// The machine's own Node, for reports that print both (the benchmark).
const machine = { TODO_APP_MACHINE_NODE: process.env.TODO_APP_MACHINE_NODE ?? process.version };
const env = bin === undefined ? { ...process.env, ...machine } : { ...process.env, ...machine, PATH: `${bin}${path.delimiter}${process.env.PATH ?? ''}` };
const child = spawn(command, args, { stdio: 'inherit', env });
// SIGTERM and SIGINT are passed on, whoever sends them: a supervisor, `kill`, or npm, which passes on
// what it gets (@npmcli/run-script lib/signal-manager.js). One Ctrl-C in a terminal reaches this
// process twice, from the terminal and from npm, close together: it is passed on once. The child
// may get it from the terminal as well; scripts/start.mjs counts those as one keypress too.
const ONE_KEYPRESS_MS = 500;
let lastInterrupt = -Infinity;
process.on('SIGTERM', () => child.kill('SIGTERM'));
process.on('SIGINT', () => {
  if (performance.now() - lastInterrupt > ONE_KEYPRESS_MS) child.kill('SIGINT');
  lastInterrupt = performance.now();
});
child.on('exit', (code, signal) => {
  if (signal === null) process.exit(code ?? 1);
  // End the way the child ended, so a caller sees the same signal.
  process.removeAllListeners(signal);
  process.kill(process.pid, signal);
});
child.on('error', (error) => fail(`${command}: ${error.message}`));
