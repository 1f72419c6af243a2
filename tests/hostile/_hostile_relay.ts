/**
 * A loopback relay in front of a server port (a MemoryServer's, say) that
 * mutates the server's replies once, as {@linkcode MutatingTransport} does,
 * so a client over a real socket meets the same mutations as one over the
 * fake transport. Closes what it opens, for Deno's sanitizers.
 */
import net from "node:net";
import type { Transport, TransportHandlers, TransportSocket } from "../../mod.ts";
import type { Rng } from "./_hostile.ts";
import { MutatingTransport, type MutationRecord } from "./_hostile_mutate.ts";
import { closeServer, resetSocket } from "./_hostile_server.ts";

/** A running relay; `await using` closes it and every connection. */
export interface MutatingRelay extends AsyncDisposable {
  readonly spec: string;
  /** The mutation made, once the first burst of replies went out. */
  readonly record: MutationRecord | undefined;
}

/** A Transport over node:net to 127.0.0.1:`port`, whatever address it is given. */
function tcpTransport(port: number, sockets: Set<net.Socket>): Transport {
  return {
    name: "relay-upstream",
    connect(_address, _options, handlers: TransportHandlers): Promise<TransportSocket> {
      const socket = net.connect({ host: "127.0.0.1", port });
      sockets.add(socket);
      socket.setNoDelay(true);
      socket.on("data", (chunk: Uint8Array) => handlers.onData(new Uint8Array(chunk)));
      socket.on("error", () => {});
      socket.on("close", (hadError) => {
        sockets.delete(socket);
        handlers.onClose(hadError ? new Error("upstream reset") : undefined);
      });
      return Promise.resolve({
        write: (data: Uint8Array) => void socket.write(data),
        close: () => (socket.destroy(), Promise.resolve()),
      });
    },
  };
}

/** Starts a relay on a free loopback port in front of 127.0.0.1:`port`. */
export async function startMutatingRelay(port: number, rng: Rng): Promise<MutatingRelay> {
  const sockets = new Set<net.Socket>();
  const mutating = new MutatingTransport(tcpTransport(port, sockets), rng);
  const server = net.createServer((client) => {
    sockets.add(client);
    client.setNoDelay(true);
    client.on("error", () => {});
    let upstream: TransportSocket | undefined;
    let gone = false;
    const early: Uint8Array[] = [];
    client.on("close", () => {
      sockets.delete(client);
      gone = true;
      void upstream?.close();
    });
    client.on("data", (chunk: Uint8Array) => {
      if (upstream) upstream.write(new Uint8Array(chunk));
      else early.push(new Uint8Array(chunk));
    });
    mutating.connect({ host: "127.0.0.1", port }, { connectTimeout: 1000 } as never, {
      onData: (data) => void (!client.destroyed && client.write(data.slice())),
      onClose: (error) => (error ? resetSocket(client) : client.end()),
    }).then((socket) => {
      upstream = socket;
      if (gone) return void socket.close();
      for (const data of early.splice(0)) socket.write(data);
    }, () => resetSocket(client));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const listening = (server.address() as net.AddressInfo).port;
  return {
    spec: `127.0.0.1:${listening}`,
    get record() {
      return mutating.record;
    },
    async [Symbol.asyncDispose]() {
      mutating.dispose();
      await closeServer(server, sockets);
    },
  };
}
