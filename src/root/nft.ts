/**
 * @module nft
 * Pure builders of libnftables JSON commands (`{"nftables":[...]}` for `nft -j -f`) and a
 * parser of `nft -j list table` output. Everything here is data in, data out: the table, sets
 * and rules come only from the root config; requests contribute parsed addresses only.
 *
 * The table (family inet) holds one IPv4 and one IPv6 address set per group and one chain
 * hooked on forward: traffic entering from a VPN interface is accepted when established or
 * related, or when a group's rule allows it (source in the group's set), and dropped otherwise.
 */
import { widthOf, type Family, type Network } from './ip-address.ts';
import type { AllowRule, RootConfig } from './root-config.ts';

export type NftCommand = Readonly<Record<string, unknown>>;
export interface NftScript {
  readonly nftables: readonly NftCommand[];
}

const FAMILY = 'inet';
export const CHAIN = 'forward';
/** The base chain we want; compared with what exists so a changed spec is recreated. */
const CHAIN_SPEC = { type: 'filter', hook: 'forward', prio: 0, policy: 'accept' } as const;

export function setName(group: string, family: Family): string {
  return `g_${group}_v${family}`;
}

/** Every set the config defines, with its group and family. */
export function configSets(config: RootConfig): { readonly name: string; readonly group: string; readonly family: Family }[] {
  return [...config.groups.keys()].flatMap((group) => ([4, 6] as const).map((family) => ({ name: setName(group, family), group, family })));
}

export function script(commands: readonly NftCommand[]): NftScript {
  return { nftables: commands };
}

const match = (left: unknown, right: unknown, op = '=='): NftCommand => ({ match: { op, left, right } });

function interfaceMatch(config: RootConfig): NftCommand {
  const [only] = config.vpnInterfaces;
  return match({ meta: { key: 'iifname' } }, config.vpnInterfaces.length === 1 ? only : { set: [...config.vpnInterfaces] });
}

function networkValue(n: Network): unknown {
  return n.prefix === widthOf(n.family) ? n.address : { prefix: { addr: n.address, len: n.prefix } };
}

/** The expressions after the interface match for one allow rule of one group. */
function allowExpressions(group: string, rule: AllowRule): NftCommand[] {
  const family = rule.to.family;
  const ipProto = family === 4 ? 'ip' : 'ip6';
  const expr: NftCommand[] = [
    match({ payload: { protocol: ipProto, field: 'saddr' } }, `@${setName(group, family)}`),
    match({ payload: { protocol: ipProto, field: 'daddr' } }, networkValue(rule.to)),
  ];
  if (rule.protocol === 'icmp') {
    expr.push(match({ meta: { key: 'l4proto' } }, family === 4 ? 'icmp' : 'ipv6-icmp'));
  } else if (rule.protocol !== 'any') {
    const ports = (rule.ports ?? []).map((p) => (typeof p === 'number' ? p : { range: [p[0], p[1]] }));
    const [onlyPort] = ports;
    if (ports.length === 0) expr.push(match({ meta: { key: 'l4proto' } }, rule.protocol));
    else
      expr.push(
        match({ payload: { protocol: rule.protocol, field: 'dport' } }, ports.length === 1 && typeof onlyPort === 'number' ? onlyPort : { set: ports }),
      );
  }
  return expr;
}

/** The rules of the forward chain, in order. */
export function chainRules(config: RootConfig): NftCommand[] {
  const rule = (expr: NftCommand[]): NftCommand => ({ add: { rule: { family: FAMILY, table: config.table, chain: CHAIN, expr } } });
  const iif = interfaceMatch(config);
  const rules = [rule([iif, match({ ct: { key: 'state' } }, ['established', 'related'], 'in'), { accept: null }])];
  for (const [group, g] of config.groups) {
    for (const allow of g.allow) rules.push(rule([iif, ...allowExpressions(group, allow), { accept: null }]));
  }
  rules.push(rule([iif, { drop: null }]));
  return rules;
}

/** What exists in our table, from `nft -j list table`. */
export interface TableListing {
  readonly sets: ReadonlyMap<string, readonly string[]>;
  readonly chains: ReadonlyMap<string, Readonly<Record<string, unknown>>>;
}

