/**
 * The `loom` command. This file only parses arguments, wires signals and turns results into exit
 * codes; each command lives in its own module. It is also the one place that reads Loom's
 * settings from process.env (the git child process of src/net/knot/git.ts inherits only PATH
 * and the proxy variables, read where it is spawned).
 *
 * Each command's module is imported only when that command runs: `serve` and `controller` pull
 * in the server and the Kubernetes client, which took `loom lint` from under a second to three.
 */
import { statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import type { TriggerKind } from "../workflow/index.ts";
import { LOOM_ROOT, stepPath } from "./host.ts";
import { isSecretPair } from "./secrets.ts";

/** Each command's synopsis and options, for `loom --help` and `loom COMMAND --help`. */
const COMMANDS: Record<string, string> = {
  run: `  run [DIR]    run the matching workflows of a local repository with the local engine
               --event push|pull_request|manual (default push)   --ref REF (default HEAD)
               --target BRANCH (pull_request target, default main) --workflow NAME (repeatable)
               --secret KEY=VALUE (repeatable)  --secrets-file FILE (dotenv)
               --timeout SECONDS  --json (Tangled LogLine JSON lines)
               -j, --jobs N (workflows at once, default 1)  --worktree (run the working
               tree, uncommitted changes included; default: the commit)  --no-color
               --engine host|docker|podman (default: a container CLI that can run
               containers here, each workflow in its image; else the host)
`,
  plan: `  plan [DIR]   print the sh.tangled.pipeline record a knot would emit for a trigger
               --trigger FILE.json (a triggerMetadata object, required)
               --resolve (steps and environment)  --rkey RKEY  --dev  --json
`,
  lint: `  lint [DIR]   report every problem in .tangled/workflows/* as file:line:col  [--json]
`,
  serve: `  serve        run the spindle server (configuration: SPINDLE_SERVER_* variables, LOOM_CONFIG)
               --dev (dev defaults: ./.loom/, local engine, 127.0.0.1:6555; also used when
               nothing is configured)  --log-format pretty|json (default: pretty on a
               terminal, else json)  --no-color
`,
  controller: `  controller   run the SpindleSet controller (config: LOOM_CONFIG's kubernetes section;
               cluster: KUBECONFIG or in-cluster)  --metrics-port PORT  --identity NAME
`,
};

const USAGE = `usage: loom <command> [options]
       loom <command> --help    loom --version

commands:
${Object.values(COMMANDS).join("")}
environment: NO_COLOR (any value) turns colour off, as --no-color does
`;

class UsageError extends Error {}

const EVENTS: readonly TriggerKind[] = ["push", "pull_request", "manual"];

/** `loom COMMAND --help` (or -h) anywhere among the arguments: that command's usage, exit 0. */
function wantsHelp(rest: readonly string[]): boolean {
  return rest.includes("--help") || rest.includes("-h");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command !== undefined && COMMANDS[command] !== undefined && wantsHelp(rest)) {
    process.stdout.write(`usage: loom ${command} [options]\n\n${COMMANDS[command]}`);
    return 0;
  }
  switch (command) {
    case "run": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          event: { type: "string", default: "push" },
          ref: { type: "string" },
          target: { type: "string" },
          workflow: { type: "string", multiple: true, default: [] },
          secret: { type: "string", multiple: true, default: [] },
          "secrets-file": { type: "string" },
          timeout: { type: "string" },
          json: { type: "boolean", default: false },
          jobs: { type: "string", short: "j" },
          worktree: { type: "boolean", default: false },
          "no-color": { type: "boolean", default: false },
          engine: { type: "string", default: "auto" },
        },
      });
      const engine = values.engine;
      if (engine !== "auto" && engine !== "host" && engine !== "docker" && engine !== "podman") {
        throw new UsageError("--engine must be one of host, docker, podman");
      }
      const event = values.event as TriggerKind;
      if (!EVENTS.includes(event)) throw new UsageError(`--event must be one of ${EVENTS.join(", ")}`);
      let timeoutSeconds: number | undefined;
      if (values.timeout !== undefined) {
        timeoutSeconds = Number(values.timeout);
        if (!Number.isInteger(timeoutSeconds) || timeoutSeconds <= 0) {
          throw new UsageError("--timeout takes a whole number of seconds");
        }
      }
      const jobs = values.jobs === undefined ? 1 : Number(values.jobs);
      if (!Number.isInteger(jobs) || jobs < 1)
        throw new UsageError("-j takes a whole number of workflows, 1 or more");
      if (jobs > 1 && values.json) {
        throw new UsageError("--json takes no -j: a Tangled LogLine does not name its workflow");
      }
      // Never echo the argument: its value is a secret.
      if (!values.secret.every(isSecretPair))
        throw new UsageError("--secret takes KEY=VALUE, KEY made of letters, digits and _");
      if (values.ref !== undefined && values.worktree)
        throw new UsageError("--worktree runs the working tree: it takes no --ref");
      const { runCommand } = await import("./run.ts");
      return runCommand({
        dir: oneDir(positionals),
        event,
        ...(values.ref !== undefined ? { ref: values.ref } : {}),
        ...(values.target !== undefined ? { targetBranch: values.target } : {}),
        ...(values["secrets-file"] !== undefined ? { secretsFile: values["secrets-file"] } : {}),
        ...(timeoutSeconds !== undefined ? { timeoutSeconds } : {}),
        workflows: values.workflow,
        secrets: values.secret,
        json: values.json,
        jobs,
        worktree: values.worktree,
        engine,
        ...colourChoice(values["no-color"]),
        env: stepEnvironment(process.env),
        containerEnv: containerEnvironment(process.env),
      });
    }
    case "plan": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: {
          trigger: { type: "string" },
          resolve: { type: "boolean", default: false },
          rkey: { type: "string", default: "local" },
          dev: { type: "boolean", default: false },
          json: { type: "boolean", default: false },
        },
      });
      if (values.trigger === undefined) throw new UsageError("plan needs --trigger FILE.json");
      const { planCommand } = await import("./plan.ts");
      return planCommand({
        dir: oneDir(positionals),
        triggerFile: values.trigger,
        json: values.json,
        resolve: values.resolve,
        rkey: values.rkey,
        dev: values.dev,
      });
    }
    case "lint": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { json: { type: "boolean", default: false } },
      });
      const { lintCommand } = await import("./lint.ts");
      return lintCommand(oneDir(positionals), values.json);
    }
    case "serve": {
      const { values } = parseArgs({
        args: rest,
        options: {
          dev: { type: "boolean", default: false },
          "log-format": { type: "string" },
          "no-color": { type: "boolean", default: false },
        },
      });
      const format = values["log-format"];
      if (format !== undefined && format !== "pretty" && format !== "json") {
        throw new UsageError("--log-format takes pretty or json");
      }
      const { serveCommand } = await import("./serve.ts");
      return serveCommand({
        env: process.env,
        dev: values.dev,
        runnerEnv: stepEnvironment(process.env),
        ...(format !== undefined && { logFormat: format }),
        ...colourChoice(values["no-color"]),
      });
    }
    case "controller": {
      const { values } = parseArgs({
        args: rest,
        options: { "metrics-port": { type: "string" }, identity: { type: "string" } },
      });
      const port = values["metrics-port"] === undefined ? undefined : Number(values["metrics-port"]);
      if (port !== undefined && !(Number.isInteger(port) && port >= 0 && port < 65536)) {
        throw new UsageError("--metrics-port takes a port number");
      }
      const { controllerCommand } = await import("./controller.ts");
      return controllerCommand({
        env: process.env,
        ...(port !== undefined && { metricsPort: port }),
        ...(values.identity !== undefined && { identity: values.identity }),
      });
    }
    case "--version":
    case "-V":
    case "version":
      process.stdout.write(`loom ${await loomVersion()}\n`);
      return 0;
    case undefined:
    case "help":
    case "--help":
    case "-h":
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

