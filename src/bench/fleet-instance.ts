/**
 * @module fleet-instance
 * One simulated OpenVPN 2.6 server as its management interface shows it (`management PATH unix`
 * with `management-client-auth` and `management-hold`): it listens on its own unix socket,
 * greets with `>INFO:`, holds until released, and answers the commands a management client
 * sends (version, pid, status 3, load-stats, bytecount, hold, client-auth with its config block,
 * client-auth-nt, client-deny, client-pending-auth, client-kill) with OpenVPN's own wording
 * (manage.c). Its clients are announced as OpenVPN announces them: `>CLIENT:CONNECT` or
 * `>CLIENT:REAUTH` with the ENV block a real connect carries, then, once accepted,
 * `>CLIENT:ADDRESS` and `>CLIENT:ESTABLISHED`, and at the end `>CLIENT:DISCONNECT` with bytes
 * and duration. The time from a CONNECT to its answer is what the daemon took to decide.
 * No TLS, no tunnel: it lets one process stand in for many OpenVPN servers with many clients.
 */
import { chmodSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { LineSplitter } from '../util/line-splitter.ts';

/** What the client of a CONNECT learned: the daemon's answer and how long it took. */
export interface ConnectOutcome {
  readonly cid: number;
  readonly verdict: 'accept' | 'deny';
  /** CONNECT written to the answer read, in ms. */
  readonly ms: number;
  /** Config lines of a `client-auth` block. */
  readonly config: readonly string[];
  readonly reason?: string;
}

interface SimClient {
  readonly cid: number;
  kid: number;
  readonly commonName: string;
  readonly username: string;
  readonly realPort: number;
  readonly vpnAddress: string;
  readonly connectedAt: number;
  state: 'deciding' | 'live';
  bytesIn: number;
  bytesOut: number;
  /** Settles the CONNECT or REAUTH waiting for its answer. */
  waiting?: { readonly t0: number; readonly reauth: boolean; readonly settle: (o: ConnectOutcome) => void };
}

export interface FleetInstanceOptions {
  readonly name: string;
  readonly socket: string;
  /** Reported by `pid` (a real OpenVPN's pid; any number that stays the same). */
  readonly pid: number;
  /** The instance's client pool: the first two octets of a /16 (e.g. `10.160`). */
  readonly pool: string;
  /** Owner of the socket, so an unprivileged daemon can connect. */
  readonly owner?: { readonly uid: number; readonly gid: number };
}

const CRLF = '\r\n';
const TITLE = 'OpenVPN 2.6.14 x86_64-pc-linux-gnu [SSL (OpenSSL)] [LZO] [LZ4] [EPOLL] [PKCS11] [MH/PKTINFO] [AEAD] [DCO] (simulated fleet)';
/** The peer info and certificate lines every client sends (as in a real 2.6 client's connect). */
const PEER_INFO = [
  'IV_COMP_STUBv2=1',
  'IV_COMP_STUB=1',
  'IV_LZO_STUB=1',
  'IV_PROTO=990',
  'IV_CIPHERS=AES-256-GCM:AES-128-GCM:CHACHA20-POLY1305',
  'IV_NCP=2',
  'IV_MTU=1600',
  'IV_TCPNL=1',
  'IV_PLAT=linux',
  'IV_VER=2.6.14',
];

/** The first whitespace-separated word and the rest of a command line. */
function splitCommand(line: string): [string, string[]] {
  const words = line.trim().split(/\s+/);
  return [words[0] ?? '', words.slice(1)];
}

export class FleetInstance {
  readonly name: string;
  readonly #o: FleetInstanceOptions;
  readonly #server: Server;
  #conn: Socket | undefined;
  /** Lines of a `client-auth` block being read: its client and kid. */
  #block: { cid: number; kid: number; lines: string[] } | undefined;
  readonly #clients = new Map<number, SimClient>();
  #nextCid = 0;
  #nextHost = 2;
  #held = true;
  #released: (() => void) | undefined;
  readonly released: Promise<void>;
  /** Commands the daemon sent, by name: what it asked OpenVPN to do. */
  readonly commands = new Map<string, number>();
  /** Replies that were ERROR lines (a client-auth for a client that left, for example). */
  errors = 0;

  constructor(o: FleetInstanceOptions) {
    this.#o = o;
    this.name = o.name;
    this.released = new Promise((resolve) => (this.#released = resolve));
    this.#server = createServer((socket) => this.#attach(socket));
  }

  async listen(): Promise<void> {
    rmSync(this.#o.socket, { force: true });
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#o.socket, () => resolve());
    });
    // OpenVPN's management-client-user/group: only the daemon's user may connect
    chmodSync(this.#o.socket, 0o660);
    if (this.#o.owner) {
      const { chownSync } = await import('node:fs');
      chownSync(this.#o.socket, this.#o.owner.uid, this.#o.owner.gid);
    }
  }

  /** Connected clients (answered and established). */
  get live(): number {
    let n = 0;
    for (const c of this.#clients.values()) if (c.state === 'live') n++;
    return n;
  }

  /** The cids of connected clients, oldest first. */
  liveCids(): number[] {
    return [...this.#clients.values()].filter((c) => c.state === 'live').map((c) => c.cid);
  }

  /** A new client connects: resolves with the daemon's answer (rejects when no daemon is attached). */
  connect(commonName: string, username = ''): Promise<ConnectOutcome> {
    const conn = this.#conn;
    if (!conn || this.#held) return Promise.reject(new Error(`${this.name}: no management client attached`));
    const cid = this.#nextCid++;
    const host = this.#nextHost++;
    const client: SimClient = {
      cid,
      kid: 1,
      commonName,
      username,
      realPort: 1024 + (cid % 64_000),
      vpnAddress: `${this.#o.pool}.${(host >> 8) & 255}.${host & 255}`,
      connectedAt: Math.floor(Date.now() / 1000),
      state: 'deciding',
      bytesIn: 0,
      bytesOut: 0,
    };
    this.#clients.set(cid, client);
    return this.#ask(conn, client, false);
  }

  /** A connected client renegotiates its key: `>CLIENT:REAUTH` with a new kid. */
  reauth(cid: number): Promise<ConnectOutcome> {
    const client = this.#clients.get(cid);
    const conn = this.#conn;
    if (!conn || !client || client.state !== 'live') return Promise.reject(new Error(`${this.name}: no live client ${cid}`));
    client.kid++;
    return this.#ask(conn, client, true);
  }

  /** A connected client leaves: `>CLIENT:DISCONNECT` with its bytes and duration. Its common name, if it was connected. */
  disconnect(cid: number): string | undefined {
    const client = this.#clients.get(cid);
    if (client?.state !== 'live') return undefined;
    this.#clients.delete(cid);
    this.#conn?.write(this.#disconnectBlock(client));
    return client.commonName;
  }

  #ask(conn: Socket, client: SimClient, reauth: boolean): Promise<ConnectOutcome> {
    return new Promise<ConnectOutcome>((settle) => {
      client.waiting = { t0: performance.now(), reauth, settle };
      conn.write(this.#connectBlock(client, reauth));
    });
  }

  #env(lines: string[]): string {
    return `${lines.map((l) => `>CLIENT:ENV,${l}`).join(CRLF)}${CRLF}>CLIENT:ENV,END${CRLF}`;
  }

  #identity(c: SimClient): string[] {
    const serial = (c.cid * 2654435761) % 4294967296;
    return [
      `untrusted_port=${c.realPort}`,
      'untrusted_ip=127.0.0.1',
      `common_name=${c.commonName}`,
      `username=${c.username}`,
      ...PEER_INFO,
      `tls_serial_0=${serial}`,
      `tls_serial_hex_0=${serial
        .toString(16)
        .padStart(8, '0')
        .replace(/(..)(?!$)/g, '$1:')}`,
      `tls_id_0=CN=${c.commonName}`,
      `X509_0_CN=${c.commonName}`,
      'tls_id_1=CN=flexscript fleet CA',
      'X509_1_CN=flexscript fleet CA',
    ];
  }

  #server_env(): string[] {
    return [
      'proto_1=udp',
      'local_port_1=1194',
      `daemon_pid=${this.#o.pid}`,
      'daemon=0',
      'verb=3',
      `config=/etc/openvpn/server/${this.name}.conf`,
      `ifconfig_local=${this.#o.pool}.0.1`,
      'ifconfig_netmask=255.255.0.0',
      'script_context=init',
      'tun_mtu=1500',
      `dev=tun-${this.name}`,
      'dev_type=tun',
    ];
  }

  #connectBlock(c: SimClient, reauth: boolean): string {
    const head = `>CLIENT:${reauth ? 'REAUTH' : 'CONNECT'},${c.cid},${c.kid}${CRLF}`;
    const live = reauth ? [`ifconfig_pool_remote_ip=${c.vpnAddress}`, `time_unix=${c.connectedAt}`, 'trusted_ip=127.0.0.1', `trusted_port=${c.realPort}`] : [];
    return head + this.#env([`n_clients=${this.live}`, 'password=', ...this.#identity(c), ...live, ...this.#server_env()]);
  }

  /** The env of a connected client (ESTABLISHED, DISCONNECT), after the event's own variables. */
  #liveEnv(c: SimClient, own: readonly string[] = []): string {
    return this.#env([
      `n_clients=${this.live}`,
      ...own,
      'ifconfig_pool_netmask=255.255.0.0',
      `ifconfig_pool_remote_ip=${c.vpnAddress}`,
      `time_unix=${c.connectedAt}`,
      'trusted_ip=127.0.0.1',
      `trusted_port=${c.realPort}`,
      ...this.#identity(c),
      ...this.#server_env(),
    ]);
  }

  #establishedBlock(c: SimClient): string {
    return `>CLIENT:ESTABLISHED,${c.cid}${CRLF}${this.#liveEnv(c)}`;
  }

  #disconnectBlock(c: SimClient): string {
    // a session that was used: a few kilobytes each way, different per client
    c.bytesIn += 2000 + (c.cid % 997);
    c.bytesOut += 3000 + (c.cid % 991);
    const duration = Math.max(0, Math.floor(Date.now() / 1000) - c.connectedAt);
    return `>CLIENT:DISCONNECT,${c.cid}${CRLF}${this.#liveEnv(c, [`bytes_received=${c.bytesIn}`, `bytes_sent=${c.bytesOut}`, `time_duration=${duration}`])}`;
  }

  /** A client that never had a session leaves with an empty env. */
  #emptyDisconnect(socket: Socket, cid: number): void {
    this.#clients.delete(cid);
    socket.write(`>CLIENT:DISCONNECT,${cid}${CRLF}>CLIENT:ENV,END${CRLF}`);
  }

  /** OpenVPN takes one management client at a time; a second one waits until the first leaves. */
  #attach(socket: Socket): void {
    if (this.#conn) {
      socket.destroy();
      return;
    }
    this.#conn = socket;
    const splitter = new LineSplitter(64 * 1024);
    socket.on('data', (chunk: Buffer) => splitter.split(chunk, { line: (line) => this.#line(socket, line) }));
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.#conn === socket) this.#conn = undefined;
      this.#block = undefined;
    });
    socket.write(`>INFO:OpenVPN Management Interface Version 5 -- type 'help' for more info${CRLF}`);
    if (this.#held) socket.write(`>HOLD:Waiting for hold release:0${CRLF}`);
  }

  #reply(socket: Socket, text: string): void {
    if (text.startsWith('ERROR:')) this.errors++;
    socket.write(`${text}${CRLF}`);
  }

  #count(name: string): void {
    this.commands.set(name, (this.commands.get(name) ?? 0) + 1);
  }

  #line(socket: Socket, raw: string): void {
    const line = raw.replace(/\r$/, '');
    if (this.#block) {
      if (line === 'END') {
        const { cid, kid, lines } = this.#block;
        this.#block = undefined;
        this.#decided(socket, cid, kid, 'accept', lines);
      } else this.#block.lines.push(line);
      return;
    }
    if (line.trim() === '') return;
    const [name, args] = splitCommand(line);
    this.#count(name);
    switch (name) {
      case 'version':
        if (args.length > 0) return; // `version N` sets the client's version silently
        socket.write(`OpenVPN Version: ${TITLE}${CRLF}Management Version: 5${CRLF}END${CRLF}`);
        return;
      case 'pid':
        this.#reply(socket, `SUCCESS: pid=${this.#o.pid}`);
        return;
      case 'hold':
        if (args[0] === 'release') {
          const wasHeld = this.#held;
          this.#held = false;
          this.#reply(socket, 'SUCCESS: hold release succeeded');
          if (wasHeld) this.#released?.();
          return;
        }
        this.#reply(socket, args[0] === undefined ? `SUCCESS: hold=${this.#held ? 1 : 0}` : 'ERROR: bad hold command parameter');
        return;
      case 'status':
        socket.write(this.#status());
        return;
      case 'load-stats':
        this.#reply(socket, `SUCCESS: nclients=${this.live},bytesin=0,bytesout=0`);
        return;
      case 'bytecount':
        this.#reply(socket, 'SUCCESS: bytecount interval changed');
        return;
      case 'state':
      case 'log':
      case 'echo':
        this.#reply(socket, `SUCCESS: real-time ${name} notification set to ${args[0] === 'off' ? 'OFF' : 'ON'}`);
        return;
      case 'client-auth':
        this.#block = { cid: Number(args[0]), kid: Number(args[1]), lines: [] };
        return;
      case 'client-auth-nt':
        this.#decided(socket, Number(args[0]), Number(args[1]), 'accept', []);
        return;
      case 'client-deny': {
        const reason = /"((?:[^"\\]|\\.)*)"/.exec(line)?.[1];
        this.#decided(socket, Number(args[0]), Number(args[1]), 'deny', [], reason);
        return;
      }
      case 'client-pending-auth': {
        const c = this.#clients.get(Number(args[0]));
        this.#reply(
          socket,
          c ? 'SUCCESS: client-pending-auth command succeeded' : 'ERROR: client-pending-auth command failed. Extra parameter might be too long',
        );
        return;
      }
      case 'client-kill': {
        const c = this.#clients.get(Number(args[0]));
        if (!c) {
          this.#reply(socket, 'ERROR: client-kill command failed');
          return;
        }
        this.#reply(socket, 'SUCCESS: client-kill command succeeded');
        // OpenVPN tells the client and drops it; a connected one leaves with its env
        if (c.state === 'live') this.disconnect(c.cid);
        else this.#emptyDisconnect(socket, c.cid);
        return;
      }
      default:
        this.#reply(socket, "ERROR: unknown command, enter 'help' for more options");
        return;
    }
  }

  /** A client-auth (with its config lines), client-auth-nt or client-deny. */
  #decided(socket: Socket, cid: number, kid: number, verdict: 'accept' | 'deny', config: string[], reason?: string): void {
    const c = this.#clients.get(cid);
    const waiting = c?.waiting;
    if (!c || !waiting || c.kid !== kid) {
      this.#reply(socket, `ERROR: client-${verdict === 'accept' ? 'auth' : 'deny'} command failed`);
      return;
    }
    c.waiting = undefined;
    this.#reply(socket, `SUCCESS: client-${verdict === 'accept' ? 'auth' : 'deny'} command succeeded`);
    waiting.settle({ cid, verdict, ms: performance.now() - waiting.t0, config, ...(reason === undefined ? {} : { reason }) });
    if (waiting.reauth) {
      // a refused renegotiation ends the session
      if (verdict === 'deny') this.disconnect(cid);
      return;
    }
    if (verdict === 'deny') {
      this.#emptyDisconnect(socket, cid);
      return;
    }
    // the client asks for its push, gets its address, and is connected
    c.state = 'live';
    socket.write(`>CLIENT:ADDRESS,${cid},${c.vpnAddress},1${CRLF}${this.#establishedBlock(c)}`);
  }

  #status(): string {
    const now = Math.floor(Date.now() / 1000);
    const stamp = new Date(now * 1000).toISOString().replace('T', ' ').slice(0, 19);
    const rows = [
      `TITLE\t${TITLE}`,
      `TIME\t${stamp}\t${now}`,
      'HEADER\tCLIENT_LIST\tCommon Name\tReal Address\tVirtual Address\tVirtual IPv6 Address\tBytes Received\tBytes Sent\tConnected Since\tConnected Since (time_t)\tUsername\tClient ID\tPeer ID\tData Channel Cipher',
    ];
    const routes: string[] = [];
    for (const c of this.#clients.values()) {
      const since = new Date(c.connectedAt * 1000).toISOString().replace('T', ' ').slice(0, 19);
      const live = c.state === 'live';
      rows.push(
        `CLIENT_LIST\t${c.commonName}\t127.0.0.1:${c.realPort}\t${live ? c.vpnAddress : ''}\t\t${c.bytesIn}\t${c.bytesOut}\t${since}\t${c.connectedAt}\t${c.username || 'UNDEF'}\t${c.cid}\t${c.cid}\tAES-256-GCM`,
      );
      if (live) routes.push(`ROUTING_TABLE\t${c.vpnAddress}\t${c.commonName}\t127.0.0.1:${c.realPort}\t${since}\t${c.connectedAt}`);
    }
    rows.push('HEADER\tROUTING_TABLE\tVirtual Address\tCommon Name\tReal Address\tLast Ref\tLast Ref (time_t)', ...routes);
    rows.push('GLOBAL_STATS\tMax bcast/mcast queue length\t0', 'GLOBAL_STATS\tdco_enabled\t0', 'END');
    return `${rows.join(CRLF)}${CRLF}`;
  }

  /** Stops listening and drops the management client. */
  async close(): Promise<void> {
    this.#conn?.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
    rmSync(this.#o.socket, { force: true });
  }
}
