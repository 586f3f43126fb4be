// The operator's screen (admin keys): the cluster (members, leader, this
// node's lag), every tenant's partitions, integrity passes and their
// results, retention policies and legal holds.

import * as api from '../api.js';
import {h, fill, field, table, time, kv, badge, category} from '../dom.js';

const maxTenants = 50;

export async function render({main, who, tenant, signal, setStatus}) {
  const clusterOut = h('div', {});
  const partsOut = h('div', {});
  const integrityOut = h('div', {});
  const retentionOut = h('div', {});
  const holdsOut = h('div', {});
  main.append(
    h('h1', {}, 'Operations'),
    h('section', {'aria-labelledby': 'cl-h'}, h('h2', {id: 'cl-h'}, 'Cluster'), clusterOut),
    h('section', {'aria-labelledby': 'pa-h'}, h('h2', {id: 'pa-h'}, 'Partitions'), partsOut),
    h('section', {'aria-labelledby': 'in-h'}, h('h2', {id: 'in-h'}, 'Integrity'), integrityOut),
    h('section', {'aria-labelledby': 're-h'}, h('h2', {id: 're-h'}, `Retention of ${tenant || '…'}`), retentionOut),
    h('section', {'aria-labelledby': 'ho-h'}, h('h2', {id: 'ho-h'}, 'Legal holds'), holdsOut));
  const errs = [];
  const part = (fn, out) => fn().catch(e => { if (e.name !== 'AbortError') { errs.push(e.message); fill(out, h('p', {class: 'muted'}, e.message)); } });
  await Promise.all([
    part(() => cluster(clusterOut, signal), clusterOut),
    part(() => partitions(who, partsOut, signal), partsOut),
    part(() => integrity(tenant, integrityOut, signal, setStatus), integrityOut),
    part(() => retention(tenant, retentionOut, signal), retentionOut),
    part(() => holds(tenant, holdsOut, setStatus), holdsOut),
  ]);
  if (errs.length) setStatus(errs.join('; '), true);
}

async function cluster(out, signal) {
  const st = await api.get('/api/v1/admin/cluster', undefined, {signal});
  const lag = Number(st.commit_index || 0) - Number(st.applied_index || 0);
  const refresh = h('button', {type: 'button', onclick: () => cluster(out, signal)}, 'Refresh');
  fill(out,
    kv([['Answered by', `${st.node_id} (${st.state})`], ['Leader', st.leader_id || h('strong', {}, 'none known')],
      ['Term', st.term], ['Applied / committed', `${st.applied_index || 0} / ${st.commit_index || 0}`],
      ['This node\'s lag', `${lag} entries`], ['Last contact with the leader', st.last_contact ? time(st.last_contact) : (st.state === 'Leader' ? 'is the leader' : '')]]),
    table([
      {title: 'Node', cell: n => n.id},
      {title: 'Role', cell: n => n.leader ? badge('leader', 'ok') : (n.voter ? 'voter' : 'non-voter')},
      {title: 'Raft address', cell: n => h('code', {}, n.raft_address)},
      {title: 'API address', cell: n => n.api_address || ''},
      {title: 'Health', cell: n => n.unreachable ? badge('unreachable', 'bad') : badge('reachable', 'ok')},
    ], st.nodes || []),
    h('p', {class: 'note'}, 'Lag is this node\'s, between what it knows committed and what it applied; a leader marks followers whose heartbeats fail. Ask each node for its own view.'),
    refresh);
}

async function partitions(who, out, signal) {
  const tenants = (who.tenants || []).slice(0, maxTenants);
  const rows = [];
  for (const t of tenants) {
    const res = await api.get(`/api/v1/audit/tenants/${encodeURIComponent(t)}/partitions`, undefined, {signal});
    for (const p of res.partitions || []) rows.push({tenant: t, ...p});
  }
  fill(out, rows.length ? h('div', {class: 'scroll'}, table([
    {title: 'Tenant', cell: r => r.tenant},
    {title: 'Partition', cell: r => r.partition},
    {title: 'State', cell: r => r.sealed ? badge('sealed', 'ok') : badge('open')},
    {title: 'Entries', num: true, cell: r => Number(r.size || 0).toLocaleString('en')},
    {title: 'Pruned', num: true, cell: r => Number(r.pruned || 0).toLocaleString('en')},
    {title: 'Last entry', cell: r => time(r.last_time)},
  ], rows)) : h('p', {}, 'No partitions.'),
  (who.tenants || []).length > maxTenants ? h('p', {class: 'note'}, `The first ${maxTenants} tenants.`) : '');
}

