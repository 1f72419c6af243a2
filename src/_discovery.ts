/**
 * AWS ElastiCache auto discovery: reading a cluster's node list from its
 * configuration endpoint (`config get cluster`, or `get
 * AmazonElastiCache:cluster` on engines before 1.4.14) and parsing AWS's
 * reply:
 *
 * ```text
 * CONFIG cluster 0 <bytes>\r\n
 * <version>\n
 * <host>|<ip>|<port> <host>|<ip>|<port> ...\n
 * \r\n
 * END\r\n
 * ```
 *
 * @module
 */

import type { Client } from "./client.ts";
import { MemcacheUnknownCommandError, MemcacheUnknownError } from "./errors.ts";

/** A cluster's configuration as the endpoint gives it. */
export interface ClusterConfig {
  /** Bumped by ElastiCache whenever a node joins or leaves. */
  version: number;
  /** The nodes as `"host:port"` (the host name; its IP when the name is empty), in the order listed. */
  servers: string[];
}

const decoder = new TextDecoder();

/**
 * Parses the bytes of a `config get cluster` (or `get
 * AmazonElastiCache:cluster`) reply before its `END\r\n`.
 *
 * @throws {Error} saying what does not parse.
 */
export function parseClusterConfig(reply: Uint8Array | string): ClusterConfig {
  const text = typeof reply === "string" ? reply : decoder.decode(reply);
  const eol = text.indexOf("\r\n");
  if (eol === -1) throw new Error("no header line");
  const header = text.slice(0, eol);
  const match = /^(?:CONFIG cluster|VALUE AmazonElastiCache:cluster) \d+ \d+$/.exec(header);
  if (match === null) throw new Error(`unexpected header ${JSON.stringify(header.slice(0, 80))}`);
  // The data block, then CR LF (END follows, cut off by the caller). Its announced length is not
  // checked: the lines themselves must parse.
  const lines = text.slice(eol + 2).trim().split(/\r?\n/);
  if (lines.length !== 2) throw new Error(`expected a version line and a node line, got ${lines.length} lines`);
  if (!/^\d{1,15}$/.test(lines[0])) throw new Error(`bad version ${JSON.stringify(lines[0].slice(0, 40))}`);
  const servers: string[] = [];
  for (const entry of lines[1].split(" ")) {
    if (entry === "") continue;
    const parts = entry.split("|");
    if (parts.length !== 3) throw new Error(`bad node ${JSON.stringify(entry.slice(0, 300))}: want host|ip|port`);
    const [host, ip, port] = parts;
    const name = host || ip;
    const portNumber = Number(port);
    if (!name || /[\s/@]/.test(name) || !/^\d{1,5}$/.test(port) || portNumber < 1 || portNumber > 65535) {
      throw new Error(`bad node ${JSON.stringify(entry.slice(0, 300))}`);
    }
    const server = name.includes(":") ? `[${name}]:${port}` : `${name}:${port}`;
    if (!servers.includes(server)) servers.push(server);
  }
  if (servers.length === 0) throw new Error("no nodes listed");
  return { version: Number(lines[0]), servers };
}

/**
 * Asks `endpoint` for the cluster's configuration: `config get cluster`,
 * or on `ERROR` (an engine before 1.4.14) `get AmazonElastiCache:cluster`.
 * `config get cluster` goes out followed by `version`, whose reply marks
 * the end of the first one's whatever it is (the configuration up to
 * `END`, or an error line): one round trip, never waiting for an `END`
 * that an error reply would not send.
 *
 * @throws {MemcacheUnknownError} for a reply that does not parse (the
 *   reason in the message); whatever the request failed with otherwise
 *   (`MemcacheServerError` for a `SERVER_ERROR` reply, ...).
 */
export async function fetchClusterConfig(endpoint: Client): Promise<ClusterConfig> {
  const where = { server: endpoint.server, command: "config" };
  let reply: string;
  try {
    reply = decoder.decode(await endpoint.rawCommand("config get cluster\r\nversion", "\r\nVERSION "));
  } catch (error) {
    if (!(error instanceof MemcacheUnknownCommandError)) throw error;
    reply = decoder.decode(await endpoint.rawCommand("get AmazonElastiCache:cluster", "END\r\n"));
    if (reply === "") {
      throw new MemcacheUnknownError("The endpoint has no cluster configuration (not ElastiCache?)", where);
    }
  }
  try {
    // The configuration's END line (cut off with the legacy get) and what precedes it.
    return parseClusterConfig(reply.replace(/\r\nEND$/, "\r\n"));
  } catch (error) {
    throw new MemcacheUnknownError(`Unparseable cluster configuration: ${(error as Error).message}`, {
      ...where,
      cause: error,
    });
  }
}
