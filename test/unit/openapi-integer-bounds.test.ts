import test from "ava";
import { loadApiDocuments } from "../../contracts/openapi.js";
import { walk, type Json } from "./openapi-walk.js";

// JSON numbers past 2^53 lose digits in JavaScript, and protobuf's integers end
// at 2^31, 2^32, 2^63 or 2^64: an integer the contract does not bound passes
// validation and then fails serialization (a 500 instead of a 400 naming it).

const SAFE = Number.MAX_SAFE_INTEGER;
const INT32: [number, number] = [-(2 ** 31), 2 ** 31 - 1];

function isInteger(node: Json): boolean {
  return node.type === "integer" || (Array.isArray(node.type) && node.type.includes("integer"));
}

/** What is wrong with one integer schema's bounds, if anything. */
function problemOf(node: Json): string | undefined {
  if (Array.isArray(node.enum)) return node.enum.every((v) => Number.isSafeInteger(v)) ? undefined : "an enum value is not a safe integer";
  const { minimum: min, maximum: max } = node;
  if (typeof min !== "number" || typeof max !== "number") return "has no minimum and maximum";
  if (min < -SAFE || max > SAFE) return `[${min}, ${max}] reaches past JavaScript's safe integers`;
  if (node.format === "int32" && (min < INT32[0] || max > INT32[1])) return `[${min}, ${max}] is wider than its int32 format`;
  if (min > max) return `minimum ${min} is above maximum ${max}`;
  return undefined;
}

for (const name of ["data", "control", "compat"] as const) {
  test(`${name}.yaml bounds every integer to what protobuf and JavaScript carry`, (t) => {
    const doc = loadApiDocuments()[name];
    const problems: string[] = [];
    let integers = 0;
    walk(doc, "", (node, pointer) => {
      if (!isInteger(node)) return;
      integers++;
      const problem = problemOf(node);
      if (problem) problems.push(`${pointer}: ${problem}`);
    });
    t.true(integers > 5, "the walk found the document's integers");
    t.deepEqual(problems, []);
  });
}

test("an unbounded integer is caught", (t) => {
  t.truthy(problemOf({ type: "integer", format: "int64", minimum: 0 }));
  t.truthy(problemOf({ type: "integer", minimum: 0, maximum: 2 ** 63 }));
  t.truthy(problemOf({ type: "integer", format: "int32", minimum: 0, maximum: 2 ** 32 - 1 }));
  t.is(problemOf({ type: "integer", format: "int64", minimum: -SAFE, maximum: SAFE }), undefined);
  t.is(problemOf({ type: "integer", enum: [0] }), undefined);
});
