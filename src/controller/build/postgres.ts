/**
 * The PostgreSQL sidecar of a microvm workflow with `services.postgresql` (a Kubernetes native
 * sidecar: an init container with restartPolicy Always, whose startup probe holds the steps back
 * until the databases and roles exist). As NixOS sets it up upstream: the socket in
 * /run/postgresql (shared with the steps), peer authentication mapping the OS user
 * `spindle-workflow` (UID 1000, named so by the pod's passwd, which the sidecar mounts too) to
 * the role of the same name, so `psql` works with no password; TCP on localhost asks for a
 * password, as NixOS's default does. The superuser is `postgres`, reachable by the same OS user
 * through the `loom` ident map (the script itself uses it).
 *
 * The script is POSIX sh for the postgres image's shell; the SQL comes in through the
 * environment (LOOM_PG_SQL), built from names the API schema restricts to [A-Za-z0-9_-].
 * Paths are parameters only so the test can run the real script against Debian's PostgreSQL.
 */
import type { MicrovmSpec } from "../../api/v1alpha1/spindleset.ts";

export interface PostgresPaths {
  /** Parent of the data directory (an emptyDir; initdb creates `data/` in it as UID 1000). */
  state: string;
  /** unix_socket_directories, shared with the runner container. */
  socket: string;
}

export const POSTGRES_PATHS: PostgresPaths = { state: "/var/lib/loom-postgresql", socket: "/run/postgresql" };

/** Written into the socket directory once the SQL has run: the startup probe's test. */
export const POSTGRES_READY_FILE = ".loom-ready";

type PostgresOptions = NonNullable<MicrovmSpec["postgresql"]>;

/** `ensureDatabases`, then `ensureUsers` (LOGIN), then ownership, each idempotent (NixOS's order). */
export function postgresSql(options: PostgresOptions): string {
  const lines: string[] = [];
  for (const db of options.ensureDatabases) {
    lines.push(
      `SELECT 'CREATE DATABASE "${db}"' WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '${db}')\\gexec`,
    );
  }
  for (const user of options.ensureUsers) {
    lines.push(
      `SELECT 'CREATE ROLE "${user.name}" LOGIN' WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${user.name}')\\gexec`,
    );
  }
  for (const user of options.ensureUsers) {
    if (user.ensureDBOwnership) lines.push(`ALTER DATABASE "${user.name}" OWNER TO "${user.name}";`);
  }
  return lines.join("\n");
}

/** The sidecar's command: initdb once, start, wait until ready, run LOOM_PG_SQL, mark ready, wait. */
export function postgresScript(paths: PostgresPaths = POSTGRES_PATHS): string {
  const data = `${paths.state}/data`;
  const ready = `${paths.socket}/${POSTGRES_READY_FILE}`;
  return [
    "set -eu",
    `rm -f '${ready}'`,
    `if [ ! -s '${data}/PG_VERSION' ]; then`,
    `  initdb -D '${data}' -U postgres -A peer --no-instructions`,
    `  printf '%s\\n' 'local all all peer map=loom' 'host all all 127.0.0.1/32 scram-sha-256' 'host all all ::1/128 scram-sha-256' > '${data}/pg_hba.conf'`,
    `  printf '%s\\n' "loom $LOOM_PG_USER postgres" "loom $LOOM_PG_USER $LOOM_PG_USER" > '${data}/pg_ident.conf'`,
    "fi",
    `postgres -D '${data}' -c listen_addresses=localhost -c port="\${LOOM_PG_PORT:-5432}" -c unix_socket_directories='${paths.socket}' &`,
    "pid=$!",
    // SIGTERM from the kubelet: a fast shutdown (SIGINT to postgres), its exit status ours.
    `trap 'kill -INT "$pid" 2>/dev/null || true; wait "$pid"; exit $?' TERM INT`,
    `until pg_isready -q -h '${paths.socket}' -p "\${LOOM_PG_PORT:-5432}"; do`,
    `  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" || exit $?; exit 1; fi`,
    "  sleep 0.2",
    "done",
    `printf '%s\\n' "$LOOM_PG_SQL" | psql -X -q -v ON_ERROR_STOP=1 -h '${paths.socket}' -p "\${LOOM_PG_PORT:-5432}" -U postgres -d postgres`,
    `touch '${ready}'`,
    "echo 'postgresql is ready'",
    'wait "$pid"',
  ].join("\n");
}
