// The Client behaviour suite and the meta suite against MemoryServer
// (testing.ts) through its transport, on every runtime: the same cases as
// against a spawned memcached (see tests/suites/_memory_target.ts for how servers
// are made).
import { clientSuite } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { freePort, startFakeServer } from "../_support/_memcached.ts";
import { memoryTarget } from "./_memory_target.ts";

const target = memoryTarget("Client/memory", { startFakeServer, freePort });
clientSuite(target);
metaSuite(target);
