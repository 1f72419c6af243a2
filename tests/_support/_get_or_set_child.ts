/**
 * A child process of tests/features/get_or_set_test.ts, in one of two modes.
 *
 * Many processes (the fleet test): its own Client, `callers` concurrent
 * getOrSet calls of one key once the parent writes a line to stdin. The
 * loader counts its runs in memcached (`incr` of the counter key) and takes
 * `loadMs`. Prints "ready" when connected, then one JSON line: the values
 * its callers got, and how often its own loader ran.
 *
 *   <runtime> _get_or_set_child.(ts|js) <server> <key> <counterKey> <callers> <loadMs>
 *
 * close() with a refresh under way (`close`): a client of class `className`
 * (its `timeout` ms, if not "-") gets `key` in its recache window, so its
 * getOrSet starts a background refresh whose loader takes `loadMs`, and is
 * closed at once. It then waits past the loader and prints one JSON line:
 * the value served, the loader's runs, and how many connections were opened
 * after close() was called. It never calls process.exit: the parent checks
 * that it exits by itself, and that it printed nothing to stderr.
 *
 *   <runtime> _get_or_set_child.(ts|js) close <server> <className> <key> <loadMs> <timeout|->
 */
import process from "node:process";
import {
  Client,
  type ClientOptions,
  type Commands,
  HashClient,
  PooledClient,
  RetryingClient,
  type Transport,
} from "../../mod.ts";
import { defaultTransport } from "../../src/connection/_default_transport.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

if (process.argv[2] === "close") {
  const [server, className, key, loadMs, timeout] = process.argv.slice(3);
  let closeCalled = false;
  let openedAfterClose = 0;
  const transport: Transport = {
    name: "counting",
    connect: async (address, options, handlers) => {
      if (closeCalled) openedAfterClose++;
      return (await defaultTransport()).connect(address, options, handlers);
    },
  };
  const options: ClientOptions = timeout === "-" ? { transport } : { transport, timeout: Number(timeout) };
  const client: Commands = className === "PooledClient"
    ? new PooledClient(server, options)
    : className === "HashClient"
    ? new HashClient([server], options)
    : className === "RetryingClient"
    ? new RetryingClient(new Client(server, options))
    : new Client(server, options);
  let runs = 0;
  let loaded: Promise<unknown> = Promise.resolve();
  const loader = () => {
    runs++;
    return loaded = sleep(Number(loadMs)).then(() => "refreshed");
  };
  // Connected before the call below, so its mg is not the request that waits for the connection
  // (on a busy host that can take longer than a short timeout).
  for (let attempt = 1;; attempt++) {
    try {
      await client.get("warm-up");
      break;
    } catch (error) {
      if (attempt === 10) throw error;
    }
  }
  // The parent stored the key with less TTL left than recacheWithin: this call wins the refresh.
  // No onError: anything reported would go to console.warn, that is stderr.
  const value = await client.getOrSet(key, loader, { ttl: 60, recacheWithin: 30 });
  closeCalled = true;
  await client.close();
  await loaded;
  await sleep(200); // past the loader: a dropped refresh must do nothing then
  process.stdout.write(JSON.stringify({ value, runs, openedAfterClose }) + "\n");
} else {
  const [server, key, counterKey, callers, loadMs] = process.argv.slice(2);
  const client = new Client(server);
  await client.version(); // connected before the start line
  let runs = 0;
  const loader = async () => {
    runs++;
    await client.incr(counterKey, 1);
    await sleep(Number(loadMs));
    return `loaded by ${process.pid}`;
  };
  process.stdout.write("ready\n");
  await new Promise((resolve) => process.stdin.once("data", resolve));
  process.stdin.pause();
  const errors: string[] = [];
  const values = await Promise.all(
    Array.from({ length: Number(callers) }, () =>
      client.getOrSet(key, loader, {
        ttl: 60,
        lease: { ttl: 10, wait: 10_000 },
        onError: (error) => errors.push(String(error)),
      })),
  );
  process.stdout.write(JSON.stringify({ values: [...new Set(values)], count: values.length, runs, errors }) + "\n");
  await client.close();
  process.exit(0);
}
