/*
 * base/crypto.h -- everything cryptographic, on libcrypto: constant-time
 * comparison, credentials sealed with AES-256-GCM, password hashes.
 * Pure (no globals); any thread. Nothing here logs: callers decide.
 */
#ifndef EF_BASE_CRYPTO_H
#define EF_BASE_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Constant-time comparison of two byte strings (length leaks, content not). */
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
/* Encrypts n bytes with AES-256-GCM under a fresh random nonce. *out
 * (owned by the caller) is "EF1" | nonce | ciphertext | tag. */
int ef_secret_seal(const uint8_t key[32], const void *plain, size_t n, uint8_t **out,
                   size_t *outlen);
/* Decrypts what ef_secret_seal made. EF_EAUTH for the wrong key or an
 * altered blob, EF_EINVAL for something that is not a sealed blob. *plain
 * is NUL-terminated and owned by the caller. */
int ef_secret_open(const uint8_t key[32], const uint8_t *sealed, size_t n, char **plain,
                   size_t *plen);
/* Operator passwords: PBKDF2-HMAC-SHA256, random salt. */
int ef_password_hash(const char *password, char **out);
/* 0 when password matches stored, else EF_EAUTH. */
int ef_password_verify(const char *password, const char *stored);

#endif /* EF_BASE_CRYPTO_H */
