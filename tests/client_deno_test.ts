// The Client behaviour suite over DenoTransport (runs under Deno only).
import { DenoTransport } from "../transports/deno.ts";
import { clientSuite } from "./_suite.ts";
import { clientTarget } from "./_targets.ts";

clientSuite(clientTarget("Client/DenoTransport", new DenoTransport()));
