// The auditor's search: query text (query.js) over one tenant, a page of
// results at a time through the API's cursor, never a scan of the whole
// log; facets and a timeline counted by the server over the whole
// selection (facets.js); an attested export of the same selection.

import * as api from '../api.js';
import {h, fill, field, table, time, category, outcome, eventLink, downloadLink} from '../dom.js';
import * as query from '../query.js';
import * as facets from '../facets.js';

export async function render({main, tenant, params, signal, setStatus, go}) {
  const caps = await api.capabilities();
  const serverParam = query.serverQueryParam(caps);
  const text = params.get('q') || '';
  const newest = params.get('newest') !== '0';
  const limit = params.get('limit') || '50';

  const q = h('input', {name: 'q', class: 'wide', value: text, spellcheck: 'false', 'aria-describedby': 'q-help',
    placeholder: 'category:data_access actor:clerk-17 from:2026-03-01'});
  const newestBox = h('input', {type: 'checkbox', name: 'newest', checked: newest});
  const size = h('select', {name: 'limit'}, ['25', '50', '100', '200'].map(n => h('option', {value: n, selected: n === limit}, n)));
  const submit = (t, cursor) => {
    const p = new URLSearchParams({q: t, newest: newestBox.checked ? '1' : '0', limit: size.value});
    if (cursor) p.set('cursor', cursor);
    go('#/search?' + p);
  };
  const idBox = h('input', {name: 'event_id', placeholder: 'event id'});
  main.append(
    h('h1', {}, 'Search'),
    h('form', {class: 'bar', role: 'search', onsubmit: ev => { ev.preventDefault(); submit(q.value); }},
      field('Query', q), h('label', {class: 'inline'}, newestBox, 'Newest first'), field('Per page', size),
      h('button', {class: 'primary', type: 'submit'}, 'Search')),
    h('p', {id: 'q-help', class: 'note'}, serverParam ? `Query syntax: the server's (parameter ${serverParam}). ` : '',
      'Terms are field:value, alternatives separated by commas, terms combined with AND. Fields: ',
      Object.entries(query.fields).map(([k, f], i) => [i ? ', ' : '', h('code', {}, k), ` (${f.help})`])),
    h('form', {class: 'bar', onsubmit: async ev => {
      ev.preventDefault();
      try {
        const r = await api.get(`/api/v1/audit/events/${encodeURIComponent(idBox.value.trim())}`, {tenant_id: tenant});
        go(`#/event/${encodeURIComponent(tenant)}/${r.entry.partition}/${r.entry.leaf_index || 0}`);
      } catch (e) { setStatus(e.message, true); }
    }}, field('Open an event by id', idBox), h('button', {type: 'submit'}, 'Open')));

  if (!tenant) { setStatus('Choose a tenant first.', true); return; }
  let filterParams;
  try {
    filterParams = query.params(text, serverParam);
  } catch (e) {
    setStatus(`Query: ${e.message}`, true);
    q.focus();
    return;
  }
  setStatus('Searching…');
  const res = await api.get('/api/v1/audit/search', {
    tenant_id: tenant, ...filterParams, newest_first: newest, limit, cursor: params.get('cursor') || '',
  }, {signal});
  setStatus('');
  const entries = res.entries || [];
  const exportOut = h('span', {});
  const exportBtn = h('button', {type: 'button', onclick: async () => {
    exportBtn.disabled = true;
    setStatus('Exporting… (a large selection is better exported with trailctl export, which streams to disk)');
    try {
      const f = await api.file(`/api/v1/audit/tenants/${encodeURIComponent(tenant)}/export`, filterParams);
      fill(exportOut, downloadLink(`Save ${f.filename}`, f.blob, f.filename));
      setStatus('Export ready: verify it offline with trailctl verify --bundle.');
    } catch (e) { setStatus(e.message, true); } finally { exportBtn.disabled = false; }
  }}, 'Export this selection (attested bundle)');

  // The counts come after the page of results: a slow count never holds
  // the results back.
  const facetBox = h('aside', {class: 'facets', 'aria-labelledby': 'facets-h', 'aria-busy': 'true'},
    h('h2', {id: 'facets-h'}, 'Facets'), h('p', {class: 'note', id: 'facet-scope'}, 'Counting…'));
  const timelineBox = h('div', {id: 'timeline'}, h('p', {class: 'muted'}, 'Counting…'));
  main.append(h('div', {class: 'cols'},
    facetBox,
    h('section', {'aria-labelledby': 'res-h'},
      h('h2', {}, 'Timeline'), timelineBox,
      h('h2', {id: 'res-h'}, `Results (${entries.length}${res.next_cursor ? '+' : ''})`),
      entries.length ? h('div', {class: 'scroll'}, results(tenant, entries)) : h('p', {}, 'No events match.'),
      h('div', {class: 'bar'},
        params.get('cursor') ? h('button', {type: 'button', onclick: () => history.back()}, 'Previous page') : '',
        res.next_cursor ? h('button', {type: 'button', onclick: () => submit(text, res.next_cursor)}, 'Next page') : '',
        exportBtn, exportOut))));

  let counts;
  try {
    counts = await facets.count(tenant, filterParams, signal);
  } catch (e) {
    if (e.name === 'AbortError') return;
    fill(facetBox.querySelector('#facet-scope'), `Counts unavailable: ${e.message}`);
    fill(timelineBox, h('p', {class: 'muted'}, 'Counts unavailable.'));
    facetBox.setAttribute('aria-busy', 'false');
    return;
  }
  const scope = `Counted by the server over all ${counts.total} events the query selects`;
  fill(facetBox, h('h2', {id: 'facets-h'}, 'Facets'),
    h('p', {class: 'note', id: 'facet-scope'}, scope,
      counts.refused.length ? `; ${counts.refused.join(' and ')} need the PII report permission` : ''),
    counts.facets.filter(f => f.values.length).map(f => h('fieldset', {},
      h('legend', {}, f.label),
      h('ul', {}, f.values.map(([v, n]) => h('li', {},
        h('button', {type: 'button', 'aria-label': `Narrow to ${f.label} ${v} (${n} events)`,
          onclick: () => submit(query.addTerm(text, f.field, v))}, v),
        h('span', {class: 'muted'}, String(n))))))));
  facetBox.setAttribute('aria-busy', 'false');
  fill(timelineBox, timeline(counts.timeline, scope));
}

