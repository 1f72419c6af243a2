// The Client behaviour suite and the meta suite, against memcached 1.6.18 and 1.6.38, over DenoTransport (runs under Deno only).
import { DenoTransport } from "../../transports/deno.ts";
import { clientSuite } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { clientTarget } from "./_targets.ts";

for (const version of ["1.6.18", "1.6.38"] as const) {
  // Debian 12's memcached, and 1.6.38 (scripts/build_memcached.sh).
  const target = clientTarget(
    "Client/DenoTransport",
    new DenoTransport(),
    undefined,
    version === "1.6.38" ? version : undefined,
  );
  clientSuite(target);
  metaSuite(target);
}
