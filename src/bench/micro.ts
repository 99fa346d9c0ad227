/**
 * @module micro
 * In-process microbenchmark: how many events per second the management codec decodes and the
 * plugin pipeline runs, with no OpenVPN and no I/O in the way.
 */
import { Writable } from 'node:stream';
import { join } from 'node:path';
import { parseConfig } from '../config/load-config.ts';
import type { ClientConnectEvent } from '../events/event-map.ts';
import { parseEvent } from '../events/parse-event.ts';
import { REPO } from '../lab/daemon-process.ts';
import { createLogger } from '../logger.ts';
import { ManagementDecoder } from '../openvpn-management/codec.ts';
import { offlineServices } from '../daemon/services.ts';
import { Pipeline } from '../pipeline/pipeline.ts';
import { loadPlugins } from '../plugins/load-plugins.ts';
import { managementKey } from '../core/client.ts';
import { SessionTable } from '../sessions/session-table.ts';

export interface MicroResult {
  /** `>CLIENT:CONNECT` blocks (with their ENV) decoded per second. */
  readonly codecConnectsPerSecond: number;
  /** client-connect events (parse + pipeline of the example plugins) per second. */
  readonly pipelineEventsPerSecond: number;
}

function connectBlock(cid: number): Buffer {
  const env = {
    common_name: `storm-${cid}`,
    username: '',
    untrusted_ip: '127.0.0.1',
    untrusted_port: String(20000 + cid),
    IV_VER: '2.6.14',
    IV_PLAT: 'linux',
    IV_PROTO: '990',
    IV_CIPHERS: 'AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305',
    tls_id_0: `CN=storm-${cid}`,
    X509_0_CN: `storm-${cid}`,
    tls_serial_0: '391697700780284669474800560683714161153572383769',
    tls_digest_sha256_0: '31:7a:6b:92:36:56:94:9a:f3:a7:8c:f2:e3:a0:4e:de:63:ff:a7:be:d2:d1:54:99:20:ac:26:9b:7d:27:6d:56',
    ifconfig_local: '10.8.0.1',
    ifconfig_netmask: '255.255.255.0',
    dev: 'tun0',
    config: '/etc/openvpn/server.conf',
  };
  const lines = [`>CLIENT:CONNECT,${cid},1`, ...Object.entries(env).map(([k, v]) => `>CLIENT:ENV,${k}=${v}`), '>CLIENT:ENV,END', ''];
  return Buffer.from(lines.join('\r\n'));
}

export async function runMicro(seconds = 2): Promise<MicroResult> {
  // codec: a stream of CONNECT blocks in 1 KiB reads, as a socket delivers them
  const stream = Buffer.concat(Array.from({ length: 1000 }, (_, i) => connectBlock(i)));
  const decoder = new ManagementDecoder();
  let decoded = 0;
  let end = performance.now() + seconds * 1000;
  const t0 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < stream.length; i += 1024) decoded += decoder.push(stream.subarray(i, i + 1024)).length;
  }
  const codecConnectsPerSecond = Math.round(decoded / ((performance.now() - t0) / 1000));

  // pipeline: the example plugins, logs discarded (the cost of a log line is I/O, not ours)
  const examples = join(REPO, 'examples/plugins');
  const yaml = `plugins:\n  - path: ${join(examples, 'deny-list.ts')}\n    options: { names: [x] }\n  - path: ${join(examples, 'office-routes.ts')}\n    options:\n      groups:\n        - { name: staff, members: ["*"], routes: [10.20.0.0/16], dns: [10.20.0.53] }\n`;
  const log = createLogger('info', new Writable({ write: (_c, _e, cb) => cb() }));
  const loaded = parseConfig(yaml, join(REPO, 'micro.yaml'));
  const pipeline = new Pipeline(await loadPlugins(loaded, log, offlineServices(loaded.config)), log);
  const sessions = new SessionTable();
  const env = { common_name: 'alice', trusted_ip: '127.0.0.1', trusted_port: '1194', ifconfig_pool_remote_ip: '10.8.0.6', IV_PLAT: 'linux' };
  let ran = 0;
  end = performance.now() + seconds * 1000;
  const t1 = performance.now();
  while (performance.now() < end) {
    for (let i = 0; i < 1000; i++) {
      const event = parseEvent({ name: 'client-connect', instance: 'micro', source: 'management', env }) as ClientConnectEvent;
      await pipeline.run(event, sessions.create(managementKey('micro', i), { instance: 'micro', commonName: event.commonName }));
      ran++;
    }
  }
  return { codecConnectsPerSecond, pipelineEventsPerSecond: Math.round(ran / ((performance.now() - t1) / 1000)) };
}
