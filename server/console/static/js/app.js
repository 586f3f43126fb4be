// The console's shell: sign-in, the screens a role may use, the tenant
// being looked at, and hash routing (#/search?q=…), so that every screen
// has an address and the browser's back button works.

import * as api from './api.js';
import {h, fill, field, role as roleName} from './dom.js';
import * as pii from './screens/pii.js';
import * as search from './screens/search.js';
import * as eventPage from './screens/event.js';
import * as logPage from './screens/log.js';
import * as alerts from './screens/alerts.js';
import * as operator from './screens/operator.js';
import * as trust from './screens/trust.js';

const READ = ['ROLE_AUDITOR', 'ROLE_PRIVACY_OFFICER', 'ROLE_ADMIN'];

// screens, in menu order; roles are those whose keys the API lets do what
// the screen does (the API still decides each call).
const screens = [
  {path: 'pii', title: 'PII access report', roles: ['ROLE_PRIVACY_OFFICER', 'ROLE_ADMIN'], mod: pii},
  {path: 'search', title: 'Search', roles: READ, mod: search},
  {path: 'log', title: 'Log & proofs', roles: READ, mod: logPage},
  {path: 'alerts', title: 'Alerts', roles: READ, mod: alerts},
  {path: 'operator', title: 'Operations', roles: ['ROLE_ADMIN'], mod: operator},
  {path: 'trust', title: 'Log key', roles: READ, mod: trust},
  {path: 'event', title: 'Event', roles: READ, mod: eventPage, hidden: true},
];

const home = {ROLE_PRIVACY_OFFICER: 'pii', ROLE_AUDITOR: 'search', ROLE_ADMIN: 'operator'};

const main = document.getElementById('main');
const nav = document.getElementById('nav');
const whoEl = document.getElementById('who');
const statusEl = document.getElementById('status');

let who = null; // the WhoAmI answer for the signed-in key
let current = null; // AbortController of the screen shown

export function setStatus(msg, error) {
  statusEl.className = 'status' + (error ? ' error' : '');
  statusEl.textContent = msg || '';
}

const tenantKey = 'trail.tenant';
function tenant() {
  const t = sessionStorage.getItem(tenantKey);
  if (t && (who.all_tenants || (who.tenants || []).includes(t))) return t;
  return (who.tenants || []).find(x => x !== '_system') || '';
}

function signOut(reason) {
  api.session.token = '';
  who = null;
  location.hash = '#/';
  route();
  if (reason) setStatus(reason, true);
}

api.onUnauthenticated(err => signOut(`Signed out: ${err.message}`));

function renderSignIn() {
  fill(nav);
  fill(whoEl);
  const token = h('input', {type: 'password', name: 'token', autocomplete: 'off', required: true,
    placeholder: 'trail_…', 'aria-describedby': 'token-help'});
  const form = h('form', {class: 'panel signin', onsubmit: async ev => {
    ev.preventDefault();
    const tok = token.value.trim();
    try {
      const me = await api.get('/api/v1/whoami', undefined, {token: tok});
      if (!READ.includes(me.role)) {
        setStatus(`A ${roleName(me.role)} key can only append events; the console needs an auditor, privacy officer or admin key.`, true);
        return;
      }
      api.session.token = tok;
      setStatus('');
      await start(me);
    } catch (e) {
      setStatus(`Sign-in failed: ${e.message}`, true);
    }
  }},
  h('h1', {}, 'Sign in to the Trail console'),
  field('API key', token),
  h('p', {id: 'token-help', class: 'note'},
    'Your key stays in this tab (session storage) and is sent only to this server\'s API, ',
    'where every call is authorized and audited as yours. Closing the tab signs you out.'),
  h('button', {class: 'primary', type: 'submit'}, 'Sign in'));
  fill(main, form);
  token.focus();
}

async function start(me) {
  who = me;
  const t = h('select', {name: 'tenant', 'aria-label': 'Tenant', onchange: () => {
    sessionStorage.setItem(tenantKey, t.value);
    route();
  }});
  for (const id of who.tenants || []) t.append(h('option', {value: id}, id));
  let tenantControl = t;
  if (who.all_tenants) {
    // An admin may look at a tenant that has no log on this node yet.
    const list = h('datalist', {id: 'tenant-list'}, (who.tenants || []).map(id => h('option', {value: id})));
    tenantControl = h('input', {name: 'tenant', list: 'tenant-list', 'aria-label': 'Tenant', size: 14,
      onchange: ev => { sessionStorage.setItem(tenantKey, ev.target.value.trim()); route(); }});
    tenantControl = [tenantControl, list];
  }
  fill(whoEl,
    h('span', {}, 'Tenant '), tenantControl,
    h('span', {class: 'badge', title: `key ${who.key_id} on node ${who.node_id}`}, roleName(who.role)),
    h('button', {type: 'button', onclick: () => signOut('Signed out.')}, 'Sign out'));
  const sel = whoEl.querySelector('[name=tenant]');
  sel.value = tenant();
  if (!location.hash || location.hash === '#/' || location.hash === '#') location.hash = '#/' + home[who.role];
  else route();
}

function parseHash() {
  const raw = location.hash.replace(/^#\/?/, '');
  const [path, qs] = raw.split('?');
  const parts = path.split('/').map(decodeURIComponent);
  return {name: parts[0], rest: parts.slice(1), params: new URLSearchParams(qs || '')};
}

async function route() {
  if (current) current.abort();
  if (!who) { renderSignIn(); return; }
  const {name, rest, params} = parseHash();
  const allowed = screens.filter(s => s.roles.includes(who.role));
  const screen = allowed.find(s => s.path === name);
  fill(nav, allowed.filter(s => !s.hidden).map(s =>
    h('a', {href: '#/' + s.path, 'aria-current': s === screen ? 'page' : null}, s.title)));
  if (!screen) {
    location.hash = '#/' + home[who.role];
    return;
  }
  current = new AbortController();
  const signal = current.signal;
  setStatus('');
  // Each visit renders into a view of its own: a screen still finishing
  // an earlier visit (its calls are aborted, but a render may be past
  // them) writes into a view no longer on the page, never into this one.
  const view = h('div', {});
  fill(main, view);
  const ctx = {main: view, who, tenant: tenant(), rest, params, signal,
    setStatus: (msg, error) => { if (!signal.aborted) setStatus(msg, error); },
    go: hash => { location.hash = hash; }};
  try {
    await screen.mod.render(ctx);
  } catch (e) {
    if (e.name !== 'AbortError') ctx.setStatus(e.message, true);
  }
  if (signal.aborted) return;
  // Move focus to the screen's heading, so keyboard and screen-reader
  // users land on what changed.
  const h1 = view.querySelector('h1');
  if (h1 && !view.contains(document.activeElement)) { h1.tabIndex = -1; h1.focus(); }
}

window.addEventListener('hashchange', route);

(async () => {
  if (!api.session.token) { renderSignIn(); return; }
  try {
    await start(await api.get('/api/v1/whoami'));
  } catch (e) {
    signOut(`Signed out: ${e.message}`);
  }
})();
