import assert from 'node:assert/strict';
import { test } from 'node:test';
import { BURST_WINDOW_MS, ConnectBurst } from './connect-burst.ts';

test('a lone connect is no burst; connects overlapping or within the window are', () => {
  let now = 0;
  const burst = new ConnectBurst(() => now);
  const lone = burst.arrived();
  now += 5;
  assert.equal(burst.answered(lone), false);

  // a second connect while the first is still being answered: both are a burst
  now += 10 * BURST_WINDOW_MS;
  const a = burst.arrived();
  now += 2;
  const b = burst.arrived();
  assert.equal(burst.answered(a), true);
  assert.equal(burst.answered(b), true);

  // answered at once, but the next one comes within the window: it is a burst, the first was not
  now += 10 * BURST_WINDOW_MS;
  const first = burst.arrived();
  assert.equal(burst.answered(first), false);
  now += BURST_WINDOW_MS / 2;
  const second = burst.arrived();
  assert.equal(burst.answered(second), true);

  // quiet again for longer than the window
  now += 2 * BURST_WINDOW_MS;
  const later = burst.arrived();
  now += 1;
  assert.equal(burst.answered(later), false);
});
