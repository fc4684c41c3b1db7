// "Hosts" on one machine: a network namespace per host, each with one veth
// into a bridge (in a namespace of its own, away from the machine's firewall)
// and one private address, plus a veth from the root namespace so the test
// itself is a machine on that network too. Needs root and `ip` (iproute2).
// Every name carries this process's pid, so parallel runs do not clash, and
// everything is deleted again, on failure and at exit too.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";

export interface NetnsHost {
  /** The host's name in the test, e.g. "core". */
  name: string;
  /** The namespace, e.g. llorch-1234-core. */
  ns: string;
  /** Its one address on the test network. */
  ip: string;
  /** The command prefix that runs a process on this host (it dies with the process that started it). */
  wrap: string[];
}

export interface NetnsNetwork {
  /** The /24 the hosts share, e.g. 10.231.17.0/24. */
  subnet: string;
  /** The root namespace's address on it (where the test process talks from). */
  outsideIp: string;
  host(name: string): NetnsHost;
  /** Takes the host's link down at the bridge: its packets go nowhere, its sockets stay open. */
  cut(name: string): void;
  restore(name: string): void;
  /** Deletes every namespace and link it made; safe to call twice. */
  remove(): void;
}

const PREFIX = "llorch-";
const nsOf = (name: string) => `${PREFIX}${process.pid}-${name}`;

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

/** Why namespaces cannot be made here (not root, no `ip`, a kernel or container that refuses), or undefined when they can. */
export function netnsUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return "not running as root (ip netns needs it)";
  if (spawnSync("setpriv", ["--version"]).error) return "no setpriv command (util-linux)";
  const probe = nsOf("probe");
  const added = spawnSync("ip", ["netns", "add", probe], { encoding: "utf8" });
  if (added.error) return `no ip command (${added.error.message}; apt-get install iproute2)`;
  if (added.status !== 0) return `ip netns add failed: ${added.stderr.trim()}`;
  spawnSync("ip", ["netns", "del", probe]);
  return undefined;
}

/** Namespaces left by runs whose process is gone (killed before their exit hook ran). */
function removeStale(): void {
  const r = spawnSync("ip", ["netns", "list"], { encoding: "utf8" });
  for (const line of r.stdout.split("\n")) {
    const m = /^(llorch-(\d+)-\S+)/.exec(line);
    if (m && !existsSync(`/proc/${m[2]}`)) spawnSync("ip", ["netns", "del", m[1]!]);
  }
}

/** A third octet for 10.231.x.0/24 from the pid, skipping any the machine already routes. */
function freeSubnet(): number {
  const routes = spawnSync("ip", ["-4", "route", "show", "table", "all"], { encoding: "utf8" }).stdout;
  for (let i = 0; i < 250; i++) {
    const octet = ((process.pid + i) % 250) + 1;
    if (!routes.includes(`10.231.${octet}.`)) return octet;
  }
  throw new Error("no free 10.231.x.0/24 on this machine");
}

/** A namespace with `lo` up and one veth, `eth0` with `address`, whose peer `v-<name>` is a port of the bridge. */
function addHost(bridgeNs: string, name: string, address: string): NetnsHost {
  const ns = nsOf(name);
  ip("netns", "add", ns);
  ip("-n", ns, "link", "set", "lo", "up");
  ip("-n", bridgeNs, "link", "add", `v-${name}`, "type", "veth", "peer", "name", "eth0", "netns", ns);
  ip("-n", bridgeNs, "link", "set", `v-${name}`, "master", "br0", "up");
  ip("-n", ns, "addr", "add", `${address}/24`, "dev", "eth0");
  ip("-n", ns, "link", "set", "eth0", "up");
  // Killed with the test process (ava ends a timed-out worker without exit hooks): nothing outlives the run.
  return { name, ns, ip: address, wrap: ["ip", "netns", "exec", ns, "setpriv", "--pdeathsig", "KILL"] };
}

/** Builds the network with one host per name (addresses .2, .3, ... in the order given). */
export function createNetns(names: string[]): NetnsNetwork {
  removeStale();
  const octet = freeSubnet();
  const base = `10.231.${octet}`;
  const bridgeNs = nsOf("net");
  const outside = `llo${process.pid}`.slice(0, 15);
  const hosts = new Map<string, NetnsHost>();
  let removed = false;
  const remove = () => {
    if (removed) return;
    removed = true;
    process.off("exit", remove);
    for (const name of names) spawnSync("ip", ["netns", "del", nsOf(name)]);
    spawnSync("ip", ["netns", "del", bridgeNs]);
    // Its peer went with the bridge's namespace; this is for a half-built network.
    spawnSync("ip", ["link", "del", outside]);
  };
  process.on("exit", remove);
  try {
    ip("netns", "add", bridgeNs);
    ip("-n", bridgeNs, "link", "set", "lo", "up");
    ip("-n", bridgeNs, "link", "add", "br0", "type", "bridge", "forward_delay", "0");
    ip("-n", bridgeNs, "link", "set", "br0", "up");
    ip("link", "add", outside, "type", "veth", "peer", "name", "v-outside", "netns", bridgeNs);
    ip("-n", bridgeNs, "link", "set", "v-outside", "master", "br0", "up");
    ip("addr", "add", `${base}.1/24`, "dev", outside);
    ip("link", "set", outside, "up");
    names.forEach((name, i) => hosts.set(name, addHost(bridgeNs, name, `${base}.${i + 2}`)));
  } catch (err) {
    remove();
    throw err;
  }
  const host = (name: string) => {
    const h = hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  };
  return {
    subnet: `${base}.0/24`,
    outsideIp: `${base}.1`,
    host,
    cut: (name) => ip("-n", bridgeNs, "link", "set", `v-${host(name).name}`, "down"),
    restore: (name) => ip("-n", bridgeNs, "link", "set", `v-${host(name).name}`, "up"),
    remove,
  };
}
