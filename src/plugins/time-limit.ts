/**
 * @module time-limit
 * Runs an async step under a time limit with an AbortSignal, so a hung plugin costs one client
 * a denial, never the daemon.
 */

export class TimeLimitExceeded extends Error {
  constructor(readonly ms: number) {
    super(`did not finish within ${ms} ms`);
    this.name = 'TimeLimitExceeded';
  }
}

export async function withTimeout<T>(ms: number, step: (signal: AbortSignal) => T | Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new TimeLimitExceeded(ms);
      controller.abort(err);
      reject(err);
    }, ms);
  });
  try {
    // Promise.resolve().then also turns a synchronous throw into a rejection
    return await Promise.race([Promise.resolve().then(() => step(controller.signal)), expired]);
  } finally {
    clearTimeout(timer);
  }
}
