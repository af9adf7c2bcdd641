// The wrapper reads of-watchdog's environment the way of-watchdog does
// (config/config.go): Go's time.ParseDuration, whole numbers as seconds, the
// defaults, and what that makes of the shutdown. The duration cases are Go's own
// test table (go1.26 src/time/time_test.go, parseDurationTests and
// parseDurationErrorTests), in milliseconds.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { intOrDuration, MAX_TIMER_MS, parseGoDuration, readPlatform, shutdownPlan } from '../../template/node22-ts/watchdog.ts';

const S = 1000;
const M = 60 * S;
const H = 60 * M;

describe("Go's time.ParseDuration, from Go's own test table", () => {
  const valid: Array<[string, number]> = [
    ['0', 0], ['5s', 5 * S], ['30s', 30 * S], ['1478s', 1478 * S],
    ['-5s', -5 * S], ['+5s', 5 * S], ['-0', 0], ['+0', 0],
    ['5.0s', 5 * S], ['5.6s', 5600], ['5.s', 5 * S], ['.5s', 500], ['1.0s', S], ['1.00s', S], ['1.004s', 1004], ['1.0040s', 1004], ['100.00100s', 100_001],
    ['10ns', 10e-6], ['11us', 11e-3], ['12µs', 12e-3], ['12μs', 12e-3], ['13ms', 13], ['14s', 14 * S], ['15m', 15 * M], ['16h', 16 * H],
    ['3h30m', 3 * H + 30 * M], ['10.5s4m', 4 * M + 10_500], ['-2m3.4s', -(2 * M + 3400)], ['1h2m3s4ms5us6ns', H + 2 * M + 3 * S + 4 + 0.005006],
    ['39h9m14.425s', 39 * H + 9 * M + 14_425], ['52763797000ns', 52_763.797],
    ['0.3333333333333333333h', 20 * M], ['9223372036854775807ns', 9223372036854.775807], ['9223372036s854ms775us807ns', 9223372036854.775807],
    ['-9223372036854775808ns', -9223372036854.775808], ['-2562047h47m16.854775808s', -9223372036854.775808],
    ['0.100000000000000000000h', 6 * M], ['0.830103483285477580700h', 49 * M + 48 * S + 372.539827],
  ];
  for (const [text, ms] of valid) {
    it(`${JSON.stringify(text)} is ${ms} ms`, () => {
      const got = parseGoDuration(text);
      assert.ok(got !== undefined, 'parses');
      assert.ok(Math.abs(got - ms) <= Math.abs(ms) * 1e-12 + 1e-9, `got ${got}`);
    });
  }
  const invalid = ['', '3', '-', 's', '.', '-.', '.s', '+.s', '1d', '\ufffd', '\ufffd hello \ufffd world', '5 s', '1m 30s',
    '9223372036854775810ns', '9223372036854775808ns', '-9223372036854775809ns', '9223372036854776us', '3000000h', '9223372036854775.808us', '9223372036854ms775us808ns'];
  for (const text of invalid) {
    it(`${JSON.stringify(text)} is an error`, () => assert.equal(parseGoDuration(text), undefined));
  }
});

