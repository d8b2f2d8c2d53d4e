// Bounded waits on numbers that change: packet counters, states.
//
// Every helper takes a timeout and fails with a message that says what it
// waited for and what it saw, so a test never hangs and a failure explains
// itself.

import { setTimeout as sleep } from 'node:timers/promises';

export { sleep };

const POLL_MS = 50;

/**
 * Resolves with the first truthy value of `check()` (which may be async and
 * may throw to fail fast); rejects after `timeoutMs`.
 */
export async function waitFor(check, { timeoutMs = 10_000, what = 'a condition', pollMs = POLL_MS } = {}) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) {
      return value;
    }
    if (performance.now() >= deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await sleep(pollMs);
  }
}

/**
 * Waits until `read()` has grown by at least `min` from its value now.
 * Resolves with { from, to }.
 */
export async function waitForGrowth(read, { min = 1, timeoutMs = 10_000, what = 'a counter' } = {}) {
  const from = read();
  let to = from;
  try {
    await waitFor(
      () => {
        to = read();
        return to - from >= min;
      },
      { timeoutMs, what: `${what} to grow by ${min}` },
    );
  } catch (err) {
    err.message += ` (from ${from}, now ${to})`;
    throw err;
  }
  return { from, to };
}

/**
 * Waits until `read()` has not changed for `quietMs` (packets already in
 * flight when a stream is cut still land).  Resolves with the settled value;
 * rejects if it keeps changing for `timeoutMs`.
 */
export async function waitUntilFlat(read, { quietMs = 1000, timeoutMs = 10_000, what = 'a counter' } = {}) {
  const deadline = performance.now() + timeoutMs;
  let value = read();
  let since = performance.now();
  for (;;) {
    await sleep(POLL_MS);
    const now = performance.now();
    const next = read();
    if (next !== value) {
      value = next;
      since = now;
    } else if (now - since >= quietMs) {
      return value;
    }
    if (now >= deadline) {
      throw new Error(`${what} kept changing for ${timeoutMs} ms (now ${value})`);
    }
  }
}

/**
 * Asserts that `read()` does not grow by more than `tolerance` during
 * `durationMs`.  Resolves with { from, to }; rejects at the first excess.
 */
export async function assertFlat(read, { durationMs = 1000, tolerance = 0, what = 'a counter' } = {}) {
  const from = read();
  const end = performance.now() + durationMs;
  while (performance.now() < end) {
    await sleep(POLL_MS);
    const to = read();
    if (to - from > tolerance) {
      throw new Error(`${what} grew from ${from} to ${to} within ${durationMs} ms; expected it flat`);
    }
  }
  return { from, to: read() };
}

/** Rejects if `promise` does not settle within `timeoutMs`. */
export async function withTimeout(promise, timeoutMs, what = 'an operation') {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${timeoutMs} ms: ${what}`)), timeoutMs);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
