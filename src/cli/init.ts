/**
 * @module init
 * `flexscript init --dir DIR`: a commented starting setup for an existing OpenVPN server: the
 * config, editable copies of the example plugins, a systemd unit for the daemon, the lines
 * to add to OpenVPN's config, a sysusers.d file for the daemon's user when the system lacks it,
 * and (hook mode) a tmpfiles.d file for the files OpenVPN and the daemon share and a drop-in for
 * OpenVPN's unit. Which user is OpenVPN's and which the daemon's is decided once (init-users.ts)
 * and every file says the same. Never overwrites a file without --force.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { REPO } from '../lab/daemon-process.ts';
import { parseConfig } from '../config/load-config.ts';
import { hookServerLines } from './openvpn-config.ts';
import { checkSudoers, DEFAULT_ROOT_CONFIG, rootCommand, sudoersDropIn } from '../root/sudoers.ts';
import { managementModeLines } from '../sources/management/openvpn-lines.ts';
import { HOOK_NPROC } from './check-units.ts';
import { EXIT } from './exit-codes.ts';
import { type Accounts, accountsSummary, accountWarnings, type InitMode, resolveAccounts, sysusersLines, type UserFlags } from './init-users.ts';

export interface InitOptions extends UserFlags {
  readonly dir: string;
  readonly mode: InitMode;
  readonly force: boolean;
}

/** What the files are written from: the options with both accounts decided. */
interface Setup {
  readonly dir: string;
  readonly mode: InitMode;
  readonly accounts: Accounts;
}

/** systemd-sysusers lines for the daemon's user (and group), or undefined when the system has them. */
function sysusers(o: Setup, path: string): string | undefined {
  const lines = sysusersLines(o.accounts.daemon);
  if (lines.length === 0) return undefined;
  return `# systemd-sysusers: the daemon's user${o.mode === 'hook' ? " (hook mode: OpenVPN's user too)" : ''}. Install:
#   install -D -o root -g root -m 0644 ${path} /etc/sysusers.d/flexscript.conf
#   systemd-sysusers /etc/sysusers.d/flexscript.conf
${lines.join('\n')}
`;
}

/**
 * Hook mode: a drop-in for OpenVPN's unit. Debian's openvpn-server@.service (and openvpn@.service)
 * set LimitNPROC=10; RLIMIT_NPROC counts every process and thread of OpenVPN's user, the daemon's
 * included, so with the daemon running OpenVPN could not fork a single hook.
 */
function openvpnDropIn(path: string): string {
  return `# drop-in for Debian's openvpn-server@.service (hook mode). Install:
#   install -D -o root -g root -m 0644 ${path} /etc/systemd/system/openvpn-server@.service.d/flexscript.conf
#   systemctl daemon-reload && systemctl restart openvpn-server@NAME
# (for openvpn@NAME units: the same file in /etc/systemd/system/openvpn@.service.d/)
[Service]
# OpenVPN still starts as root (for its tun device) and drops to its user and group lines itself.
# The unit sets LimitNPROC=10. RLIMIT_NPROC counts every process and thread of OpenVPN's user,
# and in hook mode the daemon (a Node.js process with more than ten threads) runs as that user:
# OpenVPN could not fork a single hook, and exits at the first client's connect.
LimitNPROC=${HOOK_NPROC}
# Nothing else is needed: the unit's ProtectSystem=true leaves /run writable (the hook directory
# /run/flexscript/vpn, OpenVPN's tmp-dir ${OPENVPN_TMP_DIR}, its status file ${STATUS_FILE}),
# and its PrivateTmp=true hides only /tmp and /var/tmp, which the setup does not use.
`;
}

const PLUGINS = ['deny-list.ts', 'office-routes.ts', 'session-log.ts'];

/**
 * Hook mode: OpenVPN's status file. OpenVPN opens it as root (before its privilege drop) with
 * O_CREAT|O_TRUNC and follows links, so it lives in a directory only root may change; the file
 * is root's and readable by OpenVPN's group, which the daemon runs in.
 */
export const STATUS_DIR = '/run/openvpn-flexscript';
export const STATUS_FILE = `${STATUS_DIR}/status.txt`;
/** Hook mode: OpenVPN's tmp-dir, inside the daemon's runtime directory (not /tmp: PrivateTmp). */
export const OPENVPN_TMP_DIR = '/run/flexscript/openvpn-tmp';