/**
 * The one transaction that makes the table match the config, keeping the elements of sets that
 * stay: the chain is flushed and refilled atomically, stale chains and sets are deleted.
 */
export function ensureCommands(config: RootConfig, existing?: TableListing): NftCommand[] {
  const table = { family: FAMILY, name: config.table };
  const ref = (name: string) => ({ family: FAMILY, table: config.table, name });
  const wanted = new Set(configSets(config).map((s) => s.name));
  const commands: NftCommand[] = [{ add: { table } }];
  const chains = existing?.chains ?? new Map<string, Readonly<Record<string, unknown>>>();
  // rules are removed before the sets they reference
  for (const name of chains.keys()) commands.push({ flush: { chain: ref(name) } });
  for (const [name, spec] of chains) {
    const same = name === CHAIN && Object.entries(CHAIN_SPEC).every(([k, v]) => spec[k] === v);
    if (!same) commands.push({ delete: { chain: ref(name) } });
  }
  for (const name of existing?.sets.keys() ?? []) if (!wanted.has(name)) commands.push({ delete: { set: ref(name) } });
  for (const s of configSets(config)) commands.push({ add: { set: { ...ref(s.name), type: s.family === 4 ? 'ipv4_addr' : 'ipv6_addr' } } });
  commands.push({ add: { chain: { ...ref(CHAIN), ...CHAIN_SPEC } } });
  commands.push(...chainRules(config));
  return commands;
}

type SetOpKind = 'add' | 'remove';
export interface SetOp {
  readonly kind: SetOpKind;
  readonly set: string;
  /** Canonical address text. */
  readonly address: string;
}

/**
 * Commands for a batch of set changes, in order. A removal is `add` then `delete`: deleting an
 * absent element fails the whole transaction, adding an existing one does not, so the pair
 * makes removal idempotent and one stale remove cannot fail a batch. Consecutive changes of
 * the same kind to the same set share one command.
 */
export function setOpCommands(table: string, ops: readonly SetOp[]): NftCommand[] {
  const runs: { kind: SetOpKind; set: string; elems: Set<string> }[] = [];
  for (const op of ops) {
    const last = runs.at(-1);
    if (last && last.kind === op.kind && last.set === op.set) last.elems.add(op.address);
    else runs.push({ kind: op.kind, set: op.set, elems: new Set([op.address]) });
  }
  return runs.flatMap((r) => {
    const element = { family: FAMILY, table, name: r.set, elem: [...r.elems] };
    return r.kind === 'add' ? [{ add: { element } }] : [{ add: { element } }, { delete: { element } }];
  });
}

/** Makes each listed set hold exactly `elements`, atomically: flush, then add. */
export function replaceSetCommands(table: string, sets: ReadonlyMap<string, readonly string[]>): NftCommand[] {
  return [...sets].flatMap(([name, elems]) => {
    const ref = { family: FAMILY, table, name };
    const flush: NftCommand = { flush: { set: ref } };
    return elems.length === 0 ? [flush] : [flush, { add: { element: { ...ref, elem: [...elems] } } }];
  });
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parses `nft -j list table inet NAME`; set elements come back as plain address strings. */
export function parseTableListing(json: string, table: string): TableListing {
  const doc: unknown = JSON.parse(json);
  const items = isRecord(doc) && Array.isArray(doc.nftables) ? doc.nftables : [];
  const sets = new Map<string, string[]>();
  const chains = new Map<string, Record<string, unknown>>();
  for (const item of items) {
    if (!isRecord(item)) continue;
    const set = item.set;
    if (isRecord(set) && set.table === table && set.family === FAMILY && typeof set.name === 'string') {
      const elem = Array.isArray(set.elem) ? set.elem : set.elem === undefined ? [] : [set.elem];
      sets.set(
        set.name,
        elem.filter((e): e is string => typeof e === 'string'),
      );
    }
    const chain = item.chain;
    if (isRecord(chain) && chain.table === table && chain.family === FAMILY && typeof chain.name === 'string') chains.set(chain.name, chain);
  }
  return { sets, chains };
}
