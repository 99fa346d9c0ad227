#!/usr/bin/env bash
# Sets up this source tree on Debian or Ubuntu in one command: the Debian packages the demo runs
# (OpenVPN included) and those `npm ci` needs to build the native modules, then `npm ci`, which
# builds dist/. Then: npm run demo.
#
#   bash setup.sh           as root: says what it installs, installs it with apt-get, runs npm ci;
#                           as another user: prints the apt-get command to run as root, and stops
#                           (unless nothing is missing)
#   bash setup.sh --check   only says what is missing (exit 1 if anything is)
#   bash setup.sh --list    the packages it installs, one group a line
#
# Node.js 20 or newer comes from Debian where its nodejs is new enough (Debian 13); elsewhere
# (Debian 12 and Ubuntu 24.04 ship 18) it prints how to get it from NodeSource and stops: adding
# another vendor's repository is the operator's call.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")"

# What `flexscript demo` starts (src/cli/demo-requirements.ts names the same; a test checks it):
# openvpn (the server and its clients), openssl (a throwaway CA), util-linux (setpriv).
DEMO_PACKAGES=(openvpn openssl util-linux)
# What node-gyp needs to build better-sqlite3 and argon2 where no prebuilt binary fits
BUILD_PACKAGES=(build-essential python3)
NODE_MIN=20

mode=install
case "${1:-}" in
  '') ;;
  --check) mode=check ;;
  --list)
    echo "demo: ${DEMO_PACKAGES[*]}"
    echo "build: ${BUILD_PACKAGES[*]}"
    echo "node: nodejs (>= $NODE_MIN) npm, when missing"
    exit 0
    ;;
  *)
    echo "usage: bash setup.sh [--check | --list]" >&2
    exit 2
    ;;
esac

say() { printf 'setup: %s\n' "$*"; }
installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'; }
major() { printf '%s' "${1#v}" | cut -d. -f1; }

command -v dpkg-query >/dev/null || {
  say "this script sets up Debian and Ubuntu (dpkg and apt-get); elsewhere install OpenVPN 2.6, openssl, setpriv, a C++ compiler, python3 and Node.js $NODE_MIN or newer, then run npm ci"
  exit 1
}

missing=()
for p in "${DEMO_PACKAGES[@]}" "${BUILD_PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done

# Node.js and npm
node_ok=no
if command -v node >/dev/null && [ "$(major "$(node --version)")" -ge "$NODE_MIN" ]; then node_ok=yes; fi
if [ "$node_ok" = no ]; then
  candidate=$(apt-cache policy nodejs 2>/dev/null | sed -n 's/^ *Candidate: *//p' | sed 's/^[0-9]*://')
  if [ -n "$candidate" ] && [ "$candidate" != "(none)" ] && [ "$(major "$candidate")" -ge "$NODE_MIN" ]; then
    missing+=(nodejs)
    installed npm || missing+=(npm)
  else
    say "Node.js $NODE_MIN or newer is needed$(command -v node >/dev/null && printf ' (this is %s)' "$(node --version)"), and this system's nodejs package is ${candidate:-not available}."
    say "Get Node.js 22 from NodeSource, as root:"
    echo "  curl -fsSL https://deb.nodesource.com/setup_22.x | bash - && apt-get install -y nodejs"
    say "then run bash setup.sh again."
    exit 1
  fi
elif ! command -v npm >/dev/null; then
  missing+=(npm)
fi

if [ ${#missing[@]} -gt 0 ]; then
  if [ "$mode" = check ]; then
    say "missing Debian packages: ${missing[*]}"
    echo "  apt-get install -y ${missing[*]}"
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    say "missing Debian packages: ${missing[*]}. Install them as root, then run bash setup.sh again:"
    echo "  sudo apt-get install -y ${missing[*]}"
    exit 1
  fi
  say "installing Debian packages: ${missing[*]} (apt-get install -y ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${missing[@]}"
fi
if [ "$mode" = check ]; then
  say "nothing missing"
  exit 0
fi

say "npm ci (installs the dependencies, builds the native modules and dist/)"
npm ci --no-audit --no-fund
say "ready: npm run demo$([ "$(id -u)" -ne 0 ] && printf ' (as root: sudo npm run demo)')"
