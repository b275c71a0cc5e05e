/*
 * crypto.c -- constant-time comparison; HMAC-SHA256 (webhook signatures);
 * credentials at rest (libcrypto): AES-256-GCM sealing of platform
 * credentials; operator password hashes (libsodium's Argon2id); HKDF for
 * keys derived from EF_SECRET_KEY; base64url (libsodium).
 *
 * Sealed format: "EF2" | 12-byte random nonce | ciphertext | 16-byte tag,
 * under HKDF-SHA256(EF_SECRET_KEY) with the integration's id as associated
 * data. The tag authenticates the version, the id and the ciphertext, so a
 * tampered or truncated blob, the wrong key, or a blob copied to another
 * integration's row is refused rather than decrypted. The older "EF1"
 * (the raw key, no associated data) still opens, flagged legacy, so that
 * callers re-seal it.
 *
 * Password hashes: "$argon2id$v=19$m=<KiB>,t=<passes>,p=1$<salt>$<hash>"
 * (crypto_pwhash_str: the parameters travel inside the string, so raising
 * them later only makes old hashes "need a rehash"). The older
 * "pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>" is still verified
 * (constant time in the hash comparison) and always needs a rehash.
 *
 * Pure but for ef_secure_equal's per-process random key (set once,
 * thread-safe); any thread. Nothing here logs: callers decide.
 */
#include "base/crypto.h"
#include "base/hex.h"

#include "base/err.h"
#include "base/mem.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/kdf.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SEAL_MAGIC "EF1"
#define CRED_MAGIC "EF2"
#define SEAL_MAGIC_LEN 3
/* HKDF labels of the credentials' sealing key: changing them orphans every
 * sealed blob. */
#define CRED_HKDF_SALT "easyflow credentials"
#define CRED_HKDF_INFO "EF2 aes-256-gcm sealing key"
#define NONCE_LEN 12
#define TAG_LEN 16
#define SALT_LEN 16
#define HASH_LEN 32
/* Argon2id cost: libsodium's "interactive" profile (64 MiB, 2 passes),
 * above OWASP's minimum (19 MiB, 2 passes); ~0.1 s on one core. */
#define ARGON_OPS crypto_pwhash_OPSLIMIT_INTERACTIVE
#define ARGON_MEM crypto_pwhash_MEMLIMIT_INTERACTIVE
#define ARGON_PREFIX "$argon2id$"
#define PBKDF2_PREFIX "pbkdf2_sha256$"

/* The per-process key under which ef_secure_equal MACs both sides: set
 * once from the CSPRNG (pthread_once), never leaves this file. */
static uint8_t equal_key[HASH_LEN];
static pthread_once_t equal_once = PTHREAD_ONCE_INIT;

static void equal_key_init(void)
{
    if (RAND_bytes(equal_key, (int)sizeof(equal_key)) != 1)
        abort(); /* no CSPRNG: nothing secret can be compared safely */
}

/* HMAC-SHA256 of each side under equal_key, then CRYPTO_memcmp of the two
 * MACs: the comparison itself is fixed-size, so neither where the strings
 * differ nor whether their lengths match shows in its time; hashing a side
 * costs one SHA-256 block per 64 bytes of that side only. */
bool ef_secure_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    pthread_once(&equal_once, equal_key_init);
    uint8_t ma[HASH_LEN], mb[HASH_LEN];
    int ra = ef_hmac_sha256(equal_key, sizeof(equal_key), a, alen, ma);
    int rb = ef_hmac_sha256(equal_key, sizeof(equal_key), b, blen, mb);
    bool eq = CRYPTO_memcmp(ma, mb, HASH_LEN) == 0;
    OPENSSL_cleanse(ma, sizeof(ma));
    OPENSSL_cleanse(mb, sizeof(mb));
    return ra == 0 && rb == 0 && eq && alen == blen;
}

/* Exactly 2 * n hex digits (either case) at hex -> n bytes. */
static int hex_decode(const char *hex, size_t hexlen, uint8_t *out, size_t n)
{
    if (!hex || hexlen != 2 * n)
        return EF_EINVAL;
    for (size_t i = 0; i < n; i++) {
        int hi = ef_hexval(hex[2 * i]);
        int lo = ef_hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return EF_EINVAL;
        out[i] = (uint8_t)((hi << 4) | lo);
    }
    return 0;
}

