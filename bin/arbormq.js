#!/usr/bin/env node
import { main } from '../dist/host/node/cli.js';

// Exit explicitly once main is done: shutdown is bounded by its own deadline, and nothing left
// behind (a half-closed socket, a pending timer) may keep the process alive past it.
process.exit(await main(process.argv.slice(2)));
