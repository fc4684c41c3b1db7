// Where models are cached and how the Hugging Face Hub is reached, read from
// the environment the way the hub's own clients read it (huggingface_hub
// `constants.py`): HF_ENDPOINT, HF_TOKEN or the token file, HF_HOME,
// HF_HUB_CACHE.
import { readFile } from "node:fs/promises";
import path from "node:path";
import { cacheHome, DEFAULT_HF_ENDPOINT, expandHome, hubEndpointOf, nonEmpty, type Env } from "../../contracts/model-cache.js";
import { errorCode } from "../../contracts/runtime/atomic-file.js";
import { ProvisionError } from "./provision-error.js";

// Core reads the same cache (catalog verify), so where it is by default is shared.
export { DEFAULT_HF_ENDPOINT, defaultModelCacheDir, type Env } from "../../contracts/model-cache.js";

export interface HubSettings {
  /** No trailing slash, e.g. "https://huggingface.co". */
  endpoint: string;
  /** Sent to the endpoint's own origin only; never logged. */
  token: string | undefined;
  /** Where the token came from, for messages ("HF_TOKEN", or the token file's path). */
  tokenSource: string | undefined;
  /** The hub's own cache (`models--{org}--{repo}/…`), read but never written. */
  hubCacheDir: string;
}

/** HF_HOME, else $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface. */
export function hfHome(env: Env = process.env): string {
  const explicit = nonEmpty(env.HF_HOME);
  return explicit !== undefined ? expandHome(explicit, env) : path.join(cacheHome(env), "huggingface");
}

export async function hubSettings(env: Env = process.env): Promise<HubSettings> {
  const home = hfHome(env);
  const endpoint = hubEndpointOf(env);
  let parsed: URL | undefined;
  try {
    parsed = new URL(endpoint);
  } catch {
    parsed = undefined;
  }
  if (
    parsed === undefined ||
    (parsed.protocol !== "https:" && parsed.protocol !== "http:") ||
    parsed.username !== "" ||
    parsed.password !== ""
  ) {
    throw new ProvisionError("config", `HF_ENDPOINT must be an http(s) URL without credentials, e.g. ${DEFAULT_HF_ENDPOINT}`);
  }
  const hubCacheDir = expandHome(nonEmpty(env.HF_HUB_CACHE) ?? nonEmpty(env.HUGGINGFACE_HUB_CACHE) ?? path.join(home, "hub"), env);
  const fromEnv = nonEmpty(env.HF_TOKEN);
  if (fromEnv !== undefined) return { endpoint, token: fromEnv, tokenSource: "HF_TOKEN", hubCacheDir };
  const tokenFile = expandHome(nonEmpty(env.HF_TOKEN_PATH) ?? path.join(home, "token"), env);
  const fromFile = await readTokenFile(tokenFile);
  return { endpoint, token: fromFile, tokenSource: fromFile === undefined ? undefined : tokenFile, hubCacheDir };
}

async function readTokenFile(file: string): Promise<string | undefined> {
  try {
    return nonEmpty((await readFile(file, "utf8")).trim());
  } catch (err) {
    // No token file is the usual case: anonymous access to public repositories.
    if (errorCode(err) === "ENOENT" || errorCode(err) === "ENOTDIR") return undefined;
    throw new ProvisionError("config", `cannot read the Hugging Face token file ${file}: ${errorCode(err) ?? String(err)}`);
  }
}