int ef_hmac_sha256(const void *key, size_t klen, const void *data, size_t n, uint8_t mac[32])
{
    static const unsigned char empty[1] = {0};
    unsigned int len = 0;
    if ((!key && klen > 0) || (!data && n > 0) || klen > INT_MAX)
        return EF_EINVAL;
    if (!HMAC(EVP_sha256(), klen ? key : empty, (int)klen, n ? data : empty, n, mac, &len) ||
        len != HASH_LEN)
        return EF_EINVAL;
    return 0;
}

bool ef_hmac_sha256_hex_equal(const void *key, size_t klen, const void *data, size_t n,
                              const char *hex, size_t hexlen)
{
    uint8_t want[HASH_LEN], got[HASH_LEN];
    if (!key || klen == 0 || hex_decode(hex, hexlen, want, HASH_LEN) != 0)
        return false;
    bool ok =
        ef_hmac_sha256(key, klen, data, n, got) == 0 && CRYPTO_memcmp(want, got, HASH_LEN) == 0;
    OPENSSL_cleanse(got, sizeof(got));
    return ok;
}

int ef_secret_key_parse(const char *hex, uint8_t key[32])
{
    if (!hex)
        return EF_EINVAL;
    return hex_decode(hex, strlen(hex), key, 32);
}

/* AES-256-GCM under key with a fresh nonce: magic (3 bytes) | nonce |
 * ciphertext | tag, authenticating magic and then aad (may be empty). */
static int gcm_seal(const uint8_t key[32], const char *magic, const char *aad, const void *plain,
                    size_t n, uint8_t **out, size_t *outlen)
{
    if (n > (1u << 30) || strlen(aad) > INT_MAX)
        return EF_ELIMIT;
    size_t total = SEAL_MAGIC_LEN + NONCE_LEN + n + TAG_LEN;
    uint8_t *buf = ef_malloc(total);
    memcpy(buf, magic, SEAL_MAGIC_LEN);
    uint8_t *nonce = buf + SEAL_MAGIC_LEN;
    uint8_t *ct = nonce + NONCE_LEN;
    uint8_t *tag = ct + n;
    int rc = EF_EIO, len = 0, alen = (int)strlen(aad);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx || RAND_bytes(nonce, NONCE_LEN) != 1)
        goto fail;
    if (EVP_EncryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_EncryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
        EVP_EncryptUpdate(ctx, NULL, &len, buf, SEAL_MAGIC_LEN) != 1 ||
        (alen && EVP_EncryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, alen) != 1) ||
        (n && EVP_EncryptUpdate(ctx, ct, &len, plain, (int)n) != 1) ||
        EVP_EncryptFinal_ex(ctx, ct + (n ? len : 0), &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, TAG_LEN, tag) != 1)
        goto fail;
    EVP_CIPHER_CTX_free(ctx);
    *out = buf;
    *outlen = total;
    return 0;
fail:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(buf, total);
    ef_free(buf);
    return rc;
}

/* The inverse of gcm_seal: EF_EINVAL when the blob does not start with
 * magic, EF_EAUTH for the wrong key, aad or an altered blob. */
