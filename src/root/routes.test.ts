import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseRootConfig } from './root-config.ts';
import { failedBatchLines, parseRouteListing, planRoutes, routeCommand } from './routes.ts';
import { parseRoute } from './validate.ts';

const config = parseRootConfig(
  'vpn-interfaces: [tun0]\nvpn-networks: [10.8.0.0/24]\nroutes: { proto: 250, allowed: [10.9.0.0/16, fd00:9::/48], tables: [254, 100] }\n',
  'root.yaml',
);
const route = (r: object) => parseRoute(r, config);

describe('routes', () => {
  it('builds ip -batch lines from typed values, always with our proto', () => {
    assert.equal(
      routeCommand('add', route({ network: '10.9.1.0/24', via: '10.8.0.2', dev: 'tun0' }), 250),
      'route add 10.9.1.0/24 via 10.8.0.2 dev tun0 proto 250 table 254',
    );
    assert.equal(
      routeCommand('replace', route({ network: 'fd00:9::/64', dev: 'tun0', table: 100 }), 250),
      'route replace fd00:9::/64 dev tun0 proto 250 table 100',
    );
    // a delete names our proto, so it can only remove a route we made
    assert.equal(routeCommand('del', route({ network: '10.9.1.0/24', via: '10.8.0.2', dev: 'tun0' }), 250), 'route del 10.9.1.0/24 proto 250 table 254');
  });

  it('parses ip -N -d -j output: host routes, IPv6, other tables, skips what it does not manage', () => {
    const json = JSON.stringify([
      { type: '1', dst: '10.9.1.0/24', gateway: '10.8.0.2', dev: 'tun0', table: '100', scope: '0', flags: [] },
      { type: '1', dst: '10.9.0.5', dev: 'tun0', table: '254', scope: '253', flags: [] },
      { type: '1', dst: 'fd00:9::/64', dev: 'tun0', table: '254', metric: 1024, flags: [] },
      { type: '1', dst: 'default', gateway: '10.8.0.1', dev: 'tun0', table: '254' },
      { type: '1', dst: '10.9.2.0/24', dev: 'tun0', table: '7' },
      { type: '2', dst: '10.9.3.1', dev: 'tun0', table: '255' },
    ]);
    const routes = parseRouteListing(json, config);
    assert.deepEqual(
      routes.map((r) => [r.network.text, r.via?.text, r.dev, r.table]),
      [
        ['10.9.1.0/24', '10.8.0.2', 'tun0', 100],
        ['10.9.0.5/32', undefined, 'tun0', 254],
        ['fd00:9::/64', undefined, 'tun0', 254],
      ],
    );
    assert.deepEqual(parseRouteListing('', config), []);
  });

  it('plans add, replace and remove so that exactly the desired routes remain', () => {
    const current = [
      route({ network: '10.9.1.0/24', via: '10.8.0.2', dev: 'tun0' }),
      route({ network: '10.9.2.0/24', dev: 'tun0' }),
      route({ network: '10.9.3.0/24', dev: 'tun0' }),
    ].map((r) => ({ ...r, dev: 'tun0' }));
    const desired = [
      route({ network: '10.9.1.0/24', via: '10.8.0.2', dev: 'tun0' }),
      route({ network: '10.9.2.0/24', via: '10.8.0.3', dev: 'tun0' }),
      route({ network: '10.9.4.0/24', dev: 'tun0' }),
    ];
    const plan = planRoutes(current, desired);
    assert.deepEqual(
      plan.add.map((r) => r.network.text),
      ['10.9.4.0/24'],
    );
    assert.deepEqual(
      plan.replace.map((r) => r.network.text),
      ['10.9.2.0/24'],
    );
    assert.deepEqual(
      plan.remove.map((r) => r.network.text),
      ['10.9.3.0/24'],
    );
  });

  it('finds the failed lines of ip -force -batch', () => {
    assert.deepEqual(failedBatchLines('RTNETLINK answers: File exists\nCommand failed -:2\nRTNETLINK answers: No such process\nCommand failed -:5\n'), [2, 5]);
  });
});
