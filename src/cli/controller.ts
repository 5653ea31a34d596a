/**
 * `loom controller`: runs the SpindleSet controller until SIGINT/SIGTERM. Configuration: the
 * `kubernetes:` section of the config file (LOOM_CONFIG, default /etc/loom/config.yaml), or the
 * original Loom's top-level `maxConcurrentJobs` and `template` (src/spindle/config/kubernetes.ts);
 * cluster access: KUBECONFIG, ~/.kube/config or the in-cluster service account. Serves
 * `/metrics` and `/healthz` on --metrics-port when given (0 = any free port).
 */
import { createServer, type Server } from "node:http";
import { KubeConfig } from "@kubernetes/client-node";
import { pino } from "pino";
import { parseControllerConfig } from "../controller/config.ts";
import { SpindleSetController } from "../controller/controller.ts";
import { loadKubernetesSection } from "../spindle/config/index.ts";

type Env = Readonly<Record<string, string | undefined>>;

export interface ControllerCommandOptions {
  env: Env;
  metricsPort?: number;
  /** Replica identity for the Lease (default: host name + random suffix). */
  identity?: string;
}

export async function controllerCommand(opts: ControllerCommandOptions): Promise<number> {
  const log = pino({ name: "loom-controller", level: opts.env.LOOM_LOG_LEVEL?.trim() || "info" });
  const { configFile, kubernetes, topLevel } = loadKubernetesSection(opts.env);
  const config = parseControllerConfig(kubernetes, "kubernetes", topLevel);
  const path = configFile ?? "(no config file)";
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromDefault();
  const controller = SpindleSetController.create({
    kubeConfig,
    config,
    log,
    leaderElection: opts.identity ? { identity: opts.identity } : {},
  });
  await controller.preflight();
  const server =
    opts.metricsPort !== undefined ? await serveMetrics(controller, opts.metricsPort) : undefined;
  await controller.start();
  log.info({ namespace: config.namespace, config: path }, "controller started");
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  log.info({}, "controller stopping");
  await controller.stop();
  server?.close();
  return 0;
}

async function serveMetrics(controller: SpindleSetController, port: number): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === "/healthz") {
      res.end("ok");
      return;
    }
    if (req.url !== "/metrics") {
      res.statusCode = 404;
      res.end();
      return;
    }
    controller.metrics.registry.metrics().then(
      (text) => {
        res.setHeader("Content-Type", controller.metrics.registry.contentType);
        res.end(text);
      },
      () => {
        res.statusCode = 500;
        res.end();
      },
    );
  });
  await new Promise<void>((resolve) => server.listen(port, resolve));
  return server;
}
