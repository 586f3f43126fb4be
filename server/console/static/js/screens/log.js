// The log itself: a tenant's monthly partitions (open or sealed, sizes),
// a partition's signed checkpoint verified in this browser, and
// consistency proofs between two sizes of its tree, also verified here.
// The browser remembers the last checkpoint it verified per partition
// (localStorage) and proves the log only grew since, which is how an
// auditor notices a log that forked or rewrote its history.

import * as api from '../api.js';
import {h, fill, field, table, time, badge} from '../dom.js';
import {openCheckpoint, verifyConsistency, b64decode, b64encode, hex, Checks} from '../verify.js';
import {verifierKey, keyLine} from './trust.js';
import {checksList} from './event.js';

const base = tenant => `/api/v1/audit/tenants/${encodeURIComponent(tenant)}/partitions`;
const seenKey = (origin) => 'trail.seen.' + origin;

export async function render({main, who, tenant, params, signal, setStatus, go}) {
  main.append(h('h1', {}, `Log of ${tenant || '…'}`));
  if (!tenant) { setStatus('Choose a tenant first.', true); return; }
  const res = await api.get(base(tenant), undefined, {signal});
  const parts = res.partitions || [];
  const chosen = params.get('partition') || (parts.length ? parts[parts.length - 1].partition : '');
  main.append(
    h('h2', {}, 'Partitions'),
    parts.length ? h('div', {class: 'scroll'}, table([
      {title: 'Partition', cell: p => h('a', {href: `#/log?partition=${p.partition}`, 'aria-current': p.partition === chosen ? 'true' : null}, p.partition)},
      {title: 'State', cell: p => p.sealed ? badge('sealed', 'ok') : badge('open')},
      {title: 'Entries', num: true, cell: p => Number(p.size || 0).toLocaleString('en')},
      {title: 'Pruned', num: true, cell: p => Number(p.pruned || 0).toLocaleString('en')},
      {title: 'First', cell: p => time(p.first_time)},
      {title: 'Last', cell: p => time(p.last_time)},
      {title: 'Root', cell: p => h('code', {title: hex(b64decode(p.root_hash || ''))}, hex(b64decode(p.root_hash || '')).slice(0, 16) + '…')},
    ], parts)) : h('p', {}, 'This tenant has no entries yet.'));
  const part = parts.find(p => p.partition === chosen);
  if (!part) return;

  const origin = `${who.log_name}/${tenant}/${part.partition}`;
  const cpOut = h('div', {});
  const consOut = h('div', {});
  const fromIn = h('input', {name: 'from_size', type: 'number', min: 1, value: params.get('from') || '', required: true});
  const toIn = h('input', {name: 'to_size', type: 'number', min: 1, value: params.get('to') || String(part.size || ''), required: true});
  main.append(
    h('h2', {}, `Checkpoint of ${part.partition}`), cpOut,
    h('h2', {}, 'Consistency'),
    h('p', {class: 'note'}, 'A consistency proof shows that the tree of the larger size contains the tree of the smaller one unchanged: nothing logged was altered or removed.'),
    h('form', {class: 'bar', onsubmit: ev => {
      ev.preventDefault();
      go(`#/log?partition=${part.partition}&from=${fromIn.value}&to=${toIn.value}`);
    }}, field('From size', fromIn), field('To size', toIn), h('button', {class: 'primary', type: 'submit'}, 'Prove and verify')),
    consOut);

  let vk;
  try { vk = await verifierKey(who); } catch (e) { fill(cpOut, h('div', {class: 'verdict bad'}, e.message)); return; }
  // The current checkpoint, verified, and consistency with the last one
  // this browser saw.
  const note = await api.text(`${base(tenant)}/${part.partition}/checkpoint`);
  const checks = new Checks();
  let cp;
  await checks.run('Signature and origin', async () => {
    cp = await openCheckpoint(note, vk.key);
    if (cp.origin !== origin) throw new Error(`origin ${cp.origin}, want ${origin}`);
    return `${cp.origin}, size ${cp.size}`;
  });
  const seen = JSON.parse(localStorage.getItem(seenKey(origin)) || 'null');
  if (cp && seen && BigInt(seen.size) <= cp.size) {
    await checks.run(`Consistent with the checkpoint this browser saw on ${time(seen.at)} (size ${seen.size})`, async () => {
      const r = await api.get(`${base(tenant)}/${part.partition}/consistency`, {from_size: seen.size, to_size: String(cp.size)});
      await verifyConsistency(seen.size, cp.size, b64decode(seen.root), cp.root, (r.proof || []).map(b64decode));
      return `${seen.size} → ${cp.size}`;
    });
  } else if (cp && seen) {
    checks.steps.push({what: `The log SHRANK: this browser saw size ${seen.size}, the server now signs ${cp.size}`, ok: false, detail: ''});
  }
  if (cp && checks.ok) localStorage.setItem(seenKey(origin), JSON.stringify({size: String(cp.size), root: b64encode(cp.root), at: new Date().toISOString()}));
  fill(cpOut, h('div', {class: 'verdict ' + (checks.ok ? 'ok' : 'bad'), id: 'checkpoint-verdict'},
    checks.ok ? `Checkpoint verified: size ${cp.size}${part.sealed ? ' (sealed: final)' : ''}` : 'Checkpoint verification FAILED'),
  checksList(checks), keyLine(vk), h('pre', {}, note));

  if (!params.get('from')) return;
  const cc = new Checks();
  const from = params.get('from'), to = params.get('to') || '0';
  let r, f, t;
  await cc.run('Both checkpoints are signed by the log and name this partition', async () => {
    r = await api.get(`${base(tenant)}/${part.partition}/consistency`, {from_size: from, to_size: to});
    f = await openCheckpoint(r.from_checkpoint.signed_note, vk.key);
    t = await openCheckpoint(r.to_checkpoint.signed_note, vk.key);
    if (f.origin !== origin || t.origin !== origin) throw new Error('a checkpoint names another partition');
    if (String(f.size) !== r.from_size || String(t.size) !== r.to_size) throw new Error('checkpoint sizes differ from the proof\'s');
    return `${f.size} and ${t.size}`;
  });
  if (f && t) {
    await cc.run(`Consistency proof (${(r.proof || []).length} hashes) from ${f.size} to ${t.size}`, async () => {
      await verifyConsistency(f.size, t.size, f.root, t.root, (r.proof || []).map(b64decode));
      return `${hex(f.root).slice(0, 16)}… ⊑ ${hex(t.root).slice(0, 16)}…`;
    });
  }
  fill(consOut, h('div', {class: 'verdict ' + (cc.ok ? 'ok' : 'bad'), role: 'status', id: 'consistency-verdict'},
    cc.ok ? `Verified: size ${from} is a prefix of size ${t.size}` : 'Consistency verification FAILED'), checksList(cc));
}
