// The log key: which public key the browser verifies signatures with.
// A key pinned here (from a source the auditor trusts: the log.vkey file
// an operator handed over, a publication) always wins over the copy this
// server publishes, since a server that forged a checkpoint could forge
// its key too.

import {h, field, kv} from '../dom.js';
import {parseVerifierKey, pinned} from '../verify.js';

// verifierKey returns the key to verify with and where it came from:
// {key, source: 'pinned'|'server', warning}. It throws when there is none.
export async function verifierKey(who) {
  const served = who.log_verifier_key || '';
  if (pinned.text) {
    const key = await parseVerifierKey(pinned.text);
    const warning = served && served.trim() !== key.text
      ? 'This server publishes a different log key than the one you pinned.' : '';
    return {key, source: 'pinned', warning};
  }
  if (!served) throw new Error('No log key: this server publishes none. Pin the log\'s verifier key on the Log key screen.');
  return {key: await parseVerifierKey(served), source: 'server',
    warning: 'Verified with the key this server publishes. Pin the log key from a source you trust (Log key screen) to verify independently of the server.'};
}

// keyLine describes the key a verification used.
export function keyLine(vk) {
  return h('p', {class: 'note'}, `Log key ${vk.key.name}+${vk.key.hash} (${vk.source === 'pinned' ? 'pinned by you' : 'published by this server'}). `,
    vk.warning ? h('strong', {}, vk.warning) : '');
}

export async function render({main, who, setStatus}) {
  const input = h('textarea', {name: 'vkey', rows: 2, spellcheck: 'false', value: pinned.text,
    placeholder: 'trail+1a2b3c4d+AQ…'});
  const result = h('div', {});
  main.append(
    h('h1', {}, 'Log key'),
    h('p', {}, 'Proofs, checkpoints and report attestations are verified in this browser with the log\'s public key. ',
      'Paste the verifier key you trust (the operator\'s log.vkey file) to pin it in this browser.'),
    kv([['Published by this server', who.log_verifier_key ? h('code', {}, who.log_verifier_key) : 'none'],
      ['Log name', who.log_name]]),
    h('form', {class: 'panel', onsubmit: async ev => {
      ev.preventDefault();
      try {
        if (input.value.trim()) {
          const k = await parseVerifierKey(input.value);
          pinned.text = k.text;
          setStatus(`Pinned log key ${k.name}+${k.hash}.`);
        } else {
          pinned.text = '';
          setStatus('No key pinned: the server\'s published key will be used.');
        }
      } catch (e) {
        setStatus(`Not pinned: ${e.message}`, true);
      }
    }},
    field('Pinned verifier key', input),
    h('div', {class: 'bar'},
      h('button', {class: 'primary', type: 'submit'}, 'Pin this key'),
      h('button', {type: 'button', onclick: () => { input.value = who.log_verifier_key || ''; }}, 'Use the server\'s key'))),
    result);
}
