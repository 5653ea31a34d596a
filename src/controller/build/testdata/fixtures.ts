/** Plain inputs shared by the builder tests: the API's run fixtures plus a controller config. */
import { type ControllerConfig, parseControllerConfig } from "../../config.ts";

export { OWNER, SECRET_VALUES, spec, specInput } from "../../../api/contract/testdata/fixtures.ts";

export function config(overrides: Record<string, unknown> = {}): ControllerConfig {
  return parseControllerConfig({
    images: { runner: "ghcr.io/example/loom-runner:0.1.0" },
    template: {
      resourceProfiles: [
        {
          name: "small",
          resources: { requests: { cpu: "500m", memory: "1Gi" }, limits: { memory: "2Gi" } },
          tolerations: [{ key: "ci", operator: "Exists", effect: "NoSchedule" }],
        },
      ],
    },
    ...overrides,
  });
}
