// A throwaway certificate authority for TLS tests, made with the openssl
// command line (node's crypto verifies certificates but cannot issue them).
// CI installs openssl when it is missing (.ci/run); elsewhere tests that need
// it are skipped and say why.
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Paths of one issued certificate and its key (PEM). */
export interface IssuedCert {
  cert: string;
  key: string;
}

export interface TestCa {
  /** The CA's own certificate (PEM), the one peers verify against. */
  cert: string;
  /** A certificate for `sans` (default 127.0.0.1 and localhost), good for both server and client authentication. */
  issue(name: string, sans?: string[]): IssuedCert;
  remove(): void;
}

/** Why TLS tests cannot run here, or undefined when they can. */
export function opensslMissing(): string | undefined {
  const r = spawnSync("openssl", ["version"], { encoding: "utf8" });
  return r.status === 0 ? undefined : "no openssl command (CI installs it; apt-get install openssl)";
}

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

export function createTestCa(name: string): TestCa {
  const dir = mkdtempSync(join(tmpdir(), `llorch-ca-${name}-`));
  const ecKey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"];
  openssl(
    [
      "req",
      "-x509",
      ...ecKey,
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-days",
      "2",
      "-subj",
      `/CN=${name} test CA`,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ],
    dir,
  );
  return {
    cert: join(dir, "ca.pem"),
    issue(leaf: string, sans = ["IP:127.0.0.1", "DNS:localhost"]): IssuedCert {
      writeFileSync(
        join(dir, `${leaf}.ext`),
        `basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=${sans.join(",")}\n`,
      );
      openssl(["req", "-new", ...ecKey, "-keyout", `${leaf}.key`, "-out", `${leaf}.csr`, "-subj", `/CN=${leaf}`], dir);
      openssl(
        [
          "x509",
          "-req",
          "-in",
          `${leaf}.csr`,
          "-CA",
          "ca.pem",
          "-CAkey",
          "ca.key",
          "-CAcreateserial",
          "-out",
          `${leaf}.pem`,
          "-days",
          "2",
          "-extfile",
          `${leaf}.ext`,
        ],
        dir,
      );
      return { cert: join(dir, `${leaf}.pem`), key: join(dir, `${leaf}.key`) };
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
