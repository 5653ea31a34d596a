/**
 * The Redis sidecar of a microvm workflow with `services.redis` (a Kubernetes native sidecar, as
 * postgres.ts). As NixOS's default server: the socket `/run/redis/redis.sock` (shared with the
 * steps) and TCP on 127.0.0.1 at `port` (6379; 0 = socket only), no password, nothing saved to
 * disk (the run's data lives as long as the pod). The script is POSIX sh for the redis image's
 * shell; paths are parameters only so the test can run it against Debian's redis-server.
 */
export interface RedisPaths {
  /** The working directory (an emptyDir). */
  state: string;
  /** The socket's folder, shared with the runner container. */
  socket: string;
}

export const REDIS_PATHS: RedisPaths = { state: "/var/lib/loom-redis", socket: "/run/redis" };

/** Written into the socket folder once the server answers PING: the startup probe's test. */
export const REDIS_READY_FILE = ".loom-ready";

/** The sidecar's command: start, wait for PONG on the socket, mark ready, wait. Port in LOOM_REDIS_PORT. */
export function redisScript(paths: RedisPaths = REDIS_PATHS): string {
  const sock = `${paths.socket}/redis.sock`;
  const ready = `${paths.socket}/${REDIS_READY_FILE}`;
  return [
    "set -eu",
    `rm -f '${ready}'`,
    `redis-server --bind 127.0.0.1 --port "\${LOOM_REDIS_PORT:-6379}" --unixsocket '${sock}' --unixsocketperm 770 --dir '${paths.state}' --save '' --appendonly no &`,
    "pid=$!",
    `trap 'kill -TERM "$pid" 2>/dev/null || true; wait "$pid"; exit $?' TERM INT`,
    `until [ "$(redis-cli -s '${sock}' ping 2>/dev/null)" = PONG ]; do`,
    `  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid" || exit $?; exit 1; fi`,
    "  sleep 0.2",
    "done",
    `touch '${ready}'`,
    "echo 'redis is ready'",
    'wait "$pid"',
  ].join("\n");
}
