/**
 * The fleet benchmark is not a timed test: this runs it small (2 simulated servers, 300
 * sessions) against the real daemon, once with SQLite and once with PostgreSQL, and checks the
 * counts: every connect answered, every session recorded in the store, opened and closed with
 * its bytes, and the figures the report is made of.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { formatFleet, runFleet, type FleetResult } from '../src/bench/fleet.ts';
import { postgresBin } from '../src/lab/postgres.ts';

for (const store of ['sqlite', 'postgres'] as const) {
  test(`the fleet benchmark, ${store}: 2 servers, 300 sessions, reauth, storm and leave; nothing lost`, {
    skip: store === 'postgres' && !postgresBin() ? 'PostgreSQL is not installed' : false,
  }, async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'fxs-fleet-'));
    t.after(() => rmSync(dir, { recursive: true, force: true }));
    const json = join(dir, 'fleet.json');
    const lines: string[] = [];
    const result = await runFleet({
      instances: 2,
      sessions: 300,
      store,
      inFlight: 32,
      storm: 0.5,
      reauth: 0.1,
      json,
      out: (l) => lines.push(l),
      timeoutS: 120,
    });
    assert.deepEqual(JSON.parse(readFileSync(json, 'utf8')), JSON.parse(JSON.stringify(result)) as FleetResult);
    assert.deepEqual(result.errors, []);
    assert.deepEqual(
      result.phases.map((p) => [p.name, p.events, p.denied]),
      [
        ['ramp', 300, 0],
        ['reauth', 30, 0],
        ['storm', 150, 0],
        ['leave', 300, 0],
      ],
    );
    // every connect and renegotiation was answered and timed
    for (const p of result.phases.filter((x) => x.name !== 'leave')) {
      assert.equal(p.decisionMs?.count, p.events, p.name);
      assert.ok(p.decisionMs.p50 <= p.decisionMs.p99 && p.decisionMs.p99 <= p.decisionMs.max, p.name);
      assert.ok(p.perSecond > 0, p.name);
    }
    // a connect waits on the store at least once (its record, durable before the answer)
    const ramp = result.phases[0]!;
    assert.ok((ramp.storeRoundTrips ?? 0) > 0, 'the store was counted');
    if (store === 'postgres') {
      assert.ok((ramp.storeRoundTripsPerEvent ?? 0) >= 1, `${ramp.storeRoundTripsPerEvent} statements per connect`);
      assert.ok((ramp.transactionsPerEvent ?? 0) >= 1, `${ramp.transactionsPerEvent} transactions per connect`);
    }
    // 300 sessions, then 150 of them again after the storm: 450 records, all closed by their disconnect with bytes
    assert.deepEqual(result.checks, {
      acceptedConnects: 450,
      records: 450,
      open: 0,
      closedByDisconnect: 450,
      closedAsMissed: 0,
      closedAsKilled: 0,
      withBytes: 450,
    });
    assert.equal(result.checkpoints.length, 1);
    assert.equal(result.checkpoints[0]!.sessions, 300);
    assert.ok(result.checkpoints[0]!.rssMB > result.baselineRssMB * 0.5 && result.baselineRssMB > 0);
    assert.ok(result.checkpoints[0]!.idleRssMB > result.baselineRssMB * 0.5, 'the idle RSS is read at the checkpoint too');
    assert.match(formatFleet(result), /nothing lost$/);
    assert.ok(lines.some((l) => l.startsWith('fleet: 300 live: daemon RSS')));
  });
}
