// The Client behaviour suite over a one-server HashClient (the runtime's transport).
//
// retryTimeout 0 and deadTimeout 0 make a failing server be retried by the
// very next call, as a Client reconnects; failover timing has its own tests
// in tests/features/hash_client_test.ts.
import { type ClientOptions, HashClient } from "../../mod.ts";
import { type ClientLike, clientSuite, type SuiteTarget } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { freePort, startFakeServer, startMemcached } from "../_support/_memcached.ts";

// HashClient's server-wide commands answer per server: stats(), version()
// and rawCommand() resolve to a Map keyed by "host:port" (API.md), so the
// cases reading them as one server's answer do not apply. They are covered
// for HashClient in tests/features/hash_client_test.ts.
const perServer = "HashClient's stats/version/rawCommand resolve to a Map with one entry per server";

const target: SuiteTarget = {
  name: "HashClient",
  // A HashClient is Client-like except for those per-server results.
  makeClient: (spec: string, options?: ClientOptions) =>
    new HashClient([spec], { ...options, retryTimeout: 0, deadTimeout: 0 }) as unknown as ClientLike,
  startMemcached,
  startFakeServer,
  freePort,
  skip: {
    "stats converted as pymemcache's STAT_TYPES": perServer,
    "ignoreExc turns get-family errors into misses":
      "pymemcache's HashClient ignore_exc gives every command its default (hash_client_test.ts covers it)",
    "version, cacheMemlimit, verbosity, flushAll": perServer,
    "rawCommand returns bytes before the end tokens; errors throw": perServer,
    "CLIENT_ERROR rejects with MemcacheClientError and the next call reconnects":
      `${perServer} (it probes with version())`,
  },
};

clientSuite(target);
metaSuite(target);