/** systemd-tmpfiles lines for hook mode: made at boot, so OpenVPN can start before the daemon. */
function tmpfiles(o: Setup, path: string): string {
  const { openvpn, daemon } = o.accounts;
  return `# systemd-tmpfiles: the files OpenVPN and the daemon share in hook mode. Install:
#   install -o root -g root -m 0644 ${path} /etc/tmpfiles.d/flexscript.conf
#   systemd-tmpfiles --create /etc/tmpfiles.d/flexscript.conf
#
# OpenVPN's status file (status-version 3): a restarted daemon reads the live clients from it,
# so their firewall set elements and routes are kept. OpenVPN opens it as root and follows
# links: only root may change its directory. Readable by OpenVPN's group (the daemon's).
d ${STATUS_DIR} 0750 root ${openvpn.group} -
f ${STATUS_FILE} 0640 root ${openvpn.group} -
# The daemon's runtime directory (hook.dir, sockets), the daemon's (${daemon.user}:${daemon.group}), and
# OpenVPN's tmp-dir, where OpenVPN (as ${openvpn.user}) creates the deferral files the daemon answers
# in. The daemon's unit makes them too (RuntimeDirectory=); here they exist from boot, even when
# OpenVPN starts first.
d /run/flexscript 0770 ${daemon.user} ${daemon.group} -
d ${OPENVPN_TMP_DIR} 0770 ${openvpn.user} ${openvpn.group} -
`;
}

function unit(o: Setup, config: string): string {
  const ids = o.accounts.daemon;
  return `# systemd unit for the openvpn-flexscript daemon. Install:
#   cp ${join(o.dir, 'flexscriptd.service')} /etc/systemd/system/ && systemctl daemon-reload
#   systemctl enable --now flexscriptd
[Unit]
Description=openvpn-flexscript daemon (OpenVPN event plugins)
Before=openvpn-server@.service openvpn.service
After=network.target

[Service]
Type=simple
# ${o.mode === 'hook' ? "hook mode: OpenVPN's `user` and `group`, whose deferral files are private to that user" : "management mode: its own user (sysusers-flexscript.conf), OpenVPN's management-client-user"}
# systemd makes the folders named below (runtime, state, logs) this user's and group's;
# sudoers-flexscript lets this user, and no other, start the root stage
User=${ids.user}
Group=${ids.group}
ExecStart=${process.execPath} ${join(REPO, 'bin/flexscript.js')} run --config ${config}
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1
${
  o.mode === 'hook'
    ? `# /run/flexscript: the hook directory (hook.dir), shared with OpenVPN's group, and the sockets;
# /run/flexscript/openvpn-tmp: OpenVPN's tmp-dir (hook.tmp-dir), where OpenVPN creates the
# deferral files the daemon answers in. Writable here although ProtectSystem=strict: systemd
# makes RuntimeDirectory= paths writable.
RuntimeDirectory=flexscript flexscript/openvpn-tmp
RuntimeDirectoryMode=0770`
    : `# /run/flexscript: the pass-through and control sockets
RuntimeDirectory=flexscript
RuntimeDirectoryMode=0755`
}
RuntimeDirectoryPreserve=yes
# /var/lib/flexscript: the accounting store; /var/log/flexscript: the session log
StateDirectory=flexscript
LogsDirectory=flexscript
ProtectSystem=strict
ProtectHome=yes
# the daemon shares no file with OpenVPN through /tmp${o.mode === 'hook' ? " (OpenVPN's tmp-dir is above)" : ''}
PrivateTmp=yes
# what it writes (session log, accounting store) is not for every local user: names, addresses
UMask=0027

[Install]
WantedBy=multi-user.target
`;
}

