// Verification in the browser, so that an auditor trusts the log's public
// key and nothing the server says: RFC 9162 leaf and node hashes, inclusion
// and consistency proofs, C2SP signed notes and checkpoints (Ed25519), the
// hash chain field of an entry read from the very bytes that were hashed,
// and report attestations. Hashing and signatures are WebCrypto's; the
// proof algorithms are RFC 9162's (sections 2.1.3.2 and 2.1.4.2) written
// out here because no browser ships them.

const utf8 = new TextEncoder();

export function b64decode(s) {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

export function b64encode(bytes) {
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s);
}

export const hex = bytes => Array.from(bytes, b => b.toString(16).padStart(2, '0')).join('');

export function fromHex(s) {
  if (!/^([0-9a-f]{2})*$/.test(s)) throw new Error(`not lowercase hex: ${s.slice(0, 20)}`);
  return Uint8Array.from(s.match(/../g) || [], x => parseInt(x, 16));
}

export function equal(a, b) {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

export async function sha256(...parts) {
  const buf = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let off = 0;
  for (const p of parts) { buf.set(p, off); off += p.length; }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

export const leafHash = entry => sha256(Uint8Array.of(0), entry);
export const nodeHash = (l, r) => sha256(Uint8Array.of(1), l, r);

// Tree positions are JSON strings (uint64); proofs need exact integers.
const big = n => BigInt(n);

function checkHashes(proof) {
  for (const p of proof) if (p.length !== 32) throw new Error('a proof hash is not 32 bytes');
}

// rootFromInclusion folds an inclusion proof of leaf `index` in a tree of
// `size` leaves into the root it implies (RFC 9162 2.1.3.2).
export async function rootFromInclusion(index, size, leaf, proof) {
  let fn = big(index), sn = big(size) - 1n;
  if (fn > sn) throw new Error(`leaf ${index} is outside a tree of ${size}`);
  checkHashes(proof);
  let r = leaf;
  for (const p of proof) {
    if (sn === 0n) throw new Error('the inclusion proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('the inclusion proof is too short');
  return r;
}

// verifyConsistency checks that a tree of size `second` with root
// `secondRoot` extends the tree of size `first` with root `firstRoot`
// (RFC 9162 2.1.4.2). It throws why when it does not.
export async function verifyConsistency(first, second, firstRoot, secondRoot, proof) {
  let fn = big(first), sn = big(second);
  checkHashes(proof);
  if (fn > sn) throw new Error(`size ${first} is larger than ${second}`);
  if (fn === sn) {
    if (proof.length) throw new Error('a proof between equal sizes must be empty');
    if (!equal(firstRoot, secondRoot)) throw new Error('equal sizes with different roots');
    return;
  }
  if (fn === 0n) {
    if (proof.length) throw new Error('a proof from the empty tree must be empty');
    return;
  }
  if (!proof.length) throw new Error('the consistency proof is empty');
  const path = (fn & (fn - 1n)) === 0n ? [firstRoot, ...proof] : proof;
  fn -= 1n; sn -= 1n;
  while ((fn & 1n) === 1n) { fn >>= 1n; sn >>= 1n; }
  let fr = path[0], sr = path[0];
  for (const c of path.slice(1)) {
    if (sn === 0n) throw new Error('the consistency proof is too long');
    if ((fn & 1n) === 1n || fn === sn) {
      fr = await nodeHash(c, fr);
      sr = await nodeHash(c, sr);
      while ((fn & 1n) === 0n && fn !== 0n) { fn >>= 1n; sn >>= 1n; }
    } else {
      sr = await nodeHash(sr, c);
    }
    fn >>= 1n; sn >>= 1n;
  }
  if (sn !== 0n) throw new Error('the consistency proof is too short');
  if (!equal(fr, firstRoot)) throw new Error(`the proof does not lead to the root of size ${first}`);
  if (!equal(sr, secondRoot)) throw new Error(`the proof does not lead to the root of size ${second}`);
}

// parseVerifierKey reads note verifier key text, "name+hash+base64(0x01 ||
// Ed25519 public key)", and checks that the hash is the key's.
export async function parseVerifierKey(text) {
  // The base64 key may itself contain '+': split at the first two only.
  const m = /^([^+\s]+)\+([0-9a-f]{8})\+([A-Za-z0-9+/=]+)$/.exec(text.trim());
  if (!m) throw new Error('a verifier key is name+hash+key (as trail-data/log.vkey holds it)');
  const [, name, hashHex, keyB64] = m;
  let key;
  try { key = b64decode(keyB64); } catch { throw new Error('the verifier key is not base64'); }
  if (key.length !== 33 || key[0] !== 1) throw new Error('the verifier key is not an Ed25519 key');
  const hash = (await sha256(utf8.encode(name + '\n'), key)).slice(0, 4);
  if (hex(hash) !== hashHex) throw new Error('the verifier key hash does not match its key');
  const pub = await crypto.subtle.importKey('raw', key.slice(1), {name: 'Ed25519'}, false, ['verify']);
  return {name, hash: hashHex, pub, text: text.trim()};
}

// openNote parses a C2SP signed note and verifies its signature by vkey
// (from parseVerifierKey). It returns the note's text (the signed body).
export async function openNote(noteText, vkey) {
  const sep = noteText.lastIndexOf('\n\n');
  if (sep < 0 || !noteText.endsWith('\n')) throw new Error('not a signed note: no signature block');
  const body = noteText.slice(0, sep + 1);
  const sigLines = noteText.slice(sep + 2, -1).split('\n');
  let found = false;
  for (const line of sigLines) {
    const m = /^\u2014 (\S+) (\S+)$/.exec(line);
    if (!m) throw new Error(`malformed signature line: ${line.slice(0, 40)}`);
    if (m[1] !== vkey.name) continue;
    let sig;
    try { sig = b64decode(m[2]); } catch { throw new Error('a signature is not base64'); }
    if (sig.length !== 68 || hex(sig.slice(0, 4)) !== vkey.hash) continue;
    found = true;
    const ok = await crypto.subtle.verify({name: 'Ed25519'}, vkey.pub, sig.slice(4), utf8.encode(body));
    if (!ok) throw new Error(`the Ed25519 signature by ${vkey.name} does not verify`);
  }
  if (!found) throw new Error(`the note carries no signature by key ${vkey.name}+${vkey.hash}`);
  return body;
}

// parseCheckpoint reads a C2SP checkpoint body: origin, size, base64 root.
export function parseCheckpoint(body) {
  const lines = body.split('\n');
  if (lines.length < 4 || !/^[0-9]+$/.test(lines[1])) throw new Error('not a checkpoint body');
  const root = b64decode(lines[2]);
  if (root.length !== 32) throw new Error('the checkpoint root is not 32 bytes');
  return {origin: lines[0], size: BigInt(lines[1]), root};
}

// openCheckpoint verifies a signed checkpoint and parses it.
export async function openCheckpoint(noteText, vkey) {
  return parseCheckpoint(await openNote(noteText, vkey));
}

// readEntry reads the fields of a trail.v1.Entry that a verifier checks
// from the hashed bytes themselves (never from the server's decoding):
// partition (3), leaf_index (4), prev_leaf_hash (5) and the link to the
// previous partition (6: partition 1, size 2, root 3).
export function readEntry(bytes) {
  const out = {partition: '', leafIndex: 0n, prevLeafHash: new Uint8Array(0), prevPartition: null};
  for (const f of fields(bytes)) {
    if (f.num === 3 && f.bytes) out.partition = new TextDecoder('utf-8', {fatal: true}).decode(f.bytes);
    else if (f.num === 4 && f.varint !== undefined) out.leafIndex = f.varint;
    else if (f.num === 5 && f.bytes) out.prevLeafHash = f.bytes;
    else if (f.num === 6 && f.bytes) {
      const link = {partition: '', size: 0n, root: new Uint8Array(0)};
      for (const g of fields(f.bytes)) {
        if (g.num === 1 && g.bytes) link.partition = new TextDecoder('utf-8', {fatal: true}).decode(g.bytes);
        else if (g.num === 2 && g.varint !== undefined) link.size = g.varint;
        else if (g.num === 3 && g.bytes) link.root = g.bytes;
      }
      out.prevPartition = link;
    }
  }
  return out;
}

// openSealed opens an entry's sealed payload (docs/erasure.md) with the
// event's opening key, from the hashed entry bytes alone, as shred.Open
// does: the key's two subkeys (HKDF-Expand), AES-256-GCM bound to tenant,
// event, subject and key id, and the nonce that must be the MAC of the
// plaintext. It returns the changes and attributes it opens.
export async function openSealed(entryBytes, openingKey) {
  const text = new TextDecoder('utf-8', {fatal: true});
  let event = null;
  for (const f of fields(entryBytes)) if (f.num === 1 && f.bytes) event = f.bytes;
  if (!event) throw new Error('the entry holds no event');
  const ev = {tenant: new Uint8Array(0), id: new Uint8Array(0), subject: new Uint8Array(0), sealed: null};
  for (const f of fields(event)) {
    if (f.num === 1 && f.bytes) ev.tenant = f.bytes;
    else if (f.num === 2 && f.bytes) ev.id = f.bytes;
    else if (f.num === 7 && f.bytes) ev.subject = f.bytes;
    else if (f.num === 16 && f.bytes) ev.sealed = f.bytes;
  }
  if (!ev.sealed) throw new Error('the entry bytes hold no sealed payload');
  const p = {keyId: new Uint8Array(0), nonce: new Uint8Array(0), ct: new Uint8Array(0)};
  for (const f of fields(ev.sealed)) {
    if (f.num === 1 && f.bytes) p.keyId = f.bytes;
    else if (f.num === 2 && f.bytes) p.nonce = f.bytes;
    else if (f.num === 3 && f.bytes) p.ct = f.bytes;
  }
  if (openingKey.length !== 32 || p.nonce.length !== 12) throw new Error('a key of 32 bytes and a nonce of 12 are needed');
  const hmac = async (key, ...parts) => {
    const k = await crypto.subtle.importKey('raw', key, {name: 'HMAC', hash: 'SHA-256'}, false, ['sign']);
    return new Uint8Array(await crypto.subtle.sign('HMAC', k, concat(...parts)));
  };
  const info = utf8.encode('trail/v1 seal subkeys');
  const enc = await hmac(openingKey, info, Uint8Array.of(1));
  const mac = await hmac(openingKey, enc, info, Uint8Array.of(2));
  const zero = Uint8Array.of(0);
  const ad = concat(utf8.encode('trail/v1 sealed\0'), ev.tenant, zero, ev.id, zero, ev.subject, zero, p.keyId);
  let plain;
  try {
    const k = await crypto.subtle.importKey('raw', enc, 'AES-GCM', false, ['decrypt']);
    plain = new Uint8Array(await crypto.subtle.decrypt({name: 'AES-GCM', iv: p.nonce, additionalData: ad}, k, p.ct));
  } catch {
    throw new Error('the opening key does not open the sealed payload');
  }
  if (!equal((await hmac(mac, plain)).subarray(0, 12), p.nonce)) throw new Error('the nonce is not derived from the plaintext');
  const out = {changes: [], attributes: {}};
  for (const f of fields(plain)) {
    if (f.num === 1 && f.bytes) {
      const c = {field: '', before: '', after: ''};
      for (const g of fields(f.bytes)) {
        if (g.bytes && g.num >= 1 && g.num <= 3) c[['field', 'before', 'after'][g.num - 1]] = text.decode(g.bytes);
      }
      out.changes.push(c);
    } else if (f.num === 2 && f.bytes) {
      let key = '', value = '';
      for (const g of fields(f.bytes)) {
        if (g.num === 1 && g.bytes) key = text.decode(g.bytes);
        else if (g.num === 2 && g.bytes) value = text.decode(g.bytes);
      }
      out.attributes[key] = value;
    }
  }
  return out;
}

const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let i = 0;
  for (const p of parts) { out.set(p, i); i += p.length; }
  return out;
};

// fields walks the top level of a protobuf message.
function* fields(b) {
  let i = 0;
  const varint = () => {
    let x = 0n, shift = 0n;
    for (;;) {
      if (i >= b.length) throw new Error('entry bytes end inside a varint');
      const c = b[i++];
      x |= BigInt(c & 0x7f) << shift;
      if (!(c & 0x80)) return x;
      shift += 7n;
      if (shift > 63n) throw new Error('entry bytes hold an overlong varint');
    }
  };
  while (i < b.length) {
    const key = varint();
    const num = Number(key >> 3n), wire = Number(key & 7n);
    if (num === 0) throw new Error('entry bytes hold field number 0');
    if (wire === 0) yield {num, varint: varint()};
    else if (wire === 2) {
      const n = varint();
      if (n > BigInt(b.length - i)) throw new Error('entry bytes end inside a field');
      yield {num, bytes: b.subarray(i, i + Number(n))};
      i += Number(n);
    } else if (wire === 1 || wire === 5) {
      i += wire === 1 ? 8 : 4;
      if (i > b.length) throw new Error('entry bytes end inside a field');
    } else throw new Error(`entry bytes hold wire type ${wire}`);
  }
}

// Check is one step of a verification, shown to the user as it went.
export class Checks {
  constructor() { this.steps = []; }
  async run(what, fn) {
    try {
      const detail = await fn();
      this.steps.push({what, ok: true, detail: detail || ''});
      return true;
    } catch (e) {
      this.steps.push({what, ok: false, detail: e.message});
      return false;
    }
  }
  get ok() { return this.steps.length > 0 && this.steps.every(s => s.ok); }
}

// verifyInclusion checks a GetInclusionProof answer (REST JSON) against
// vkey: the leaf hash of the entry bytes, the proof to the checkpoint's
// root, the checkpoint's signature, origin and size, and that the bytes
// say they are the leaf the proof is about. origin is the checkpoint
// origin the log must use for this partition.
export async function verifyInclusion(resp, vkey, origin) {
  const c = new Checks();
  const size = BigInt(resp.tree_size || 0), index = BigInt(resp.leaf_index || 0);
  const served = b64decode(resp.leaf_hash || '');
  let leaf = served;
  const entry = resp.entry_bytes ? b64decode(resp.entry_bytes) : null;
  if (entry) {
    await c.run('Leaf hash: SHA-256(0x00 ‖ entry bytes) is the leaf hash served', async () => {
      leaf = await leafHash(entry);
      if (!equal(leaf, served)) throw new Error(`computed ${hex(leaf)}, served ${hex(served)}`);
      return hex(leaf);
    });
    await c.run('The entry bytes name this partition and leaf', async () => {
      const e = readEntry(entry);
      if (e.partition !== resp.partition || e.leafIndex !== index) {
        throw new Error(`the bytes say ${e.partition} leaf ${e.leafIndex}, the proof ${resp.partition} leaf ${index}`);
      }
      return `${e.partition} leaf ${e.leafIndex}`;
    });
  } else {
    c.steps.push({what: 'The entry was pruned by retention: its leaf hash is proven, not its content', ok: true, detail: hex(served)});
  }
  let cp;
  await c.run(`Checkpoint signature (Ed25519, key ${vkey.name}+${vkey.hash})`, async () => {
    cp = await openCheckpoint(resp.checkpoint.signed_note, vkey);
    return `${cp.origin}, size ${cp.size}`;
  });
  if (cp) {
    await c.run('Checkpoint origin and size are this partition\'s', async () => {
      if (cp.origin !== origin) throw new Error(`origin ${cp.origin}, want ${origin}`);
      if (cp.size !== size) throw new Error(`size ${cp.size}, proof for ${size}`);
      return origin;
    });
    await c.run(`Inclusion proof (${(resp.proof || []).length} hashes) leads to the signed root`, async () => {
      const root = await rootFromInclusion(index, size, leaf, (resp.proof || []).map(b64decode));
      if (!equal(root, cp.root)) throw new Error(`the proof leads to ${hex(root)}, the checkpoint says ${hex(cp.root)}`);
      return hex(root);
    });
  }
  return c;
}

// Report attestations. A report's JSON rendering is
// {"content": ..., "attestation": ...}, indented; the digest covers the
// compact form of content, which compacting the indented text restores
// (indentation never touches the inside of strings).

// rawMember returns the raw JSON text of a top-level member of an object.
export function rawMember(text, name) {
  let i = 0;
  const ws = () => { while (i < text.length && ' \t\r\n'.includes(text[i])) i++; };
  const str = () => {
    const start = i++;
    for (;;) {
      if (i >= text.length) throw new Error('unterminated string');
      if (text[i] === '\\') i += 2;
      else if (text[i++] === '"') return JSON.parse(text.slice(start, i));
    }
  };
  // value skips one JSON value and returns its text.
  const value = () => {
    const start = i;
    if (text[i] === '"') { str(); return text.slice(start, i); }
    if (text[i] === '{' || text[i] === '[') {
      let depth = 0;
      for (;;) {
        if (i >= text.length) throw new Error('truncated JSON');
        const ch = text[i];
        if (ch === '"') { str(); continue; }
        i++;
        if (ch === '{' || ch === '[') depth++;
        else if ((ch === '}' || ch === ']') && --depth === 0) return text.slice(start, i);
      }
    }
    while (i < text.length && !',}] \t\r\n'.includes(text[i])) i++; // a number, true, false or null
    return text.slice(start, i);
  };
  ws();
  if (text[i++] !== '{') throw new Error('not a JSON object');
  for (;;) {
    ws();
    if (text[i] !== '"') throw new Error('malformed JSON object');
    const key = str();
    ws();
    if (text[i++] !== ':') throw new Error('malformed JSON object');
    ws();
    const v = value();
    if (key === name) return v;
    ws();
    if (text[i] === ',') { i++; continue; }
    throw new Error(`no member ${name}`);
  }
}

// compactJSON removes the whitespace outside strings, as Go's json.Compact.
export function compactJSON(text) {
  let out = '', inStr = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (inStr) {
      out += ch;
      if (ch === '\\') out += text[++i];
      else if (ch === '"') inStr = false;
    } else if (ch === '"') { inStr = true; out += ch; }
    else if (!' \t\r\n'.includes(ch)) out += ch;
  }
  return out;
}

// reportContent is the content of a report's JSON rendering, taken from
// the same text the digest is computed over (so a document with two
// "content" members cannot show one and have the other verified).
export const reportContent = jsonText => JSON.parse(rawMember(jsonText, 'content'));

// verifyReport checks a report's JSON rendering against vkey: the digest
// of its content, the signed attestation, every partition checkpoint, and
// every row's leaf hash and inclusion proof.
export async function verifyReport(jsonText, vkey) {
  const c = new Checks();
  const att = JSON.parse(rawMember(jsonText, 'attestation'));
  const content = reportContent(jsonText);
  await c.run('Digest: SHA-256 of the canonical content is the attested digest', async () => {
    const canonical = compactJSON(rawMember(jsonText, 'content'));
    const d = 'sha256:' + hex(await sha256(utf8.encode(canonical)));
    if (d !== att.digest) throw new Error(`computed ${d}, the report says ${att.digest}`);
    return d;
  });
  const cps = {};
  await c.run(`Attestation signature (Ed25519, key ${vkey.name}+${vkey.hash})`, async () => {
    const body = await openNote(att.signed_note || '', vkey);
    const lines = body.split('\n');
    if (!lines.includes('digest ' + att.digest)) throw new Error('the signed attestation names another digest');
    if (!lines.includes('tenant ' + content.tenant_id)) throw new Error('the signed attestation names another tenant');
    for (const l of lines) {
      const m = /^checkpoint (\S+) (\d+) (\S+)$/.exec(l);
      if (m) cps[m[1]] = {size: BigInt(m[2]), root: m[3]};
    }
    return lines[0];
  });
  await c.run('Every partition checkpoint is signed and is the attested one', async () => {
    for (const sc of att.checkpoints || []) {
      const cp = await openCheckpoint(sc.signed_note, vkey);
      const want = cps[sc.partition];
      if (!want || want.size !== cp.size || want.root !== b64encode(cp.root)) {
        throw new Error(`checkpoint of ${sc.partition} is not the one attested`);
      }
      cps[sc.partition].bytes = cp.root;
    }
    return `${(att.checkpoints || []).length} checkpoint(s)`;
  });
  const rows = content.accesses || content.history || [];
  await c.run(`Every row (${rows.length}) is a leaf of its signed checkpoint`, async () => {
    const proofs = att.inclusion_proofs || [];
    if (proofs.length !== rows.length) throw new Error(`${rows.length} rows, ${proofs.length} proofs`);
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k], p = proofs[k];
      const leaf = await leafHash(b64decode(row.entry_bytes || ''));
      if (hex(leaf) !== row.leaf_hash) throw new Error(`row ${k + 1} (${row.event_id}): entry bytes do not hash to its leaf hash`);
      const cp = cps[p.partition];
      if (!cp || !cp.bytes || BigInt(p.tree_size) !== cp.size || p.partition !== row.partition || BigInt(p.leaf_index) !== BigInt(row.leaf_index)) {
        throw new Error(`row ${k + 1} (${row.event_id}): its proof is not against its partition's checkpoint`);
      }
      const root = await rootFromInclusion(p.leaf_index, p.tree_size, leaf, p.audit_path.map(fromHex));
      if (!equal(root, cp.bytes)) throw new Error(`row ${k + 1} (${row.event_id}): the proof does not lead to the signed root`);
    }
    return `${rows.length} proofs`;
  });
  return c;
}

// pinnedKey is the verifier key the user trusts, kept in localStorage: it
// is public, and pinning it once per browser is the point.
const pinKey = 'trail.vkey';
export const pinned = {
  get text() { return localStorage.getItem(pinKey) || ''; },
  set text(v) { if (v) localStorage.setItem(pinKey, v.trim()); else localStorage.removeItem(pinKey); },
};