function results(tenant, entries) {
  return table([
    {title: 'Sequenced', cell: se => time(se.entry?.sequencer_time)},
    {title: 'Category', cell: se => category(se.entry?.event?.category)},
    {title: 'Action', cell: se => se.entry?.event?.action},
    {title: 'Outcome', cell: se => outcome(se.entry?.event?.outcome)},
    {title: 'Actor', cell: se => se.entry?.event?.actor?.id},
    {title: 'Subject', cell: se => se.entry?.event?.subject_id},
    {title: 'Event', cell: se => eventLink(tenant, se.partition, se.leaf_index || 0, se.entry?.event?.event_id || `leaf ${se.leaf_index || 0}`)},
  ], entries);
}

// timeline draws events per UTC day (or month) as bars, each labelled for
// screen readers.
function timeline({unit, buckets}, note) {
  const days = buckets;
  if (!days.length) return h('p', {class: 'muted'}, 'Nothing to chart.');
  const max = Math.max(1, ...days.map(([, n]) => n));
  const bars = days.map(([d, n]) => {
    const bar = h('div', {class: n ? 'bar' : 'bar empty', role: 'listitem', title: `${d}: ${n}`, 'aria-label': `${d}: ${n} events`});
    // Through the CSSOM: the page's policy allows no inline style attributes.
    // An empty day is a hairline, so that no day without events looks like one with a few.
    bar.style.height = n ? Math.max(4, Math.round(84 * n / max)) + 'px' : '1px';
    return bar;
  });
  return h('figure', {},
    h('div', {class: 'timeline', role: 'list', 'aria-label': `Events per ${unit}`}, bars),
    h('div', {class: 'timeline-axis'}, h('span', {}, days[0][0]), h('span', {}, days[days.length - 1][0])),
    h('figcaption', {class: 'note'}, `Events per ${unit} (UTC). ${note}.`));
}
