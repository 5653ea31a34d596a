/**
 * The Redis and MariaDB sidecars' scripts (src/controller/build/redis.ts, mysql.ts) run for real
 * against Debian's redis-server and MariaDB, as the pod runs them: UID 1000 named
 * spindle-workflow by the pod's own passwd (setupScript's, bind-mounted over /etc/passwd in a
 * private mount namespace, as the Job mounts it), the socket folder bind-mounted at the pod's own
 * path (/run/redis, /run/mysqld). Then the client as that user with no password: `redis-cli ping`
 * over /run/redis/redis.sock and TCP, plain `mariadb -e 'select 1'` (the client's default socket),
 * and a table written into a database its grants cover. Needs root (mount namespace, setpriv) and
 * Debian's redis-server and mariadb-server packages (hack/install-system-deps.sh installs them).
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { MYSQL_PATHS, MYSQL_READY_FILE, mysqlScript, mysqlSql } from "../../src/controller/build/mysql.ts";
import { REDIS_PATHS, REDIS_READY_FILE, redisScript } from "../../src/controller/build/redis.ts";
import { eventually } from "../harness/index.ts";
import { freePort, podDirs, startSidecar } from "./sidecar-pod.ts";

const PATH = "/usr/sbin:/usr/bin:/sbin:/bin";
const root = process.getuid?.() === 0;
const has = (cmd: string) => spawnSync("sh", ["-c", `PATH=${PATH} command -v ${cmd}`]).status === 0;
const skipRedis = !root
  ? "needs root (a mount namespace for the pod's passwd, setpriv to UID 1000)"
  : !has("redis-server") || !has("redis-cli")
    ? "Debian's redis-server package is not installed (make test-deps)"
    : false;
const skipMariadb = !root
  ? "needs root (a mount namespace for the pod's passwd, setpriv to UID 1000)"
  : !has("mariadbd") || !has("mariadb-install-db") || !has("mariadb")
    ? "Debian's mariadb-server package is not installed (make test-deps)"
    : false;

test("the Redis sidecar: PONG over the socket and TCP on 127.0.0.1, with no password", {
  skip: skipRedis,
}, async (t) => {
  const pod = podDirs(t, "loom-redis-", { path: PATH, socketAt: REDIS_PATHS.socket });
  const port = await freePort();
  const { sidecar, out, exited } = startSidecar(
    t,
    pod.asPodUser(["sh", "-c", redisScript({ state: pod.state, socket: REDIS_PATHS.socket })], {
      LOOM_REDIS_PORT: String(port),
    }),
  );
  await eventually("the sidecar marks itself ready", async () =>
    existsSync(join(pod.socket, REDIS_READY_FILE)) ? true : `not yet: ${out.log.slice(-400)}`,
  );
  assert.match(out.log, /redis is ready/);
  const sock = "/run/redis/redis.sock"; // NixOS's default server's socket
  const ping = pod.run(["redis-cli", "-s", sock, "ping"]);
  assert.equal(ping.status, 0, ping.stderr);
  assert.equal(ping.stdout.trim(), "PONG");
  const set = pod.run(["redis-cli", "-s", sock, "set", "k", "v"]);
  assert.equal(set.stdout.trim(), "OK");
  const tcp = pod.run(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "get", "k"]);
  assert.equal(tcp.status, 0, tcp.stderr);
  assert.equal(tcp.stdout.trim(), "v");
  // Nothing is written to disk: the data lives as long as the pod.
  const save = pod.run(["redis-cli", "-s", sock, "config", "get", "save"]);
  assert.equal(save.stdout, "save\n\n");

  sidecar.kill("SIGTERM");
  assert.equal(await exited, 0, out.log);
});

test("the Redis sidecar with port 0 listens on the socket only", { skip: skipRedis }, async (t) => {
  const pod = podDirs(t, "loom-redis-", { path: PATH, socketAt: REDIS_PATHS.socket });
  const { sidecar, out, exited } = startSidecar(
    t,
    pod.asPodUser(["sh", "-c", redisScript({ state: pod.state, socket: REDIS_PATHS.socket })], {
      LOOM_REDIS_PORT: "0",
    }),
  );
  await eventually("the sidecar marks itself ready", async () =>
    existsSync(join(pod.socket, REDIS_READY_FILE)) ? true : `not yet: ${out.log.slice(-400)}`,
  );
  const port = pod.run(["redis-cli", "-s", "/run/redis/redis.sock", "config", "get", "port"]);
  assert.deepEqual(port.stdout.trim().split("\n"), ["port", "0"]);
  sidecar.kill("SIGTERM");
  assert.equal(await exited, 0, out.log);
});

test("the MariaDB sidecar: databases, socket-identified users and grants; select 1 as spindle-workflow with no password", {
  skip: skipMariadb,
}, async (t) => {
  const pod = podDirs(t, "loom-mysql-", { path: PATH, socketAt: MYSQL_PATHS.socket });
  const port = await freePort();
  const sql = mysqlSql({
    ensureDatabases: ["app", "other-db"],
    ensureUsers: [
      { name: "spindle-workflow", ensurePermissions: [{ on: "app.*", privileges: "ALL PRIVILEGES" }] },
      { name: "reader", ensurePermissions: [{ on: "other-db.*", privileges: "SELECT" }] },
    ],
  });
  const { sidecar, out, exited } = startSidecar(
    t,
    pod.asPodUser(["sh", "-c", mysqlScript({ state: pod.state, socket: MYSQL_PATHS.socket })], {
      LOOM_DB_USER: "spindle-workflow",
      LOOM_MYSQL_SQL: sql,
      LOOM_MYSQL_PORT: String(port),
    }),
  );
  await eventually("the sidecar marks itself ready", async () =>
    existsSync(join(pod.socket, MYSQL_READY_FILE)) ? true : `not yet: ${out.log.slice(-400)}`,
  );
  assert.match(out.log, /mariadb is ready/);
  // As upstream: `mariadb -e 'select 1'` with nothing else, as the OS user spindle-workflow: no
  // password, the client's own default socket (/run/mysqld/mysqld.sock, as nixpkgs' client's).
  const one = pod.run(["mariadb", "-e", "select 1"]);
  assert.equal(one.status, 0, one.stderr);
  assert.equal(one.stdout, "1\n1\n"); // the column's name, then its value
  const mariadb = (args: string[]) => pod.run(["mariadb", "--no-defaults", "-N", "-B", ...args]);
  const who = mariadb(["-e", "select current_user()"]);
  assert.equal(who.stdout.trim(), "spindle-workflow@localhost");
  const dbs = mariadb(["-e", "show databases like '%'"]);
  assert.ok(dbs.stdout.split("\n").includes("app"), dbs.stdout);
  assert.ok(dbs.stdout.split("\n").includes("other-db"), dbs.stdout);
  const write = mariadb(["app", "-e", "create table t (x int); insert into t values (7); select x from t"]);
  assert.equal(write.status, 0, write.stderr);
  assert.equal(write.stdout.trim(), "7");
  const users = mariadb([
    "-e",
    "select concat(user, ' ', plugin) from mysql.user where user in ('reader', 'spindle-workflow') order by user",
  ]);
  assert.equal(users.status, 0, users.stderr);
  assert.match(users.stdout, /^reader .*unix_socket/m);
  const grants = mariadb(["-e", "show grants for 'reader'@'localhost'"]);
  assert.match(grants.stdout, /GRANT SELECT ON `other-db`\.\* TO `reader`@`localhost`/);
  // The socket identifies the OS user: spindle-workflow cannot log in as reader.
  const other = mariadb(["-u", "reader", "-e", "select 1"]);
  assert.notEqual(other.status, 0);
  assert.match(other.stderr, /Access denied/);

  // A second start over the same data (a restarted sidecar) keeps it and reruns the SQL.
  sidecar.kill("SIGTERM");
  assert.equal(await exited, 0, out.log);
  const again = startSidecar(
    t,
    pod.asPodUser(["sh", "-c", mysqlScript({ state: pod.state, socket: MYSQL_PATHS.socket })], {
      LOOM_DB_USER: "spindle-workflow",
      LOOM_MYSQL_SQL: sql,
      LOOM_MYSQL_PORT: String(port),
    }),
  );
  await eventually("the restarted sidecar marks itself ready", async () =>
    again.out.log.includes("mariadb is ready") ? true : `not yet: ${again.out.log.slice(-400)}`,
  );
  const kept = mariadb(["app", "-e", "select x from t"]);
  assert.equal(kept.stdout.trim(), "7");
  again.sidecar.kill("SIGTERM");
  assert.equal(await again.exited, 0, again.out.log);
});
