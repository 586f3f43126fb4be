// The privacy officer's screen: a citizen's id in, the PII access report
// out: who read which of their personal data, in what role, for what
// purpose, when, and which accesses are flagged. The report is fetched
// once as a bundle (the JSON, CSV and PDF renderings of one run, under one
// attestation), shown from its JSON, offered as each of the three files,
// and verified here against the log key.

import * as api from '../api.js';
import {h, fill, field, table, stats, kv, time, badge, downloadLink, eventLink} from '../dom.js';
import {readZip} from '../zip.js';
import {reportContent, rawMember, verifyReport} from '../verify.js';
import {verifierKey, keyLine} from './trust.js';
import {checksList} from './event.js';

const pageRows = 500;

export async function render({main, who, tenant, params, signal, setStatus, go}) {
  const subject = h('input', {name: 'subject', required: true, value: params.get('subject') || '', class: 'wide',
    placeholder: 'citizen id, e.g. EE-38001010000'});
  const from = h('input', {name: 'from', type: 'date', value: params.get('from') || ''});
  const to = h('input', {name: 'to', type: 'date', value: params.get('to') || ''});
  const out = h('div', {});
  main.append(
    h('h1', {}, 'PII access report'),
    h('form', {class: 'bar', onsubmit: ev => {
      ev.preventDefault();
      const q = new URLSearchParams({subject: subject.value.trim()});
      if (from.value) q.set('from', from.value);
      if (to.value) q.set('to', to.value);
      go('#/pii?' + q);
    }},
    field('Citizen (data subject) id', subject),
    field('From (UTC day, inclusive)', from),
    field('To (UTC day, exclusive)', to),
    h('button', {class: 'primary', type: 'submit'}, 'Run report')),
    out);
  if (!params.get('subject')) { subject.focus(); return; }
  if (!tenant) { setStatus('Choose a tenant first.', true); return; }

  setStatus('Running the report…');
  const query = {format: 'bundle'};
  if (params.get('from')) query.from = params.get('from') + 'T00:00:00Z';
  if (params.get('to')) query.to = params.get('to') + 'T00:00:00Z';
  const path = `/api/v1/audit/tenants/${encodeURIComponent(tenant)}/subjects/${encodeURIComponent(params.get('subject'))}/pii-access`;
  const bundle = await api.file(path, query);
  if (signal.aborted) return;
  const members = await readZip(new Uint8Array(await bundle.blob.arrayBuffer()));
  const byExt = ext => members.find(m => m.name.endsWith('.' + ext));
  const json = byExt('json');
  if (!json || !byExt('csv') || !byExt('pdf')) throw new Error('the report bundle does not hold JSON, CSV and PDF files');
  const jsonText = new TextDecoder().decode(json.data);
  const content = reportContent(jsonText);
  setStatus('');

  const s = content.summary || {};
  const rows = content.accesses || [];
  const verdict = h('div', {});
  const verifyBtn = h('button', {type: 'button', onclick: async () => {
    verifyBtn.disabled = true;
    try {
      const vk = await verifierKey(who);
      const checks = await verifyReport(jsonText, vk.key);
      fill(verdict, h('div', {class: 'verdict ' + (checks.ok ? 'ok' : 'bad'), role: 'status'},
        checks.ok ? 'Report verified in this browser' : 'Report verification FAILED'), checksList(checks), keyLine(vk));
    } catch (e) {
      fill(verdict, h('div', {class: 'verdict bad', role: 'status'}, `Cannot verify: ${e.message}`));
    } finally {
      verifyBtn.disabled = false;
    }
  }}, 'Verify the attestation in this browser');

  const files = [['json', 'JSON'], ['csv', 'CSV'], ['pdf', 'PDF']].map(([ext, label]) => {
    const m = byExt(ext);
    const types = {json: 'application/json', csv: 'text/csv', pdf: 'application/pdf'};
    return downloadLink(`Download ${label}`, new Blob([m.data], {type: types[ext]}), m.name);
  });
  const columns = [
    {title: 'When (sequencer time)', cell: r => h('span', {title: r.occurred_at ? `occurred ${time(r.occurred_at)}` : null}, time(r.sequencer_time))},
    {title: 'Who', cell: r => [h('code', {}, r.actor_id), r.actor_display_name ? h('div', {class: 'muted'}, r.actor_display_name) : '']},
    {title: 'Role', cell: r => (r.actor_roles || []).join(', ')},
    {title: 'Fields', cell: r => (r.fields_accessed || []).join(', ')},
    {title: 'Purpose', cell: r => r.purpose_code || h('span', {class: 'muted'}, 'none')},
    {title: 'Flags', cell: r => r.flag ? badge(r.flag.replaceAll('_', ' '), 'bad') : ''},
    {title: 'Action', cell: r => `${r.action} (${(r.outcome || '').replace(/^OUTCOME_/, '').toLowerCase()})`},
    {title: 'Event', cell: r => eventLink(tenant, r.partition, r.leaf_index, r.event_id)},
  ];
  // Sealed payloads (docs/erasure.md): a row says when its subject's data
  // key was erased, so the report never passes an erasure over in silence.
  if (rows.some(r => r.payload_state)) {
    columns.splice(columns.length - 1, 0, {title: 'Payload', cell: r =>
      r.payload_state === 'erased' ? badge('erased (GDPR Art. 17)', 'bad') : (r.payload_state || '')});
  }
  const body = h('div', {class: 'scroll'});
  let shown = 0;
  const more = h('button', {type: 'button', onclick: () => showMore()}, 'Show more rows');
  const showMore = () => {
    shown = Math.min(rows.length, shown + pageRows);
    fill(body, table(columns, rows.slice(0, shown), r => ({class: r.flag ? 'flagged' : null})));
    more.hidden = shown >= rows.length;
  };
  showMore();

  fill(out,
    h('h2', {}, `Accesses to ${content.parameters?.subject_id}'s personal data in ${content.tenant_id}`),
    stats([['Accesses', String(s.rows ?? rows.length)], ['Flagged', String(s.flagged ?? 0)],
      ['Without a purpose code', String(s.missing_purpose_code ?? 0)], ['With an invalid purpose code', String(s.invalid_purpose_code ?? 0)],
      ['Distinct actors', String(s.distinct_actors ?? 0)], ['First', time(s.first)], ['Last', time(s.last)]]),
    kv([['Generated', time(content.generated_at)], ['Attested digest', h('code', {class: 'hash'}, JSON.parse(rawMember(jsonText, 'attestation')).digest)]]),
    h('div', {class: 'bar', 'aria-label': 'Downloads of this run'},
      files, downloadLink('Download all three (zip)', bundle.blob, bundle.filename), verifyBtn),
    h('p', {class: 'note'}, 'The three files are renderings of this one run and carry the same attestation; each verifies on its own with ',
      h('code', {}, 'trailctl verify --report FILE --vkey log.vkey'), '.'),
    verdict,
    rows.length ? body : h('p', {}, 'No data_access events on this subject in the period.'),
    rows.length > pageRows ? more : '');
}

