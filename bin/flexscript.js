#!/usr/bin/env node
// Runs the TypeScript sources through tsx, which also loads operators' .ts plugins:
// no build step for the product or for plugins.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
