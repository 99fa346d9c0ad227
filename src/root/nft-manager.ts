/**
 * @module nft-manager
 * Applies the commands built by `nft.ts`: `nft -j -f FILE` with the JSON in a private scratch
 * file (argv only, never a shell), one process per transaction, every run logged with its
 * size and duration.
 * All nft work goes through one BatchQueue, so set changes under load share transactions and
 * nothing runs concurrently with a reconcile.
 */
import { BatchQueue } from './batch-queue.ts';
import { findTool, firstLines, run as realRun, type Runner } from './exec.ts';
import type { HostAddress } from './ip-address.ts';
import {
  CHAIN,
  configSets,
  ensureCommands,
  parseTableListing,
  replaceSetCommands,
  script,
  setName,
  setOpCommands,
  type NftCommand,
  type SetOp,
  type TableListing,
} from './nft.ts';
import { RootError, RootErrorCode } from './protocol.ts';
import { ScratchDir } from './scratch-dir.ts';
import type { RootConfig } from './root-config.ts';
import type { RootLog } from './root-log.ts';

export interface NftManagerOptions {
  readonly config: RootConfig;
  readonly log: RootLog;
  readonly runner?: Runner;
  /** How long a set change waits for others to share its transaction. */
  readonly windowMs?: number;
  readonly maxBatch?: number;
  readonly timeoutMs?: number;
  /** Where nft scripts are written; made on first use when not given. */
  readonly scratch?: ScratchDir;
}

export class NftManager {
  readonly #config: RootConfig;
  readonly #log: RootLog;
  readonly #run: Runner;
  readonly #timeoutMs: number;
  readonly #queue: BatchQueue<SetOp>;
  #scratch: ScratchDir | undefined;
  #ownScratch = false;
  /** nft processes started so far. */
  runs = 0;

  constructor(options: NftManagerOptions) {
    this.#config = options.config;
    this.#log = options.log;
    this.#run = options.runner ?? realRun;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    this.#scratch = options.scratch;
    this.#queue = new BatchQueue<SetOp>({
      windowMs: options.windowMs ?? 5,
      maxBatch: options.maxBatch ?? 5000,
      applyBatch: (ops) => this.#apply(setOpCommands(this.#config.table, ops), `set changes (${ops.length})`),
    });
  }

  /** Creates or repairs the table, its sets and chain; idempotent, keeps set elements. */
  ensure(): Promise<{ table: string; sets: string[] }> {
    return this.#queue.exclusive(async () => {
      await this.#apply(ensureCommands(this.#config, await this.#listTable()), 'ensure');
      return { table: this.#config.table, sets: configSets(this.#config).map((s) => s.name) };
    });
  }

  /** Adds or removes one address in a group's set (batched with others). */
  change(kind: SetOp['kind'], group: string, address: HostAddress): Promise<void> {
    return this.#queue.enqueue({ kind, set: setName(group, address.family), address: address.text });
  }

  /** The addresses in each group's sets. */
  list(): Promise<Record<string, string[]>> {
    return this.#queue.exclusive(async () => this.#groupElements(await this.#listTable()));
  }

  /**
   * Makes every group's sets hold exactly the desired addresses (a group not named holds none):
   * one transaction that flushes and refills each set that differs, repairing the table first
   * if something is missing.
   */
  reconcile(desired: ReadonlyMap<string, readonly HostAddress[]>): Promise<{ added: number; removed: number }> {
    return this.#queue.exclusive(async () => {
      const listing = await this.#listTable();
      const replace = new Map<string, string[]>();
      let added = 0;
      let removed = 0;
      for (const s of configSets(this.#config)) {
        const want = new Set((desired.get(s.group) ?? []).filter((a) => a.family === s.family).map((a) => a.text));
        const have = new Set(listing?.sets.get(s.name) ?? []);
        const plus = [...want].filter((a) => !have.has(a)).length;
        const minus = [...have].filter((a) => !want.has(a)).length;
        if (plus + minus > 0 || !listing?.sets.has(s.name)) replace.set(s.name, [...want]);
        added += plus;
        removed += minus;
      }
      const broken = !listing || configSets(this.#config).some((s) => !listing.sets.has(s.name)) || !listing.chains.has(CHAIN);
      const commands = [...(broken ? ensureCommands(this.#config, listing) : []), ...replaceSetCommands(this.#config.table, replace)];
      if (commands.length > 0) await this.#apply(commands, 'reconcile');
      return { added, removed };
    });
  }

  /** Removes the scratch directory this manager made. */
  close(): void {
    if (this.#ownScratch) this.#scratch?.close();
  }

  #groupElements(listing: TableListing | undefined): Record<string, string[]> {
    const out: Record<string, string[]> = {};
    for (const group of this.#config.groups.keys()) {
      out[group] = [4, 6].flatMap((f) => listing?.sets.get(setName(group, f as 4 | 6)) ?? []);
    }
    return out;
  }

  async #apply(commands: readonly NftCommand[], what: string): Promise<void> {
    const started = Date.now();
    this.runs += 1;
    const nft = findTool('nft');
    if (!this.#scratch) {
      this.#scratch = new ScratchDir();
      this.#ownScratch = true;
    }
    const result = await this.#scratch.withFile(JSON.stringify(script(commands)), (file) => this.#run(nft, ['-j', '-f', file], { timeoutMs: this.#timeoutMs }));
    const ok = result.code === 0;
    this.#log[ok ? 'info' : 'warn']({ what, commands: commands.length, ms: Date.now() - started, ok, run: this.runs }, 'nft run');
    if (!ok) throw new RootError(RootErrorCode.NFT_FAILED, `nft refused ${what}: ${firstLines(result.stderr) || `exit ${result.code ?? result.signal}`}`);
  }

  /** Our table as it is, or undefined when it does not exist. */
  async #listTable(): Promise<TableListing | undefined> {
    const result = await this.#run(findTool('nft'), ['-j', 'list', 'table', 'inet', this.#config.table], { timeoutMs: this.#timeoutMs });
    if (result.code !== 0) {
      if (/No such file or directory/.test(result.stderr)) return undefined;
      throw new RootError(RootErrorCode.NFT_FAILED, `nft could not list table inet ${this.#config.table}: ${firstLines(result.stderr)}`);
    }
    try {
      return parseTableListing(result.stdout, this.#config.table);
    } catch (err) {
      throw new RootError(RootErrorCode.NFT_FAILED, 'nft printed a listing that is not JSON', { cause: err });
    }
  }
}
