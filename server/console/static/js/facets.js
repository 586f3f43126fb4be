// Facets and the per-day timeline of the search screen. A server with an
// aggregation endpoint counts over every match; this one computes them
// from the events the screen has loaded, and says so on the screen. This
// module is the one place that decides which: when the API gains
// aggregations, `source` picks them and the screens do not change.

// The facet fields: label, query field, and the value of an event.
export const facetFields = [
  {label: 'Category', field: 'category', of: e => (e.category || '').replace(/^CATEGORY_/, '').toLowerCase()},
  {label: 'Action', field: 'action', of: e => e.action},
  {label: 'Actor', field: 'actor', of: e => e.actor?.id},
  {label: 'Purpose', field: 'purpose', of: e => e.purpose_code},
  {label: 'PII field', field: 'pii', of: e => e.pii_fields_accessed || []},
  {label: 'Subject', field: 'subject', of: e => e.subject_id},
];

const top = 8;

// fromEntries counts facet values and events per UTC day over the stored
// entries at hand (search results).
export function fromEntries(entries) {
  const facets = facetFields.map(f => ({...f, counts: new Map()}));
  const days = new Map();
  for (const se of entries) {
    const en = se.entry;
    if (!en) continue; // pruned
    const ev = en.event || {};
    for (const f of facets) {
      for (const v of [].concat(f.of(ev) ?? [])) {
        if (v) f.counts.set(v, (f.counts.get(v) || 0) + 1);
      }
    }
    const d = (en.sequencer_time || '').slice(0, 10);
    if (d) days.set(d, (days.get(d) || 0) + 1);
  }
  return {
    scope: 'page',
    facets: facets.map(f => ({label: f.label, field: f.field,
      values: [...f.counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).slice(0, top)})),
    days: [...days].sort((a, b) => (a[0] < b[0] ? -1 : 1)),
  };
}

// source says where counts come from on this server. Only the loaded
// events, for now: this server declares no aggregation operation.
export function source(caps) {
  const agg = Object.keys(caps).find(id => /aggregat/i.test(id));
  return {scope: 'page', serverOperation: agg};
}
