// The public API as the read commands use it: one call, the key from the
// environment, a refusal as an Error with the API's code and message.
import { API_KEY_ENV } from "../contracts/runtime/api-key.js";

export type Json = Record<string, unknown>;

/** One call on the edge's public API with the key from the environment; a refusal throws its code and message. */
export async function askEdge(o: { edge: string }, path: string, init: RequestInit = {}): Promise<Json> {
  const key = process.env[API_KEY_ENV];
  let res: Response;
  try {
    res = await fetch(o.edge + path, { ...init, headers: { ...(key ? { Authorization: `Bearer ${key}` } : {}), ...init.headers } });
  } catch (err) {
    throw new Error(`cannot reach the edge at ${o.edge}: ${(err as Error).message}`, { cause: err });
  }
  const text = await res.text();
  const body = (text ? JSON.parse(text) : {}) as Json;
  if (!res.ok) throw new Error(`${path}: ${str(body["code"] ?? res.status)}: ${str(body["message"] ?? text)}`);
  return body;
}

export const list = <T>(v: unknown): T[] => (Array.isArray(v) ? (v as T[]) : []);
/** A JSON value as text: scalars as themselves, anything else (which these fields never are) as JSON. */
export function str(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  return JSON.stringify(v);
}
