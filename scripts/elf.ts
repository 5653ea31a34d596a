/**
 * Just enough of an ELF reader for the runner bundle: the machine a 64-bit little-endian ELF file
 * is for, its program interpreter and the shared libraries it needs (DT_NEEDED). No `ldd`: that
 * runs the file's own loader, which cannot work for another architecture.
 */

export interface ElfInfo {
  /** e_machine: 62 = x86-64, 183 = AArch64. */
  machine: number;
  /** PT_INTERP, for an executable. */
  interpreter: string | undefined;
  needed: string[];
}

const PT_LOAD = 1;
const PT_DYNAMIC = 2;
const PT_INTERP = 3;
const DT_NEEDED = 1n;
const DT_STRTAB = 5n;

export function elfInfo(buf: Buffer): ElfInfo {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46) throw new Error("not an ELF file");
  if (buf[4] !== 2 || buf[5] !== 1) throw new Error("not a 64-bit little-endian ELF file");
  const machine = buf.readUInt16LE(18);
  const phoff = Number(buf.readBigUInt64LE(32));
  const phentsize = buf.readUInt16LE(54);
  const phnum = buf.readUInt16LE(56);
  const segments = Array.from({ length: phnum }, (_, i) => {
    const at = phoff + i * phentsize;
    return {
      type: buf.readUInt32LE(at),
      offset: Number(buf.readBigUInt64LE(at + 8)),
      vaddr: buf.readBigUInt64LE(at + 16),
      filesz: Number(buf.readBigUInt64LE(at + 32)),
    };
  });
  const cstring = (at: number) => buf.toString("latin1", at, buf.indexOf(0, at));
  const interp = segments.find((s) => s.type === PT_INTERP);
  const dynamic = segments.find((s) => s.type === PT_DYNAMIC);
  const needed: string[] = [];
  if (dynamic) {
    const offsets: bigint[] = [];
    let strtab: bigint | undefined;
    for (let at = dynamic.offset; at + 16 <= dynamic.offset + dynamic.filesz; at += 16) {
      const tag = buf.readBigInt64LE(at);
      if (tag === 0n) break;
      const val = buf.readBigUInt64LE(at + 8);
      if (tag === DT_NEEDED) offsets.push(val);
      else if (tag === DT_STRTAB) strtab = val;
    }
    if (offsets.length > 0) {
      if (strtab === undefined) throw new Error("DT_NEEDED without DT_STRTAB");
      // DT_STRTAB is an address: find the file offset through the PT_LOAD segment holding it.
      const load = segments.find(
        (s) => s.type === PT_LOAD && s.vaddr <= strtab && strtab < s.vaddr + BigInt(s.filesz),
      );
      if (!load) throw new Error("DT_STRTAB is in no loaded segment");
      const base = load.offset + Number(strtab - load.vaddr);
      for (const off of offsets) needed.push(cstring(base + Number(off)));
    }
  }
  return { machine, interpreter: interp && cstring(interp.offset), needed };
}
