import test from "ava";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { hubMetaOf, isSafeRelativePath, normalizeEtag, resolveUrl } from "../../../../workers/provision/hub-protocol.js";
import { defaultModelCacheDir, hubSettings } from "../../../../workers/provision/hub-settings.js";
import { ProvisionError } from "../../../../workers/provision/provision-error.js";
import { tempDir } from "./provision-harness.js";

test("the model cache defaults to LLORCH_MODEL_CACHE, else $XDG_CACHE_HOME/llorch/models, else ~/.cache/llorch/models", (t) => {
  t.is(defaultModelCacheDir({ HOME: "/home/u" }), path.join("/home/u", ".cache", "llorch", "models"));
  t.is(defaultModelCacheDir({ HOME: "/home/u", XDG_CACHE_HOME: "/xdg" }), path.join("/xdg", "llorch", "models"));
  t.is(defaultModelCacheDir({ HOME: "/home/u", XDG_CACHE_HOME: "/xdg", LLORCH_MODEL_CACHE: "/srv/models" }), "/srv/models");
  t.is(defaultModelCacheDir({ HOME: "/home/u", LLORCH_MODEL_CACHE: "~/m" }), path.join("/home/u", "m"));
});

test("the hub settings follow huggingface_hub: HF_ENDPOINT, HF_HOME, HF_HUB_CACHE, XDG_CACHE_HOME", async (t) => {
  const home = await tempDir(t);
  t.like(await hubSettings({ HOME: home }), {
    endpoint: "https://huggingface.co",
    token: undefined,
    hubCacheDir: path.join(home, ".cache", "huggingface", "hub"),
  });
  t.like(await hubSettings({ HOME: home, XDG_CACHE_HOME: "/xdg" }), { hubCacheDir: path.join("/xdg", "huggingface", "hub") });
  t.like(await hubSettings({ HOME: home, HF_HOME: "/hf" }), { hubCacheDir: path.join("/hf", "hub") });
  t.like(await hubSettings({ HOME: home, HF_HOME: "/hf", HF_HUB_CACHE: "/cache" }), { hubCacheDir: "/cache" });
  t.like(await hubSettings({ HOME: home, HF_ENDPOINT: "https://mirror.example/hf/" }), { endpoint: "https://mirror.example/hf" });
});

test("the token is HF_TOKEN, else the token file ($HF_HOME/token or HF_TOKEN_PATH); where it came from is kept for messages", async (t) => {
  const home = await tempDir(t);
  const hfHome = path.join(home, "hf");
  await mkdir(hfHome);
  t.like(await hubSettings({ HOME: home, HF_HOME: hfHome }), { token: undefined, tokenSource: undefined });
  await writeFile(path.join(hfHome, "token"), "hf_from_file\n");
  t.like(await hubSettings({ HOME: home, HF_HOME: hfHome }), { token: "hf_from_file", tokenSource: path.join(hfHome, "token") });
  t.like(await hubSettings({ HOME: home, HF_HOME: hfHome, HF_TOKEN: "hf_from_env" }), { token: "hf_from_env", tokenSource: "HF_TOKEN" });
  await writeFile(path.join(home, "other"), "hf_other");
  t.like(await hubSettings({ HOME: home, HF_HOME: hfHome, HF_TOKEN_PATH: path.join(home, "other") }), { token: "hf_other" });
});

test("an HF_ENDPOINT that is not an http(s) URL, or carries credentials, is a config error", async (t) => {
  for (const endpoint of ["huggingface.co", "ftp://mirror", "https://user:pass@mirror.example"]) {
    const err = await t.throwsAsync(hubSettings({ HOME: "/nowhere", HF_ENDPOINT: endpoint }), { instanceOf: ProvisionError });
    t.is(err.kind, "config");
    t.false(err.message.includes("pass@"));
  }
});

test("resolve URLs are built as hf_hub_url builds them, revision and path segments escaped", (t) => {
  t.is(resolveUrl("https://huggingface.co", "org/repo", "main", "sub/m.gguf"), "https://huggingface.co/org/repo/resolve/main/sub/m.gguf");
  t.is(resolveUrl("http://h", "o/r", "v1.0", "a b.gguf"), "http://h/o/r/resolve/v1.0/a%20b.gguf");
});

test("ETags are normalized as huggingface_hub does, and the hub's headers read only from the hub's own answers", (t) => {
  t.is(normalizeEtag('W/"abc"'), "abc");
  t.is(normalizeEtag('"abc"'), "abc");
  const sha = "a".repeat(64);
  const hub = "http://hub";
  const redirect = {
    url: `${hub}/o/r/resolve/main/f`,
    status: 302,
    headers: { "x-linked-etag": `"${sha}"`, "x-linked-size": "10", "x-repo-commit": "c".repeat(40), etag: `"${"d".repeat(40)}"` },
  };
  const cdn = { url: "http://cdn/x", status: 200, headers: { etag: `"${"e".repeat(40)}"`, "x-linked-etag": `"${"f".repeat(64)}"` } };
  t.deepEqual(hubMetaOf([redirect, cdn], hub), { sha256: sha, sizeBytes: 10, commit: "c".repeat(40) });
  const direct = { url: `${hub}/o/r/resolve/main/f`, status: 200, headers: { etag: `"${"d".repeat(40)}"` } };
  t.deepEqual(hubMetaOf([direct], hub), { gitOid: "d".repeat(40) });
});

test("only relative paths that stay inside a repository are accepted from a listing", (t) => {
  for (const ok of ["a", "a/b.gguf", "x..y/z"]) t.true(isSafeRelativePath(ok), ok);
  for (const bad of ["", "/etc/passwd", "../x", "a/../../x", "a//b", "./a", "a\\b", "a\0b"]) t.false(isSafeRelativePath(bad), bad);
});
