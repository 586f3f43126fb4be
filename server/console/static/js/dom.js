// Building the page from data. Nothing here parses text as HTML: every
// value the API returns reaches the page as a text node or an attribute,
// so a hostile event (an actor named "<script>") stays text.

// h creates an element: h('a', {href: '#/x', onclick: fn}, 'text', child).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'value') el.value = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  add(el, children);
  return el;
}

function add(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

// fill replaces el's children.
export function fill(el, ...children) {
  el.replaceChildren();
  add(el, children);
  return el;
}

// field is a labelled input; the label wraps it, so it needs no id.
export function field(label, input) {
  return h('label', {}, label, input);
}

// table renders rows with columns [{title, cell: row => node|text, num}].
export function table(columns, rows, rowAttrs) {
  return h('table', {},
    h('thead', {}, h('tr', {}, columns.map(c => h('th', {scope: 'col', class: c.num ? 'num' : null}, c.title)))),
    h('tbody', {}, rows.map(r => h('tr', rowAttrs ? rowAttrs(r) : {},
      columns.map(c => h('td', {class: c.num ? 'num' : null}, c.cell(r)))))));
}

// kv renders a definition list from [label, value] pairs, skipping empty values.
export function kv(pairs) {
  return h('dl', {class: 'kv'}, present(pairs).map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

// stats renders [label, value] pairs as one compact line of figures.
export function stats(pairs) {
  return h('dl', {class: 'stats'}, present(pairs).map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v))));
}

const present = pairs => pairs.filter(([, v]) => v !== undefined && v !== null && v !== '');

// short turns an enum's full name into its short one: CATEGORY_DATA_ACCESS -> data_access.
export function short(name, prefix) {
  if (!name) return '';
  return prefix && name.startsWith(prefix) ? name.slice(prefix.length).toLowerCase() : name.toLowerCase();
}

export const category = c => short(c, 'CATEGORY_');
export const outcome = o => short(o, 'OUTCOME_');
export const role = r => short(r, 'ROLE_').replace('_', ' ');

// time shows an RFC 3339 time in UTC, to the second.
export function time(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  return d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, 'Z');
}

// day is the UTC day of an RFC 3339 time: 2026-03-14.
export const day = iso => new Date(iso).toISOString().slice(0, 10);

export function badge(text, kind) {
  return h('span', {class: 'badge' + (kind ? ' ' + kind : '')}, text);
}

// download offers bytes as a file, without navigating away.
export function downloadLink(label, blob, filename) {
  const url = URL.createObjectURL(blob);
  return h('a', {href: url, download: filename, class: 'download'}, label);
}

// eventLink points at an event's page.
export function eventLink(tenant, partition, leaf, text) {
  return h('a', {href: `#/event/${encodeURIComponent(tenant)}/${partition}/${leaf}`}, text);
}

// bytesText formats a byte count.
export function bytesText(n) {
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i ? n.toFixed(1) : n) + ' ' + units[i];
}
