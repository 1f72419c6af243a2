// The Client behaviour suite over PooledClient (default maxPoolSize, the runtime's transport).
import { type ClientOptions, PooledClient } from "../../mod.ts";
import { clientSuite, type SuiteTarget } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { freePort, startFakeServer, startMemcached } from "../_support/_memcached.ts";

// Two cases count the fake server's connections as Client opens them: one
// connection pipelining both concurrent gets, then one more. A pool gives
// concurrent calls a connection each (up to maxPoolSize), so it opens more;
// tests/features/pooled_client_test.ts checks how many it opens instead.
const oneConnectionPerClient =
  "counts connections of a single pipelined Client; the pool opens one per concurrent call";

const target: SuiteTarget = {
  name: "PooledClient",
  makeClient: (spec: string, options?: ClientOptions) => new PooledClient(spec, options),
  startMemcached,
  startFakeServer,
  freePort,
  skip: {
    "a server that never answers gives MemcacheTimeoutError, then a new connection": oneConnectionPerClient,
    "an unparseable reply closes the connection and rejects every waiting request": oneConnectionPerClient,
  },
};

clientSuite(target);
metaSuite(target);
