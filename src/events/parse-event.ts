/**
 * @module parse-event
 * Turns OpenVPN's environment and arguments into one typed, checked event. Pure: the same
 * function serves hook mode (env + argv) and management mode (the `>CLIENT:ENV` block).
 * Anything malformed throws EventParseError naming the field; nothing is half-applied.
 */
import { isIP } from 'node:net';
import { EventParseError } from '../errors.ts';
import type { AnyEvent, CrResponseEvent, EventMap, EventName, EventSource, TunnelDevice } from './event-map.ts';
import { base64Text, decodePassword } from './password-challenge.ts';

export interface RawEvent {
  readonly name: EventName;
  readonly instance: string;
  readonly source: EventSource;
  readonly env: Readonly<Record<string, string>>;
  readonly args?: readonly string[];
  /** Management REAUTH: the same client authenticating again. */
  readonly reauth?: boolean;
  /** A disconnect the daemon infers after the fact (see ClientDisconnectEvent.missed). */
  readonly missed?: boolean;
  /**
   * client-connect and client-disconnect: `env.username` was verified for this client (see
   * ClientIdentity). Without it the event has no username; the claim stays in `env`.
   */
  readonly usernameVerified?: boolean;
}

/** Longest value accepted from OpenVPN for a single field; real values are far shorter. */
const MAX_FIELD = 4096;

class Fields {
  constructor(
    private readonly event: EventName | 'client-crresponse',
    private readonly env: Readonly<Record<string, string>>,
  ) {}

  fail(field: string, problem: string): never {
    throw new EventParseError(this.event, field, problem);
  }

  text(name: string, value = this.env[name]): string | undefined {
    if (value === undefined || value === '') return undefined;
    if (value.length > MAX_FIELD) this.fail(name, `longer than ${MAX_FIELD} characters`);
    if (value.includes('\0')) this.fail(name, 'contains a NUL character');
    return value;
  }

  required(name: string, value = this.env[name]): string {
    return this.text(name, value) ?? this.fail(name, 'missing');
  }

  uint(name: string, value = this.env[name]): number | undefined {
    const v = this.text(name, value);
    if (v === undefined) return undefined;
    if (!/^\d{1,20}$/.test(v)) this.fail(name, `not a non-negative integer: ${JSON.stringify(v)}`);
    const n = Number(v);
    if (!Number.isSafeInteger(n)) this.fail(name, `out of range: ${v}`);
    return n;
  }

  port(name: string, value = this.env[name]): number | undefined {
    const n = this.uint(name, value);
    if (n !== undefined && n > 65535) this.fail(name, `not a port: ${n}`);
    return n;
  }

  ip(name: string, value = this.env[name], family?: 4 | 6): string | undefined {
    const v = this.text(name, value);
    if (v === undefined) return undefined;
    const found = isIP(v);
    if (found === 0 || (family && found !== family)) this.fail(name, `not an IPv${family ?? '4/6'} address: ${JSON.stringify(v)}`);
    return v;
  }
}

function realAddress(f: Fields, env: Readonly<Record<string, string>>) {
  // trusted_* is set once the TLS handshake authenticated the peer; untrusted_* before that.
  const address = f.ip('trusted_ip') ?? f.ip('trusted_ip6') ?? f.ip('untrusted_ip') ?? f.ip('untrusted_ip6');
  const port = env.trusted_port !== undefined ? f.port('trusted_port') : f.port('untrusted_port');
  return { realAddress: address, realPort: port };
}

/** Who a client is, where from, and its VPN addresses: common to connect and disconnect. */
function connectedClient(f: Fields, env: Readonly<Record<string, string>>, usernameVerified: boolean) {
  // checked either way; identity only when verified
  const username = f.text('username');
  return {
    commonName: f.required('common_name'),
    username: usernameVerified ? username : undefined,
    ...realAddress(f, env),
    vpnAddress: f.ip('ifconfig_pool_remote_ip', undefined, 4),
    vpnAddress6: f.ip('ifconfig_pool_remote_ip6', undefined, 6),
  };
}

function tunnelDevice(f: Fields, env: Readonly<Record<string, string>>, args: readonly string[]): TunnelDevice {
  // argv: dev tun_mtu 0 ifconfig_local ifconfig_remote|netmask init|restart
  const phase = args[5];
  if (phase !== undefined && phase !== 'init' && phase !== 'restart') f.fail('arg 6', `expected init or restart, got ${JSON.stringify(phase)}`);
  return {
    dev: f.required('dev', args[0] ?? env.dev),
    tunMtu: f.uint('tun_mtu', args[1] ?? env.tun_mtu),
    ifconfigLocal: f.text('ifconfig_local', args[3] ?? env.ifconfig_local),
    ifconfigRemoteOrNetmask: f.text('ifconfig_remote', args[4] ?? env.ifconfig_remote ?? env.ifconfig_netmask),
    phase,
  };
}

