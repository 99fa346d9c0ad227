#!/usr/bin/env bash
# Builds the Debian package (npm run package): openvpn-flexscript_VERSION_ARCH.deb in the
# repository's root, or in the folder given as the first argument.
#
# The package holds the product under /usr/lib/openvpn-flexscript with its production
# node_modules, copied from this tree's and pruned of development packages (offline: npm ci
# would build better-sqlite3 and argon2 again, which needs more than the npm registry).
# Those two are native modules built for this machine, so the package is for this machine's
# architecture (amd64 here), not "all".
#
# The systemd unit, OpenVPN's drop-in and the sysusers.d file are the ones `flexscript init`
# writes, made by running the staged product's own init, so the package cannot drift from it.
set -euo pipefail
export LC_ALL=C
umask 022
repo=$(cd "$(dirname "$0")/.." && pwd)
out=$(cd "${1:-$repo}" && pwd)
here=$repo/packaging
name=openvpn-flexscript
prefix=/usr/lib/$name
node=/usr/bin/node
version=$(node -p "require('$repo/package.json').version")
arch=$(dpkg --print-architecture)
deb=$out/${name}_${version}_${arch}.deb

for tool in dpkg-deb npm node; do
  command -v "$tool" >/dev/null || { echo "build-deb: $tool is missing (apt-get install -y dpkg-dev)" >&2; exit 1; }
done

stage=$(mktemp -d /tmp/fxs-deb-XXXXXX)
trap 'rm -rf "$stage"' EXIT
chmod 0755 "$stage"
lib=$stage$prefix

(cd "$repo" && npm run --silent build)

# the product: what package.json's "files" publishes (npm pack), examples included (init copies them)
mkdir -p "$lib" "$stage/pack"
(cd "$repo" && npm pack --silent --ignore-scripts --pack-destination "$stage/pack" >/dev/null)
tar -xzf "$stage"/pack/*.tgz -C "$lib" --strip-components=1 --no-same-owner
rm -rf "$stage/pack"
cp "$repo/package-lock.json" "$lib/"

# production node_modules: this tree's, minus the development packages (no network needed)
cp -a "$repo/node_modules/." "$lib/node_modules/"
# without the npm_* variables of `npm run` (its npm_config_local_prefix is the repository):
# only the staged copy is pruned
clean_env=()
while IFS= read -r var; do clean_env+=(-u "$var"); done < <(env | grep -o '^npm_[A-Za-z0-9_]*' || true)
(cd "$lib" && env "${clean_env[@]}" npm prune --prefix "$lib" --omit=dev --offline --ignore-scripts --no-audit --no-fund --silent)
# the scopes of pruned packages stay as empty folders
find "$lib/node_modules" -mindepth 1 -maxdepth 1 -type d -empty -delete
[ ! -e "$lib/node_modules/@biomejs/biome" ] || { echo "build-deb: npm prune left the development packages in" >&2; exit 1; }
rm -f "$lib/package-lock.json"
rm -rf "$lib/node_modules/.cache"
# build leftovers and sources of the native modules (only their build/Release/*.node files load)
for m in better-sqlite3 argon2; do
  rm -rf "$lib/node_modules/$m/deps" "$lib/node_modules/$m/src" "$lib/node_modules/$m/argon2"
  build=$lib/node_modules/$m/build
  mv "$build/Release" "$build.release"
  rm -rf "$build" && mkdir -p "$build/Release"
  mv "$build".release/*.node "$build/Release/" && rm -rf "$build.release" "$build/Release/test_extension.node"
  # libraries, not programs; node-gyp-build loads build/Release before the prebuilds (other architectures)
  chmod 0644 "$build"/Release/*.node
  if command -v strip >/dev/null; then strip --strip-unneeded "$build"/Release/*.node; fi
  rm -rf "$lib/node_modules/$m/prebuilds"
done
# what the modules' authors publish but nothing loads: tool configs, a web page with remote scripts
find "$lib/node_modules" \( -name .npmignore -o -name '.eslintrc*' -o -name .gitattributes -o -name .github -o -name .travis.yml \) -prune -exec rm -rf {} +
rm -f "$lib/node_modules/pino/index.html"

# better-sqlite3 is not N-API: its .node loads only in the Node.js major it was built for, so
# the package depends on that major (and /usr/bin/flexscript runs Debian's node, not the first
# one on PATH)
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || { echo "build-deb: Node.js $major: the product needs 20 or later" >&2; exit 1; }
[ "$(readlink -f "$(command -v node)")" = "$(readlink -f "$node")" ] ||
  echo "build-deb: note: building with $(command -v node) (Node.js $major); the package runs $node" >&2
(cd "$lib" && node -e 'const Database = require("better-sqlite3"); new Database(":memory:").close(); require("argon2")') || {
  echo "build-deb: the native modules in node_modules do not load in Node.js $(node --version): npm rebuild" >&2
  exit 1
}

mkdir -p "$stage/usr/bin"
printf '#!/bin/sh\n# openvpn-flexscript: the Node.js the package depends on (its native modules are built for it)\nexec %s %s/bin/flexscript.js "$@"\n' "$node" "$prefix" >"$stage/usr/bin/flexscript"
chmod 0755 "$stage/usr/bin/flexscript"

# the units and system files, from the staged product's own init
gen=$(mktemp -d /tmp/fxs-deb-init-XXXXXX)
trap 'rm -rf "$stage" "$gen"' EXIT
"$node" "$lib/bin/flexscript.js" init --dir "$gen/management" --mode management --openvpn-user nobody --openvpn-group nogroup >/dev/null
"$node" "$lib/bin/flexscript.js" init --dir "$gen/hook" --mode hook --openvpn-user nobody --openvpn-group nogroup >/dev/null
# drops init's "Install:" header (the package installs them) and names the installed paths
installed() {
  sed -e "s#$lib#$prefix#g" -e "s#$gen/[a-z]*/#/etc/flexscript/#g" -e "s#^ExecStart=[^ ]*node #ExecStart=$node #" "$1" | awk -v head="$2" '
    !done && /^#/ { next }
    !done { print head; done = 1 }
    { print }'
}
units=$stage/usr/lib/systemd/system
mkdir -p "$units/openvpn-server@.service.d" "$stage/usr/lib/sysusers.d" "$stage/usr/lib/tmpfiles.d"
installed "$gen/management/flexscriptd.service" "# openvpn-flexscript daemon, management mode (the package's default; written by flexscript init).
# Not enabled by the package: systemctl enable --now flexscriptd once /etc/flexscript/flexscript.yaml is set up.
# Hook mode: flexscript init --mode hook writes its unit; installed as /etc/systemd/system/flexscriptd.service it replaces this one." >"$units/flexscriptd.service"
installed "$gen/hook/openvpn-server@.service.d/flexscript.conf" "# openvpn-flexscript: drop-in for Debian's openvpn-server@.service (written by flexscript init --mode hook).
# Needed in hook mode, harmless in management mode: it only raises OpenVPN's process limit." >"$units/openvpn-server@.service.d/flexscript.conf"
installed "$gen/management/sysusers-flexscript.conf" "# openvpn-flexscript: the daemon's user in management mode (written by flexscript init).
# /etc/sysusers.d/flexscript.conf replaces this file." >"$stage/usr/lib/sysusers.d/flexscript.conf"
cp "$here/tmpfiles.conf" "$stage/usr/lib/tmpfiles.d/flexscript.conf"

