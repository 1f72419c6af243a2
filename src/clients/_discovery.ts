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

import { Client, type ClientOptions } from "./client.ts";
import { rawReplyLimits } from "./_client_server.ts";
import { loadedDefaultTransport } from "../connection/_default_transport.ts";
import type { ServerSpec } from "../connection/transport.ts";
import { MemcacheUnknownCommandError, MemcacheUnknownError } from "../errors.ts";

/** A cluster's configuration as the endpoint gives it. */
export interface ClusterConfig {
  /** Bumped by ElastiCache whenever a node joins or leaves. */
  version: number;
  /** The nodes as `"host:port"` (the host name; its IP when the name is empty), in the order listed. */
  servers: string[];
}

/**
 * The most nodes a configuration may list (ElastiCache allows 60 per
 * cluster by default, 300 on request): a reply with more is refused
 * whole, before any node gets a client.
 */
export const MAX_CLUSTER_NODES = 1000;
/** The most bytes a configuration reply may have: a reply longer is refused before it is parsed. */
export const MAX_CLUSTER_CONFIG_BYTES = 1024 * 1024;

const decoder = new TextDecoder();

/** A DNS host name: labels of letters, digits, `-` and `_` (not starting or ending with `-`), at most 253 chars. */
function isHostName(name: string): boolean {
  if (name.length > 253) return false;
  const labels = name.endsWith(".") ? name.slice(0, -1).split(".") : name.split(".");
  for (const label of labels) {
    if (!/^[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?$/.test(label)) return false;
  }
  // All-numeric labels are an IPv4 address or nothing ("999.1.1.1", "1.2.3").
  return !labels.every((label) => /^\d+$/.test(label)) || isIPv4(name);
}

/** A dotted-quad IPv4 address, each part 0–255 without leading zeros. */
function isIPv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^(?:0|[1-9]\d{0,2})$/.test(p) && Number(p) <= 255);
}

