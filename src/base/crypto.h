/*
 * base/crypto.h -- everything cryptographic, on libcrypto and libsodium:
 * constant-time comparison, HMAC and HKDF, credentials sealed with
 * AES-256-GCM, password hashes (Argon2id), base64url.
 * Pure but for ef_secure_equal's per-process key; any thread. Nothing here
 * logs: callers decide.
 */
#ifndef EF_BASE_CRYPTO_H
#define EF_BASE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Whether two byte strings are equal, in a time that depends neither on
 * where they differ nor on whether their lengths match: both sides are
 * HMAC-SHA256'd under a per-process random key and the MACs compared in
 * constant time (so the secret's length does not leak through an early
 * length check). NULL only with length 0. */
bool ef_secure_equal(const char *a, size_t alen, const char *b, size_t blen);

/* HMAC-SHA256 of the n bytes at data (NULL only when n is 0) keyed with
 * klen bytes of key, into mac. 0, or EF_EINVAL (bad arguments). */
int ef_hmac_sha256(const void *key, size_t klen, const void *data, size_t n, uint8_t mac[32]);
/* Whether hex -- exactly 64 hex digits, either case, hexlen bytes -- is the
 * HMAC-SHA256 of data keyed with key. Decoding the (public) hex may branch;
 * the MACs are compared in constant time. False for malformed hex or an
 * empty key. */
bool ef_hmac_sha256_hex_equal(const void *key, size_t klen, const void *data, size_t n,
                              const char *hex, size_t hexlen);

/* EF_SECRET_KEY: 64 hex digits -> the 32-byte AES-256-GCM key. */
int ef_secret_key_parse(const char *hex, uint8_t key[32]);
/* The key's public fingerprint, stored as integrations.encryption_key_id so
 * that rotation knows which key sealed which row: "k1:" and the first 8
 * bytes of SHA-256(key) in hex (out needs 20 bytes). */
void ef_secret_key_id(const uint8_t key[32], char out[20]);
/* Encrypts n bytes with AES-256-GCM under a fresh random nonce. *out
 * (owned by the caller) is "EF1" | nonce | ciphertext | tag. */
int ef_secret_seal(const uint8_t key[32], const void *plain, size_t n, uint8_t **out,
                   size_t *outlen);
/* Decrypts what ef_secret_seal made. EF_EAUTH for the wrong key or an
 * altered blob, EF_EINVAL for something that is not a sealed blob. *plain
 * is NUL-terminated and owned by the caller. */
int ef_secret_open(const uint8_t key[32], const uint8_t *sealed, size_t n, char **plain,
                   size_t *plen);
/* Operator passwords: Argon2id (libsodium's crypto_pwhash_str, random
 * salt), *out the self-describing "$argon2id$v=19$m=...,t=...,p=1$..."
 * string with its parameters inside, owned by the caller. Memory-hard on
 * purpose (tens of MiB, ~0.1 s): call it off the event loop. EF_EIO when
 * the hash cannot be computed (out of memory). */
int ef_password_hash(const char *password, char **out);
/* 0 when password matches stored, else EF_EAUTH (also for anything that
 * is no hash this code knows). Accepts Argon2id hashes and the older
 * "pbkdf2_sha256$<iterations>$<salt>$<hash>" ones. Slow like the hash. */
int ef_password_verify(const char *password, const char *stored);
/* Whether stored should be replaced by a fresh ef_password_hash after a
 * successful verify: an older scheme (PBKDF2) or Argon2id with other
 * parameters than today's. */
bool ef_password_needs_rehash(const char *stored);

/* HKDF-SHA256 (RFC 5869): outlen (1..255*32) bytes of key material derived
 * from ikm under salt and info (both may be NULL/empty). 0 or EF_EINVAL. */
int ef_hkdf_sha256(const void *ikm, size_t ikmlen, const char *salt, const char *info, uint8_t *out,
                   size_t outlen);
/* n random bytes from the system's CSPRNG. 0 or EF_EIO. */
int ef_random_bytes(void *buf, size_t n);
/* SHA-256 of n bytes as 64 lower-case hex digits (out needs 65 bytes). */
void ef_sha256_hex(const void *data, size_t n, char out[65]);
/* base64url without padding (RFC 4648 section 5): the encoding of n bytes,
 * owned by the caller. */
char *ef_base64url_encode(const void *data, size_t n);
/* The strict decoding of len characters of base64url without padding into
 * at most max bytes: 0 with *n set, EF_EINVAL for any other character,
 * padding or a length that is no encoding, EF_ELIMIT when it would exceed
 * max. */
int ef_base64url_decode(const char *s, size_t len, uint8_t *out, size_t max, size_t *n);

/* The keys credentials may be sealed under: keys[0] (EF_SECRET_KEY) seals,
 * the others (EF_SECRET_KEY_OLD, during a rotation) only open. seal_keys[i]
 * is the AES-256-GCM key actually used, HKDF-SHA256 of keys[i] (so the
 * configured secret never touches the cipher directly). */
#define EF_KEYRING_MAX 8
typedef struct ef_keyring {
    uint8_t keys[EF_KEYRING_MAX][32];
    uint8_t seal_keys[EF_KEYRING_MAX][32];
    char ids[EF_KEYRING_MAX][20];
    int n; /* 0: no key configured */
} ef_keyring;

/* current: 64 hex digits or NULL/""; old: comma-separated, may be NULL.
 * EF_EINVAL naming the bad key (never printing it). */
int ef_keyring_parse(ef_keyring *kr, const char *current, const char *old, char *err,
                     size_t errlen);
/* Seals an integration's credentials under seal_keys[0] with the
 * integration's id as associated data: "EF2" | nonce | ciphertext | tag,
 * which opens only for that id (a blob copied to another row is refused).
 * EF_EINVAL without a key or an id. */
int ef_cred_seal(const ef_keyring *kr, const char *integration_id, const void *plain, size_t n,
                 uint8_t **out, size_t *outlen);
/* Opens an integration's blob with the key named key_id, else with each key
 * in turn: "EF2" blobs under the derived keys with integration_id as
 * associated data; older "EF1" blobs (raw key, no associated data) still
 * open, with *legacy set (may be NULL) so that the caller re-seals them
 * with ef_cred_seal. EF_EAUTH when none opens it; *plain as
 * ef_secret_open. */
int ef_keyring_open(const ef_keyring *kr, const char *key_id, const char *integration_id,
                    const uint8_t *sealed, size_t n, char **plain, size_t *plen, bool *legacy);
/* A random RFC 4122 version 4 UUID, lower-case, NUL-terminated. 0 or EF_EIO. */
int ef_uuid_v4(char out[37]);
/* Wipes the keys. */
void ef_keyring_cleanup(ef_keyring *kr);

#endif /* EF_BASE_CRYPTO_H */
