/**
 * The uniqueness key of a display name: two names with the same key cannot
 * be held by two users in one room.
 *
 * @module
 */

/**
 * The key names are compared by: NFKC, then case-folded.
 *
 * @example Usage
 * ```ts
 * import { nameKey } from "./names.ts";
 * nameKey("Ada") === nameKey("ada"); // true
 * ```
 */
export function nameKey(name: string): string {
  return name.normalize("NFKC").toLowerCase();
}