static int gcm_open(const uint8_t key[32], const char *magic, const char *aad,
                    const uint8_t *sealed, size_t n, char **plain, size_t *plen)
{
    if (n < SEAL_MAGIC_LEN + NONCE_LEN + TAG_LEN || memcmp(sealed, magic, SEAL_MAGIC_LEN))
        return EF_EINVAL;
    if (strlen(aad) > INT_MAX)
        return EF_ELIMIT;
    const uint8_t *nonce = sealed + SEAL_MAGIC_LEN;
    const uint8_t *ct = nonce + NONCE_LEN;
    size_t ctlen = n - SEAL_MAGIC_LEN - NONCE_LEN - TAG_LEN;
    uint8_t tag[TAG_LEN];
    memcpy(tag, ct + ctlen, TAG_LEN);
    char *out = ef_malloc(ctlen + 1);
    int len = 0, rc = EF_EAUTH, alen = (int)strlen(aad);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (!ctx)
        goto fail;
    if (EVP_DecryptInit_ex(ctx, EVP_aes_256_gcm(), NULL, NULL, NULL) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_IVLEN, NONCE_LEN, NULL) != 1 ||
        EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce) != 1 ||
        EVP_DecryptUpdate(ctx, NULL, &len, sealed, SEAL_MAGIC_LEN) != 1 ||
        (alen && EVP_DecryptUpdate(ctx, NULL, &len, (const uint8_t *)aad, alen) != 1) ||
        (ctlen && EVP_DecryptUpdate(ctx, (uint8_t *)out, &len, ct, (int)ctlen) != 1) ||
        EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, TAG_LEN, tag) != 1 ||
        EVP_DecryptFinal_ex(ctx, (uint8_t *)out + (ctlen ? len : 0), &len) != 1)
        goto fail; /* wrong key or associated data, or the blob was altered */
    EVP_CIPHER_CTX_free(ctx);
    out[ctlen] = '\0';
    *plain = out;
    *plen = ctlen;
    return 0;
fail:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(out, ctlen + 1);
    ef_free(out);
    return rc;
}

int ef_secret_seal(const uint8_t key[32], const void *plain, size_t n, uint8_t **out,
                   size_t *outlen)
{
    return gcm_seal(key, SEAL_MAGIC, "", plain, n, out, outlen);
}

int ef_secret_open(const uint8_t key[32], const uint8_t *sealed, size_t n, char **plain,
                   size_t *plen)
{
    return gcm_open(key, SEAL_MAGIC, "", sealed, n, plain, plen);
}

static int unb64(const char *s, size_t slen, uint8_t *out, size_t want)
{
    uint8_t tmp[128];
    if (slen == 0 || slen > 4 * ((sizeof(tmp) + 2) / 3) || slen % 4)
        return EF_EINVAL;
    int n = EVP_DecodeBlock(tmp, (const unsigned char *)s, (int)slen);
    if (n < 0)
        return EF_EINVAL;
    /* DecodeBlock counts padding bytes as output: take them off. */
    size_t pad = (s[slen - 1] == '=') + (slen > 1 && s[slen - 2] == '=');
    if ((size_t)n - pad != want)
        return EF_EINVAL;
    memcpy(out, tmp, want);
    return 0;
}

static int pbkdf2_verify(const char *password, const char *stored)
{
    const char *p = stored + strlen(PBKDF2_PREFIX);
    char *end;
    long iter = strtol(p, &end, 10);
    if (*end != '$' || iter < 1000 || iter > 10000000)
        return EF_EAUTH;
    const char *salt_s = end + 1;
    const char *dollar = strchr(salt_s, '$');
    if (!dollar)
        return EF_EAUTH;
    uint8_t salt[SALT_LEN], want[HASH_LEN], got[HASH_LEN];
    if (unb64(salt_s, (size_t)(dollar - salt_s), salt, SALT_LEN) ||
        unb64(dollar + 1, strlen(dollar + 1), want, HASH_LEN))
        return EF_EAUTH;
    if (PKCS5_PBKDF2_HMAC(password, (int)strlen(password), salt, SALT_LEN, (int)iter, EVP_sha256(),
                          HASH_LEN, got) != 1)
        return EF_EAUTH;
    int rc = CRYPTO_memcmp(got, want, HASH_LEN) == 0 ? 0 : EF_EAUTH;
    OPENSSL_cleanse(got, sizeof(got));
    return rc;
}

int ef_password_hash(const char *password, char **out)
{
    char buf[crypto_pwhash_STRBYTES];
    if (!password || sodium_init() < 0)
        return EF_EIO;
    if (crypto_pwhash_str(buf, password, strlen(password), ARGON_OPS, ARGON_MEM) != 0)
        return EF_EIO; /* out of memory */
    *out = ef_strdup(buf);
    sodium_memzero(buf, sizeof(buf));
    return 0;
}

