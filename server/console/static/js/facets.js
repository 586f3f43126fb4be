// Facets and the timeline of the search screen, counted by the server's
// Aggregate operation over every event the query selects, not only the
// page on screen. The server counts from its index (no scan of the log),
// one request per facet, all in parallel. Grouping by data subject or PII
// field is a report on people's data: a key without that permission gets
// the other facets and a line saying which it may not see.

import * as api from './api.js';

// The facet fields: label, query field, the server's grouping, and how a
// group's key becomes a query value.
export const facetFields = [
  {label: 'Category', field: 'category', by: 'GROUP_BY_CATEGORY', value: k => k.replace(/^CATEGORY_/, '').toLowerCase()},
  {label: 'Action', field: 'action', by: 'GROUP_BY_ACTION'},
  {label: 'Actor', field: 'actor', by: 'GROUP_BY_ACTOR'},
  {label: 'Purpose', field: 'purpose', by: 'GROUP_BY_PURPOSE'},
  {label: 'PII field', field: 'pii', by: 'GROUP_BY_PII_FIELD'},
  {label: 'Subject', field: 'subject', by: 'GROUP_BY_SUBJECT'},
];

const top = 8;

// A timeline of more days than this is drawn per month: bars a pixel wide
// say nothing.
const maxDays = 120;

const path = '/api/v1/audit/aggregate';

// count asks the server for the facets and the timeline of the selection
// filterParams describes: {total, facets: [{label, field, values: [[v, n]]}],
// refused: [labels], timeline: {unit, buckets: [[label, n]]}}.
export async function count(tenant, filterParams, signal) {
  const one = (by, limit) => api.get(path, {tenant_id: tenant, ...filterParams, group_by: by, limit}, {signal});
  const [days, ...groups] = await Promise.allSettled([one('GROUP_BY_DAY'), ...facetFields.map(f => one(f.by, top))]);
  if (days.status === 'rejected') throw days.reason; // the selection itself is refused: say why
  const out = {total: Number(days.value.total || 0), facets: [], refused: [], timeline: await timeline(days.value, one)};
  groups.forEach((g, i) => {
    const f = facetFields[i];
    if (g.status === 'rejected') {
      if (g.reason?.status !== 403) throw g.reason;
      out.refused.push(f.label);
      return;
    }
    const values = (g.value.groups || []).map(x => [(f.value || (k => k))(x.key), Number(x.count || 0)]);
    out.facets.push({label: f.label, field: f.field, values});
  });
  return out;
}

// timeline keeps the day buckets, or asks again per month when there are
// too many days to draw.
async function timeline(days, one) {
  let unit = 'day';
  let groups = days.groups || [];
  if (groups.length > maxDays) {
    unit = 'month';
    groups = (await one('GROUP_BY_MONTH')).groups || [];
  }
  const label = g => (g.start || g.key || '').slice(0, unit === 'day' ? 10 : 7);
  return {unit, buckets: groups.map(g => [label(g), Number(g.count || 0)])};
}
