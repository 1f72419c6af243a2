// The Client behaviour suite over DenoTransport (runs under Deno only).
import { DenoTransport } from "../transports/deno.ts";
import { clientSuite } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { clientTarget } from "./_targets.ts";

const target = clientTarget("Client/DenoTransport", new DenoTransport());
clientSuite(target);
metaSuite(target);
