// Debian's nginx as a load balancer for tests: a config written into a temp
// prefix (pid, logs and temp files there too), run in the foreground, no daemon.
// CI installs nginx when it is missing (.ci/run).
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const NGINX = process.env.LLORCH_NGINX ?? "nginx";

export interface Nginx {
  child: ChildProcess;
  /** nginx's error log so far, for failure messages. */
  errorLog(): string;
  stop(): Promise<void>;
}

/** Why nginx cannot run here, or undefined when it can. */
export function nginxMissing(): string | undefined {
  const r = spawnSync(NGINX, ["-v"], { encoding: "utf8" });
  return r.status === 0 ? undefined : `no nginx command (CI installs it; apt-get install nginx): ${r.error?.message ?? r.stderr}`;
}

/**
 * An HTTP balancer on `listen` over `upstreams`, for SSE: responses are not
 * buffered, reads wait long, and `X-Upstream` says which upstream answered.
 */
export function nginxConfig(prefix: string, listen: string, upstreams: string[]): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"].map((k) => `  ${k}_temp_path ${join(prefix, "temp", k)};`);
  return `worker_processes 1;
pid ${join(prefix, "nginx.pid")};
error_log ${join(prefix, "error.log")} info;
events { worker_connections 256; }
http {
  access_log ${join(prefix, "access.log")};
${temp.join("\n")}
  upstream edges {
${upstreams.map((u) => `    server ${u};`).join("\n")}
  }
  server {
    listen ${listen};
    location / {
      proxy_pass http://edges;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_read_timeout 300s;
      add_header X-Upstream $upstream_addr always;
    }
  }
}
`;
}

/** Starts nginx under `wrap` (e.g. on a namespace "host") with the config above in `prefix`. */
export function startNginx(prefix: string, listen: string, upstreams: string[], wrap: string[] = []): Nginx {
  mkdirSync(join(prefix, "temp"), { recursive: true });
  const conf = join(prefix, "nginx.conf");
  writeFileSync(conf, nginxConfig(prefix, listen, upstreams));
  const command = [...wrap, NGINX, "-p", prefix, "-c", conf, "-e", join(prefix, "error.log"), "-g", "daemon off;"];
  const child = spawn(command[0]!, command.slice(1), { stdio: ["ignore", "ignore", "pipe"] });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const errorLog = () => {
    try {
      return readFileSync(join(prefix, "error.log"), "utf8");
    } catch {
      return "";
    }
  };
  return {
    child,
    errorLog,
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      // SIGTERM is nginx's fast shutdown: the tests' streams have ended by then.
      child.kill("SIGTERM");
      await exited;
    },
  };
}
