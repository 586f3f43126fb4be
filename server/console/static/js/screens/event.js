// An event's page: the entry as stored, its place in the hash chain, and
// its inclusion proof, verified in this browser: the leaf hash is computed
// from the entry bytes served, folded through the proof to a root, and
// that root compared with a checkpoint whose Ed25519 signature is checked
// against the log key.

import * as api from '../api.js';
import {h, fill, kv, time, category, outcome, table, eventLink} from '../dom.js';
import {b64decode, hex, leafHash, readEntry, verifyInclusion, equal, Checks, openSealed} from '../verify.js';
import {verifierKey, keyLine} from './trust.js';

// checksList shows the steps of a verification.
export function checksList(checks) {
  return h('ol', {class: 'checks'}, checks.steps.map(s =>
    h('li', {class: s.ok ? 'ok' : 'bad'}, (s.ok ? '✓ ' : '✗ ') + s.what,
      s.detail ? [': ', h('code', {class: 'hash'}, s.detail)] : '')));
}

const leafPath = (tenant, partition, leaf) =>
  `/api/v1/audit/tenants/${encodeURIComponent(tenant)}/partitions/${encodeURIComponent(partition)}/leaves/${leaf}`;

export async function render({main, who, rest, signal, setStatus}) {
  let [tenant, partition, leaf] = rest;
  let got;
  if (tenant && partition === 'id' && leaf) {
    // #/event/TENANT/id/EVENT_ID: by the producer's event id.
    got = await api.get(`/api/v1/audit/events/${encodeURIComponent(leaf)}`, {tenant_id: tenant}, {signal});
    partition = got.entry.partition;
    leaf = got.entry.leaf_index || '0';
  } else if (!tenant || !partition || !/^\d+$/.test(leaf || '')) {
    main.append(h('h1', {}, 'Event'), h('p', {}, 'No event named: open one from a search or a report.'));
    return;
  } else {
    got = await api.get(leafPath(tenant, partition, leaf), undefined, {signal});
  }
  const se = got.entry || {};
  const en = se.entry || {};
  const ev = en.event || {};
  const proofOut = h('div', {}, h('p', {class: 'muted'}, 'Verifying…'));
  const chainOut = h('div', {}, h('p', {class: 'muted'}, 'Checking…'));
  const sealedOut = h('div', {});

  main.append(
    h('h1', {}, 'Event ', h('code', {}, ev.event_id || `${partition}/${leaf}`)),
    h('p', {}, `Tenant ${tenant}, partition `, h('a', {href: `#/log?partition=${partition}`}, partition), `, leaf ${leaf}.`,
      se.pruned ? ' Its payload was removed by retention; its leaf hash stays in the tree.' : ''),
    h('div', {class: 'cols even'},
      h('section', {'aria-labelledby': 'inc-h'}, h('h2', {id: 'inc-h'}, 'Inclusion proof'), proofOut,
        h('h2', {}, 'Hash chain'), chainOut, sealedOut),
      h('section', {'aria-labelledby': 'ev-h'}, h('h2', {id: 'ev-h'}, 'Entry'), se.pruned ? h('p', {}, 'Pruned.') : eventDetails(en, ev, se.sealed),
        h('details', {}, h('summary', {}, 'Entry as JSON (the server\'s decoding of the bytes)'), h('pre', {}, JSON.stringify(se, null, 2))))));

  // The proof and the chain check run side by side; each shows its result.
  await Promise.all([
    proof(who, tenant, partition, leaf, proofOut, signal),
    chain(tenant, partition, leaf, se, chainOut, signal),
    sealed(se, ev, sealedOut),
  ]);
  if (!signal.aborted) setStatus('');
}

// sealedNote says what became of a sealed payload (docs/erasure.md).
const sealedNotes = {
  SEALED_STATE_OPENED: 'Changes and attributes are sealed under the subject\'s data key; the server opened them (the entry JSON carries this event\'s opening key, which checks them against the hashed ciphertext).',
  SEALED_STATE_ERASED: 'Payload erased: the subject\'s data key was erased (GDPR Art. 17). The entry, its inclusion proof and its chain link still verify; its changes and attributes can never be read again.',
  SEALED_STATE_UNAVAILABLE: 'Changes and attributes are sealed, and this node cannot open them: ask another node.',
};

function eventDetails(en, ev, sealed) {
  const a = ev.actor || {};
  return [
    sealedNotes[sealed] ? h('p', {class: sealed === 'SEALED_STATE_ERASED' ? 'erased' : 'muted', 'data-sealed': sealed}, sealedNotes[sealed]) : '',
    kv([
      ['Category', category(ev.category)], ['Action', ev.action], ['Outcome', outcome(ev.outcome)],
      ['Actor', [h('code', {}, a.id || ''), a.display_name ? ` ${a.display_name}` : '', a.type ? ` (${a.type})` : '']],
      ['Actor roles', (a.roles || []).join(', ')], ['Actor IP', a.ip], ['Session', a.session_id],
      ['Subject', ev.subject_id], ['Target', ev.target ? `${ev.target.type}/${ev.target.id}` : ''],
      ['PII fields', (ev.pii_fields_accessed || []).join(', ')], ['Purpose', ev.purpose_code],
      ['Source service', ev.source_service], ['Trace', ev.trace_id],
      ['Occurred (producer time)', time(ev.occurred_at)], ['Sequenced', time(en.sequencer_time)],
    ]),
    ev.changes?.length ? [h('h2', {}, 'Changes'), table([
      {title: 'Field', cell: c => c.field}, {title: 'Before', cell: c => c.before}, {title: 'After', cell: c => c.after}], ev.changes)] : '',
    ev.attributes && Object.keys(ev.attributes).length
      ? [h('h2', {}, 'Attributes'), kv(Object.entries(ev.attributes).sort())] : '',
  ];
}

