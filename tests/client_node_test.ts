// The Client behaviour suite over NodeTransport (Node, Bun, and Deno's node:net).
import { NodeTransport } from "../transports/node.ts";
import { clientSuite } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { clientTarget } from "./_targets.ts";

const target = clientTarget("Client/NodeTransport", new NodeTransport());
clientSuite(target);
metaSuite(target);
