/**
 * What both codecs share: an item as read off the wire, the error for bytes
 * that fit no reply, and the decoding of protocol text. Pure; imports
 * nothing.
 *
 * @module
 */

const utf8 = new TextDecoder();

/** One item of a retrieval reply. */
export interface Item {
  key: string;
  flags: number;
  value: Uint8Array;
  /** The cas token as a decimal string, for gets/gats. */
  cas?: string;
}

/** The server sent bytes that do not fit the protocol; the stream is unusable. */
export class ProtocolError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ProtocolError";
  }
}

/** Decodes protocol text: ASCII by hand (short, hot), anything else as UTF-8. */
export function decodeText(bytes: Uint8Array, start = 0, end = bytes.length): string {
  if (end - start > 64) return utf8.decode(bytes.subarray(start, end));
  let s = "";
  for (let i = start; i < end; i++) {
    const c = bytes[i];
    if (c > 127) return utf8.decode(bytes.subarray(start, end));
    s += String.fromCharCode(c);
  }
  return s;
}