function peerInfo(env: Readonly<Record<string, string>>): Record<string, string> {
  const info: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (k.startsWith('IV_') || k.startsWith('UV_')) info[k] = v;
  return info;
}

const LEARN_OPS = new Set(['add', 'update', 'delete']);

/** Parses one event. Throws EventParseError on anything missing or malformed. */
export function parseEvent(raw: RawEvent): AnyEvent {
  const { name, env } = raw;
  const args = raw.args ?? [];
  const f = new Fields(name, env);
  const base = { name, instance: raw.instance, source: raw.source, env, args };
  switch (name) {
    case 'up':
    case 'down':
    case 'route-pre-down':
      return { ...base, name, ...tunnelDevice(f, env, args) } as EventMap['up' | 'down' | 'route-pre-down'];
    case 'route-up':
      return { ...base, name, dev: f.text('dev') };
    case 'ipchange': {
      // argv: address port (OpenVPN passes them as one "ip port" string in older versions)
      const parts = args.length === 1 ? (args[0] ?? '').split(' ') : args;
      return { ...base, name, address: f.ip('arg 1', parts[0]) ?? f.fail('arg 1', 'missing address'), port: f.port('arg 2', parts[1]) };
    }
    case 'tls-verify': {
      const depth = f.uint('arg 1 (depth)', args[0]) ?? f.fail('arg 1 (depth)', 'missing');
      const subject = f.required('arg 2 (subject)', args[1]);
      return { ...base, name, depth, subject, commonName: f.text(`X509_${depth}_CN`), ...realAddress(f, env) };
    }
    case 'user-pass-verify': {
      const username = f.text('username') ?? '';
      // a static-challenge or CRV1 answer: the password alone for password plugins, the response apart
      const { password, challengeResponse } = decodePassword(username, env.password ?? '');
      return {
        ...base,
        name,
        commonName: f.text('common_name') ?? '',
        username,
        password,
        ...(challengeResponse ? { challengeResponse } : {}),
        ...realAddress(f, env),
      };
    }
    case 'client-connect':
      return {
        ...base,
        name,
        ...connectedClient(f, env, raw.usernameVerified === true),
        vpnNetmask: f.text('ifconfig_pool_netmask'),
        time: f.uint('time_unix'),
        peerInfo: peerInfo(env),
        reauth: raw.reauth ?? false,
      };
    case 'client-disconnect':
      return {
        ...base,
        name,
        ...connectedClient(f, env, raw.usernameVerified === true),
        bytesReceived: f.uint('bytes_received') ?? 0,
        bytesSent: f.uint('bytes_sent') ?? 0,
        duration: f.uint('time_duration') ?? 0,
        missed: raw.missed ?? false,
      };
    case 'learn-address': {
      const operation = f.required('arg 1 (operation)', args[0]);
      if (!LEARN_OPS.has(operation)) f.fail('arg 1 (operation)', `expected add, update or delete, got ${JSON.stringify(operation)}`);
      const address = f.required('arg 2 (address)', args[1]);
      if (!/^[0-9A-Fa-f:./@]+$/.test(address)) f.fail('arg 2 (address)', `not an address: ${JSON.stringify(address)}`);
      return {
        ...base,
        name,
        operation: operation as 'add' | 'update' | 'delete',
        address,
        commonName: operation === 'delete' ? undefined : f.text('arg 3 (common name)', args[2] ?? env.common_name),
      };
    }
  }
}

/** The longest challenge answer taken from a client, base64 (real answers are a few characters). */
const MAX_CR_RESPONSE = 4096;

/**
 * Parses a client-crresponse: who answered, and the answer decoded as strictly as management
 * mode's `>CLIENT:CR_RESPONSE` (base64 of UTF-8 text without NUL). Throws EventParseError when
 * the client cannot be named; a bad answer is `response: undefined`, for the waiting plugin to deny.
 */
export function parseCrResponse(raw: {
  instance: string;
  source: EventSource;
  env: Readonly<Record<string, string>>;
  response: string | undefined;
}): CrResponseEvent {
  const f = new Fields('client-crresponse', raw.env);
  const encoded = raw.response?.trim();
  const response = encoded === undefined || encoded.length > MAX_CR_RESPONSE ? undefined : base64Text(encoded);
  return {
    name: 'client-crresponse',
    instance: raw.instance,
    source: raw.source,
    commonName: f.text('common_name') ?? '',
    ...realAddress(f, raw.env),
    response,
  };
}
