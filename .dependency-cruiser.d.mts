// Types for .dependency-cruiser.mjs (read by test/docs/layers.test.ts).
import type { ICruiseOptions, IForbiddenRuleType } from "dependency-cruiser";

export declare const LAYERS: Record<string, string[]>;
declare const config: { forbidden: IForbiddenRuleType[]; options: ICruiseOptions };
export default config;
