/**
 * llama2.c's tokenizer (`tokenizer.bin` / `tok512.bin`), reproducing run.c's `encode`, `decode` and `safe_printf`
 * exactly, byte for byte.
 *
 * File format (little-endian): int32 max_token_length, then for each of the vocab_size tokens a float32 merge
 * score, an int32 byte length and that many bytes (no terminator). vocab_size is not stored: it comes from the
 * model checkpoint, or — when the tokenizer is loaded alone — from the number of records in the file.
 *
 * Encoding (run.c `encode`): BOS?, a dummy-prefix " " token when the text is non-empty, then one token per UTF-8
 * code point (or `<0xXX>` byte-fallback tokens, id = byte + 3, when the code point is not in the vocabulary),
 * then repeatedly merge the adjacent pair whose concatenation is a vocabulary entry with the highest score
 * (leftmost on ties). run.c rescans the whole sequence after every merge (O(n²)); we keep the same choice
 * with a heap over adjacent pairs and a linked list, so long documents encode in O(n log n).
 */
import { readFileSync } from 'node:fs';

export const LLAMA2C_BOS = 1;
export const LLAMA2C_EOS = 2;

export class Llama2cTokenizer {
  /** Token pieces as raw bytes. */
  readonly pieces: Uint8Array[];
  readonly scores: Float32Array;
  readonly maxTokenLength: number;
  /** piece (as a latin1 "byte string") → id; the first id wins for duplicate pieces. */
  private readonly lookup = new Map<string, number>();
  private readonly keys: string[];

  constructor(pieces: Uint8Array[], scores: Float32Array, maxTokenLength: number) {
    if (pieces.length !== scores.length) throw new Error('Llama2cTokenizer: pieces and scores differ in length');
    this.pieces = pieces;
    this.scores = scores;
    this.maxTokenLength = maxTokenLength;
    this.keys = pieces.map((p) => Buffer.from(p).toString('latin1'));
    this.keys.forEach((k, i) => {
      if (!this.lookup.has(k)) this.lookup.set(k, i);
    });
  }

  get vocabSize(): number {
    return this.pieces.length;
  }