async function integrity(tenant, out, signal, setStatus) {
  const res = await api.get('/api/v1/audit/search', {tenant_id: '_system',
    'filter.actions': ['audit.integrity.verified', 'audit.integrity.violation'], newest_first: true, limit: 20}, {signal});
  const result = h('div', {});
  const run = h('button', {type: 'button', onclick: async () => {
    run.disabled = true;
    setStatus(`Checking ${tenant || 'every tenant'} on this node…`);
    try {
      const r = await api.send('POST', '/api/v1/admin/integrity/verify', {tenant_id: tenant || ''});
      const rep = r.report || {};
      setStatus('');
      fill(result, h('div', {class: 'verdict ' + (rep.ok ? 'ok' : 'bad'), role: 'status'},
        rep.ok ? `Integrity check passed on ${rep.node_id}: ${rep.entries_hashed || 0} entries re-hashed` : `Integrity check FAILED on ${rep.node_id}`),
      table([
        {title: 'Tenant', cell: p => p.tenant_id}, {title: 'Partition', cell: p => p.partition},
        {title: 'Size', num: true, cell: p => p.size || '0'},
        {title: 'Result', cell: p => p.ok ? badge('ok', 'ok') : badge(p.problem || 'failed', 'bad')},
        {title: 'Peers', cell: p => (p.peers || []).map(x => `${x.node_id}: ${x.match ? 'same root' : (x.error || 'different root')}`).join('; ')},
      ], rep.partitions || []));
    } catch (e) { setStatus(e.message, true); } finally { run.disabled = false; }
  }}, `Run a check of ${tenant || 'every tenant'} now`);
  fill(out,
    h('p', {class: 'note'}, 'Scheduled passes and violations, as recorded in the _system log (newest first).'),
    (res.entries || []).length ? table([
      {title: 'When', cell: se => time(se.entry?.sequencer_time)},
      {title: 'Result', cell: se => se.entry?.event?.action === 'audit.integrity.violation' ? badge('violation', 'bad') : badge('pass', 'ok')},
      {title: 'Details', cell: se => Object.entries(se.entry?.event?.attributes || {}).filter(([k]) => k !== 'signed_note').map(([k, v]) => `${k}=${v}`).join(' ')},
    ], res.entries) : h('p', {}, 'No integrity pass recorded yet.'),
    h('div', {class: 'bar'}, run), result);
}

async function retention(tenant, out, signal) {
  if (!tenant) { fill(out, h('p', {}, 'Choose a tenant.')); return; }
  const res = await api.get(`/api/v1/admin/tenants/${encodeURIComponent(tenant)}/retention`, undefined, {signal});
  fill(out, table([
    {title: 'Category', cell: p => category(p.category)},
    {title: 'Days', num: true, cell: p => String(p.retention_days)},
    {title: 'Years', num: true, cell: p => (p.retention_days / 365.25).toFixed(1)},
    {title: 'Source', cell: p => p.is_default ? 'default' : badge('set', 'warn')},
  ], res.policies || []), h('p', {class: 'note'}, 'Change with trailctl retention set; expiry removes payloads only, never leaves or proofs.'));
}

async function holds(tenant, out, setStatus) {
  const inclReleased = out.querySelector('[name=released]')?.checked || false;
  const res = await api.get('/api/v1/admin/holds', {tenant_id: tenant, include_released: inclReleased});
  const released = h('input', {type: 'checkbox', name: 'released', checked: inclReleased, onchange: () => holds(tenant, out, setStatus)});
  const subj = h('input', {name: 'subject', placeholder: 'subject id'});
  const caseRef = h('input', {name: 'case', required: true, placeholder: 'case reference'});
  const reason = h('input', {name: 'reason', required: true, class: 'wide', placeholder: 'why the entries must be kept'});
  const release = hold => async () => {
    const why = prompt(`Release hold ${hold.id} (${hold.case_reference})? Reason:`);
    if (!why) return;
    try {
      await api.send('POST', `/api/v1/admin/holds/${encodeURIComponent(hold.id)}/release`, {reason: why});
      setStatus(`Hold ${hold.id} released.`);
      await holds(tenant, out, setStatus);
    } catch (e) { setStatus(e.message, true); }
  };
  fill(out,
    h('label', {class: 'inline'}, released, 'Include released holds'),
    (res.holds || []).length ? table([
      {title: 'Hold', cell: x => h('code', {}, x.id)}, {title: 'Tenant', cell: x => x.tenant_id},
      {title: 'Scope', cell: x => [x.subject_id && `subject ${x.subject_id}`, x.actor_id && `actor ${x.actor_id}`,
        x.target_id && `target ${x.target_type}/${x.target_id}`, x.category && category(x.category),
        (x.from || x.to) && `${time(x.from) || '…'} to ${time(x.to) || '…'}`].filter(Boolean).join(', ') || 'whole tenant'},
      {title: 'Case', cell: x => x.case_reference}, {title: 'Reason', cell: x => x.reason},
      {title: 'Created', cell: x => `${time(x.created_at)} by ${x.created_by || ''}`},
      {title: 'State', cell: x => x.released_at ? `released ${time(x.released_at)}: ${x.release_reason || ''}`
        : h('button', {type: 'button', onclick: release(x)}, 'Release…')},
    ], res.holds) : h('p', {}, 'No active legal holds.'),
    tenant ? h('form', {class: 'panel', onsubmit: async ev => {
      ev.preventDefault();
      try {
        const r = await api.send('POST', '/api/v1/admin/holds', {tenant_id: tenant, subject_id: subj.value.trim(),
          case_reference: caseRef.value.trim(), reason: reason.value.trim()});
        setStatus(`Hold ${r.hold.id} placed on ${tenant}.`);
        await holds(tenant, out, setStatus);
      } catch (e) { setStatus(`Hold not placed: ${e.message}`, true); }
    }}, h('h2', {}, `Place a hold on ${tenant}`),
    h('div', {class: 'bar'}, field('Subject (empty: whole tenant)', subj), field('Case reference', caseRef), field('Reason', reason),
      h('button', {class: 'primary', type: 'submit'}, 'Place hold'))) : '');
}