function config(o: Setup): string {
  const { openvpn, daemon } = o.accounts;
  const source =
    o.mode === 'hook'
      ? `# Hook mode: OpenVPN runs the small /bin/sh hook client for each event.
hook:
  # shared with OpenVPN: spool, ring pipe, reply pipes, pid file
  dir: /run/flexscript/vpn
  # OpenVPN's group (its group line): only OpenVPN's hooks and the daemon, which runs as
  # OpenVPN's user ${openvpn.user} in hook mode, may enter the directory
  group: ${openvpn.group}
  mode: "0770"
  # how long tls-verify (and events with wait: true) wait for an answer
  timeout: 5s
  # OpenVPN's status file (status-version 3): when the daemon restarts (an upgrade, a crash and
  # systemd's Restart=) it reads the live clients from it, so their firewall set elements,
  # routes and session counts are kept. Without it a restart cuts every client off. The
  # tmpfiles.d drop-in next to this file creates it (root's, readable by ${openvpn.group}).
  status-file: ${STATUS_FILE}
  # OpenVPN's tmp-dir: the deferral files OpenVPN creates and the daemon answers in. Not /tmp:
  # systemd gives OpenVPN (Debian's openvpn-server@ unit) and the daemon each their own /tmp.
  tmp-dir: ${OPENVPN_TMP_DIR}
  # learn-address: connect drops OpenVPN's learn-address hook (one hook per connect instead
  # of two, faster in a reconnect storm): the daemon reports each accepted client's addresses.
  # Keep the default (hook) for iroute networks, address updates or a learn-address veto.
  # learn-address: connect`
      : `# Management mode: the daemon answers every client over OpenVPN's management interface.
management:
  instances:
    - name: vpn
      socket: /run/openvpn/vpn.sock
  pass-through:
    # for flexscript status / flexscript kill: the daemon's group (${daemon.group}) and root
    socket: /run/flexscript/vpn.sock
    mode: "0660"
    allow-kill: true
  # connects in a burst (a reconnect storm) are nudged so OpenVPN serves them at once instead
  # of at its next timer; those clients log an AUTH_PENDING notice. true: always; false: never
  fast-push: auto`;
  return `# openvpn-flexscript configuration, written by flexscript init.
# Check it:  flexscript check --config ${join(o.dir, 'flexscript.yaml')}
# Unknown keys are errors. Durations: 500ms, 5s, 1m.

# names this OpenVPN server in logs and records
instance: vpn

log:
  level: info
  # auto: readable text in the journal (journalctl -p warning filters by level), JSON elsewhere
  format: auto

${source}

pipeline:
  # time limit of one plugin call; a plugin that exceeds it denies that client only
  timeout: 2s

# flexscript status (live clients) asks the daemon here; read-only. The socket is the daemon's,
# group ${daemon.group}: root and members of that group may ask
control:
  socket: /run/flexscript/control.sock
  mode: "0660"

# every session and denial, durable before OpenVPN is answered (flexscript sessions reads it);
# several servers share one PostgreSQL store instead: postgres: { host, database, user, password-file }
store:
  sqlite: /var/lib/flexscript/accounting.db

# Prometheus metrics on loopback:
# metrics:
#   port: 9477

# Plugins run in this order; any deny wins. Paths are relative to this file; edit the copies
# in plugins/ or add your own. As written, no plugin changes what a client gets: the examples
# below take effect only once you fill them in.
plugins:
  # common names refused at connect; none yet
  - path: plugins/deny-list.ts
    options:
      names: []
  # routes and DNS pushed by group. No group yet, so nothing is pushed; to push a route to
  # every client, replace "groups: []" with the commented lines below it
  - path: plugins/office-routes.ts
    options:
      groups: []
      # groups:
      #   - name: everyone
      #     members: ["*"]
      #     routes: [10.20.0.0/16]
  - path: plugins/session-log.ts
    options:
      file: /var/log/flexscript/sessions.jsonl
  # at most this many concurrent sessions per user (across every server sharing the store)
  # - use: session-limit
  #   options: { max: 3, on-exceed: disconnect-oldest }
  - use: accounting
  # Per-group firewall and routes behind clients need the root stage: install root.yaml and the
  # sudoers drop-in written next to this file (see their first lines), then uncomment these and
  # the root: section below.
  # - use: firewall
  #   options:
  #     groups:
  #       staff: { common-names: [alice], patterns: ["*.staff"] }
  #       everyone: {}
  #     default-group: everyone
  # - use: routes
  #   options:
  #     clients:
  #       branch-office: [192.168.10.0/24]

# root:
#   config: ${DEFAULT_ROOT_CONFIG}
`;
}

/**
 * OpenVPN's user and group, as its config must say them. Named, not added: appended lines would
 * silently replace a user the config names already (OpenVPN takes the last); `check` reads the
 * config's lines and holds them to the daemon's unit.
 */
function openvpnAccountLines(o: Setup): string[] {
  const { openvpn } = o.accounts;
  return [
    `# OpenVPN drops root to this user and group after start-up${o.mode === 'hook' ? ', and its hooks and the daemon run as them' : '; the daemon has its own user'}`,
    '# (flexscript init --openvpn-user/--openvpn-group). Your config must say so; add the lines it lacks:',
    `#   user ${openvpn.user}`,
    `#   group ${openvpn.group}`,
  ];
}

