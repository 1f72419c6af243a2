/**
 * {@linkcode Client}'s meta commands (memcached ≥ 1.6.10) over its
 * {@linkcode ClientCore}: mg, a batch of quiet mg, ms, md, ma and mn, and
 * the checks that keep a reply matched to its request. The codec is in
 * _meta.ts and _meta_reply.ts.
 *
 * @module
 */

import {
  EXPECT_META,
  EXPECT_META_QUIET,
  INVALID_FLAG_SWALLOWS_DATA,
  type Reply,
  WITH_DATA,
} from "../protocol/_reply_parser.ts";
import { ProtocolError } from "../protocol/_wire.ts";
import {
  binaryWireKey,
  encodeBase64,
  encodeMeta,
  encodeMetaGetBatch,
  encodeMetaSet,
  isQuiet,
  metaArithmeticFlags,
  type MetaArithmeticOptions,
  type MetaCommonOptions,
  metaDeleteFlags,
  type MetaDeleteOptions,
  metaGetFlags,
  type MetaGetManyOptions,
  type MetaGetOptions,
  type MetaKey,
  type MetaLine,
  type MetaResult,
  type MetaSetOptions,
  type MetaSetPlan,
  metaSetPlan,
  type MetaStatus,
  newer,
} from "../protocol/_meta.ts";
import { metaResult, parseCounterValue, QUIET_SUCCESS } from "../protocol/_meta_reply.ts";
import { checkFlags } from "../protocol/_validate.ts";
import { MemcacheIllegalInputError } from "../errors.ts";
import { context, deserialize, inputs, isPromise, unserializable, wireKey } from "./_client_core.ts";
import type { ClientCore, Serialized } from "./_client_types.ts";

const encoder = new TextEncoder();

/** The statuses each meta command may answer (see _meta.ts). */
const GET_STATUSES: readonly MetaStatus[] = ["VA", "HD", "EN"];
const SET_STATUSES: readonly MetaStatus[] = ["HD", "NS", "EX", "NF"];
const DELETE_STATUSES: readonly MetaStatus[] = ["HD", "NF", "EX"];
const ARITHMETIC_STATUSES: readonly MetaStatus[] = ["HD", "VA", "NF", "NS", "EX"];

/** Client.metaGet: `mg` of one key. */
export function metaGet(core: ClientCore, key: MetaKey, options?: MetaGetOptions): Promise<MetaResult> {
  return metaOne(core, "mg", key, options, false, metaGetFlags, GET_STATUSES, metaRead);
}

