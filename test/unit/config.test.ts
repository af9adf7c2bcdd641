import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../functions/todo-app/config.ts';

describe('settings', () => {
  it('uses the documented defaults when nothing is set', () => {
    const config = loadConfig({});
    assert.equal(config.imageUrl.href, 'https://picsum.photos/1200');
    assert.equal(config.imageDir, path.resolve('./data/images'));
    assert.equal(config.ttlMs, 600_000);
    assert.equal(config.imageWidth, undefined);
    assert.equal(config.fetchTimeoutMs, 10_000);
    assert.equal(config.maxImageBytes, 10_485_760);
    assert.equal(config.enableShutdown, false);
    assert.equal(config.logLevel, 'info');
    assert.equal(config.logFile, undefined);
    assert.deepEqual(config.caching, { maxAgeSeconds: undefined, staleWhileRevalidateSeconds: 10, staleIfErrorSeconds: 3600 });
  });

  it('reads every variable', () => {
    const config = loadConfig({
      IMAGE_URL: 'http://127.0.0.1:9/1200',
      IMAGE_DIR: '/data/images',
      IMAGE_TTL_SECONDS: '5',
      IMAGE_WIDTH: '600',
      FETCH_TIMEOUT_MS: '2500',
      MAX_IMAGE_BYTES: '2048',
      ENABLE_SHUTDOWN: 'true',
      LOG_LEVEL: 'debug',
      LOG_FILE: '/tmp/x.log',
      CACHE_MAX_AGE_SECONDS: '0',
      CACHE_STALE_WHILE_REVALIDATE_SECONDS: '0',
      CACHE_STALE_IF_ERROR_SECONDS: '86400',
      DECODE_BUDGET_BYTES: String(100 * 1024 * 1024),
    });
    assert.deepEqual(
      { ...config, imageUrl: config.imageUrl.href },
      {
        imageUrl: 'http://127.0.0.1:9/1200',
        imageDir: '/data/images',
        ttlMs: 5000,
        imageWidth: 600,
        fetchTimeoutMs: 2500,
        maxImageBytes: 2048,
        decodeBudgetBytes: 100 * 1024 * 1024,
        memoryLimitBytes: undefined,
        enableShutdown: true,
        logLevel: 'debug',
        logFile: '/tmp/x.log',
        caching: { maxAgeSeconds: 0, staleWhileRevalidateSeconds: 0, staleIfErrorSeconds: 86_400 },
      },
    );
  });

  it("derives the decode budget from the memory limit: the limit less the process's reserve and four pictures", () => {
    const MIB = 1024 * 1024;
    const limit = 256 * MIB;
    const unsent = 32 * MIB; // the wrapper's MAX_UNSENT_BYTES, passed to init()
    const derived = loadConfig({}, () => limit, unsent);
    assert.equal(derived.memoryLimitBytes, limit);
    assert.equal(derived.decodeBudgetBytes, 130 * MIB, 'stack.yml: 256 MiB - 64 MiB - 3 x 10 MiB - 32 MiB');
    assert.equal(loadConfig({ MAX_IMAGE_BYTES: String(20 * MIB) }, () => limit, unsent).decodeBudgetBytes, 100 * MIB);
    assert.equal(loadConfig({}, () => limit).decodeBudgetBytes, 162 * MIB, 'without a wrapper that says what slow clients may pin');
    assert.equal(loadConfig({}, () => 64 * MIB).decodeBudgetBytes, 0, 'a limit below the reserve refuses every decode');
    assert.equal(loadConfig({ DECODE_BUDGET_BYTES: String(300 * MIB) }, () => limit).decodeBudgetBytes, 300 * MIB, 'the setting wins');
  });

  it('treats an empty value as unset, as a blank line in stack.yml means', () => {
    assert.equal(loadConfig({ IMAGE_TTL_SECONDS: '', IMAGE_WIDTH: ' ' }).ttlMs, 600_000);
  });

  const bad: Array<[string, string]> = [
    ['IMAGE_URL', 'ftp://example.com/x.jpg'],
    ['IMAGE_URL', 'not a url'],
    ['IMAGE_TTL_SECONDS', '-5'],
    ['IMAGE_TTL_SECONDS', '0'],
    ['IMAGE_TTL_SECONDS', '1.5'],
    ['IMAGE_TTL_SECONDS', 'ten'],
    ['IMAGE_WIDTH', '0'],
    ['IMAGE_WIDTH', 'wide'],
    ['FETCH_TIMEOUT_MS', '-1'],
    ['MAX_IMAGE_BYTES', '1e6'],
    ['ENABLE_SHUTDOWN', 'maybe'],
    ['LOG_LEVEL', 'loud'],
    ['CACHE_MAX_AGE_SECONDS', '-1'],
    ['CACHE_MAX_AGE_SECONDS', 'forever'],
    ['CACHE_STALE_WHILE_REVALIDATE_SECONDS', '1.5'],
    ['CACHE_STALE_IF_ERROR_SECONDS', '99999999999'],
    ['DECODE_BUDGET_BYTES', '128Mi'],
    ['DECODE_BUDGET_BYTES', '1000'],
  ];
  for (const [name, value] of bad) {
    it(`refuses ${name}=${JSON.stringify(value)} with a message that names it`, () => {
      assert.throws(
        () => loadConfig({ [name]: value }),
        (error: unknown) => error instanceof ConfigError && error.variable === name && error.message.startsWith(`${name}: `) && !error.message.includes('\n'),
      );
    });
  }
});
