#!/usr/bin/env node
// Entry point of the `shoal` command: loads the TypeScript sources through
// tsx and hands the actor registry to the CLI (src/ never imports actors/).
import { register } from "tsx/esm/api";

register();
const { main } = await import("../src/cli/main.ts");
const { ACTORS } = await import("../actors/index.ts");
process.exitCode = await main(process.argv.slice(2), { actors: ACTORS });
