/**
 * @module sqlite-file
 * Opening the SQLite store's file. The store holds names, real addresses and times, so the
 * daemon creates it readable by its group at most (0640); SQLite gives the `-wal` and `-shm`
 * files it makes the database file's permissions, so they follow. Readers such as
 * `flexscript sessions`, often run as root, open it read-only and only if it exists: a file
 * created by root would be one the daemon cannot write.
 */
import Database from 'better-sqlite3';
import { chmodSync, closeSync, existsSync, openSync, statSync } from 'node:fs';
import { ErrorCode, FlexscriptError } from '../errors.ts';
import { MIGRATIONS } from './migrations.ts';

/** The most a new store file allows: owner read/write, group read. */
const STORE_FILE_MODE = 0o640;

/** For the daemon: creates the file (0640) when missing, and takes away others' access to an existing one it owns. */
export function openStoreFile(file: string): Database.Database {
  try {
    closeSync(openSync(file, 'wx', STORE_FILE_MODE));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    const st = statOrUndefined(f);
    if (st && st.uid === process.getuid?.() && (st.mode & 0o007) !== 0) chmodSync(f, st.mode & 0o770);
  }
  return new Database(file);
}

/** For readers: the store must exist and be of this version's schema; nothing is created or changed. */
export function openStoreFileReadOnly(file: string): Database.Database {
  const missing = () => new FlexscriptError(ErrorCode.STATE, `no store at ${file}`);
  if (!existsSync(file)) throw missing();
  let db: Database.Database;
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
  } catch (err) {
    if ((err as { code?: string }).code === 'SQLITE_CANTOPEN') throw missing();
    throw err;
  }
  try {
    let applied: Set<number>;
    try {
      applied = new Set((db.prepare('SELECT version FROM schema_migrations').all() as { version: number }[]).map((r) => r.version));
    } catch (err) {
      throw new FlexscriptError(ErrorCode.STATE, `${file} is not a flexscript store (${(err as Error).message})`);
    }
    const lacking = MIGRATIONS.find((m) => !applied.has(m.version));
    if (lacking)
      throw new FlexscriptError(ErrorCode.STATE, `${file} predates this flexscript (it lacks "${lacking.name}"); start the daemon once to update it`);
  } catch (err) {
    db.close();
    throw err;
  }
  return db;
}

function statOrUndefined(path: string) {
  try {
    return statSync(path);
  } catch {
    return undefined;
  }
}