export async function initCommand(options: InitOptions): Promise<number> {
  let accounts: Accounts;
  try {
    accounts = resolveAccounts(options.mode, options);
  } catch (err) {
    process.stderr.write(`flexscript init: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.usage;
  }
  const dir = resolve(options.dir);
  const o: Setup = { dir, mode: options.mode, accounts };
  const files = new Map<string, string>();
  const configPath = join(dir, 'flexscript.yaml');
  const yaml = config(o);
  files.set(configPath, yaml);
  files.set(join(dir, 'flexscriptd.service'), unit(o, configPath));
  const parsed = parseConfig(yaml, configPath).config;
  const lines = [
    ...openvpnAccountLines(o),
    ...(o.mode === 'hook'
      ? hookServerLines(parsed.hook!, ['client-connect', 'client-disconnect', 'learn-address'])
      : managementModeLines(parsed.management!.instances[0]!, { checksPasswords: false, daemonUser: accounts.daemon.user })),
  ];
  files.set(
    join(dir, 'root.yaml'),
    (await readFile(join(REPO, 'examples/root.yaml'), 'utf8')).replace('root.yaml /etc/flexscript', `${join(dir, 'root.yaml')} /etc/flexscript`),
  );
  const sudoers = join(dir, 'sudoers-flexscript');
  files.set(
    sudoers,
    `${sudoersDropIn({ user: accounts.daemon.user, command: rootCommand(DEFAULT_ROOT_CONFIG) })}# install: install -o root -g root -m 0440 ${sudoers} /etc/sudoers.d/flexscript\n`,
  );
  files.set(join(dir, 'openvpn-server.conf.add'), `# add these lines to OpenVPN's server config\n${lines.join('\n')}\n`);
  const tmpfilesPath = join(dir, 'tmpfiles-flexscript.conf');
  if (o.mode === 'hook') files.set(tmpfilesPath, tmpfiles(o, tmpfilesPath));
  const dropInPath = join(dir, 'openvpn-server@.service.d', 'flexscript.conf');
  if (o.mode === 'hook') files.set(dropInPath, openvpnDropIn(dropInPath));
  const sysusersPath = join(dir, 'sysusers-flexscript.conf');
  const users = sysusers(o, sysusersPath);
  if (users) files.set(sysusersPath, users);
  for (const p of PLUGINS) {
    // the copies take their types from the installed package (type imports vanish at run time)
    const text = await readFile(join(REPO, 'examples/plugins', p), 'utf8');
    files.set(join(dir, 'plugins', p), text.replace("from '../../src/index.ts'", "from 'openvpn-flexscript'"));
  }
  // marks the plugins as ES modules
  files.set(join(dir, 'plugins', 'package.json'), '{ "type": "module" }\n');
  const existing = [...files.keys()].filter((f) => existsSync(f));
  if (existing.length > 0 && !options.force) {
    process.stderr.write(`flexscript init: these files exist (nothing was written; --force overwrites them):\n${existing.map((f) => `  ${f}`).join('\n')}\n`);
    return EXIT.failure;
  }
  await mkdir(join(dir, 'plugins'), { recursive: true });
  if (o.mode === 'hook') await mkdir(dirname(dropInPath), { recursive: true });
  for (const [path, text] of files) await writeFile(path, text, { mode: path === sudoers ? 0o440 : 0o644 });
  // a broken drop-in in /etc/sudoers.d breaks sudo for everyone: check it before anyone installs it
  try {
    await checkSudoers(sudoers);
  } catch (err) {
    process.stderr.write(`flexscript init: ${err instanceof Error ? err.message : String(err)}\n`);
    return EXIT.failure;
  }
  const steps = [
    `edit ${configPath}, then: flexscript check --config ${configPath}`,
    `add ${join(dir, 'openvpn-server.conf.add')} to OpenVPN's server config, which must also say user ${accounts.openvpn.user} and group ${accounts.openvpn.group}`,
    ...(users ? [`install ${sysusersPath} (see its first lines): creates the daemon's user ${accounts.daemon.user}`] : []),
    ...(o.mode === 'hook'
      ? [
          `install ${tmpfilesPath} (see its first lines): OpenVPN's status file and tmp-dir`,
          `install ${dropInPath} (see its first lines): OpenVPN's unit may then start hooks`,
        ]
      : []),
    `install ${join(dir, 'flexscriptd.service')} (see its first lines), restart OpenVPN, then check the installed units:\n     flexscript check --config ${configPath} --openvpn-config /etc/openvpn/server/NAME.conf`,
    `for the firewall and routes plugins: install ${join(dir, 'root.yaml')} as ${DEFAULT_ROOT_CONFIG} and\n     ${sudoers} as /etc/sudoers.d/flexscript (both owned by root; see their first lines)`,
  ];
  for (const w of accountWarnings(o.mode, accounts)) process.stderr.write(`flexscript init: warning: ${w}\n`);
  process.stdout.write(
    [
      `wrote ${dir}:`,
      ...[...files.keys()].map((f) => `  ${f}`),
      '',
      'users:',
      ...accountsSummary(o.mode, accounts).map((l) => `  ${l}`),
      '',
      'next:',
      ...steps.map((s, i) => `  ${i + 1}. ${s}`),
      '',
    ].join('\n'),
  );
  return 0;
}