# /etc/flexscript: an example configuration that changes nothing for OpenVPN's clients
mkdir -p "$stage/etc/flexscript"
cp "$here/flexscript.yaml" "$stage/etc/flexscript/flexscript.yaml"

doc=$stage/usr/share/doc/$name
mkdir -p "$doc"
cp "$here/copyright" "$doc/copyright"
cp "$repo/README.md" "$doc/README.md"
printf '%s (%s) unstable; urgency=medium\n\n  * Built from the repository by npm run package.\n\n -- %s  %s\n' \
  "$name" "$version" "${DEBFULLNAME:-openvpn-flexscript} <${DEBEMAIL:-root@localhost}>" "$(date -R -d "@${SOURCE_DATE_EPOCH:-$(date +%s)}")" |
  gzip -9n >"$doc/changelog.gz"

# modes: root-owned in the package (--root-owner-group); nothing writable by group or others
chmod -R u+rwX,go+rX,go-w "$stage"

mkdir -p "$stage/DEBIAN"
for script in postinst prerm postrm; do install -m 0755 "$here/debian/$script" "$stage/DEBIAN/$script"; done
(cd "$stage" && find etc -type f -printf '/%p\n' | sort) >"$stage/DEBIAN/conffiles"
size=$(du -sk --exclude=DEBIAN "$stage" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@NODE_MAJOR@/$major/g" -e "s/@NODE_NEXT@/$((major + 1))/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
  -e "s/@MAINTAINER@/${DEBFULLNAME:-openvpn-flexscript} <${DEBEMAIL:-root@localhost}>/" \
  "$here/debian/control" >"$stage/DEBIAN/control"
chmod 0644 "$stage/DEBIAN/control" "$stage/DEBIAN/conffiles"

dpkg-deb --root-owner-group -Zxz --build "$stage" "$deb" >/dev/null
echo "$deb"