/** Client.metaGetMany: a quiet `mg … q` per key, closed by one `mn`; the hits keyed as passed. */
export function metaGetMany(
  core: ClientCore,
  keys: Iterable<MetaKey>,
  options?: MetaGetManyOptions,
): Promise<Map<MetaKey, MetaResult>> {
  let list: MetaKey[];
  let wire: string[];
  let binary: boolean[] | undefined;
  let flags: string;
  let binaryFlags: string;
  try {
    list = [...keys];
    wire = list.map((k) => metaKey(core, k));
    binary = list.some((k) => typeof k !== "string") ? list.map((k) => typeof k !== "string") : undefined;
    flags = metaGetFlags(options, false, true);
    binaryFlags = binary === undefined ? flags : metaGetFlags(options, true, true);
  } catch (error) {
    return Promise.reject(context(core, error, "mg"));
  }
  if (list.length === 0) return Promise.resolve(new Map());
  try {
    return newer(
      core.connection().request(
        "mg",
        EXPECT_META_QUIET,
        (out) => encodeMetaGetBatch(out, wire, binary, flags, binaryFlags),
        wire,
        undefined,
        (reply) => metaReadMany(core, reply, list, wire, options),
      ) as Promise<Map<MetaKey, MetaResult>>,
      options,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** A metaGetMany reply: each hit placed by its `O<index>`. */
function metaReadMany(
  core: ClientCore,
  reply: Reply,
  list: MetaKey[],
  wire: string[],
  options: MetaGetManyOptions | undefined,
): Map<MetaKey, MetaResult> | Promise<Map<MetaKey, MetaResult>> {
  if (reply.type !== "metaGroup") throw outOfStep(reply.type, "mg");
  const results = new Map<MetaKey, MetaResult>();
  let pending: Promise<void>[] | undefined;
  const lines = reply.lines;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    const index = line.opaque === undefined || line.opaque.length > 9 ? -1 : +line.opaque;
    if (!(Number.isInteger(index) && index >= 0 && index < list.length) || line.status === "EN") {
      throw outOfStep(`${line.status} O${line.opaque}`, "mg");
    }
    const key = list[index];
    if (line.key !== undefined && line.key !== wire[index]) throw outOfStep(`k${line.key}`, "mg");
    line.opaque = undefined; // the batch's own tag
    const result = metaRead(core, line, key, options);
    if (isPromise<MetaResult>(result)) (pending ??= []).push(result.then((r) => void results.set(key, r)));
    else results.set(key, result);
  }
  return pending === undefined ? results : Promise.all(pending).then(() => results);
}

/** Client.metaSet: `ms` of `value` through the serde. */
export function metaSet(core: ClientCore, key: MetaKey, value: unknown, options?: MetaSetOptions): Promise<MetaResult> {
  try {
    const binary = typeof key !== "string";
    const wire = metaKey(core, key);
    const plan = metaSetPlan(options, binary);
    const serdeKey = serdeKeyOf(key);
    let serialized: Serialized | Promise<Serialized>;
    try {
      serialized = core.serde.serialize(serdeKey, value);
    } catch (error) {
      throw unserializable(serdeKey, error); // as set's: bad input, nothing sent
    }
    return isPromise<Serialized>(serialized)
      ? serialized.then(
        (pair) => inputs(core, "ms", () => sendMetaSet(core, key, wire, plan, pair, options)),
        (error) => Promise.reject(context(core, unserializable(serdeKey, error), "ms")),
      )
      : sendMetaSet(core, key, wire, plan, serialized, options);
  } catch (error) {
    return Promise.reject(context(core, error, "ms"));
  }
}

function sendMetaSet(
  core: ClientCore,
  key: MetaKey,
  wire: string,
  plan: MetaSetPlan,
  [data, serdeFlags]: Serialized,
  options: MetaSetOptions | undefined,
): Promise<MetaResult> {
  if (typeof data !== "string" && !(data instanceof Uint8Array)) {
    throw new MemcacheIllegalInputError("The serde must return a string or Uint8Array");
  }
  const bytes = typeof data === "string" ? encoder.encode(data) : data;
  const flags = plan.flags ?? checkFlags(serdeFlags);
  const binary = typeof key !== "string";
  // With E: a server that does not know it answers after reading the data block (see _protocol.ts).
  const swallows = options?.newCas !== undefined ? INVALID_FLAG_SWALLOWS_DATA : 0;
  return newer(
    core.connection().request(
      "ms",
      (plan.quiet ? EXPECT_META_QUIET : EXPECT_META) | WITH_DATA | swallows,
      (out) => encodeMetaSet(out, wire, binary, bytes, flags, plan.tail, plan.quiet),
      plan.quiet ? [wire] : undefined,
      undefined,
      (reply) => {
        const line = metaCheck(metaLine(reply, SET_STATUSES, "ms"), wire, options);
        const result = metaResult(line, options?.returnKey ? key : undefined);
        result.stored = result.status === "HD";
        return result;
      },
    ),
    options,
  );
}

/** Client.metaDelete: `md`. */
export function metaDelete(core: ClientCore, key: MetaKey, options?: MetaDeleteOptions): Promise<MetaResult> {
  const quiet = isQuiet(options);
  return metaOne(core, "md", key, options, quiet, metaDeleteFlags, DELETE_STATUSES, readDelete);
}

/** Client.metaArithmetic: `ma`. */
export function metaArithmetic(core: ClientCore, key: MetaKey, options?: MetaArithmeticOptions): Promise<MetaResult> {
  const quiet = isQuiet(options);
  return metaOne(core, "ma", key, options, quiet, metaArithmeticFlags, ARITHMETIC_STATUSES, readArithmetic);
}

/** Client.metaNoop: `mn`. */
export async function metaNoop(core: ClientCore): Promise<true> {
  const reply = await core.connection().request("mn", EXPECT_META, (out) => out.text("mn\r\n"));
  if (reply.type !== "meta" || reply.status !== "MN") throw outOfStep(reply.type, "mn");
  return true;
}

/** How a command reads its checked reply line into a result. */
type Read = (
  core: ClientCore,
  line: MetaLine,
  key: MetaKey,
  options: MetaCommonOptions | undefined,
) => MetaResult | Promise<MetaResult>;

/** mg, md and ma: one line (quiet: a trailing mn), read into a result by `read`. */
function metaOne<O extends MetaCommonOptions>(
  core: ClientCore,
  command: "mg" | "md" | "ma",
  key: MetaKey,
  options: O | undefined,
  quiet: boolean,
  flagsOf: (options: O | undefined, binary: boolean) => string,
  statuses: readonly MetaStatus[],
  read: Read,
): Promise<MetaResult> {
  let wire: string;
  let flags: string;
  const binary = typeof key !== "string";
  try {
    wire = metaKey(core, key);
    flags = flagsOf(options, binary);
  } catch (error) {
    return Promise.reject(context(core, error, command));
  }
  try {
    return newer(
      core.connection().request(
        command,
        quiet ? EXPECT_META_QUIET : EXPECT_META,
        (out) => encodeMeta(out, command, wire, binary, flags, quiet),
        quiet ? [wire] : undefined,
        undefined,
        (reply) => read(core, metaCheck(metaLine(reply, statuses, command), wire, options), key, options),
      ) as Promise<MetaResult>,
      options,
    );
  } catch (error) {
    return Promise.reject(error);
  }
}

/** An md line as a result: `deleted`. */
function readDelete(_core: ClientCore, line: MetaLine, key: MetaKey, options: MetaCommonOptions | undefined) {
  const result = metaResult(line, options?.returnKey ? key : undefined);
  result.deleted = result.status === "HD";
  return result;
}

/** An ma line as a result: the counter, if returned. */
function readArithmetic(_core: ClientCore, line: MetaLine, key: MetaKey, options: MetaCommonOptions | undefined) {
  const result = metaResult(line, options?.returnKey ? key : undefined);
  if (line.item === undefined) return result;
  const value = parseCounterValue(line.item.value);
  if (value === undefined) throw new ProtocolError("an ma reply's value is not a decimal number");
  result.value = value;
  return result;
}

/** The wire form of a meta key: checked and prefixed; bytes in base64. */
function metaKey(core: ClientCore, key: MetaKey): string {
  if (typeof key === "string") return wireKey(core, key);
  if (key instanceof Uint8Array) return binaryWireKey(key, core.keyPrefix);
  throw new MemcacheIllegalInputError(`Key must be a string or Uint8Array, got ${typeof key}`);
}

/** The key the serde sees: a string as passed; bytes as their base64. */
function serdeKeyOf(key: MetaKey): string {
  return typeof key === "string" ? key : encodeBase64(key);
}

/**
 * The one meta line of a reply (a quiet command's MN alone: success),
 * which must have one of `statuses`; anything else is a reply out of step.
 */
function metaLine(reply: Reply, statuses: readonly MetaStatus[], command: string): MetaLine {
  let line: MetaLine | undefined;
  if (reply.type === "meta") line = reply;
  else if (reply.type === "metaGroup" && reply.lines.length <= 1) line = reply.lines[0] ?? QUIET_SUCCESS;
  if (line === undefined || !statuses.includes(line.status)) {
    throw outOfStep(reply.type === "meta" ? reply.status : reply.type, command);
  }
  return line;
}

/** A reply's `k` and `O` must be the request's: another's means the stream is out of step. */
function metaCheck(line: MetaLine, wire: string, options: MetaCommonOptions | undefined): MetaLine {
  if ((line.key !== undefined && line.key !== wire) || line.opaque !== options?.opaque) {
    throw new ProtocolError(`a meta reply for another request (key ${line.key}, opaque ${line.opaque})`);
  }
  return line;
}

function outOfStep(what: string, command: string): ProtocolError {
  return new ProtocolError(`Unexpected reply ${JSON.stringify(what)} to ${command}`);
}

/** An mg line as a result: the value deserialized (maybe asynchronously). */
function metaRead(
  core: ClientCore,
  line: MetaLine,
  key: MetaKey,
  options: MetaCommonOptions | undefined,
): MetaResult | Promise<MetaResult> {
  const result = metaResult(line, options?.returnKey ? key : undefined);
  const item = line.item;
  if (item === undefined) return result;
  item.flags = line.flags ?? 0;
  const value = deserialize(core, serdeKeyOf(key), item); // a failure: MemcacheSerdeError, as get's
  if (!isPromise(value)) {
    result.value = value;
    return result;
  }
  return value.then((v) => {
    result.value = v;
    return result;
  });
}