int ef_password_verify(const char *password, const char *stored)
{
    if (!password || !stored)
        return EF_EAUTH;
    if (strncmp(stored, ARGON_PREFIX, strlen(ARGON_PREFIX)) == 0) {
        if (sodium_init() < 0 || strlen(stored) >= crypto_pwhash_STRBYTES)
            return EF_EAUTH;
        return crypto_pwhash_str_verify(stored, password, strlen(password)) == 0 ? 0 : EF_EAUTH;
    }
    if (strncmp(stored, PBKDF2_PREFIX, strlen(PBKDF2_PREFIX)) == 0)
        return pbkdf2_verify(password, stored);
    return EF_EAUTH;
}

bool ef_password_needs_rehash(const char *stored)
{
    if (!stored || strncmp(stored, ARGON_PREFIX, strlen(ARGON_PREFIX)) != 0 ||
        strlen(stored) >= crypto_pwhash_STRBYTES || sodium_init() < 0)
        return true;
    return crypto_pwhash_str_needs_rehash(stored, ARGON_OPS, ARGON_MEM) != 0;
}

int ef_hkdf_sha256(const void *ikm, size_t ikmlen, const char *salt, const char *info, uint8_t *out,
                   size_t outlen)
{
    static const unsigned char none[1] = {0};
    if ((!ikm && ikmlen) || !out || outlen == 0 || outlen > 255 * HASH_LEN || ikmlen > INT_MAX)
        return EF_EINVAL;
    size_t slen = salt ? strlen(salt) : 0, ilen = info ? strlen(info) : 0;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_id(EVP_PKEY_HKDF, NULL);
    size_t n = outlen;
    int ok =
        ctx && EVP_PKEY_derive_init(ctx) == 1 && EVP_PKEY_CTX_set_hkdf_md(ctx, EVP_sha256()) == 1 &&
        EVP_PKEY_CTX_set1_hkdf_salt(ctx, slen ? (const unsigned char *)salt : none, (int)slen) ==
            1 &&
        EVP_PKEY_CTX_set1_hkdf_key(ctx, ikmlen ? ikm : none, (int)ikmlen) == 1 &&
        (ilen == 0 ||
         EVP_PKEY_CTX_add1_hkdf_info(ctx, (const unsigned char *)info, (int)ilen) == 1) &&
        EVP_PKEY_derive(ctx, out, &n) == 1 && n == outlen;
    EVP_PKEY_CTX_free(ctx);
    return ok ? 0 : EF_EINVAL;
}

int ef_random_bytes(void *buf, size_t n)
{
    if (n > INT_MAX)
        return EF_EINVAL;
    return n == 0 || RAND_bytes(buf, (int)n) == 1 ? 0 : EF_EIO;
}

