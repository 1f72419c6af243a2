/**
 * One process of the many-process getOrSet test (tests/get_or_set_test.ts):
 * its own Client, `callers` concurrent getOrSet calls of one key once the
 * parent writes a line to stdin. The loader counts its runs in memcached
 * (`incr` of the counter key) and takes `loadMs`. Prints "ready" when
 * connected, then one JSON line: the values its callers got, and how often
 * its own loader ran.
 *
 *   <runtime> _get_or_set_child.(ts|js) <server> <key> <counterKey> <callers> <loadMs>
 */
import process from "node:process";
import { Client } from "../mod.ts";

const [server, key, counterKey, callers, loadMs] = process.argv.slice(2);
const client = new Client(server);
await client.version(); // connected before the start line
let runs = 0;
const loader = async () => {
  runs++;
  await client.incr(counterKey, 1);
  await new Promise((resolve) => setTimeout(resolve, Number(loadMs)));
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
