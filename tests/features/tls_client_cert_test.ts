/**
 * Client certificates (`tls: { cert, key }`) against a memcached that
 * requires one (`-Z -o ssl_ca_cert=<CA>,ssl_verify_mode=2`), over the
 * runtime's default transport and NodeTransport (on Deno: DenoTransport and
 * NodeTransport): refused without a certificate or with one of another CA,
 * accepted with the right one, with `auth` too. The test's own CA signs
 * the client certificate (openssl, once per process; removed at exit).
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { describe, it } from "../_support/_harness.ts";
import { Client, type ClientOptions, MemcacheConnectionError, MemcacheError, type Transport } from "../../mod.ts";
import { NodeTransport } from "../../transports/node.ts";
import { type MemcachedServer, startMemcached } from "../_support/_memcached.ts";

interface ClientCerts {
  /** PEM of the CA memcached trusts for client certificates, and its path. */
  caPath: string;
  /** A client certificate that CA signed, and its key. */
  cert: string;
  key: string;
  /** A self-signed client certificate (no CA memcached trusts), and its key. */
  strangerCert: string;
  strangerKey: string;
}

let made: ClientCerts | undefined;
/** Makes the client CA and certificates once per process. */
function clientCerts(): ClientCerts {
  if (made) return made;
  const dir = mkdtempSync(join(tmpdir(), "memkit-client-cert-"));
  process.on?.("exit", () => rmSync(dir, { recursive: true, force: true }));
  const at = (name: string) => join(dir, name);
  // `words`: fixed arguments, split at spaces; `rest`: paths and names, as they are.
  const openssl = (words: string, ...rest: string[]) =>
    execFileSync("openssl", [...words.split(" "), ...rest], { stdio: "ignore" });
  const ca = "basicConstraints=critical,CA:TRUE";
  openssl(
    "req -x509 -newkey rsa:2048 -nodes -days 2 -addext",
    ca,
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
    "-subj",
    "/CN=memkit client CA",
  );
  openssl(
    "req -newkey rsa:2048 -nodes",
    "-keyout",
    at("client.key"),
    "-out",
    at("client.csr"),
    "-subj",
    "/CN=memkit client",
  );
  writeFileSync(
    at("client.ext"),
    "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=clientAuth\n",
  );
  openssl(
    "x509 -req -CAcreateserial -days 2",
    "-in",
    at("client.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-out",
    at("client.pem"),
    "-extfile",
    at("client.ext"),
  );
  openssl(
    "req -x509 -newkey rsa:2048 -nodes -days 2 -addext extendedKeyUsage=clientAuth",
    "-keyout",
    at("stranger.key"),
    "-out",
    at("stranger.pem"),
    "-subj",
    "/CN=stranger",
  );
  const read = (name: string) => readFileSync(at(name), "utf8");
  return made = {
    caPath: at("ca.pem"),
    cert: read("client.pem"),
    key: read("client.key"),
    strangerCert: read("stranger.pem"),
    strangerKey: read("stranger.key"),
  };
}

/** A TLS memcached that requires a client certificate signed by the test's client CA. */
function strictServer(args: string[] = []): Promise<MemcachedServer> {
  const { caPath } = clientCerts();
  return startMemcached({ tls: true, args: ["-o", `ssl_ca_cert=${caPath},ssl_verify_mode=2`, ...args] });
}

const transports: [string, () => Transport | undefined][] = [
  ["default transport", () => undefined],
  ["NodeTransport", () => new NodeTransport()],
];

for (const [label, transportOf] of transports) {
  describe(`tls client certificates (${label})`, () => {
    const opts = (extra: ClientOptions): ClientOptions => {
      const transport = transportOf();
      return transport ? { transport, timeout: 3000, ...extra } : { timeout: 3000, ...extra };
    };

    it("accepted with the certificate the server's CA signed", async () => {
      const { cert, key } = clientCerts();
      await using server = await strictServer();
      await using client = new Client(server.spec, opts({ tls: { caCerts: [server.cert!], cert, key } }));
      const [stored, value, version] = await Promise.all([
        client.set("k", "with a cert", { noreply: false }),
        client.get("k"),
        client.version(),
      ]);
      assert.deepEqual([stored, value], [true, "with a cert"]);
      assert.match(version, /^1\.6/);
    });

    it("refused without a certificate, and with one of another CA", async () => {
      const { strangerCert, strangerKey } = clientCerts();
      await using server = await strictServer();
      const cases: [string, ClientOptions["tls"]][] = [
        ["no certificate", { caCerts: [server.cert!] }],
        ["a self-signed one", { caCerts: [server.cert!], cert: strangerCert, key: strangerKey }],
      ];
      for (const [what, tls] of cases) {
        await using client = new Client(server.spec, opts({ tls }));
        // TLS 1.3: the server checks the certificate after the client's handshake is done, so the
        // refusal may come as a failed connect or as the connection dropped under the first request.
        await assert.rejects(client.get("k"), (error: unknown) => {
          assert.ok(error instanceof MemcacheError, `${what}: ${error}`);
          return true;
        }, what);
      }
      // The server is fine: the right certificate still gets in.
      const { cert, key } = clientCerts();
      await using good = new Client(server.spec, opts({ tls: { caCerts: [server.cert!], cert, key } }));
      assert.equal(await good.set("k", "v", { noreply: false }), true);
    });

    it("a PEM the runtime cannot read fails the connect with MemcacheConnectionError, not a hang", async () => {
      await using server = await strictServer();
      const garbled = {
        caCerts: [server.cert!],
        cert: "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n",
        key: "-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n",
      };
      await using client = new Client(server.spec, opts({ tls: garbled }));
      await assert.rejects(client.get("k"), (error: unknown) => {
        assert.ok(error instanceof MemcacheConnectionError, String(error));
        return true;
      });
      // A key that does not belong to the certificate.
      const { cert, strangerKey } = clientCerts();
      await using mismatched = new Client(
        server.spec,
        opts({ tls: { caCerts: [server.cert!], cert, key: strangerKey } }),
      );
      await assert.rejects(mismatched.get("k"), MemcacheError);
    });

    it("with auth (memcached -Y) over the same connection", async () => {
      const { cert, key } = clientCerts();
      const dir = mkdtempSync(join(tmpdir(), "memkit-auth-"));
      try {
        writeFileSync(join(dir, "authfile"), "carol:c3rt-and-pw\n", { mode: 0o600 });
        await using server = await strictServer(["-Y", join(dir, "authfile")]);
        const tls = { caCerts: [server.cert!], cert, key };
        await using client = new Client(
          server.spec,
          opts({ tls, auth: { username: "carol", password: "c3rt-and-pw" } }),
        );
        const [stored, value] = await Promise.all([client.set("k", "both", { noreply: false }), client.get("k")]);
        assert.deepEqual([stored, value], [true, "both"]);
        assert.equal((await client.stats())["auth_cmds"], 1);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
