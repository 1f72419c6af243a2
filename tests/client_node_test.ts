// The Client behaviour suite over NodeTransport (Node, Bun, and Deno's node:net).
import { NodeTransport } from "../transports/node.ts";
import { clientSuite } from "./_suite.ts";
import { clientTarget } from "./_targets.ts";

clientSuite(clientTarget("Client/NodeTransport", new NodeTransport()));
