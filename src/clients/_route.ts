/**
 * How the command table names a command's routing; shared by the table
 * (commands.ts) and the observer (_observe.ts), which must not import the
 * table (it stays out of small bundles, and the table imports `Client`).
 *
 * @module
 */

/**
 * How a wrapper over several servers (HashClient) routes a command:
 * - `"key"`: the first argument is a key; the call runs on its server.
 * - `"keys"`: the first argument is an iterable of keys; the call is split
 *   per server, run in parallel, and the results merged (`Map`s keyed as
 *   passed, in the order passed; `true` when every part is `true`).
 * - `"pairs"`: the first argument is a `Mapping` of key/value pairs; split
 *   per server as `"keys"`, the results (lists of keys) concatenated.
 * - `"all"`: the call runs on every live server.
 */
export type Route = "key" | "keys" | "pairs" | "all";
