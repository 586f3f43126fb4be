// The search screen's query syntax, and what it becomes on the wire.
//
//   actor:alice,bob category:data_access purpose:"case handling" from:2026-03-01
//
// Terms are field:value; a comma separates alternatives (any of them
// matches), terms are combined with AND, and a value with spaces is
// quoted. This is the Filter model of the API (package filter), written
// as text. When the server declares a query-string parameter of its own
// on the search operation (its OpenAPI document says so), the text is
// sent as it is and the server parses it; otherwise it is parsed here into
// the filter.* parameters every server takes.

export const fields = {
  actor: {param: 'filter.actor_ids', help: 'actor id'},
  subject: {param: 'filter.subject_ids', help: 'data subject (citizen) id'},
  category: {param: 'filter.categories', help: 'data_access, authentication, …'},
  action: {param: 'filter.actions', help: 'record.view, user.login, …'},
  purpose: {param: 'filter.purpose_codes', help: 'purpose code'},
  pii: {param: 'filter.pii_fields', help: 'PII field accessed'},
  target: {help: 'type/id of the entity acted on (one)'},
  from: {param: 'filter.from', help: 'sequencer time, inclusive (2026-03-01 or RFC 3339)'},
  to: {param: 'filter.to', help: 'sequencer time, exclusive'},
};

// tokenize splits text into field:value terms, honouring double quotes.
function tokenize(text) {
  const terms = [];
  const re = /\s*([a-z_]+):("(?:[^"\\]|\\.)*"|[^\s"]*)|\s*(\S+)/gy;
  let m;
  while ((m = re.exec(text)) !== null && m[0] !== '') {
    if (m[3] !== undefined) throw new Error(`"${m[3]}" is not a field:value term; fields are ${Object.keys(fields).join(', ')}`);
    let v = m[2];
    if (v.startsWith('"')) v = JSON.parse(v);
    terms.push({field: m[1], value: v});
  }
  return terms;
}

function timeValue(v, field) {
  const t = /^\d{4}-\d{2}-\d{2}$/.test(v) ? v + 'T00:00:00Z' : v;
  if (isNaN(Date.parse(t))) throw new Error(`${field}:${v} is not a date or an RFC 3339 time`);
  return new Date(t).toISOString();
}

// parse turns query text into a filter: {field: [values]}.
export function parse(text) {
  const f = {};
  for (const {field, value} of tokenize(text.trim())) {
    if (!fields[field]) throw new Error(`unknown field "${field}": fields are ${Object.keys(fields).join(', ')}`);
    if (value === '') throw new Error(`${field}: has no value`);
    const values = value.split(',').map(s => s.trim()).filter(Boolean);
    if (field === 'from' || field === 'to') {
      if (f[field] || values.length !== 1) throw new Error(`${field}: takes one time`);
      f[field] = [timeValue(values[0], field)];
    } else if (field === 'target') {
      if (f.target || values.length !== 1 || !/^[^/]+\/.+$/.test(values[0])) throw new Error('target: takes one type/id');
      f.target = values;
    } else {
      f[field] = [...(f[field] || []), ...values];
    }
  }
  return f;
}

// format writes a filter back as query text (after a facet was added).
export function format(f) {
  return Object.entries(f).filter(([, v]) => v && v.length)
    .map(([k, v]) => `${k}:${v.map(x => /[\s,"]/.test(x) ? JSON.stringify(x) : x).join(',')}`).join(' ');
}

// addTerm adds value to field in query text: the click on a facet.
export function addTerm(text, field, value) {
  const f = parse(text);
  if (field === 'from' || field === 'to' || field === 'target') f[field] = [value];
  else f[field] = [...new Set([...(f[field] || []), value])];
  return format(f);
}

// params are the query parameters of a search (and an export) for text.
// serverParam is the name of the server's own query parameter, if any.
export function params(text, serverParam) {
  if (serverParam) return text.trim() ? {[serverParam]: text.trim()} : {};
  const f = parse(text);
  const out = {};
  for (const [k, v] of Object.entries(f)) {
    if (k === 'target') {
      const [type, ...id] = v[0].split('/');
      out.target_type = type;
      out.target_id = id.join('/');
    } else out[fields[k].param] = v;
  }
  return out;
}

// serverQueryParam is the search operation's query-string parameter when
// the server has one (work in progress elsewhere names it q or query).
export function serverQueryParam(caps) {
  const op = caps.ReadService_Search;
  return op ? op.params.find(n => n === 'q' || n === 'query') : undefined;
}
