// What the page tells the caches in front of the replicas (an edge cache, a CDN, the
// browser): it may be kept until the next image is due, to the second. The count comes
// from the image's download time on the volume and the TTL, not from the process, so
// every replica that serves an image says the same thing about it at the same moment.
//
// max-age, not s-maxage: s-maxage carries proxy-revalidate's meaning for shared caches
// (RFC 9111 5.2.2.10), which forbids them a stale answer (4.2.4), and so would cancel the
// stale-while-revalidate and stale-if-error windows stated here (RFC 5861). A browser may
// keep the page as long as a shared cache: it is the same page until the next image, and
// at that moment both ask again. No must-revalidate or proxy-revalidate, for the same
// reason. The function sends no Age: it is the origin. A cache that passes the page on
// adds its own Age, which counts against max-age, so the expiry stays the image's
// (a cache that does not, like nginx, must not pass max-age on: k8s-volumes/cache/).

export interface CachePolicy {
  /** Upper bound on max-age; undefined: until the next image is due; 0: caching off. */
  maxAgeSeconds: number | undefined;
  /** stale-while-revalidate; 0 leaves it out. */
  staleWhileRevalidateSeconds: number;
  /** stale-if-error; 0 leaves it out. */
  staleIfErrorSeconds: number;
}

/**
 * How long past its max-age a cache may give out the page while it asks a replica for the
 * next one. A replica answers at once, with the old page while its own refresh runs, so
 * this covers only the cache's round trip to a replica, and a pod's start when the
 * platform scaled to zero (its gateway or activator holds the request until a pod is
 * ready): seconds at worst. Past it, a reader of a cache that keeps to it waits for a
 * replica rather than see an older page.
 */
export const DEFAULT_STALE_WHILE_REVALIDATE_SECONDS = 10;

/**
 * How long past its max-age a cache may give out the page while no replica answers (a
 * rollout gone wrong, every pod crashing, a node lost): an hour-old photo, whose page says
 * when it was fetched, is better than an error page; an outage longer than an hour shows.
 */
export const DEFAULT_STALE_IF_ERROR_SECONDS = 3600;

export const DEFAULT_CACHE_POLICY: CachePolicy = {
  maxAgeSeconds: undefined,
  staleWhileRevalidateSeconds: DEFAULT_STALE_WHILE_REVALIDATE_SECONDS,
  staleIfErrorSeconds: DEFAULT_STALE_IF_ERROR_SECONDS,
};

/**
 * max-age once less than a whole second is left, and while the function serves the image
 * past its TTL (its own refresh running, or backing off from a failing source): ask again
 * in a second. Not 0: nginx does not store an answer with max-age=0
 * (src/http/ngx_http_upstream.c, ngx_http_upstream_process_cache_control: n == 0 is not
 * cacheable), so behind it every request would reach a replica until the new image lands,
 * and with a source down for minutes, all of them would.
 */
export const RECHECK_SECONDS = 1;

/**
 * The whole seconds the page may still be kept at `now`, as the key of the header set:
 * it changes at most once a second, and not at all once capped or past the TTL.
 */
export function secondsLeft(policy: CachePolicy, expiresAt: number, now: number): number {
  const left = Math.max(RECHECK_SECONDS, Math.floor((expiresAt - now) / 1000));
  return policy.maxAgeSeconds === undefined ? left : Math.min(left, policy.maxAgeSeconds);
}

/** The page's Cache-Control for `secondsLeft(...)`; never past the expiry by more than RECHECK_SECONDS. */
export function pageCacheControl(policy: CachePolicy, left: number): string {
  if (policy.maxAgeSeconds === 0) return 'no-cache';
  let value = `max-age=${left}`;
  if (policy.staleWhileRevalidateSeconds > 0) value += `, stale-while-revalidate=${policy.staleWhileRevalidateSeconds}`;
  if (policy.staleIfErrorSeconds > 0) value += `, stale-if-error=${policy.staleIfErrorSeconds}`;
  return value;
}

/**
 * The 503's: a shared cache may answer it while its Retry-After runs and not past it, so a
 * herd of readers while the source is down reaches a replica about once per Retry-After,
 * and a reader who comes back as told is not handed the same 503 again. One second less
 * than Retry-After: caches count in whole seconds, and nginx keeps a stored answer through
 * the second its lifetime ends in (src/http/ngx_http_file_cache.c: valid_sec = ngx_time()
 * + max-age, stale only once `valid_sec < now`), up to a second longer. Never a stale 503
 * (s-maxage forbids it, as above), and a browser keeps none (max-age=0).
 */
export function unavailableCacheControl(policy: CachePolicy, retryAfterSeconds: number): string {
  const shared = Math.min(retryAfterSeconds - 1, policy.maxAgeSeconds ?? Infinity);
  return shared < 1 ? 'no-store' : `max-age=0, s-maxage=${shared}`;
}
