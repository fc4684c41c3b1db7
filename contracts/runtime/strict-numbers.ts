// Strict parsing for numbers typed by people (command-line flags, config files,
// the mock's prompt directive): Number("") is 0 and parseInt("12abc") is 12, so
// neither is used.

/** "0", "42"; undefined for anything else (signs, decimals, blanks, exponents). */
export function parseNonNegativeInteger(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** "0", "12", "2.5"; undefined for anything else. */
export function parseNonNegativeNumber(text: string): number | undefined {
  return /^\d+(\.\d+)?$/.test(text) ? Number(text) : undefined;
}
