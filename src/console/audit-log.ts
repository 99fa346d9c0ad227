/**
 * @module audit-log
 * The console's audit log: one JSON line per login, failed login and action, appended to a file
 * created with mode 0640. A line is written before the answer goes out; a log that cannot be
 * written fails the action rather than letting it go unrecorded.
 */
import { appendFile, open } from 'node:fs/promises';

export interface AuditEntry {
  readonly action: 'login' | 'login-failed' | 'login-locked' | 'logout' | 'kill' | 'kill-failed' | 'refused';
  /** The console user (as typed, for failed logins). */
  readonly user?: string;
  readonly role?: string;
  /** The client address of the request (through trusted proxies). */
  readonly from: string;
  readonly [detail: string]: unknown;
}

export class AuditLog {
  private constructor(private readonly file: string) {}

  /** Creates the file (0640) if missing, so a wrong path fails at start. */
  static async open(file: string): Promise<AuditLog> {
    const handle = await open(file, 'a', 0o640);
    await handle.close();
    return new AuditLog(file);
  }

  async write(entry: AuditEntry): Promise<void> {
    await appendFile(this.file, `${JSON.stringify({ time: new Date().toISOString(), ...entry })}\n`, { mode: 0o640 });
  }
}