describe("config.go parseIntOrDurationValue and the defaults", () => {
  it('a whole number >= 0 is seconds, a duration is a duration, anything else the fallback', () => {
    assert.equal(intOrDuration('5', 1), 5 * S);
    assert.equal(intOrDuration('+5', 1), 5 * S);
    assert.equal(intOrDuration('05', 1), 5 * S);
    assert.equal(intOrDuration('0', 1), 0);
    assert.equal(intOrDuration('5s', 1), 5 * S);
    assert.equal(intOrDuration('1m', 1), M);
    assert.equal(intOrDuration('-5', 7), 7, 'Atoi gives -5, which is refused, and "-5" has no unit');
    assert.equal(intOrDuration('-5s', 7), -5 * S, 'a negative duration is taken as it is');
    assert.equal(intOrDuration('five', 7), 7);
    assert.equal(intOrDuration(' 5', 7), 7, 'no trimming in Go');
    assert.equal(intOrDuration(undefined, 7), 7);
  });

  it('behind the watchdog: healthcheck_interval defaults to write_timeout, which defaults to 30 s', () => {
    const base = { upstream_url: 'http://127.0.0.1:3000' };
    assert.equal(readPlatform(base).drainMs, 30 * S);
    assert.equal(readPlatform({ ...base, write_timeout: '25s' }).drainMs, 25 * S);
    assert.equal(readPlatform({ ...base, write_timeout: '25s', healthcheck_interval: '5' }).drainMs, 5 * S);
    assert.equal(readPlatform({ ...base, write_timeout: '25s', healthcheck_interval: 'soon' }).drainMs, 25 * S);
    assert.equal(readPlatform({ ...base, healthcheck_interval: '0' }).drainMs, Infinity, "time.Tick(0) is nil: the watchdog never stops forwarding");
    assert.equal(readPlatform({ ...base, exec_timeout: '0' }).requestTimeoutMs, undefined, 'exec_timeout 0: no deadline');
    assert.equal(readPlatform({ ...base, exec_timeout: '20s' }).requestTimeoutMs, 20 * S);
  });

  it('listens on the upstream host and port; without a watchdog on PORT (trimmed) on every interface', () => {
    assert.deepEqual([readPlatform({ upstream_url: 'http://127.0.0.1:3000', PORT: '8080' }).host, readPlatform({ upstream_url: 'http://127.0.0.1:3000', PORT: '8080' }).port], ['127.0.0.1', 3000]);
    assert.equal(readPlatform({ http_upstream_url: 'http://[::1]:4000', upstream_url: 'http://127.0.0.1:3000' }).host, '::1', 'http_upstream_url wins, as in config.go');
    assert.deepEqual([readPlatform({ PORT: ' 3303 ' }).host, readPlatform({ PORT: ' 3303 ' }).port], [undefined, 3303]);
    assert.equal(readPlatform({ upstream_url: '', PORT: '8080' }).watchdog, false, 'an empty upstream_url: no watchdog (Knative runs the image without it)');
    assert.throws(() => readPlatform({ PORT: 'abc' }), /^Error: PORT: must be a whole number from 1 to 65535, got "abc"$/);
  });

  it('the lock file is $TMPDIR/.lock, and only when suppress_lock is exactly "true" or "1"', () => {
    const base = { upstream_url: 'http://127.0.0.1:3000', TMPDIR: '/scratch/' };
    assert.equal(readPlatform({ ...base, suppress_lock: 'true' }).lockFile, '/scratch/.lock');
    assert.equal(readPlatform({ ...base, suppress_lock: '1' }).lockFile, '/scratch/.lock');
    assert.equal(readPlatform({ ...base, suppress_lock: 'TRUE' }).lockFile, undefined);
    assert.equal(readPlatform({ upstream_url: 'http://127.0.0.1:3000', suppress_lock: 'true' }).lockFile, '/tmp/.lock');
    assert.equal(readPlatform({ suppress_lock: 'true' }).lockFile, undefined, 'no watchdog, no lock');
  });

  it("the shutdown: the function's work ends a second before the watchdog may exit, listening a second after", () => {
    const behind = readPlatform({ upstream_url: 'http://127.0.0.1:3000', healthcheck_interval: '5s', write_timeout: '25s' });
    assert.deepEqual(shutdownPlan(behind, 'SIGTERM'), { acceptMs: 6 * S, withinMs: 4 * S, finishMs: 25 * S });
    assert.deepEqual(shutdownPlan(behind, 'SIGINT'), { acceptMs: 0, withinMs: 20 * S, finishMs: 25 * S }, 'Ctrl-C is not the watchdog');
    assert.deepEqual(shutdownPlan(readPlatform({}), 'SIGTERM'), { acceptMs: 0, withinMs: 20 * S, finishMs: 25 * S }, "the answers get 5 s past the function's work, 5 s before the kubelet's SIGKILL at 30 s");
    const never = readPlatform({ upstream_url: 'http://127.0.0.1:3000', healthcheck_interval: '0' });
    assert.equal(shutdownPlan(never, 'SIGTERM').acceptMs, Infinity);
  });

  it('durations longer than a timer can wait are clamped to 2^31 - 1 ms, never turned into 1 ms', () => {
    const far = readPlatform({ upstream_url: 'http://127.0.0.1:3000', healthcheck_interval: '720h', write_timeout: '720h' });
    assert.deepEqual(shutdownPlan(far, 'SIGTERM'), { acceptMs: MAX_TIMER_MS, withinMs: MAX_TIMER_MS, finishMs: MAX_TIMER_MS });
    assert.equal(MAX_TIMER_MS, 2_147_483_647);
  });
});
