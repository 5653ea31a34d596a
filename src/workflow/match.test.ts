import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { constraintMatches, shortRefName, workflowMatches } from "./match.ts";
import { manualTrigger, prTrigger, pushTrigger } from "./testkit.ts";
import type { Constraint, TriggerMetadata } from "./types.ts";

const pos = { line: 1, column: 1 };
const c = (event: string[], branch: string[] = [], tag: string[] = []): Constraint => ({
  event,
  branch,
  tag,
  pos,
});

describe("workflowMatches (spec §2.4)", () => {
  it("a manual trigger always matches, even constraints that name no manual event", () => {
    assert.equal(workflowMatches([c(["push"], ["main"])], manualTrigger()), true);
    assert.equal(workflowMatches([c([])], manualTrigger()), true);
  });
  it("no `when` matches every trigger", () => {
    for (const t of [
      pushTrigger("refs/heads/x"),
      pushTrigger("refs/tags/v1"),
      prTrigger("x"),
      manualTrigger(),
    ]) {
      assert.equal(workflowMatches([], t), true);
    }
  });
  it("any matching constraint is enough", () => {
    const when = [c(["push"], ["dev"]), c(["push"], ["main"])];
    assert.equal(workflowMatches(when, pushTrigger("refs/heads/main")), true);
    assert.equal(workflowMatches(when, pushTrigger("refs/heads/other")), false);
  });
});

describe("constraintMatches (spec §2.4)", () => {
  const cases: [string, Constraint, TriggerMetadata, boolean][] = [
    ["push branch matches short ref name", c(["push"], ["main"]), pushTrigger("refs/heads/main"), true],
    ["push branch glob", c(["push"], ["release-*"]), pushTrigger("refs/heads/release-1"), true],
    ["`*` does not cross `/`", c(["push"], ["feature/*"]), pushTrigger("refs/heads/feature/a/b"), false],
    ["`**` crosses `/`", c(["push"], ["feature/**"]), pushTrigger("refs/heads/feature/a/b"), true],
    ["event must list the kind", c(["pull_request"], ["main"]), pushTrigger("refs/heads/main"), false],
    ["no event never matches", c([], ["main"]), pushTrigger("refs/heads/main"), false],
    ["unknown event strings never match", c(["pushed"], ["main"]), pushTrigger("refs/heads/main"), false],
    ["event compared literally (case)", c(["Push"], ["main"]), pushTrigger("refs/heads/main"), false],
    ["branch push needs a branch pattern", c(["push"], [], ["*"]), pushTrigger("refs/heads/main"), false],
    ["tag push matches tag globs", c(["push"], [], ["v*"]), pushTrigger("refs/tags/v1.2"), true],
    ["tag push ignores branch globs", c(["push"], ["**"]), pushTrigger("refs/tags/v1.2"), false],
    ["tag glob mismatch", c(["push"], ["main"], ["v*"]), pushTrigger("refs/tags/stable"), false],
    [
      "branch and tag in one constraint: tag side",
      c(["push"], ["main"], ["stable"]),
      pushTrigger("refs/tags/stable"),
      true,
    ],
    ["other refs never match", c(["push"], ["**"], ["**"]), pushTrigger("refs/notes/commits"), false],
    ["refs/heads prefix is required exactly", c(["push"], ["**"]), pushTrigger("refs/headsx/main"), false],
    ["PR matches the target branch", c(["pull_request"], ["main"]), prTrigger("main", "feature"), true],
    [
      "PR never matches the source branch",
      c(["pull_request"], ["feature"]),
      prTrigger("main", "feature"),
      false,
    ],
    ["PR needs a branch pattern", c(["pull_request"]), prTrigger("main"), false],
    ["PR ignores tag patterns", c(["pull_request"], [], ["main"]), prTrigger("main"), false],
    ["manual: constraint always true", c(["push"]), manualTrigger(), true],
  ];
  for (const [name, constraint, trigger, expected] of cases) {
    it(name, () => assert.equal(constraintMatches(constraint, trigger), expected));
  }

  it("a kind without push or PR data matches on event alone", () => {
    const bare: TriggerMetadata = { kind: "push", repo: pushTrigger("refs/heads/x").repo };
    assert.equal(constraintMatches(c(["push"]), bare), true);
  });
});

describe("shortRefName", () => {
  it("strips refs/heads/ and refs/tags/ only", () => {
    assert.equal(shortRefName("refs/heads/feature/x"), "feature/x");
    assert.equal(shortRefName("refs/tags/v1"), "v1");
    assert.equal(shortRefName("refs/notes/x"), "refs/notes/x");
  });
});

describe("Gen2 matching (gen2 §2.11), behind an explicit option", () => {
  const pr = (action: string) => ({
    ...prTrigger("main"),
    pullRequest: { ...prTrigger("main").pullRequest!, action },
  });
  const typed = (types?: string[], paths?: string[]): Constraint => ({
    ...c(["pull_request", "push"], ["main"]),
    types,
    paths,
  });

  it("is off by default: types and paths change nothing", () => {
    assert.equal(constraintMatches(typed(["closed"]), pr("opened")), true);
    assert.equal(
      constraintMatches(typed(undefined, ["docs/**"]), pushTrigger("refs/heads/main"), {
        changedFiles: ["src/a.ts"],
      }),
      true,
    );
  });
  it("types narrow pull requests; default opened, reopened, synchronize; empty action is opened", () => {
    const on = { gen2: true };
    assert.equal(constraintMatches(typed(), pr("opened"), on), true);
    assert.equal(constraintMatches(typed(), pr("synchronize"), on), true);
    assert.equal(constraintMatches(typed(), pr("closed"), on), false);
    assert.equal(constraintMatches(typed(), pr(""), on), true);
    assert.equal(constraintMatches(typed(["closed", "merged"]), pr("merged"), on), true);
    assert.equal(constraintMatches(typed(["closed"]), pr("opened"), on), false);
    assert.equal(constraintMatches(typed(["closed"]), pushTrigger("refs/heads/main"), on), true);
  });
  it("paths narrow by changed files when they are known", () => {
    const on = (changedFiles?: string[]) => ({ gen2: true, changedFiles });
    const t = pushTrigger("refs/heads/main");
    assert.equal(constraintMatches(typed(undefined, ["src/**"]), t, on(["src/a/b.ts"])), true);
    assert.equal(constraintMatches(typed(undefined, ["src/*"]), t, on(["src/a/b.ts"])), false);
    assert.equal(constraintMatches(typed(undefined, ["src/**"]), t, on([])), false);
    assert.equal(constraintMatches(typed(undefined, ["src/**"]), t, on(undefined)), true);
  });
});
