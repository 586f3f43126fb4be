// Reading a report bundle: a zip archive of the JSON, CSV and PDF
// renderings of one report run. Only what such a bundle uses is read:
// stored and deflated members listed in the central directory. Deflate is
// the browser's (DecompressionStream); the zip layout is read here because
// browsers have no zip reader.

const u16 = (b, o) => b[o] | (b[o + 1] << 8);
const u32 = (b, o) => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;

// readZip returns the members of a zip archive: [{name, data: Uint8Array}].
export async function readZip(bytes) {
  let eocd = -1;
  for (let i = bytes.length - 22; i >= Math.max(0, bytes.length - 22 - 65535); i--) {
    if (u32(bytes, i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('not a zip archive (no end of central directory)');
  const count = u16(bytes, eocd + 10);
  let p = u32(bytes, eocd + 16);
  const out = [];
  for (let n = 0; n < count; n++) {
    if (p + 46 > bytes.length || u32(bytes, p) !== 0x02014b50) throw new Error('malformed zip central directory');
    const method = u16(bytes, p + 10);
    const csize = u32(bytes, p + 20), usize = u32(bytes, p + 24);
    const nameLen = u16(bytes, p + 28), extraLen = u16(bytes, p + 30), commentLen = u16(bytes, p + 32);
    const local = u32(bytes, p + 42);
    const name = new TextDecoder().decode(bytes.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (local + 30 > bytes.length || u32(bytes, local) !== 0x04034b50) throw new Error(`malformed zip member ${name}`);
    const start = local + 30 + u16(bytes, local + 26) + u16(bytes, local + 28);
    if (start + csize > bytes.length) throw new Error(`zip member ${name} is cut short`);
    const raw = bytes.subarray(start, start + csize);
    let data;
    if (method === 0) data = raw;
    else if (method === 8) data = await inflate(raw, name);
    else throw new Error(`zip member ${name} uses compression method ${method}`);
    if (data.length !== usize) throw new Error(`zip member ${name} has ${data.length} bytes, its header says ${usize}`);
    out.push({name, data});
  }
  return out;
}

async function inflate(raw, name) {
  const s = new Blob([raw]).stream().pipeThrough(new DecompressionStream('deflate-raw'));
  try {
    return new Uint8Array(await new Response(s).arrayBuffer());
  } catch (e) {
    // The stream's failure surfaces as a network-like TypeError; say what it is.
    throw new Error(`zip member ${name} is not valid deflate data (${e.message})`);
  }
}