async function proof(who, tenant, partition, leaf, out, signal) {
  try {
    const vk = await verifierKey(who);
    const resp = await api.get(leafPath(tenant, partition, leaf) + '/proof', undefined, {signal});
    const checks = await verifyInclusion(resp, vk.key, `${who.log_name}/${tenant}/${partition}`);
    fill(out,
      h('div', {class: 'verdict ' + (checks.ok ? 'ok' : 'bad'), role: 'status', id: 'proof-verdict'},
        checks.ok ? `Verified in this browser: leaf ${leaf} is in the signed tree of ${resp.tree_size}`
          : 'Verification FAILED: do not trust this entry or this server'),
      checksList(checks), keyLine(vk),
      h('details', {}, h('summary', {}, 'Signed checkpoint'), h('pre', {}, resp.checkpoint?.signed_note || '')));
  } catch (e) {
    if (e.name === 'AbortError') return;
    fill(out, h('div', {class: 'verdict bad', role: 'status', id: 'proof-verdict'}, `Cannot verify: ${e.message}`));
  }
}

// sealed checks, for a payload the server opened, that the changes and
// attributes shown are what the event's opening key opens from the hashed
// entry bytes: the server's decoding is not trusted for them either.
async function sealed(se, ev, out) {
  if (se.sealed !== 'SEALED_STATE_OPENED') return;
  const checks = new Checks();
  await checks.run('The changes and attributes shown are what the opening key opens from the hashed ciphertext', async () => {
    const got = await openSealed(b64decode(se.entry_bytes || ''), b64decode(se.opening_key || ''));
    const shown = (ev.changes || []).map(c => [c.field || '', c.before || '', c.after || '']);
    const opened = got.changes.map(c => [c.field, c.before, c.after]);
    const attrs = o => JSON.stringify(Object.entries(o || {}).sort());
    if (JSON.stringify(shown) !== JSON.stringify(opened) || attrs(ev.attributes) !== attrs(got.attributes)) {
      throw new Error('the shown fields differ from the sealed payload');
    }
    return `${opened.length} changes, ${Object.keys(got.attributes).length} attributes`;
  });
  fill(out, h('h2', {}, 'Sealed payload'),
    h('div', {class: 'verdict ' + (checks.ok ? 'ok' : 'bad'), id: 'sealed-verdict'},
      checks.ok ? 'Sealed payload verified in this browser' : 'Sealed payload verification FAILED: do not trust the fields shown'),
    checksList(checks));
}

// chain checks the entry's prev_leaf_hash (read from its bytes) against
// the leaf hash of the entry before it, computed from that entry's bytes.
async function chain(tenant, partition, leaf, se, out, signal) {
  const checks = new Checks();
  let prevLink = '';
  if (!se.entry_bytes) {
    fill(out, h('p', {}, 'The entry was pruned: its chain field went with its payload.'));
    return;
  }
  const fields = readEntry(b64decode(se.entry_bytes));
  const idx = BigInt(leaf);
  let prev = null;
  if (idx > 0n) prev = {partition, leaf: idx - 1n};
  else if (fields.prevPartition) prev = {partition: fields.prevPartition.partition, leaf: fields.prevPartition.size - 1n};
  if (!prev) {
    await checks.run('The tenant\'s first entry chains to 32 zero bytes', async () => {
      if (!equal(fields.prevLeafHash, new Uint8Array(32))) throw new Error(`prev_leaf_hash is ${hex(fields.prevLeafHash)}`);
      return hex(fields.prevLeafHash);
    });
  } else {
    prevLink = eventLink(tenant, prev.partition, prev.leaf, `previous entry: ${prev.partition} leaf ${prev.leaf}`);
    await checks.run('prev_leaf_hash (read from the entry bytes) is the previous entry\'s leaf hash', async () => {
      const p = await api.get(leafPath(tenant, prev.partition, prev.leaf), undefined, {signal});
      const pe = p.entry || {};
      const h = pe.entry_bytes ? await leafHash(b64decode(pe.entry_bytes)) : b64decode(pe.leaf_hash || '');
      if (!equal(h, fields.prevLeafHash)) throw new Error(`previous leaf hash ${hex(h)}, prev_leaf_hash ${hex(fields.prevLeafHash)}`);
      return hex(h) + (pe.entry_bytes ? '' : ' (previous entry pruned: its served leaf hash)');
    });
  }
  if (signal.aborted) return;
  fill(out, h('div', {class: 'verdict ' + (checks.ok ? 'ok' : 'bad')}, checks.ok ? 'Chain link holds' : 'Chain link BROKEN'),
    checksList(checks), prevLink ? h('p', {}, prevLink) : '',
    h('p', {class: 'note'}, 'Each entry carries the leaf hash of the one before it, across months; with the inclusion proofs this shows nothing was removed in between.'));
}
