// What function/handler.js may export. The official OpenFaaS node contract
// (openfaas/templates template/node22/index.js: `require('./function/handler')`): the module
// itself is the handler, (event, context, callback) => value; an ES module or TypeScript gives
// it as its default export. This template's own: a named handle(event, context), answering
// only through the context (todo-app). The lifecycle hooks (init, ready, close, maxBodyBytes)
// are named exports beside either; a module with no handler, or both, stops the start.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FunctionContext } from './context.js';
import type { FunctionEvent } from './contract.js';
import type { ListeningInfo, ShutdownInfo } from './lifecycle.js';

export type Callback = (error: unknown, value?: unknown) => void;

/** openfaas/templates node22: module.exports = async (event, context, callback) => value. */
export type Handler = (event: FunctionEvent, context: FunctionContext, callback: Callback) => unknown;

export interface StartInfo {
  /** The request deadline: of-watchdog's exec_timeout. Undefined: no such bound. */
  requestTimeoutMs: number | undefined;
  /**
   * MAX_UNSENT_BYTES: the most memory answers still queued to slow or stalled clients may pin
   * (distinct bodies, counted once each). Memory the function cannot count as its own.
   */
  maxUnsentBytes: number;
}

export interface Hooks {
  init?(start: StartInfo): Promise<void> | void;
  /** Once the wrapper listens (and has written of-watchdog's lock file). */
  ready?(listening: ListeningInfo): void;
  close?(shutdown: ShutdownInfo): Promise<void> | void;
  /** handle() only: the largest body the function reads; 0: it reads none. Default 1 MiB. */
  maxBodyBytes?: number;
}

/** This template's own contract: handle(event, context), answering only through the context. */
export interface FunctionModule extends Hooks {
  handle(event: FunctionEvent<Buffer | undefined>, context: FunctionContext): unknown;
}

export type Loaded =
  | { kind: 'official'; handler: Handler; hooks: Hooks }
  | { kind: 'handle'; handler: FunctionModule['handle']; hooks: Hooks };

export class ContractError extends Error {}

/**
 * The handler, compiled beside the wrapper in function/. The wrapper is CommonJS (require() of
 * Node's built-ins costs a fraction of an ESM import of them at start-up); a handler compiled
 * as ESM loads through require() too on Node 22, or through import() where that cannot
 * (top-level await).
 */
export async function loadHandler(dir: string): Promise<Loaded> {
  const file = path.join(dir, 'function', 'handler.js');
  let module: unknown;
  try {
    module = require(file);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'ERR_REQUIRE_ESM' && code !== 'ERR_REQUIRE_ASYNC_MODULE') throw error;
    module = await import(pathToFileURL(file).href);
  }
  return pick(module, path.relative(dir, file));
}

/** What a module exports, in the start's error line. */
function described(module: unknown): string {
  if (typeof module === 'function') return 'a function';
  if (module === null || typeof module !== 'object') return JSON.stringify(module) ?? String(module);
  const names = Object.keys(module).filter((name) => name !== '__esModule');
  return names.length === 0 ? 'nothing' : names.map((name) => `${name} (${typeof (module as Record<string, unknown>)[name]})`).join(', ');
}

function pick(module: unknown, file: string): Loaded {
  const exported = module as Record<string, unknown> | null | undefined;
  // module.exports = fn (CommonJS), or export default fn (ESM, or TypeScript compiled to CommonJS).
  const official = typeof module === 'function' ? module : typeof exported?.default === 'function' ? exported.default : undefined;
  const handle = typeof exported?.handle === 'function' ? exported.handle : undefined;
  const hooks = (exported ?? {}) as Hooks;
  if (official !== undefined && handle !== undefined && official !== handle) {
    throw new ContractError(`${file}: two handlers, a default export (module.exports or export default) and handle(): export one of them`);
  }
  if (official !== undefined) return { kind: 'official', handler: official as Handler, hooks };
  if (handle !== undefined) return { kind: 'handle', handler: handle as FunctionModule['handle'], hooks };
  throw new ContractError(
    `${file}: no handler: export a function (module.exports = async (event, context) => ..., or export default), or a function named handle; it exports ${described(module)}`,
  );
}