function oneDir(positionals: string[]): string {
  if (positionals.length > 1)
    throw new UsageError(`expected at most one directory, got ${positionals.length}`);
  const dir = positionals[0] ?? ".";
  // A mistyped DIR must not pass for a repository without workflows (lint and plan said "all clear").
  const stat = statSync(dir, { throwIfNoEntry: false });
  if (stat === undefined) throw new Error(`${dir}: no such directory`);
  if (!stat.isDirectory()) throw new Error(`${dir}: not a directory`);
  return dir;
}

/**
 * What local steps inherit: enough of the user's environment to find their tools and speak
 * their language, and nothing else (tokens and credentials in the shell stay out of CI steps).
 */
function stepEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const keep = ["PATH", "LANG", "LC_ALL", "TERM", "TZ", "USER"];
  const out: Record<string, string> = {};
  for (const k of keep) if (env[k] !== undefined) out[k] = env[k];
  // Steps see the user's tools, never Loom's own node_modules/.bin or its Node.
  if (out.PATH !== undefined) out.PATH = stepPath(out.PATH);
  return out;
}

/** What `docker`/`podman` need of the user's environment to find their engine and configuration. */
function containerEnvironment(env: NodeJS.ProcessEnv): Record<string, string> {
  const keep = [
    "HOME",
    "DOCKER_HOST",
    "DOCKER_CONTEXT",
    "DOCKER_CONFIG",
    "DOCKER_CERT_PATH",
    "DOCKER_TLS_VERIFY",
    "CONTAINER_HOST",
    "CONTAINER_CONNECTION",
    "XDG_RUNTIME_DIR",
    "XDG_CONFIG_HOME",
    "XDG_DATA_HOME",
  ];
  const out: Record<string, string> = {};
  for (const k of keep) if (env[k] !== undefined && env[k] !== "") out[k] = env[k];
  return out;
}

/**
 * Colour: off with --no-color or NO_COLOR set to anything but "" (https://no-color.org), on with
 * FORCE_COLOR (but "0"), else when stdout is a terminal.
 */
function colourChoice(noColorFlag: boolean): { colour?: boolean } {
  if (noColorFlag || (process.env.NO_COLOR ?? "") !== "") return { colour: false };
  const force = process.env.FORCE_COLOR ?? "";
  if (force !== "" && force !== "0") return { colour: true };
  return {};
}

async function loomVersion(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL("package.json", `file://${LOOM_ROOT}/`), "utf8")) as {
    version?: string;
  };
  return `${pkg.version ?? "unknown"} (Node.js ${process.version})`;
}

// `loom run --json | head`: a closed pipe stops the command like Ctrl-C would (the running
// workflow is cancelled and cleaned up), quietly, as any Unix tool.
let pipeClosed = false;
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code !== "EPIPE") throw err;
  if (!pipeClosed) process.emit("SIGTERM", "SIGTERM");
  pipeClosed = true;
});

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  if (err instanceof UsageError || (err as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
    process.stderr.write(`loom: ${(err as Error).message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    process.stderr.write(`loom: ${(err as Error).message}\n`);
    process.exitCode = 1;
  }
}
