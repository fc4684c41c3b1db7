import test from "ava";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { projectRoot } from "../../../contracts/runtime/project-root.js";
import { commandLineProblems, flagNamesOf, NOT_YET_MERGED_FLAGS, ROLES } from "../../support/deploy/component-flags.js";

test("the flags the deployment files take from unmerged branches are still missing here: empty NOT_YET_MERGED_FLAGS as they land", (t) => {
  for (const role of ROLES) {
    const landed = NOT_YET_MERGED_FLAGS[role].filter((name) => flagNamesOf(role).includes(name));
    t.deepEqual(landed, [], `llorch ${role} has these now: remove them from NOT_YET_MERGED_FLAGS (test/support/deploy/component-flags.ts)`);
  }
});

test("a command line check finds an unknown flag, a missing value, a value the flag refuses and a stray argument", (t) => {
  t.deepEqual(commandLineProblems("core", ["--port", "50051", "--queue-capacity", "8"]), []);
  t.deepEqual(commandLineProblems("core", ["--prot", "50051"]), ["core: --prot is not a flag of llorch core"]);
  t.deepEqual(commandLineProblems("edge", ["--core"]), ["edge: --core needs a value"]);
  t.regex(commandLineProblems("worker", ["--gpu", "quantum"]).join("\n"), /--gpu/);
  t.regex(commandLineProblems("core", ["--port", "fifty"]).join("\n"), /--port/);
  t.deepEqual(commandLineProblems("edge", ["8080"]), ['edge: "8080" is no flag (llorch edge takes no positional argument)']);
  t.deepEqual(commandLineProblems("edge", ["--auth-optional", "--port", "8080"]), [], "a switch takes no value");
});

test("the README's `llorch worker` command for a new GPU node has only real flags of llorch worker", (t) => {
  const readme = readFileSync(join(projectRoot(), "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("### Add a GPU node"));
  const command = /^\s*llorch worker ((?:.*\\\n)*.*)$/m.exec(section);
  t.truthy(command, "the section shows the command");
  const words = command![1]!
    .replace(/\\\n/g, " ")
    .split(/\s+/)
    .filter((w) => w !== "");
  t.true(words.length > 10);
  t.deepEqual(commandLineProblems("worker", words), []);
});
