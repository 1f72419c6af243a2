/**
 * Correct replies to any request a scripted server reads (meta commands
 * included), from memcached in memory (the `MemoryServer`'s store and
 * sessions): a hostile script answers what it does not twist with these,
 * byte for byte what memcached 1.6.18 would send.
 */
import { MemorySession } from "../../src/server/_session.ts";
import { MemoryStore } from "../../src/server/_store.ts";
import { fromLatin1, latin1 } from "./_hostile.ts";
import type { ScriptedIo, ScriptedRequest } from "./_hostile_server.ts";

/** A store and one session per scripted connection, answering requests as memcached does. */
export class MemoryAnswers {
  readonly store = new MemoryStore();
  readonly #sessions = new Map<number, MemorySession>();

  /** The reply to `req` on connection `connection` (latin1; "" when there is none, e.g. noreply or quiet). */
  reply(req: ScriptedRequest, connection = -1): string {
    let session = this.#sessions.get(connection);
    if (session === undefined) this.#sessions.set(connection, session = new MemorySession(this.store));
    session.feed(latin1(req.line + "\r\n" + (req.data === undefined ? "" : req.data + "\r\n")));
    return session.out.take(false).map(fromLatin1).join("");
  }

  /** Sends the correct reply to `req` on `io`'s connection. */
  answer(req: ScriptedRequest, io: ScriptedIo): void {
    const text = this.reply(req, io.id);
    if (text !== "") io.send(text);
  }

  /** Stores `value` (a string, stored with the client's string flags) under `key`. */
  set(key: string, value: string, flags = 16): void {
    const data = fromLatin1(new TextEncoder().encode(value));
    this.reply({
      line: `set ${key} ${flags} 0 ${data.length}`,
      command: "set",
      args: [],
      data,
      noreply: false,
      index: 0,
    });
  }
}
