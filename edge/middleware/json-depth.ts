/** A JSON pointer longer than this is cut at a token boundary before it goes into an error. */
const MAX_POINTER_CHARS = 512;

interface Visit {
  value: unknown;
  depth: number;
  parent: Visit | undefined;
  key: string;
}

/**
 * The JSON pointer of the first array or object nested deeper than
 * `maxDepth` (the top-level value is level 1), or undefined when none is.
 * Iterative, so a body of any depth is measured without recursion: what
 * JSON.parse accepted (it has no depth limit) never reaches code that
 * recurses into it.
 */
export function tooDeepAt(value: unknown, maxDepth: number): string | undefined {
  const stack: Visit[] = [{ value, depth: 1, parent: undefined, key: "" }];
  for (let visit = stack.pop(); visit !== undefined; visit = stack.pop()) {
    const v = visit.value;
    if (typeof v !== "object" || v === null) continue;
    if (visit.depth > maxDepth) return pointerOf(visit);
    const entries: [string, unknown][] = Array.isArray(v) ? v.map((item, i) => [String(i), item]) : Object.entries(v);
    for (const [key, child] of entries) {
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: visit.depth + 1, parent: visit, key });
    }
  }
  return undefined;
}

function pointerOf(visit: Visit): string {
  const tokens: string[] = [];
  for (let v: Visit | undefined = visit; v?.parent !== undefined; v = v.parent) {
    tokens.push(v.key.replace(/~/g, "~0").replace(/\//g, "~1"));
  }
  let pointer = "";
  for (const token of tokens.reverse()) {
    if (pointer.length + token.length + 1 > MAX_POINTER_CHARS) break;
    pointer += `/${token}`;
  }
  return pointer;
}
