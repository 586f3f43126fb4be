// The console's only way to the server: the REST API, with the signed-in
// user's API key on every call. The key is kept in sessionStorage, so it
// lives as long as the tab and is never written to disk or sent anywhere
// but this origin's API.

const tokenKey = 'trail.token';

export const session = {
  get token() { return sessionStorage.getItem(tokenKey) || ''; },
  set token(v) { if (v) sessionStorage.setItem(tokenKey, v); else sessionStorage.removeItem(tokenKey); },
};

// APIError is a failed call: HTTP status, gRPC code name, and the server's message.
export class APIError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// onUnauthenticated is called when the server refuses the key (revoked,
// or the session's key is gone): the app signs out.
let unauthenticated = () => {};
export function onUnauthenticated(fn) { unauthenticated = fn; }

function url(path, query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    for (const x of [].concat(v)) {
      if (x !== undefined && x !== null && x !== '') u.searchParams.append(k, String(x));
    }
  }
  return u;
}

async function request(method, path, {query, body, signal, token} = {}) {
  const headers = {Authorization: 'Bearer ' + (token ?? session.token)};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let resp;
  try {
    resp = await fetch(url(path, query), {
      method, headers, signal, cache: 'no-store', credentials: 'omit',
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (e) {
    if (e.name === 'AbortError') throw e;
    throw new APIError(0, `cannot reach the server: ${e.message}`);
  }
  if (!resp.ok) {
    const err = await errorOf(resp);
    if (resp.status === 401 && token === undefined) unauthenticated(err);
    throw err;
  }
  return resp;
}

async function errorOf(resp) {
  const text = await resp.text();
  let msg = text.trim();
  try { msg = JSON.parse(text).message || msg; } catch { /* not JSON: keep the text */ }
  return new APIError(resp.status, `HTTP ${resp.status}: ${msg || resp.statusText}`);
}

export async function get(path, query, opts) {
  return (await request('GET', path, {query, ...opts})).json();
}

export async function send(method, path, body) {
  return (await request(method, path, {body})).json();
}

export async function text(path, query) {
  return (await request('GET', path, {query})).text();
}

// file downloads a document (report, export) whole, with the file name
// the server gave it.
export async function file(path, query) {
  const resp = await request('GET', path, {query});
  const cd = resp.headers.get('Content-Disposition') || '';
  const m = /filename="([^"]+)"/.exec(cd);
  return {blob: await resp.blob(), filename: m ? m[1] : 'download', type: resp.headers.get('Content-Type') || ''};
}

// stream yields the messages of a server stream (Tail, Subscribe): the
// gateway writes one JSON object per line, {"result": msg} or {"error": status}.
export async function* stream(path, query, signal) {
  const resp = await request('GET', path, {query, signal});
  const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = '';
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buf += value;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (!line) continue;
      const msg = JSON.parse(line);
      if (msg.error) throw new APIError(200, msg.error.message || 'stream failed');
      yield msg.result;
    }
  }
}

// capabilities reads the server's OpenAPI document once: which optional
// operations and parameters this server has (search syntax, aggregations),
// so screens use them where they exist and say so where they do not.
let caps;
export function capabilities() {
  caps ??= fetch('/api/v1/openapi.json', {cache: 'no-store', credentials: 'omit'})
    .then(r => r.ok ? r.json() : {paths: {}})
    .then(doc => {
      const ops = {};
      for (const [path, byMethod] of Object.entries(doc.paths || {})) {
        for (const [method, op] of Object.entries(byMethod)) {
          ops[op.operationId] = {path, method, params: (op.parameters || []).map(p => p.name)};
        }
      }
      return ops;
    })
    .catch(() => ({}));
  return caps;
}
