/**
 * What both codecs share: an item as read off the wire, the error for bytes
 * that fit no reply, the decoding of protocol text, and the joining of byte
 * chunks (also for the serdes and MemoryServer's listener). Pure; imports
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

/** The chunks' bytes in one new buffer; a single chunk is returned as it is. */
export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  let size = 0;
  for (const chunk of chunks) size += chunk.length;
  const out = new Uint8Array(size);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}
