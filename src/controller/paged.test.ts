import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { LIST_PAGE, paged } from "./api.ts";

describe("paged", () => {
  it("joins every page, passing each continue token on (typed `_continue` or plain `continue`)", async () => {
    const asked: { limit: number; _continue?: string }[] = [];
    const pages = [
      { items: [1, 2], metadata: { resourceVersion: "10", _continue: "a" } },
      { items: [3], metadata: { resourceVersion: "10", continue: "b" } },
      { items: [4, 5], metadata: { resourceVersion: "10" } },
    ];
    const result = await paged(async (page) => {
      asked.push(page);
      return pages[asked.length - 1]!;
    });
    assert.deepEqual(result, { items: [1, 2, 3, 4, 5], metadata: { resourceVersion: "10" } });
    assert.deepEqual(asked, [
      { limit: LIST_PAGE },
      { limit: LIST_PAGE, _continue: "a" },
      { limit: LIST_PAGE, _continue: "b" },
    ]);
  });

  it("is one call for a list that fits a page", async () => {
    let calls = 0;
    const result = await paged(async () => {
      calls++;
      return { items: ["x"], metadata: { resourceVersion: "3", _continue: "" } };
    });
    assert.equal(calls, 1);
    assert.deepEqual(result.items, ["x"]);
  });

  it("passes each page's items through `each` before it asks for the next page (a relist holds one page of full objects)", async () => {
    const slimmed: number[] = [];
    const seenWhenAsked: number[] = [];
    const pages = [
      { items: [{ n: 1, big: "x".repeat(100) }], metadata: { resourceVersion: "10", _continue: "a" } },
      { items: [{ n: 2, big: "x".repeat(100) }], metadata: { resourceVersion: "10" } },
    ];
    const result = await paged(
      async () => {
        seenWhenAsked.push(slimmed.length);
        return pages[seenWhenAsked.length - 1]!;
      },
      (item) => {
        slimmed.push(item.n);
        return { n: item.n } as typeof item;
      },
    );
    assert.deepEqual(seenWhenAsked, [0, 1]);
    assert.deepEqual(result.items, [{ n: 1 }, { n: 2 }]);
  });
});
