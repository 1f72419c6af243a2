// The Client behaviour suite over RetryingClient wrapping a Client (the runtime's transport).
//
// The suite asserts single attempts (a timeout rejects, a closed connection
// fails the call, how many connections a failure opens), so errors are not
// retried here: `doNotRetryFor: [Error]`.
// What is checked is the surface: every command, its arguments, results and
// errors pass through unchanged. Retrying itself is tested in
// tests/features/retrying_client_test.ts.
import { Client, type ClientOptions, RetryingClient } from "../../mod.ts";
import { type ClientLike, clientSuite, type SuiteTarget } from "./_suite.ts";
import { metaSuite } from "./_suite_meta.ts";
import { freePort, startFakeServer, startMemcached } from "../_support/_memcached.ts";

const target: SuiteTarget = {
  name: "RetryingClient",
  // A RetryingClient has Client's commands, not its option properties (server, serde, ...).
  makeClient: (spec: string, options?: ClientOptions) =>
    new RetryingClient(new Client(spec, options), { doNotRetryFor: [Error] }) as unknown as ClientLike,
  startMemcached,
  startFakeServer,
  freePort,
};

clientSuite(target);
metaSuite(target);
