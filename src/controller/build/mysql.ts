/**
 * The MariaDB sidecar of a microvm workflow with `services.mysql` or `services.mariadb` (a
 * Kubernetes native sidecar, as postgres.ts). As NixOS sets MariaDB up: the socket
 * `/run/mysqld/mysqld.sock` (shared with the steps; the clients' compiled-in default), TCP on
 * 127.0.0.1:3306, `ensureDatabases` created, `ensureUsers` created `IDENTIFIED WITH unix_socket`
 * (the OS user of the same name logs in with no password) and granted their `ensurePermissions`.
 *
 * The pod has one OS user (UID 1000, `spindle-workflow`), so the server runs as it and it is the
 * server's administrator too (mariadb-install-db's socket user), as it may connect as `postgres`
 * to the PostgreSQL sidecar. The SQL comes in through the environment (LOOM_MYSQL_SQL), built
 * from names the API schema restricts. Paths are parameters only so the test can run the real
 * script against Debian's MariaDB.
 */
import type { MicrovmSpec } from "../../api/v1alpha1/spindleset.ts";

export interface MysqlPaths {
  /** Parent of the data directory (an emptyDir). */
  state: string;
  /** The socket's folder, shared with the runner container. */
  socket: string;
}

export const MYSQL_PATHS: MysqlPaths = { state: "/var/lib/loom-mysql", socket: "/run/mysqld" };

/** Written into the socket folder once the SQL has run: the startup probe's test. */
export const MYSQL_READY_FILE = ".loom-ready";

type MysqlOptions = NonNullable<MicrovmSpec["mysql"]>;

/** `db.*` with each name part backquoted unless it is `*` or already quoted. */
function grantTarget(on: string): string {
  return on
    .split(".")
    .map((part) => (part === "*" || part.startsWith("`") ? part : `\`${part}\``))
    .join(".");
}

/** NixOS's order: databases, then each user with its grants; every statement idempotent. */
export function mysqlSql(options: MysqlOptions): string {
  const lines: string[] = [];
  for (const db of options.ensureDatabases) lines.push(`CREATE DATABASE IF NOT EXISTS \`${db}\`;`);
  for (const user of options.ensureUsers) {
    lines.push(`CREATE USER IF NOT EXISTS '${user.name}'@'localhost' IDENTIFIED WITH unix_socket;`);
    for (const grant of user.ensurePermissions) {
      lines.push(`GRANT ${grant.privileges} ON ${grantTarget(grant.on)} TO '${user.name}'@'localhost';`);
    }
  }
  return lines.join("\n");
}

/**
 * The sidecar's command: install the system tables once (the OS user LOOM_DB_USER its socket
 * administrator), start, wait until it answers, run LOOM_MYSQL_SQL, mark ready, wait.
 */
export function mysqlScript(paths: MysqlPaths = MYSQL_PATHS): string {
  const data = `${paths.state}/data`;
  const sock = `${paths.socket}/mysqld.sock`;
  const ready = `${paths.socket}/${MYSQL_READY_FILE}`;
  return [
    "set -eu",
    `rm -f '${ready}'`,
    `mkdir -p '${paths.state}/tmp'`,
    `if [ ! -d '${data}/mysql' ]; then`,
    `  mariadb-install-db --no-defaults --datadir='${data}' --auth-root-authentication-method=socket --auth-root-socket-user="$LOOM_DB_USER" --skip-test-db > '${paths.state}/install.log' 2>&1 || { cat '${paths.state}/install.log'; exit 1; }`,
    "fi",
    `mariadbd --no-defaults --datadir='${data}' --socket='${sock}' --bind-address=127.0.0.1 --port="\${LOOM_MYSQL_PORT:-3306}" --pid-file='${paths.state}/mariadbd.pid' --tmpdir='${paths.state}/tmp' &`,
    "pid=$!",
    `trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid"; exit $?' TERM INT`,
    `until mariadb-admin --no-defaults -S '${sock}' ping >/dev/null 2>&1; do`,
    `  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" || exit $?; exit 1; fi`,
    "  sleep 0.2",
    "done",
    `printf '%s\\n' "$LOOM_MYSQL_SQL" | mariadb --no-defaults -S '${sock}' -u "$LOOM_DB_USER"`,
    `touch '${ready}'`,
    "echo 'mariadb is ready'",
    'wait "$pid"',
  ].join("\n");
}
