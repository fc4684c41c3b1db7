// @ts-check
import eslint from "@eslint/js";
import { defineConfig } from "eslint/config";
import prettier from "eslint-config-prettier";
import tseslint from "typescript-eslint";

export default defineConfig(
  { ignores: ["dist/", "node_modules/", "contracts/gen/"] },
  eslint.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ["eslint.config.js"] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      // With inline type imports, an import of types only is `import type { … }`, so it is visibly erased.
      "@typescript-eslint/no-import-type-side-effects": "error",
      // The same convention as tsc's noUnusedLocals/noUnusedParameters: a leading `_` marks a name kept on purpose
      // (an interface's parameter, a member dropped by destructuring into a rest).
      "@typescript-eslint/no-unused-vars": [
        "error",
        { argsIgnorePattern: "^_", varsIgnorePattern: "^_", caughtErrorsIgnorePattern: "^_", ignoreRestSiblings: true },
      ],
    },
  },
  {
    // Tests read untyped JSON (response bodies, files on disk, the requests a fake engine received; see
    // test/support/json.ts) and the conformance table's engine specs, whose type parameters differ per engine.
    // Their assertions are the type check, so an `any` flowing from there into a member access, a call or an
    // argument is the point, not a slip. Production code keeps these rules.
    files: ["test/**"],
    rules: {
      "@typescript-eslint/no-unsafe-argument": "off",
      "@typescript-eslint/no-unsafe-assignment": "off",
      "@typescript-eslint/no-unsafe-call": "off",
      "@typescript-eslint/no-unsafe-member-access": "off",
      "@typescript-eslint/no-unsafe-return": "off",
    },
  },
  {
    // The operator console runs in the browser as plain JavaScript (no build step): no type information, browser globals.
    files: ["edge/ui/**/*.js"],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: {
      sourceType: "module",
      globals: Object.fromEntries(
        ["window", "document", "fetch", "sessionStorage", "TextDecoder", "crypto", "setInterval", "Node", "console"].map((g) => [
          g,
          "readonly",
        ]),
      ),
    },
  },
  prettier,
);
