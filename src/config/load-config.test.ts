import assert from 'node:assert/strict';
import { test } from 'node:test';
import { loadConfig, parseConfig } from './load-config.ts';
import { configProblems } from '../../test/support/config-problems.ts';

test('the example configuration is valid', async () => {
  const { config } = await loadConfig(new URL('../../examples/flexscript.yaml', import.meta.url).pathname);
  assert.equal(config.instance, 'vpn1');
  assert.equal(config.hook?.mode, 0o770);
  assert.equal(config.plugins.length, 3);
  assert.equal(config.plugins[1]?.timeout, 500);
});

test('the management-mode example is valid', async () => {
  const { config } = await loadConfig(new URL('../../examples/flexscript-management.yaml', import.meta.url).pathname);
  assert.deepEqual(
    config.management?.instances.map((i) => i.name),
    ['vpn1-udp', 'vpn1-tcp'],
  );
  assert.equal(config.management?.['pass-through']?.mode, 0o660);
});

test('a management instance needs a socket or a loopback port, and unique names', () => {
  assert.deepEqual(configProblems('management:\n  instances:\n    - name: a\n'), ['f.yaml:3: management.instances[0].socket: give socket, or host and port']);
  assert.deepEqual(configProblems('management:\n  instances:\n    - name: a\n      host: 10.0.0.1\n      port: 7505\n'), [
    'f.yaml:4: management.instances[0].host: management over TCP must stay on loopback',
  ]);
  assert.deepEqual(configProblems('management:\n  instances:\n    - { name: a, socket: /a }\n    - { name: a, socket: /b }\n'), [
    'f.yaml:4: management.instances[1].name: instance name a is used twice',
  ]);
});

test('unknown keys are errors with file, line and field', () => {
  assert.deepEqual(configProblems('instance: a\nhook:\n  dir: /run/x\n  colour: red\n'), ['f.yaml:4: hook.colour: unknown key']);
  assert.deepEqual(configProblems('plugins:\n  - path: a.ts\n    optoins: {}\n'), ['f.yaml:3: plugins[0].optoins: unknown key; did you mean options?']);
});

test('wrong values name their line and field', () => {
  assert.deepEqual(configProblems('hook:\n  dir: relative\n'), ['f.yaml:2: hook.dir: must be an absolute path']);
  assert.deepEqual(configProblems('hook:\n  dir: /x\n  mode: 0770\n'), ['f.yaml:3: hook.mode: write the mode as a quoted octal string, e.g. "0770"']);
  assert.deepEqual(configProblems('pipeline:\n  timeout: soon\n'), ['f.yaml:2: pipeline.timeout: expected a duration such as 500ms, 5s or 1m']);
  assert.deepEqual(configProblems('hook:\n  dir: /x\n  events:\n    client-conect: {}\n'), [
    'f.yaml:4: hook.events.client-conect: unknown key; did you mean client-connect?',
  ]);
  assert.deepEqual(configProblems('hook:\n  dir: /x\n  events:\n    tls-verify: { on-unreachable: maybe }\n'), [
    'f.yaml:4: hook.events.tls-verify.on-unreachable: Invalid option: expected one of "deny"|"allow"',
  ]);
});

test('a missing field is reported at its parent', () => {
  assert.deepEqual(configProblems('instance: a\nplugins:\n  - timeout: 1s\n'), [
    'f.yaml:3: plugins[0].path: give path (your plugin) or use (a built-in plugin)',
  ]);
});

test('YAML syntax errors and duplicate keys name the line', () => {
  assert.match(configProblems('instance: a\ninstance: b\n')[0]!, /^f\.yaml:2: \(top level\): YAML: Map keys must be unique/);
});

test('a duration without its unit is an error saying what to write, never taken as milliseconds', () => {
  assert.deepEqual(configProblems('pipeline:\n  timeout: 2\n'), ['f.yaml:2: pipeline.timeout: a duration needs its unit: write 2s for 2 seconds (or 2ms, 2m)']);
  assert.deepEqual(configProblems('hook:\n  dir: /x\n  timeout: "30"\n'), [
    'f.yaml:3: hook.timeout: a duration needs its unit: write 30s for 30 seconds (or 30ms, 30m)',
  ]);
  assert.deepEqual(configProblems('plugins:\n  - path: a.ts\n    timeout: 500\n'), [
    'f.yaml:3: plugins[0].timeout: a duration needs its unit: write 500s for 500 seconds (or 500ms, 500m)',
  ]);
  assert.deepEqual(configProblems('pipeline:\n  timeout: true\n'), ['f.yaml:2: pipeline.timeout: expected a duration such as 500ms, 5s or 1m']);
  assert.deepEqual(configProblems('pipeline:\n  timeout: 0s\n'), ['f.yaml:2: pipeline.timeout: must be between 1ms and 1h']);
});

test('an unknown key near a known one says which was meant', () => {
  assert.deepEqual(configProblems('hook:\n  dir: /x\n  status_file: /run/s\n'), ['f.yaml:3: hook.status_file: unknown key; did you mean status-file?']);
  assert.deepEqual(configProblems('pipeline:\n  timout: 2s\n'), ['f.yaml:2: pipeline.timout: unknown key; did you mean timeout?']);
  assert.deepEqual(configProblems('plugins:\n  - use: firewall\n    optoins: {}\n'), ['f.yaml:3: plugins[0].optoins: unknown key; did you mean options?']);
  assert.deepEqual(configProblems('management:\n  instances:\n    - { name: a, sokcet: /a }\n'), [
    'f.yaml:3: management.instances[0].sokcet: unknown key; did you mean socket?',
    'f.yaml:3: management.instances[0].socket: give socket, or host and port',
  ]);
  // nothing near: no guess
  assert.deepEqual(configProblems('instance: a\ncolour: red\n'), ['f.yaml:2: colour: unknown key']);
});

test('durations accept ms, s and m', () => {
  const { config } = parseConfig('pipeline:\n  timeout: 1m\n  setup-timeout: 250ms\n', 'f.yaml');
  assert.equal(config.pipeline.timeout, 60_000);
  assert.equal(config.pipeline['setup-timeout'], 250);
});
