/**
 * Import rules of the source tree, checked in CI (`npm run lint`). The layers, inside out:
 * events, the management codec and the core are pure; sources implement the core's interfaces;
 * the daemon wires everything; the CLI is the only way in. Built-in plugins see the plugin API
 * and small shared leaves only; the root stage is its own trust boundary.
 */
// node:net is allowed: its address parsers (isIP, SocketAddress) are pure
const IO = '^(node:)?(fs|fs/promises|tls|http|https|http2|child_process|dgram|dns|cluster|worker_threads|readline)$';
const LEAVES = '^src/(util/|errors\\.ts$|logger\\.ts$)';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'No cycles between files.', from: { path: '^src/' }, to: { circular: true } },
    {
      name: 'no-folder-cycles',
      scope: 'folder',
      severity: 'error',
      comment: 'No cycles between folders: each folder is a layer or a leaf.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'pure-core',
      severity: 'error',
      comment: 'Events, the core and the management codec do no I/O.',
      from: { path: '^src/(events|core)/|^src/openvpn-management/(codec|encoder|commands)\\.ts$', pathNot: '\\.test\\.ts$' },
      to: { dependencyTypes: ['core'], path: IO },
    },
    {
      name: 'core-inward',
      severity: 'error',
      comment: 'The core and events depend on nothing but each other and the leaves.',
      from: { path: '^src/(events|core)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: `^src/(events|core)/|^src/openvpn-management/(codec|encoder|commands)\\.ts$|${LEAVES}` },
    },
    {
      name: 'leaves-are-leaves',
      severity: 'error',
      comment: 'The shared leaves (src/util, errors.ts, logger.ts) import only each other and the self-contained root stage.',
      from: { path: LEAVES },
      to: { path: '^src/', pathNot: `${LEAVES}|^src/root/` },
    },
    {
      name: 'root-stage-alone',
      severity: 'error',
      comment: 'The root stage runs as root: it imports nothing outside src/root.',
      from: { path: '^src/root/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: '^src/root/' },
    },
    {
      name: 'builtin-plugins-through-api',
      severity: 'error',
      comment: 'A built-in plugin uses the plugin API, its own folder and the shared leaves only.',
      from: { path: '^src/plugins/builtin/([^/]+)/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/', pathNot: ['^src/plugins/plugin-api\\.ts$', '^src/plugins/builtin/$1/', LEAVES] },
    },
    {
      name: 'sources-do-not-know-the-daemon',
      severity: 'error',
      comment: 'Event sources implement the core interface; the daemon wires them, never the reverse.',
      from: { path: '^src/sources/', pathNot: '\\.test\\.ts$' },
      to: { path: '^src/(daemon|plugins|pipeline|store|cli|metrics)/' },
    },
    {
      name: 'daemon-wires-sources-in-one-place',
      severity: 'error',
      from: { path: '^src/daemon/', pathNot: '^src/daemon/daemon\\.ts$|\\.test\\.ts$' },
      to: { path: '^src/sources/' },
    },
    {
      name: 'store-below-plugins',
      severity: 'error',
      comment: 'The store knows nothing of plugins, the daemon or the sources.',
      from: { path: '^src/store/' },
      to: { path: '^src/(plugins|daemon|sources|pipeline|cli)/' },
    },
    {
      name: 'tools-only-from-cli',
      severity: 'error',
      comment: 'Demo, benchmark and lab are reached from the CLI only, never from the daemon.',
      from: { path: '^src/', pathNot: '^src/(cli|demo|bench|lab)/|\\.test\\.ts$' },
      to: { path: '^src/(demo|bench|lab)/' },
    },
    {
      name: 'nobody-imports-the-cli',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(cli|demo|bench|lab)/|\\.test\\.ts$' },
      to: { path: '^src/cli/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    // the rules are about the product: tests may reach anywhere
    exclude: { path: '^(dist|node_modules)/|\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
  },
};
