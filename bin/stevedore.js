#!/usr/bin/env node
// The `stevedore` command: thin shim over the compiled CLI so `npm link`/bin works.
import '../dist/src/cli/main.js';
