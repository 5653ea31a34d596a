/**
 * Roots that hold nothing but Debian's busybox-static of one architecture (and what a test puts
 * there), and running programs in them with chroot: the stand-in for a container image. The
 * other architecture's root runs under qemu-user-static through binfmt_misc (make test-deps:
 * hack/install-system-deps.sh, hack/runner-cross.sh, hack/qemu-binfmt.sh).
 */
import { spawn } from "node:child_process";
import { copyFileSync, existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, statSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { join } from "node:path";
import { ARCH_INFO, type BundleArch, hostArch } from "../../scripts/build-runner-bundle.ts";
import type { RunnerEvent } from "../../src/runner/protocol.ts";

export const isRoot = process.getuid?.() === 0;
export const ROOT_SKIP = isRoot
  ? false
  : "chroot and mknod need root (run the suite as root, e.g. in CI's container)";

/** Hard-link a tree (a bundle holds a 100 MB Node binary); copy across file systems. */
export function linkTree(src: string, dest: string): void {
  mkdirSync(dest, { recursive: true });
  for (const name of readdirSync(src)) {
    const from = join(src, name);
    const to = join(dest, name);
    if (statSync(from).isDirectory()) linkTree(from, to);
    else {
      try {
        linkSync(from, to);
      } catch {
        copyFileSync(from, to);
      }
    }
  }
}

/** Debian's busybox-static for `arch`: the machine's own, or the one hack/runner-cross.sh unpacked. */
export function busyboxFor(arch: BundleArch): string {
  if (arch === hostArch()) return "/bin/busybox";
  const cache = process.env.LOOM_CACHE || join(homedir(), ".cache", "loom");
  return join(cache, `debian-${arch}`, "root", "bin", "busybox");
}

/**
 * Why `arch` cannot run here, or undefined when it can. Tests fail (not skip) on it: CI must
 * prove the other architecture too.
 */
export function crossMissing(arch: BundleArch): string | undefined {
  if (arch === hostArch()) return undefined;
  const emulator = `/proc/sys/fs/binfmt_misc/qemu-${ARCH_INFO[arch].uname}`;
  if (!existsSync(busyboxFor(arch))) {
    return `no ${busyboxFor(arch)}: run make test-deps (hack/runner-cross.sh ${arch})`;
  }
  if (!existsSync(emulator))
    return `no ${emulator}: run make test-deps (qemu-user-static, hack/qemu-binfmt.sh)`;
  return undefined;
}

/** A fresh root with /bin/busybox of `arch` (its applets linked into /bin) and /dev/null. */
export async function busyboxRoot(arch: BundleArch): Promise<string> {
  const missing = crossMissing(arch);
  if (missing) throw new Error(`linux/${arch} cannot run on this ${hostArch()} machine: ${missing}`);
  const root = mkdtempSync(join(tmpdir(), `loom-chroot-${arch}-`));
  mkdirSync(join(root, "bin"));
  mkdirSync(join(root, "dev"));
  copyFileSync(busyboxFor(arch), join(root, "bin", "busybox"));
  // mknod through busybox inside the root: nothing else is needed to make /dev/null.
  for (const args of [
    ["mknod", "-m", "666", "/dev/null", "c", "1", "3"],
    ["--install", "-s", "/bin"],
  ]) {
    const run = await chroot(root, ["/bin/busybox", ...args], {});
    if (run.code !== 0) throw new Error(`busybox ${args.join(" ")} in ${root}: ${run.stderr}`);
  }
  return root;
}

export interface Run {
  code: number | null;
  /** stdout as runner events (JSON lines); empty when the runner never started. */
  events: RunnerEvent[];
  stdout: string;
  stderr: string;
}

export function chroot(
  root: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  onOutput?: (pid: number, soFar: string) => void,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn("/usr/sbin/chroot", [root, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => {
      out += d;
      if (child.pid !== undefined) onOutput?.(child.pid, out);
    });
    child.stderr.setEncoding("utf8").on("data", (d: string) => {
      err += d;
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const lines = out.split("\n").filter((l) => l !== "");
      const events = lines.every((l) => l.startsWith("{"))
        ? lines.map((l) => JSON.parse(l) as RunnerEvent)
        : [];
      resolve({ code, events, stdout: out, stderr: err });
    });
  });
}

export function ofType<T extends RunnerEvent["type"]>(events: RunnerEvent[], type: T) {
  return events.filter((e): e is Extract<RunnerEvent, { type: T }> => e.type === type);
}

export function text(events: RunnerEvent[], step: number, stream: "stdout" | "stderr"): string {
  return ofType(events, "output")
    .filter((e) => e.step === step && e.stream === stream)
    .map((e) => e.data)
    .join("");
}