  /** Parse a tokenizer file's bytes. `vocabSize` (from the checkpoint) limits how many records are read. */
  static fromBytes(bytes: Uint8Array, vocabSize?: number, name = 'tokenizer'): Llama2cTokenizer {
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    if (bytes.byteLength < 4) throw new Error(`${name}: file too short for a llama2.c tokenizer (${bytes.byteLength} bytes)`);
    const maxTokenLength = view.getInt32(0, true);
    if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) throw new Error(`${name}: implausible max_token_length ${maxTokenLength}`);
    const pieces: Uint8Array[] = [];
    const scores: number[] = [];
    let off = 4;
    while (off < bytes.byteLength && (vocabSize === undefined || pieces.length < vocabSize)) {
      if (off + 8 > bytes.byteLength) throw new Error(`${name}: truncated record for token ${pieces.length} at byte ${off}`);
      const score = view.getFloat32(off, true);
      const len = view.getInt32(off + 4, true);
      off += 8;
      if (len < 0 || off + len > bytes.byteLength) throw new Error(`${name}: token ${pieces.length} has bad length ${len} at byte ${off - 4}`);
      pieces.push(bytes.slice(off, off + len));
      scores.push(score);
      off += len;
    }
    if (vocabSize !== undefined && pieces.length < vocabSize) {
      throw new Error(`${name}: has ${pieces.length} tokens but the model's vocab_size is ${vocabSize}`);
    }
    return new Llama2cTokenizer(pieces, Float32Array.from(scores), maxTokenLength);
  }

  static load(path: string, vocabSize?: number): Llama2cTokenizer {
    return Llama2cTokenizer.fromBytes(readFileSync(path), vocabSize, path);
  }

  /** Serialise back to the llama2.c format (used by tests that build their own tokenizer). */
  toBytes(): Uint8Array {
    const size = 4 + this.pieces.reduce((s, p) => s + 8 + p.length, 0);
    const out = new Uint8Array(size);
    const view = new DataView(out.buffer);
    view.setInt32(0, this.maxTokenLength, true);
    let off = 4;
    this.pieces.forEach((p, i) => {
      view.setFloat32(off, this.scores[i]!, true);
      view.setInt32(off + 4, p.length, true);
      out.set(p, off + 8);
      off += 8 + p.length;
    });
    return out;
  }

  private id(key: string): number {
    return this.lookup.get(key) ?? -1;
  }

  /** run.c `encode(text, bos, eos)`. */
  encode(text: string, bos = true, eos = false): number[] {
    const bytes = Buffer.from(text, 'utf8');
    const tokens: number[] = [];
    if (bos) tokens.push(LLAMA2C_BOS);
    if (bytes.length > 0) {
      // run.c looks up " " and pushes whatever it gets; a vocabulary without " " cannot encode text.
      const dummy = this.id(' ');
      if (dummy < 0) throw new Error('llama2.c tokenizer: vocabulary has no " " token for the dummy prefix');
      tokens.push(dummy);
    }
    // One token per UTF-8 code point (at most 4 bytes), byte fallback otherwise.
    let start = 0;
    while (start < bytes.length) {
      let end = start + 1;
      while (end < bytes.length && (bytes[end]! & 0xc0) === 0x80 && end - start < 4) end++;
      const id = this.id(bytes.toString('latin1', start, end));
      if (id >= 0) tokens.push(id);
      else for (let i = start; i < end; i++) tokens.push(bytes[i]! + 3);
      start = end;
    }
    const merged = this.mergePairs(tokens);
    if (eos) merged.push(LLAMA2C_EOS);
    return merged;
  }

  /** Greedy best-score pair merging, identical in outcome to run.c's rescanning loop. */
  private mergePairs(tokens: number[]): number[] {
    const n = tokens.length;
    const tok = Int32Array.from(tokens);
    const next = new Int32Array(n);
    const prev = new Int32Array(n);
    const version = new Int32Array(n); // bumped whenever the token at a node changes or the node dies
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
    }
    const heap = new PairHeap();
    const pushPair = (i: number) => {
      const j = next[i]!;
      if (j < 0) return;
      const id = this.id(this.keys[tok[i]!]! + this.keys[tok[j]!]!);
      // run.c starts from best_score = -1e10 and requires a strictly greater score.
      if (id >= 0 && this.scores[id]! > -1e10) heap.push(this.scores[id]!, i, id, version[i]!, version[j]!, j);
    };
    for (let i = 0; i < n; i++) pushPair(i);
    while (heap.size > 0) {
      const e = heap.pop();
      const { left: i, right: j } = e;
      if (version[i] !== e.vLeft || version[j] !== e.vRight || next[i] !== j) continue; // stale
      tok[i] = e.id;
      version[i]!++;
      version[j]!++;
      version[j] = version[j]! | 0x40000000; // dead nodes never match a live version again
      const k = next[j]!;
      next[i] = k;
      if (k >= 0) prev[k] = i;
      if (prev[i]! >= 0) pushPair(prev[i]!);
      pushPair(i);
    }
    const out: number[] = [];
    for (let i = n > 0 ? 0 : -1; i >= 0; i = next[i]!) out.push(tok[i]!);
    return out;
  }

  /**
   * run.c `decode(prev, token)`: the bytes to print for `token`. After BOS a leading space is stripped;
   * `<0xXX>` pieces become the raw byte.
   */
  decodePiece(prevToken: number, token: number): Uint8Array {
    if (token < 0 || token >= this.pieces.length) throw new Error(`llama2.c tokenizer: token id ${token} out of range [0, ${this.pieces.length})`);
    let piece = this.pieces[token]!;
    if (prevToken === LLAMA2C_BOS && piece[0] === 0x20) piece = piece.subarray(1);
    // sscanf(piece, "<0x%02hhX>", &byte) == 1: "<0x" followed by one or two hex digits.
    const m = /^<0x([0-9A-Fa-f]{1,2})/.exec(Buffer.from(piece).toString('latin1'));
    if (m) piece = Uint8Array.of(parseInt(m[1]!, 16));
    return piece;
  }

  /** run.c `safe_printf`: what actually gets printed (C strings stop at NUL; lone unprintable bytes are dropped). */
  static safePrintable(piece: Uint8Array): Uint8Array {
    const nul = piece.indexOf(0);
    const p = nul >= 0 ? piece.subarray(0, nul) : piece;
    if (p.length === 0) return p;
    if (p.length === 1 && !(isCPrint(p[0]!) || isCSpace(p[0]!))) return p.subarray(0, 0);
    return p;
  }

  /** Decode a token sequence to text (concatenating run.c pieces, unprintable lone bytes kept). */
  decode(tokens: ArrayLike<number>, prevToken = -1): string {
    const parts: Uint8Array[] = [];
    let prev = prevToken;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (t === LLAMA2C_BOS || t === LLAMA2C_EOS) {
        prev = t;
        continue;
      }
      parts.push(this.decodePiece(prev, t));
      prev = t;
    }
    return Buffer.concat(parts).toString('utf8');
  }
}

/** C locale isprint / isspace. */
const isCPrint = (b: number) => b >= 0x20 && b <= 0x7e;
const isCSpace = (b: number) => b === 0x20 || (b >= 0x09 && b <= 0x0d);

interface HeapEntry {
  score: number;
  left: number;
  right: number;
  id: number;
  vLeft: number;
  vRight: number;
}

/** Max-heap by score, ties by leftmost position (original index order equals sequence order). */
class PairHeap {
  private items: HeapEntry[] = [];
  get size(): number {
    return this.items.length;
  }
  private better(a: HeapEntry, b: HeapEntry): boolean {
    return a.score > b.score || (a.score === b.score && a.left < b.left);
  }
  push(score: number, left: number, id: number, vLeft: number, vRight: number, right: number): void {
    const a = this.items;
    a.push({ score, left, right, id, vLeft, vRight });
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.better(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }
  pop(): HeapEntry {
    const a = this.items;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length > 0) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.better(a[l]!, a[m]!)) m = l;
        if (r < a.length && this.better(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}
