import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { anyGlob, globMatch, isValidGlob } from "./glob.ts";

// [pattern, name, expected] derived from doublestar v4's documented pattern terms.
const table: [string, string, boolean][] = [
  // literals
  ["main", "main", true],
  ["main", "mainline", false],
  ["main", "Main", false],
  ["", "", true],
  ["", "x", false],
  // `*`: any run of non-separators
  ["*", "main", true],
  ["*", "", true],
  ["*", "feature/x", false],
  ["release-*", "release-1.2", true],
  ["release-*", "release-", true],
  ["release-*", "release/1", false],
  ["feature/*", "feature/login", true],
  ["feature/*", "feature/a/b", false],
  ["*/*", "a/b", true],
  ["*x*", "abxcd", true],
  ["a*b*c", "aXbYbZc", true],
  ["a*b*c", "aXbYbZ", false],
  // `**` as a whole component crosses `/`
  ["**", "main", true],
  ["**", "a/b/c", true],
  ["**", "", true],
  ["feature/**", "feature/a/b", true],
  ["feature/**", "feature/a", true],
  ["feature/**", "feature", true],
  ["feature/**", "features", false],
  ["**/fix", "fix", true],
  ["**/fix", "a/b/fix", true],
  ["**/fix", "a/b/fixed", false],
  ["a/**/z", "a/z", true],
  ["a/**/z", "a/b/c/z", true],
  ["a/**/z", "a/b/c/y", false],
  ["a/**/", "a/b/", true],
  ["a/**/", "a/b", false],
  ["a/**/", "a", true],
  ["a/**/", "a/", true],
  ["a/**", "a/", true],
  ["a/", "a", false],
  ["a/b/c", "a/b//c", false],
  ["abc**", "abc/b", false],
  ["a/\\**", "a/b/c", false],
  // `**` inside a component is `*`
  ["rel**", "release", true],
  ["rel**", "rel/ease", false],
  ["a/**.txt", "a/b.txt", true],
  ["a/**.txt", "a/b/c.txt", false],
  // `?`
  ["v?", "v1", true],
  ["v?", "v12", false],
  ["v?", "v", false],
  ["a?b", "a/b", false],
  ["?", "é", true],
  // classes
  ["v[0-9]", "v7", true],
  ["v[0-9]", "vx", false],
  ["[abc]", "b", true],
  ["[abc]", "d", false],
  ["[^abc]", "d", true],
  ["[^abc]", "a", false],
  ["[!abc]", "d", true],
  ["[!abc]", "a", false],
  ["a[/]b", "a/b", false],
  ["[\\]]", "]", true],
  ["[\\-]", "-", true],
  ["[a\\-z]", "b", false],
  // doublestar v4, like bash, reads a `-` at either end of a class, or after a range, literally
  ["[-]", "-", true],
  ["[x-]", "x", true],
  ["[x-]", "-", true],
  ["[x-]", "z", false],
  ["[-x]", "-", true],
  ["[-x]", "a", false],
  ["[a-b-d]", "a", true],
  ["[a-b-d]", "-", true],
  ["[a-b-d]", "c", false],
  ["[a-b-x]", "x", true],
  ["[a-ζ]*", "α", true],
  ["a[^a]b", "a☺b", true],
  ["a???b", "a☺b", false],
  // alternatives
  ["{main,master}", "main", true],
  ["{main,master}", "master", true],
  ["{main,master}", "dev", false],
  ["v{1,2}.{0,1}", "v2.1", true],
  ["{a,b{c,d}}", "bd", true],
  ["{a,b{c,d}}", "b", false],
  ["{feat,fix}/**", "fix/a/b", true],
  ["x{}y", "xy", true],
  ["a{,bc}", "a", true],
  ["a{,bc}", "abc", true],
  ["a/{b/c,c/b}", "a/c/b", true],
  ["{a/{b,c},abc}", "a/c", true],
  ["{a/{b,c},abc}", "a/b/c", false],
  ["**/{a,b}", "a/b", true],
  // escapes
  ["\\*", "*", true],
  ["\\*", "a", false],
  ["a\\?b", "a?b", true],
  ["a\\?b", "axb", false],
  ["\\{a,b\\}", "{a,b}", true],
  // malformed patterns never match
  ["[", "[", false],
  ["[]", "x", false],
  ["[]a]", "]", false],
  ["[^bc", "a", false],
  ["a[", "a", false],
  ["ab{c,d}[", "abcd", false],
  ["{a,b", "a", false],
  ["a\\", "a", false],
];

describe("globMatch (doublestar v4 Match semantics)", () => {
  for (const [pattern, name, expected] of table) {
    it(`${JSON.stringify(pattern)} ${expected ? "matches" : "does not match"} ${JSON.stringify(name)}`, () => {
      assert.equal(globMatch(pattern, name), expected);
    });
  }
});

describe("isValidGlob", () => {
  it("accepts well-formed patterns and rejects malformed ones", () => {
    assert.equal(isValidGlob("release-{a,b}/**/[0-9]*"), true);
    assert.equal(isValidGlob("[z-]"), true);
    for (const bad of ["[", "[]", "{a", "x\\", "[^"]) assert.equal(isValidGlob(bad), false, bad);
  });
  it("treats a brace bomb as malformed instead of expanding it", () => {
    assert.equal(isValidGlob("{a,b}".repeat(40)), false);
  });
});

describe("anyGlob", () => {
  it("never matches with an empty pattern list", () => {
    assert.equal(anyGlob([], "main"), false);
    assert.equal(anyGlob([], ""), false);
  });
  it("matches if any pattern matches", () => {
    assert.equal(anyGlob(["dev", "ma*"], "main"), true);
    assert.equal(anyGlob(["dev", "x*"], "main"), false);
  });
});

describe("glob performance", () => {
  it("does not backtrack exponentially on many stars", () => {
    const started = performance.now();
    assert.equal(globMatch(`${"*a".repeat(30)}b`, "a".repeat(5000)), false);
    assert.equal(globMatch(`**/${"*a".repeat(20)}/**/b`, Array(300).fill("aaaa").join("/")), false);
    assert.ok(performance.now() - started < 2000);
  });
  it("handles names with thousands of segments without recursion", () => {
    const deep = Array(50_000).fill("a").join("/");
    assert.equal(globMatch("**/a/**/b", deep), false);
    assert.equal(globMatch("a/**", deep), true);
  });
});
