// Package shred owns crypto-shredding: the per-subject data keys a tenant's
// sealed payloads are encrypted under, sealing and opening one event's
// payload, and the signed statement an erasure leaves behind.
//
// Keys form three levels. The cluster's sealing secret (derived by traild
// from the log key, which every node already holds) gives each tenant a
// key-encryption key by HKDF; a tenant's KEK wraps the random data key of
// each of its subjects, and the wrapped record is what the replicated state
// stores; a data key gives each event its own key by HKDF over the
// tenant and event_id. An auditor handed an event key can open that one
// event and nothing else, and check that what it opens is what the leaf
// hash covers (AES-GCM authenticates the ciphertext). Deleting a subject's
// wrapped record erases every event key of that subject at once, while
// the ciphertext, and so every proof and the chain, stay as they were.
//
// Sealing is deterministic: the nonce is derived from the event key and
// the plaintext (a synthetic IV), so sealing the same event twice gives
// the same bytes and a retried append stays a duplicate (invariant 8).
// Every event key seals exactly one event_id, so the only repeated nonce
// is for a repeated plaintext, which yields the same ciphertext and
// reveals nothing new. No library offers deterministic AEAD over the
// standard library's AES-GCM with this key hierarchy, so the construction
// is written here, from crypto/hkdf, crypto/hmac and crypto/cipher.
package shred
