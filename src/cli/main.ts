#!/usr/bin/env node
/**
 * The `loom` entry point. Everything Loom is written for Node 24, and an older Node fails in
 * odd places (every workflow "exited with status 0 without reporting a result"), so this file
 * first checks the version in syntax and APIs any Node since 12 parses and runs, and only then
 * loads the commands (commands.ts) with a dynamic import: a static one would be linked, and
 * could fail, before this check ran.
 */

const REQUIRED_MAJOR = 24;
const major = Number(process.versions.node.split(".")[0]);

if (!(major >= REQUIRED_MAJOR)) {
  process.stderr.write(
    `loom: Loom needs Node.js ${REQUIRED_MAJOR} or newer, but ${process.execPath} is Node.js ${process.version}; run it with Node ${REQUIRED_MAJOR} (\`make build\` installs one in node_modules/.bin, used by \`npx loom\`).\n`,
  );
  process.exitCode = 1;
} else {
  import("./commands.ts").catch((err: Error) => {
    process.stderr.write(`loom: ${err.message}\n`);
    process.exitCode = 1;
  });
}