void ef_sha256_hex(const void *data, size_t n, char out[65])
{
    uint8_t md[HASH_LEN];
    unsigned int mdlen = 0;
    EVP_Digest(n ? data : "", n, md, &mdlen, EVP_sha256(), NULL);
    for (int i = 0; i < HASH_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

char *ef_base64url_encode(const void *data, size_t n)
{
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    size_t cap = sodium_base64_ENCODED_LEN(n, v);
    char *out = ef_malloc(cap);
    if (sodium_init() < 0 || !sodium_bin2base64(out, cap, n ? data : (const void *)"", n, v))
        out[0] = '\0';
    return out;
}

int ef_base64url_decode(const char *s, size_t len, uint8_t *out, size_t max, size_t *n)
{
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    const char *end = NULL;
    size_t got = 0;
    if (!s || sodium_init() < 0)
        return EF_EINVAL;
    if (len / 4 * 3 + (len % 4 ? len % 4 - 1 : 0) > max)
        return EF_ELIMIT;
    if (sodium_base642bin(out, max, s, len, NULL, &got, &end, v) != 0 || end != s + len)
        return EF_EINVAL;
    *n = got;
    return 0;
}

void ef_secret_key_id(const uint8_t key[32], char out[20])
{
    uint8_t md[32];
    unsigned int mdlen = 0;
    EVP_Digest(key, 32, md, &mdlen, EVP_sha256(), NULL);
    snprintf(out, 20, "k1:");
    for (int i = 0; i < 8; i++)
        snprintf(out + 3 + 2 * i, 3, "%02x", md[i]);
}

static int keyring_add(ef_keyring *kr, const char *hex, const char *what, char *err, size_t errlen)
{
    if (kr->n == EF_KEYRING_MAX) {
        ef_errf(err, errlen, "%s: more than %d keys", what, EF_KEYRING_MAX);
        return EF_EINVAL;
    }
    if (ef_secret_key_parse(hex, kr->keys[kr->n]) != 0) {
        ef_errf(err, errlen, "%s: a key is not 64 hex digits", what);
        return EF_EINVAL;
    }
    if (ef_hkdf_sha256(kr->keys[kr->n], 32, CRED_HKDF_SALT, CRED_HKDF_INFO, kr->seal_keys[kr->n],
                       32) != 0) {
        ef_errf(err, errlen, "%s: the sealing key cannot be derived", what);
        return EF_EINVAL;
    }
    ef_secret_key_id(kr->keys[kr->n], kr->ids[kr->n]);
    kr->n++;
    return 0;
}

int ef_keyring_parse(ef_keyring *kr, const char *current, const char *old, char *err, size_t errlen)
{
    memset(kr, 0, sizeof(*kr));
    if (!current || !*current) {
        if (old && *old) {
            ef_errf(err, errlen, "EF_SECRET_KEY_OLD is set but EF_SECRET_KEY is not");
            return EF_EINVAL;
        }
        return 0;
    }
    if (keyring_add(kr, current, "EF_SECRET_KEY", err, errlen) != 0)
        return EF_EINVAL;
    const char *p = old;
    while (p && *p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char hex[80];
        if (len >= sizeof(hex)) {
            ef_keyring_cleanup(kr);
            ef_errf(err, errlen, "EF_SECRET_KEY_OLD: a key is not 64 hex digits");
            return EF_EINVAL;
        }
        memcpy(hex, p, len);
        hex[len] = '\0';
        int rc = len ? keyring_add(kr, hex, "EF_SECRET_KEY_OLD", err, errlen) : 0;
        OPENSSL_cleanse(hex, sizeof(hex));
        if (rc) {
            ef_keyring_cleanup(kr);
            return rc;
        }
        p = comma ? comma + 1 : NULL;
    }
    return 0;
}

int ef_cred_seal(const ef_keyring *kr, const char *integration_id, const void *plain, size_t n,
                 uint8_t **out, size_t *outlen)
{
    if (!kr || kr->n == 0 || !integration_id || !*integration_id)
        return EF_EINVAL;
    return gcm_seal(kr->seal_keys[0], CRED_MAGIC, integration_id, plain, n, out, outlen);
}

/* Key i opens the blob, in whichever format it is. */
static int keyring_try(const ef_keyring *kr, int i, const char *integration_id,
                       const uint8_t *sealed, size_t n, char **plain, size_t *plen, bool *legacy)
{
    if (n >= SEAL_MAGIC_LEN && memcmp(sealed, CRED_MAGIC, SEAL_MAGIC_LEN) == 0)
        return integration_id && *integration_id
                   ? gcm_open(kr->seal_keys[i], CRED_MAGIC, integration_id, sealed, n, plain, plen)
                   : EF_EINVAL;
    int rc = gcm_open(kr->keys[i], SEAL_MAGIC, "", sealed, n, plain, plen);
    if (rc == 0 && legacy)
        *legacy = true;
    return rc;
}

int ef_keyring_open(const ef_keyring *kr, const char *key_id, const char *integration_id,
                    const uint8_t *sealed, size_t n, char **plain, size_t *plen, bool *legacy)
{
    if (legacy)
        *legacy = false;
    for (int i = 0; key_id && i < kr->n; i++)
        if (strcmp(kr->ids[i], key_id) == 0 &&
            keyring_try(kr, i, integration_id, sealed, n, plain, plen, legacy) == 0)
            return 0;
    for (int i = 0; i < kr->n; i++)
        if (keyring_try(kr, i, integration_id, sealed, n, plain, plen, legacy) == 0)
            return 0;
    return EF_EAUTH;
}

int ef_uuid_v4(char out[37])
{
    uint8_t b[16];
    if (ef_random_bytes(b, sizeof(b)) != 0)
        return EF_EIO;
    b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
    b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

void ef_keyring_cleanup(ef_keyring *kr)
{
    OPENSSL_cleanse(kr, sizeof(*kr));
}
