/**
 * nginx as the peer proxy: Debian's package (installed with apt-get when it
 * is missing and this process may), started on a generated config in a
 * temporary prefix (no daemon, pid and logs in the prefix) that proxies to
 * the fake engine with `proxy_buffering off`, as one would put nginx in
 * front of llama-server. Its party is the master and its workers.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { freePort, untilAnswers, type BenchProcesses } from "./bench-procs.js";
import { childrenOf, type Party } from "./proc-stats.js";

const CANDIDATES = ["/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/bin/nginx"];

export interface NginxProxy {
  url: string;
  version: string;
  party: Party;
}

function findNginx(): string | undefined {
  return CANDIDATES.find((p) => existsSync(p));
}

/** The nginx binary, installing Debian's package first when missing; undefined (with why) when neither works. */
function nginxBinary(say: (line: string) => void): string | undefined {
  const found = findNginx();
  if (found) return found;
  if (process.getuid?.() !== 0 || !existsSync("/usr/bin/apt-get")) {
    say("nginx is not installed and this bench cannot install it (needs root and apt-get): the nginx column is skipped");
    return undefined;
  }
  say("nginx is not installed: apt-get install -y nginx");
  try {
    execFileSync("apt-get", ["install", "-y", "nginx"], { stdio: "ignore", env: { ...process.env, DEBIAN_FRONTEND: "noninteractive" } });
  } catch (err) {
    say(`apt-get install nginx failed (${(err as Error).message.split("\n")[0]}): the nginx column is skipped`);
  }
  return findNginx();
}

function config(prefix: string, listen: number, upstream: string): string {
  const temp = (name: string) => `${name}_temp_path ${join(prefix, name)};`;
  return `worker_processes auto;
daemon off;
master_process on;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} warn;
worker_rlimit_nofile 20000;
events { worker_connections 8192; }
http {
  access_log off;
  ${["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map(temp).join("\n  ")}
  upstream engine { server ${upstream}; keepalive 1024; }
  server {
    listen 127.0.0.1:${listen} backlog=4096;
    location / {
      proxy_pass http://engine;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 600s;
    }
  }
}
`;
}

/** nginx in front of `engineUrl`, or undefined (said why) when there is no nginx to run. */
export async function startNginx(procs: BenchProcesses, engineUrl: string, say: (line: string) => void): Promise<NginxProxy | undefined> {
  const bin = nginxBinary(say);
  if (!bin) return undefined;
  const version = spawnSync(bin, ["-v"], { encoding: "utf8" }).stderr.trim() || "nginx"; // nginx -v writes to stderr
  const prefix = join(procs.logDir, "nginx");
  mkdirSync(prefix, { recursive: true });
  const port = await freePort();
  const conf = join(prefix, "nginx.conf");
  writeFileSync(conf, config(prefix, port, new URL(engineUrl).host));
  const log = openSync(join(procs.logDir, "nginx.log"), "a");
  const child = spawn(bin, ["-p", prefix, "-e", join(prefix, "error.log"), "-c", conf], { stdio: ["ignore", log, log] });
  closeSync(log);
  procs.adopt("nginx", child);
  const url = `http://127.0.0.1:${port}`;
  await untilAnswers(`${url}/health`);
  const master = child.pid!;
  return { url, version: version.replace(/^nginx version: /, ""), party: { role: "nginx", pids: () => [master, ...childrenOf(master)] } };
}
