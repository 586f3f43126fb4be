// The security analyst's screen: anomaly alerts as they are recorded
// (the Subscribe stream, live), the tenant's recent alerts from the log,
// and the anomaly rules that raise them (editable by admins).

import * as api from '../api.js';
import {h, fill, field, table, time, kv} from '../dom.js';

const alertActions = ['audit.security_anomaly', 'audit.integrity.violation'];

export async function render({main, who, tenant, signal, setStatus}) {
  main.append(h('h1', {}, `Alerts of ${tenant || '…'}`));
  if (!tenant) { setStatus('Choose a tenant first.', true); return; }
  const liveState = h('p', {class: 'note', id: 'live-state', role: 'status'}, 'Connecting…');
  const recorded = h('span', {id: 'recorded-count'}, '0');
  const tbody = h('tbody', {});
  const rulesOut = h('div', {});
  const feed = h('ul', {id: 'domain-events', class: 'note', 'aria-live': 'polite'});
  main.append(
    h('h2', {}, 'Alerts'), liveState,
    h('p', {class: 'note'}, 'Events recorded since this page opened: ', recorded),
    h('details', {}, h('summary', {}, 'Other domain events (sealed partitions, integrity passes)'), feed),
    h('div', {class: 'scroll'}, h('table', {id: 'alerts'},
      h('thead', {}, h('tr', {}, ['Recorded', 'Rule', 'Actor', 'Subject', 'Details', 'Record'].map(t => h('th', {scope: 'col'}, t)))),
      tbody)),
    h('h2', {}, 'Rules'), rulesOut);

  const row = (se, fresh) => {
    const ev = se.entry?.event || {};
    const a = ev.attributes || {};
    const details = Object.entries(a).filter(([k]) => !['rule', 'actor_id', 'event_id'].includes(k)).map(([k, v]) => `${k}=${v}`).join(' ');
    return h('tr', {class: fresh ? 'new' : null},
      h('td', {}, time(se.entry?.sequencer_time)),
      h('td', {}, a.rule || ev.action),
      h('td', {}, a.actor_id || ev.target?.id || ''),
      h('td', {}, ev.subject_id || ''),
      h('td', {}, details, a.event_id ? [' ', h('a', {href: `#/event/${encodeURIComponent(tenant)}/id/${encodeURIComponent(a.event_id)}`}, 'cause')] : ''),
      h('td', {}, h('a', {href: `#/event/${encodeURIComponent(tenant)}/${se.partition}/${se.leaf_index || 0}`}, 'record')));
  };

  // Live first, so nothing recorded while the history loads is missed
  // (an alert in both is shown once).
  const shown = new Set();
  const keyOf = se => `${se.partition}/${se.leaf_index || 0}`;
  live(tenant, signal, liveState, recorded, de => {
    if (!alertActions.includes(de.type)) {
      // Domain events that are not alerts: one line each, newest first.
      feed.prepend(h('li', {}, `${time(de.time)} ${de.type} ${de.partition || ''}` +
        (de.tree_size ? ` (size ${de.tree_size})` : '')));
      while (feed.children.length > 50) feed.lastChild.remove();
      return;
    }
    const se = de.entry;
    if (!se || shown.has(keyOf(se))) return;
    shown.add(keyOf(se));
    tbody.prepend(row(se, true));
  });
  const res = await api.get('/api/v1/audit/search', {tenant_id: tenant, 'filter.actions': alertActions, newest_first: true, limit: 100}, {signal});
  for (const se of res.entries || []) {
    if (shown.has(keyOf(se))) continue;
    shown.add(keyOf(se));
    tbody.append(row(se, false));
  }
  await rules(who, tenant, rulesOut, setStatus);
}

const feedTypes = ['audit.partition.sealed', 'audit.integrity.verified'];

// live follows the tenant's domain events until the screen is left,
// reconnecting after a failure.
async function live(tenant, signal, state, recorded, onEvent) {
  let total = 0;
  while (!signal.aborted) {
    try {
      const events = api.stream(`/api/v1/audit/tenants/${encodeURIComponent(tenant)}/subscribe`,
        {types: ['audit.event.recorded', ...alertActions, ...feedTypes]}, signal);
      state.textContent = 'Live: new alerts appear as they are recorded.';
      for await (const de of events) {
        if (de.type === 'audit.event.recorded') {
          total += Number(de.count || 0);
          recorded.textContent = total.toLocaleString('en');
        } else {
          onEvent(de);
        }
      }
    } catch (e) {
      if (signal.aborted || e.name === 'AbortError') return;
      state.textContent = `Live feed interrupted (${e.message}); reconnecting…`;
    }
    await new Promise(r => setTimeout(r, 3000));
  }
}

async function rules(who, tenant, out, setStatus) {
  const path = `/api/v1/admin/tenants/${encodeURIComponent(tenant)}/anomaly-rules`;
  const r = (await api.get(path)).rules || {};
  const days = ['', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
  const summary = kv([
    ['State', r.disabled ? 'disabled' : 'on'],
    ['Bulk access', `an actor reading ${r.max_distinct_subjects_per_hour || 150} distinct subjects within an hour`],
    ['Working hours', r.working_hours_start ? `${r.working_hours_start}–${r.working_hours_end} ${r.time_zone || 'UTC'}, ${(r.working_days || []).map(d => days[d]).join(' ')}` : 'not set (off-hours rule off)'],
    ['Valid purpose codes', (r.valid_purpose_codes || []).join(', ') || 'any non-empty code'],
  ]);
  fill(out, summary);
  if (who.role !== 'ROLE_ADMIN') return;
  const max = h('input', {name: 'max', type: 'number', min: 1, value: r.max_distinct_subjects_per_hour || 150});
  const start = h('input', {name: 'start', placeholder: '08:00', size: 5, value: r.working_hours_start || ''});
  const end = h('input', {name: 'end', placeholder: '18:00', size: 5, value: r.working_hours_end || ''});
  const tz = h('input', {name: 'tz', placeholder: 'Europe/Tallinn', value: r.time_zone || ''});
  const wd = h('input', {name: 'days', placeholder: '1,2,3,4,5', size: 12, value: (r.working_days || []).join(',')});
  const codes = h('input', {name: 'codes', class: 'wide', placeholder: 'case-handling,benefit-review', value: (r.valid_purpose_codes || []).join(',')});
  const off = h('input', {type: 'checkbox', name: 'disabled', checked: !!r.disabled});
  const list = s => s.split(',').map(x => x.trim()).filter(Boolean);
  out.append(h('form', {class: 'panel', onsubmit: async ev => {
    ev.preventDefault();
    try {
      const body = {tenant_id: tenant, disabled: off.checked, max_distinct_subjects_per_hour: Number(max.value),
        working_hours_start: start.value.trim(), working_hours_end: end.value.trim(), time_zone: tz.value.trim(),
        working_days: list(wd.value).map(Number), valid_purpose_codes: list(codes.value)};
      await api.send('PUT', path, body);
      setStatus('Rules saved; they apply from the next batch of events.');
      await rules(who, tenant, out, setStatus);
    } catch (e) { setStatus(`Rules not saved: ${e.message}`, true); }
  }},
  h('h2', {}, 'Edit rules'),
  h('div', {class: 'bar'}, field('Distinct subjects per hour', max), field('Working hours start', start), field('end', end),
    field('Time zone', tz), field('Working days (1=Mon)', wd)),
  h('div', {class: 'bar'}, field('Valid purpose codes', codes), h('label', {class: 'inline'}, off, 'Disable all rules'),
    h('button', {class: 'primary', type: 'submit'}, 'Save rules'))));
}
