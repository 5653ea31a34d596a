// The layers of src/, enforced by `make lint` (dependency-cruiser, `npm run lint:layers`).
// LAYERS is the one table: for each folder of src/, the other folders of src/ it may import.
// Each folder's README.md repeats its row ("May import: …"); test/docs/layers.test.ts keeps
// the two in step. Imports inside a folder are free; import cycles are refused everywhere.
export const LAYERS = {
  mask: [],
  runner: ["mask"],
  protocol: [],
  workflow: ["protocol", "runner"],
  relay: ["mask", "protocol", "runner"],
  net: ["protocol", "workflow"],
  api: ["runner"],
  controller: ["api", "runner"],
  engine: ["api", "mask", "protocol", "relay", "runner", "workflow"],
  telemetry: ["protocol", "relay"],
  spindle: ["controller", "engine", "mask", "net", "protocol", "relay", "telemetry", "workflow"],
  cli: ["controller", "engine", "mask", "protocol", "relay", "spindle", "telemetry", "workflow"],
};

// npm packages a layer may not use (the controller knows nothing of AT Protocol).
const FORBIDDEN_PACKAGES = {
  controller: ["^@atproto/"],
  api: ["^@atproto/"],
  engine: ["^@atproto/"],
  runner: ["(?!zod/)"],
  mask: [".*"],
};

const folders = Object.keys(LAYERS);
const layerRules = folders.map((from) => {
  const allowed = [from, ...LAYERS[from]];
  return {
    name: `layer-${from}`,
    comment: `src/${from} may import only ${LAYERS[from].map((f) => `src/${f}`).join(", ") || "nothing else of src/"} (LAYERS in .dependency-cruiser.mjs)`,
    severity: "error",
    from: { path: `^src/${from}/`, pathNot: "\\.test\\.ts$" },
    to: { path: "^src/", pathNot: `^src/(${allowed.join("|")})/` },
  };
});
const unknownFolder = {
  name: "layer-unknown-folder",
  comment: "every folder of src/ has a row in LAYERS (.dependency-cruiser.mjs)",
  severity: "error",
  from: { path: "^src/", pathNot: `^src/(${folders.join("|")})/` },
  to: {},
};
const packageRules = Object.entries(FORBIDDEN_PACKAGES).map(([from, patterns]) => ({
  name: `packages-${from}`,
  comment: `src/${from} may not use these npm packages: ${patterns.join(" ")}`,
  severity: "error",
  from: { path: `^src/${from}/`, pathNot: "\\.test\\.ts$" },
  to: {
    dependencyTypes: ["npm", "npm-dev", "npm-optional", "npm-peer", "npm-no-pkg"],
    path: patterns.map((p) => `node_modules/${p.replace(/^\^/, "")}`),
  },
}));

export default {
  forbidden: [
    {
      name: "no-circular",
      comment: "import cycles make the layers meaningless and the load order fragile",
      severity: "error",
      from: {},
      to: { circular: true },
    },
    {
      name: "not-to-unresolvable",
      severity: "error",
      from: {},
      to: { couldNotResolve: true },
    },
    unknownFolder,
    ...layerRules,
    ...packageRules,
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: "tsconfig.json" },
    doNotFollow: { path: "node_modules" },
    enhancedResolveOptions: {
      exportsFields: ["exports"],
      conditionNames: ["import", "require", "node", "default", "types"],
    },
  },
};
