import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, it } from "node:test";
import { elfInfo } from "../../scripts/elf.ts";

describe("elfInfo", () => {
  it("reads the machine, interpreter and DT_NEEDED entries ldd reports for /bin/sh", () => {
    const sh = execFileSync("readlink", ["-f", "/bin/sh"], { encoding: "utf8" }).trim();
    const info = elfInfo(readFileSync(sh));
    assert.equal(info.machine, process.arch === "arm64" ? 183 : 62);
    assert.match(info.interpreter ?? "", /\/ld-linux-(x86-64\.so\.2|aarch64\.so\.1)$/);
    const ldd = execFileSync("ldd", [sh], { encoding: "utf8" });
    const fromLdd = [...ldd.matchAll(/^\s*(\S+) => /gm)].map((m) => m[1]);
    assert.deepEqual([...info.needed].sort(), fromLdd.sort());
  });

  it("refuses what is not a 64-bit little-endian ELF file", () => {
    assert.throws(() => elfInfo(Buffer.from("#!/bin/sh\necho hi\n".padEnd(80))), /not an ELF file/);
    const elf32 = Buffer.alloc(64);
    elf32.writeUInt32BE(0x7f454c46, 0);
    elf32[4] = 1;
    elf32[5] = 1;
    assert.throws(() => elfInfo(elf32), /64-bit little-endian/);
  });
});
