// A small GIF89a encoder (the format: https://www.w3.org/Graphics/GIF/spec-gif89a.txt): one global
// palette, full frames of palette indices, LZW-compressed, a Comment Extension (7-bit text), and the
// NETSCAPE2.0 application extension that makes the animation loop.

/** Bytes of a GIF: width, height; palette: [[r, g, b], …] (≤ 256); frames: [{ indices: Uint8Array(w*h), delay: centiseconds }]. */
export function encodeGIF({ width, height, palette, frames, comment = '', loops = 0 }) {
  if (palette.length > 256 || !palette.length) throw new Error(`palette: ${palette.length} colours, a GIF holds 1 to 256`);
  const bits = Math.max(1, Math.ceil(Math.log2(palette.length))); // the table holds 2^bits entries
  const out = new Bytes();
  out.text('GIF89a');
  out.u16(width); out.u16(height);
  out.byte(0x80 | ((bits - 1) << 4) | (bits - 1)); // global table, colour resolution, table size
  out.byte(0); out.byte(0); // background index, no aspect ratio
  for (let i = 0; i < 1 << bits; i++) { const [r, g, b] = palette[i] || [0, 0, 0]; out.byte(r); out.byte(g); out.byte(b); }
  // NETSCAPE2.0: sub-block 1 holds the loop count (0 = for ever).
  out.byte(0x21); out.byte(0xff); out.byte(11); out.text('NETSCAPE2.0');
  out.byte(3); out.byte(1); out.u16(loops); out.byte(0);
  if (comment) {
    out.byte(0x21); out.byte(0xfe);
    const text = ascii(comment);
    out.blocks(Uint8Array.from(text, c => c.charCodeAt(0)));
  }
  const minCode = Math.max(2, bits);
  for (const f of frames) {
    if (f.indices.length !== width * height) throw new Error(`frame: ${f.indices.length} indices for ${width}x${height}`);
    // Graphic Control Extension: no disposal (each frame is whole), the delay, no transparency.
    out.byte(0x21); out.byte(0xf9); out.byte(4); out.byte(0x04); out.u16(Math.max(2, Math.round(f.delay))); out.byte(0); out.byte(0);
    out.byte(0x2c); out.u16(0); out.u16(0); out.u16(width); out.u16(height); out.byte(0); // image descriptor, no local table
    out.byte(minCode);
    out.blocks(lzw(f.indices, minCode));
  }
  out.byte(0x3b);
  return out.bytes();
}

/** Comment text is 7-bit ASCII (the spec): anything else goes as a JSON-style \uXXXX escape. */
function ascii(text) {
  return text.replace(/[^\x20-\x7e\n\t]/g, c => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The GIF flavour of LZW: variable-width codes (min+1 up to 12 bits) packed least significant bit first. */
function lzw(indices, minCode) {
  const clear = 1 << minCode, eoi = clear + 1;
  const out = [];
  let acc = 0, nbits = 0, size = minCode + 1, next = eoi + 1;
  let table = new Map();
  const emit = code => {
    acc |= code << nbits;
    nbits += size;
    while (nbits >= 8) { out.push(acc & 0xff); acc >>>= 8; nbits -= 8; }
  };
  emit(clear);
  let prefix = indices[0];
  for (let i = 1; i < indices.length; i++) {
    const k = indices[i], key = prefix * 256 + k;
    const found = table.get(key);
    if (found !== undefined) { prefix = found; continue; }
    emit(prefix);
    if (next === 4096) { // the table is full: start again (the decoder clears at the same code)
      emit(clear);
      table = new Map();
      size = minCode + 1;
      next = eoi + 1;
    } else {
      // The decoder adds its entry one code later, so it widens when this entry reaches 2^size.
      if (next >= 1 << size) size++;
      table.set(key, next++);
    }
    prefix = k;
  }
  emit(prefix);
  emit(eoi);
  if (nbits > 0) out.push(acc & 0xff);
  return Uint8Array.from(out);
}

class Bytes {
  constructor() { this.buf = new Uint8Array(1 << 16); this.n = 0; }
  grow(k) {
    if (this.n + k <= this.buf.length) return;
    const b = new Uint8Array(Math.max(this.buf.length * 2, this.n + k));
    b.set(this.buf.subarray(0, this.n));
    this.buf = b;
  }
  byte(v) { this.grow(1); this.buf[this.n++] = v & 0xff; }
  u16(v) { this.byte(v); this.byte(v >> 8); }
  text(s) { for (const c of s) this.byte(c.charCodeAt(0)); }
  /** Data sub-blocks: a length byte (≤ 255), the bytes; then the 0 terminator. */
  blocks(data) {
    this.grow(data.length + Math.ceil(data.length / 255) + 1);
    for (let i = 0; i < data.length; i += 255) {
      const part = data.subarray(i, i + 255);
      this.buf[this.n++] = part.length;
      this.buf.set(part, this.n);
      this.n += part.length;
    }
    this.buf[this.n++] = 0;
  }
  bytes() { return this.buf.slice(0, this.n); }
}