/** An IPv6 address in RFC 4291 text form (`::` once at most, an IPv4 tail allowed; no zone). */
function isIPv6(text: string): boolean {
  if (text.length > 45 || !/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  const halves = text.split("::");
  if (halves.length > 2) return false;
  const groups = (half: string) => (half === "" ? [] : half.split(":"));
  const all = halves.map(groups);
  const flat = all.flat();
  let count = flat.length;
  for (let i = 0; i < flat.length; i++) {
    const group = flat[i];
    if (i === flat.length - 1 && group.includes(".")) {
      if (!isIPv4(group)) return false;
      count++; // an IPv4 tail is two groups
    } else if (!/^[0-9A-Fa-f]{1,4}$/.test(group)) return false;
  }
  return halves.length === 2 ? count <= 7 : count === 8;
}

/** Why a `host|ip|port` entry cannot be a node, or null if it can. */
function badNode(host: string, ip: string, port: string): string | null {
  if (host !== "" && !isHostName(host) && !isIPv6(host)) return "the host is not a host name or IP address";
  if (ip !== "" && !isIPv4(ip) && !isIPv6(ip)) return "the IP is not an IPv4 or IPv6 address";
  if (host === "" && ip === "") return "neither a host nor an IP";
  if (!/^\d{1,5}$/.test(port) || Number(port) < 1 || Number(port) > 65535) return "the port is not 1-65535";
  return null;
}

/**
 * Parses the bytes of a `config get cluster` (or `get
 * AmazonElastiCache:cluster`) reply before its `END\r\n`. Linear in the
 * reply's length. Every node must be valid (a host name or an IPv4/IPv6
 * address, a port 1–65535), or the whole configuration is refused: a
 * cluster is never half-applied.
 *
 * @throws {Error} saying what does not parse; for a reply over
 *   {@linkcode MAX_CLUSTER_CONFIG_BYTES} or over {@linkcode MAX_CLUSTER_NODES} nodes.
 */
export function parseClusterConfig(reply: Uint8Array | string): ClusterConfig {
  if (reply.length > MAX_CLUSTER_CONFIG_BYTES) {
    throw new Error(`the reply has ${reply.length} bytes, over the limit of ${MAX_CLUSTER_CONFIG_BYTES}`);
  }
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
  const servers = new Set<string>();
  const list = lines[1];
  let entries = 0;
  for (let at = 0; at < list.length;) {
    let end = list.indexOf(" ", at);
    if (end === -1) end = list.length;
    const entry = list.slice(at, end);
    at = end + 1;
    if (entry === "") continue;
    if (++entries > MAX_CLUSTER_NODES) throw new Error(`more than ${MAX_CLUSTER_NODES} nodes listed`);
    const parts = entry.split("|", 4);
    if (parts.length !== 3) throw new Error(`bad node ${JSON.stringify(entry.slice(0, 300))}: want host|ip|port`);
    const [host, ip, port] = parts;
    const why = badNode(host, ip, port);
    if (why !== null) throw new Error(`bad node ${JSON.stringify(entry.slice(0, 300))}: ${why}`);
    const name = host || ip;
    servers.add(name.includes(":") ? `[${name}]:${Number(port)}` : `${name}:${Number(port)}`);
  }
  if (servers.size === 0) throw new Error("no nodes listed");
  return { version: Number(lines[0]), servers: [...servers] };
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
  let bytes: Uint8Array;
  try {
    bytes = await endpoint.rawCommand("config get cluster\r\nversion", "\r\nVERSION ");
  } catch (error) {
    if (!(error instanceof MemcacheUnknownCommandError)) throw error;
    bytes = await endpoint.rawCommand("get AmazonElastiCache:cluster", "END\r\n");
    if (bytes.length === 0) {
      throw new MemcacheUnknownError("The endpoint has no cluster configuration (not ElastiCache?)", where);
    }
  }
  if (bytes.length > MAX_CLUSTER_CONFIG_BYTES) {
    throw new MemcacheUnknownError(
      `Cluster configuration refused: its reply has ${bytes.length} bytes, over the limit of ${MAX_CLUSTER_CONFIG_BYTES}`,
      where,
    );
  }
  const reply = decoder.decode(bytes);
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

/** The connection options the configuration endpoint is reached with (those of the nodes). */
type EndpointOptions = Pick<
  ClientOptions,
  "transport" | "tls" | "auth" | "connectTimeout" | "timeout" | "noDelay" | "keepAlive"
>;

/**
 * Auto discovery's reads of one endpoint: the version applied, the next
 * scheduled read, the one under way. `apply` makes a node list the
 * servers (true if they changed); a version counts as applied only once
 * `apply` returned.
 */
export class AutoDiscovery {
  #version: number;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** The read under way, if any. */
  #polling: Promise<boolean> | undefined;
  #stopped = false;
  /** The transport's way to make a timer not hold the process (see `Transport.unrefTimer`). */
  #unrefTimer: ((timer: ReturnType<typeof setTimeout>) => void) | undefined;

  private constructor(
    readonly endpoint: Client,
    first: ClusterConfig,
    readonly interval: number,
    readonly onError: (error: Error) => void,
    readonly apply: (servers: readonly string[]) => boolean,
  ) {
    this.#version = first.version;
  }

  /**
   * Reads the configuration from `spec` once; on success applies it with
   * `apply` and schedules the next read every `interval` ms (0: never).
   * A failed first read leaves nothing open.
   */
  static async start(
    spec: ServerSpec,
    options: EndpointOptions,
    interval: number,
    onError: ((error: Error) => void) | undefined,
    apply: (servers: readonly string[]) => boolean,
  ): Promise<AutoDiscovery> {
    const { transport, tls, auth, connectTimeout, timeout, noDelay, keepAlive } = options;
    const endpoint = new Client(spec, { transport, tls, auth, connectTimeout, timeout, noDelay, keepAlive });
    // The read itself stops past the limit (the version line after the configuration is allowed for).
    rawReplyLimits.set(endpoint, MAX_CLUSTER_CONFIG_BYTES + 1024);
    let first: ClusterConfig;
    try {
      first = await fetchClusterConfig(endpoint);
      apply(first.servers);
    } catch (error) {
      await endpoint.close();
      throw error;
    }
    const report = onError ?? ((error: Error) => console.warn(`memcache: auto discovery: ${error.message}`));
    const discovery = new AutoDiscovery(endpoint, first, interval, report, apply);
    // Polling is the client's own background work: it must not keep a script that forgot close() alive.
    const t = transport ?? loadedDefaultTransport();
    if (t?.unrefTimer) discovery.#unrefTimer = (timer) => t.unrefTimer!(timer);
    discovery.#schedule();
    return discovery;
  }

  /** The configuration version applied. */
  get version(): number {
    return this.#version;
  }

  /** Reads the configuration now and applies it if its version changed; true if the servers changed. */
  refresh(): Promise<boolean> {
    return this.#polling ??= this.#poll().finally(() => (this.#polling = undefined));
  }

  async #poll(): Promise<boolean> {
    const config = await fetchClusterConfig(this.endpoint);
    if (this.#stopped || config.version === this.#version) return false;
    const changed = this.apply(config.servers);
    this.#version = config.version;
    return changed;
  }

  #schedule(): void {
    if (this.#stopped || this.interval === 0) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.refresh().catch((error) => this.onError(error)).finally(() => this.#schedule());
    }, this.interval);
    this.#unrefTimer?.(this.#timer);
  }

  /** Stops the reads: the next one is cancelled, one under way awaited; the endpoint's connection closed. */
  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#polling?.catch(() => {});
    await this.endpoint.close();
  }
}
