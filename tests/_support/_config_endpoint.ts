/**
 * A scripted AWS ElastiCache configuration endpoint for the auto discovery
 * tests: a loopback node:net server answering `config get cluster` with
 * AWS's format for the node list a test sets, or with what a test scripts
 * instead (garbage, ERROR, silence, a reply that never ends). Other
 * commands get `ERROR`.
 */
import net from "node:net";

/** What the endpoint answers to `config get cluster`. */
export type ConfigMode = "config" | "garbage" | "bad-node" | "error" | "silent" | "legacy" | "endless";

/** A running endpoint; `await using` closes it and every connection. */
export interface ConfigEndpoint extends AsyncDisposable {
  readonly spec: string;
  /** Sets the version and node list (`"host:port"` each) served from now on. */
  set(version: number, servers: string[]): void;
  /** Sets the version and the node entries as sent (`host|ip|port` each, unchecked) served from now on. */
  setEntries(version: number, entries: string[]): void;
  /** How to answer from now on (default "config"). */
  mode: ConfigMode;
  /** `config get cluster` (or legacy get) requests seen. */
  readonly requests: () => number;
  /** Connections accepted. */
  readonly connections: () => number;
}

/** AWS's reply for a version and node list (host|ip|port, the host given as 127.0.0.1 here). */
export function clusterReply(version: number, servers: string[], header = "CONFIG cluster 0"): string {
  return entriesReply(version, servers.map(entryOf), header);
}

/** The `host|ip|port` entry of a `"host:port"` (the host given as both). */
export function entryOf(server: string): string {
  const at = server.lastIndexOf(":");
  const host = server.slice(0, at);
  return `${host}|${host}|${server.slice(at + 1)}`;
}

/** AWS's reply for a version and node entries as given. */
export function entriesReply(version: number, entries: string[], header = "CONFIG cluster 0"): string {
  const nodes = entries;
  const data = `${version}\n${nodes.join(" ")}\n`;
  return `${header} ${new TextEncoder().encode(data).length}\r\n${data}\r\nEND\r\n`;
}

/** Starts an endpoint serving `version` / `servers`. */
export async function startConfigEndpoint(version: number, servers: string[]): Promise<ConfigEndpoint> {
  let current = { version, entries: servers.map(entryOf) };
  let requests = 0;
  let accepted = 0;
  const sockets = new Set<net.Socket>();
  const endpoint = {
    mode: "config" as ConfigMode,
  };
  const answer = (socket: net.Socket, line: string) => {
    const legacy = line === "get AmazonElastiCache:cluster";
    if (line !== "config get cluster" && !legacy) return void socket.write("ERROR\r\n");
    requests++;
    switch (endpoint.mode) {
      case "config":
        return void socket.write(entriesReply(current.version, current.entries));
      case "legacy":
        return void socket.write(
          legacy ? entriesReply(current.version, current.entries, "VALUE AmazonElastiCache:cluster 0") : "ERROR\r\n",
        );
      case "garbage":
        return void socket.write("CONFIG cluster 0 9\r\nnot a config\r\nEND\r\n");
      case "bad-node":
        return void socket.write(clusterReply(current.version + 1, ["127.0.0.1:99999"]));
      case "error":
        return void socket.write("SERVER_ERROR out of memory\r\n");
      case "silent":
        return;
      case "endless": {
        // A configuration that never ends: 4 MiB of node entries, then silence (no END, no VERSION).
        const entries = "a.example|10.0.0.1|11211 ".repeat(4096);
        socket.write("CONFIG cluster 0 999999999\r\n1\n");
        for (let i = 0; i < 40; i++) socket.write(entries);
        return;
      }
    }
  };
  const server = net.createServer((socket) => {
    accepted++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      let eol: number;
      while ((eol = buffered.indexOf("\r\n")) !== -1) {
        const line = buffered.slice(0, eol);
        buffered = buffered.slice(eol + 2);
        if (line === "quit") return void socket.end();
        if (line === "version") return void socket.write("VERSION 1.6.6\r\n");
        answer(socket, line);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return Object.assign(endpoint, {
    spec: `127.0.0.1:${port}`,
    set(version: number, servers: string[]) {
      current = { version, entries: servers.map(entryOf) };
    },
    setEntries(version: number, entries: string[]) {
      current = { version, entries: [...entries] };
    },
    requests: () => requests,
    connections: () => accepted,
    async [Symbol.asyncDispose]() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      const gone = [...sockets].map((s) => new Promise<void>((r) => (s.once("close", () => r()), s.destroy())));
      await Promise.all([closed, ...gone]);
    },
  });
}
