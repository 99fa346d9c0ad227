#!/usr/bin/env bash
# The test command (npm test): type-check (tests included), the formatter, linter, import rules
# and unused-export check (npm run lint), build dist/ afresh (end-to-end tests
# run bin/flexscript.js and bin/flexscript-root.js, which load the build), then every *.test.ts
# under src/ and test/. Tests import the TypeScript sources through tsx.
# Node 20's test runner does not expand globs, so the files are listed here. End-to-end tests
# start real OpenVPN servers and clients, so files run one at a time on small machines.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/sbin:/sbin"
npx tsc --noEmit -p .
npm run --silent lint
npm run --silent build
mapfile -t files < <(find src test -name '*.test.ts' -not -path '*/node_modules/*' | sort)
exec node --import tsx --test --test-concurrency=1 --test-timeout=600000 --test-reporter=spec "$@" "${files[@]}"
