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

/**
 * Runs `step` under a limit of `ms`. `step` may extend its own limit (a plugin that announced a
 * pending authentication may take as long as it announced).
 */
export async function withTimeout<T>(ms: number, step: (signal: AbortSignal, extend: (ms: number) => void) => T | Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  let limit = ms;
  let fail: (err: Error) => void = () => undefined;
  const arm = (after: number) => {
    clearTimeout(timer);
    timer = setTimeout(() => {
      const err = new TimeLimitExceeded(limit);
      controller.abort(err);
      fail(err);
    }, after);
  };
  const expired = new Promise<never>((_, reject) => (fail = reject));
  const started = performance.now();
  const extend = (more: number) => {
    const elapsed = performance.now() - started;
    if (more > limit - elapsed) {
      limit = Math.ceil(elapsed + more);
      arm(more);
    }
  };
  arm(ms);
  try {
    // Promise.resolve().then also turns a synchronous throw into a rejection
    return await Promise.race([Promise.resolve().then(() => step(controller.signal, extend)), expired]);
  } finally {
    clearTimeout(timer);
  }
}
