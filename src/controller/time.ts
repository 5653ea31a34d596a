/** Kubernetes timestamps: Dates from typed lists, strings from watches. */

/** Objects from a typed list carry Dates; objects from a watch carry strings. */
export function ms(value: Date | string | undefined | null, fallback: Date | number): number {
  if (value instanceof Date) return value.getTime();
  const parsed = typeof value === "string" ? Date.parse(value) : Number.NaN;
  return Number.isNaN(parsed) ? (typeof fallback === "number" ? fallback : fallback.getTime()) : parsed;
}

/** RFC 3339 without fractional seconds, as Kubernetes writes times. */
export function iso(value: Date | string | undefined | null): string | undefined {
  if (value === undefined || value === null) return undefined;
  const t = ms(value, Number.NaN);
  return Number.isNaN(t) ? undefined : new Date(t).toISOString().replace(/\.\d{3}Z$/, "Z");
}
