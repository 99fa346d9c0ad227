/**
 * @module reauth-records
 * What a re-authentication of a live client needs from its web login: who it is and the
 * refresh token, per connection (instance, real address and port, common name). Forgotten at
 * the client's disconnect; in memory only (a restarted daemon asks for a browser login again).
 */

export interface ReauthRecord {
  readonly username: string;
  readonly groups: readonly string[];
  readonly refreshToken?: string;
}

interface Connection {
  readonly instance: string;
  readonly commonName: string;
  readonly realAddress?: string;
  readonly realPort?: number;
}

const connectionOf = (c: Connection): string | undefined =>
  c.realAddress === undefined || c.realPort === undefined ? undefined : [c.instance, c.realAddress, c.realPort, c.commonName].join('\0');

/** Live clients at most; the oldest goes first. */
const MAX_RECORDS = 100_000;

export class ReauthRecords {
  readonly #records = new Map<string, ReauthRecord>();

  get(c: Connection): ReauthRecord | undefined {
    const key = connectionOf(c);
    return key === undefined ? undefined : this.#records.get(key);
  }

  set(c: Connection, record: ReauthRecord): void {
    const key = connectionOf(c);
    if (key === undefined) return;
    this.#records.delete(key);
    this.#records.set(key, record);
    if (this.#records.size > MAX_RECORDS) this.#records.delete(this.#records.keys().next().value!);
  }

  delete(c: Connection): void {
    const key = connectionOf(c);
    if (key !== undefined) this.#records.delete(key);
  }

  clear(): void {
    this.#records.clear();
  }
}
