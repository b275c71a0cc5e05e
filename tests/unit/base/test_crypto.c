/* Unit tests for src/base/crypto.c: AES-256-GCM sealing and PBKDF2
 * password hashes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "base/crypto.h"
#include "base/ef.h"

static const char *KEY_HEX = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f";

static void test_key_parse(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(ef_secret_key_parse(KEY_HEX, key), 0);
    assert_int_equal(key[0], 0x00);
    assert_int_equal(key[31], 0x1f);
    assert_int_equal(ef_secret_key_parse("abc", key), EF_EINVAL);
    char bad[65];
    memcpy(bad, KEY_HEX, 65);
    bad[10] = 'g';
    assert_int_equal(ef_secret_key_parse(bad, key), EF_EINVAL);
}

static void test_seal_round_trip(void **state)
{
    (void)state;
    uint8_t key[32];
    ef_secret_key_parse(KEY_HEX, key);
    const char *token = "123456789:AAH-bot-token_Секрет";
    uint8_t *sealed = NULL;
    size_t n = 0;
    assert_int_equal(ef_secret_seal(key, token, strlen(token), &sealed, &n), 0);
    assert_int_equal(n, 3 + 12 + strlen(token) + 16);
    /* The plaintext does not appear in the sealed bytes. */
    for (size_t i = 0; i + 7 <= n; i++)
        assert_true(memcmp(sealed + i, "AAH-bot", 7) != 0);
    char *plain = NULL;
    size_t plen = 0;
    assert_int_equal(ef_secret_open(key, sealed, n, &plain, &plen), 0);
    assert_int_equal(plen, strlen(token));
    assert_string_equal(plain, token);
    ef_free(plain);

    /* Two seals of the same text differ (fresh nonce). */
    uint8_t *again = NULL;
    size_t n2 = 0;
    assert_int_equal(ef_secret_seal(key, token, strlen(token), &again, &n2), 0);
    assert_int_equal(n2, n);
    assert_memory_not_equal(again, sealed, n);
    ef_free(again);
    ef_free(sealed);
}

static void test_open_refuses_tampering_and_wrong_key(void **state)
{
    (void)state;
    uint8_t key[32], other[32];
    ef_secret_key_parse(KEY_HEX, key);
    memcpy(other, key, 32);
    other[5] ^= 1;
    uint8_t *sealed = NULL;
    size_t n = 0;
    assert_int_equal(ef_secret_seal(key, "access-token", 12, &sealed, &n), 0);
    char *plain = NULL;
    size_t plen = 0;
    assert_int_equal(ef_secret_open(other, sealed, n, &plain, &plen), EF_EAUTH);
    sealed[20] ^= 0x40; /* a ciphertext byte */
    assert_int_equal(ef_secret_open(key, sealed, n, &plain, &plen), EF_EAUTH);
    sealed[20] ^= 0x40;
    sealed[n - 1] ^= 1; /* the tag */
    assert_int_equal(ef_secret_open(key, sealed, n, &plain, &plen), EF_EAUTH);
    sealed[n - 1] ^= 1;
    assert_int_equal(ef_secret_open(key, sealed, n - 1, &plain, &plen), EF_EAUTH);
    assert_int_equal(ef_secret_open(key, sealed, 10, &plain, &plen), EF_EINVAL);
    sealed[0] = 'X';
    assert_int_equal(ef_secret_open(key, sealed, n, &plain, &plen), EF_EINVAL);
    ef_free(sealed);
}

/* Credentials are bound to their integration: a blob copied to another
 * row does not open; the older format still opens, flagged legacy. */
static void test_cred_seal_bound_to_integration(void **state)
{
    (void)state;
    const char *id_a = "6f1c2a4e-0000-4000-8000-00000000000a";
    const char *id_b = "6f1c2a4e-0000-4000-8000-00000000000b";
    const char *creds = "{\"bot_token\":\"123:AAH-secret\"}";
    ef_keyring kr;
    char err[160];
    assert_int_equal(ef_keyring_parse(&kr, KEY_HEX, NULL, err, sizeof(err)), 0);
    /* The cipher key is derived, not the configured one. */
    assert_memory_not_equal(kr.seal_keys[0], kr.keys[0], 32);
    uint8_t *sealed = NULL;
    size_t n = 0;
    assert_int_equal(ef_cred_seal(&kr, id_a, creds, strlen(creds), &sealed, &n), 0);
    assert_memory_equal(sealed, "EF2", 3);
    char *plain = NULL;
    size_t plen = 0;
    bool legacy = true;
    assert_int_equal(ef_keyring_open(&kr, kr.ids[0], id_a, sealed, n, &plain, &plen, &legacy), 0);
    assert_false(legacy);
    assert_string_equal(plain, creds);
    ef_free(plain);
    plain = NULL;
    /* Copied to another row: refused, whatever key id the row claims. */
    assert_int_equal(ef_keyring_open(&kr, kr.ids[0], id_b, sealed, n, &plain, &plen, &legacy),
                     EF_EAUTH);
    assert_int_equal(ef_keyring_open(&kr, NULL, NULL, sealed, n, &plain, &plen, NULL), EF_EAUTH);
    assert_null(plain);
    /* The raw key alone (the old scheme) does not open it either. */
    uint8_t raw[32];
    ef_secret_key_parse(KEY_HEX, raw);
    sealed[0] = 'E', sealed[2] = '1';
    assert_int_equal(ef_secret_open(raw, sealed, n, &plain, &plen), EF_EAUTH);
    ef_free(sealed);

    /* An old blob (raw key, no id) opens once, flagged for re-sealing. */
    assert_int_equal(ef_secret_seal(raw, creds, strlen(creds), &sealed, &n), 0);
    assert_int_equal(ef_keyring_open(&kr, kr.ids[0], id_b, sealed, n, &plain, &plen, &legacy), 0);
    assert_true(legacy);
    assert_string_equal(plain, creds);
    ef_free(plain);
    ef_free(sealed);

    /* Sealed under a key now in EF_SECRET_KEY_OLD: still opens for its id. */
    ef_keyring next;
    const char *new_hex = "1111111111111111111111111111111111111111111111111111111111111111";
    assert_int_equal(ef_cred_seal(&kr, id_a, creds, strlen(creds), &sealed, &n), 0);
    assert_int_equal(ef_keyring_parse(&next, new_hex, KEY_HEX, err, sizeof(err)), 0);
    assert_int_equal(ef_keyring_open(&next, kr.ids[0], id_a, sealed, n, &plain, &plen, &legacy), 0);
    assert_false(legacy);
    ef_free(plain);
    ef_free(sealed);
    char uuid[37], uuid2[37];
    assert_int_equal(ef_uuid_v4(uuid), 0);
    assert_int_equal(ef_uuid_v4(uuid2), 0);
    assert_int_equal(strlen(uuid), 36);
    assert_int_equal(uuid[14], '4');
    assert_string_not_equal(uuid, uuid2);
    ef_keyring_cleanup(&kr);
    ef_keyring_cleanup(&next);
}

static void test_password_hash_and_verify(void **state)
{
    (void)state;
    char *h = NULL;
    assert_int_equal(ef_password_hash("пароль-оператора", &h), 0);
    assert_true(strncmp(h, "$argon2id$", 10) == 0);
    assert_null(strstr(h, "пароль"));
    assert_int_equal(ef_password_verify("пароль-оператора", h), 0);
    assert_int_equal(ef_password_verify("пароль-оператор", h), EF_EAUTH);
    assert_int_equal(ef_password_verify("", h), EF_EAUTH);
    char *h2 = NULL;
    assert_int_equal(ef_password_hash("пароль-оператора", &h2), 0);
    assert_string_not_equal(h, h2); /* salted */
    assert_int_equal(ef_password_verify("x", "plain-text-password"), EF_EAUTH);
    assert_int_equal(ef_password_verify("x", "pbkdf2_sha256$12$zz$yy"), EF_EAUTH);
    ef_free(h);
    ef_free(h2);
}

/* A known answer made by an independent AES-256-GCM implementation (Python's
 * cryptography package): key 00..1f, nonce cafebabefacedbaddecaf888,
 * associated data "EF1" (the format's version, authenticated), laid out as
 * "EF1" | nonce | ciphertext | tag. It must open to the exact plaintext;
 * every single-bit change anywhere, a cut and the wrong key are refused. */
static const char KAT_BLOB[] =
    "454631cafebabefacedbaddecaf888f181c249de253b742d6e33ff413fb80d3e14f567e558283763bb61179ca54"
    "78cc833b323b58b3d0d4d3e464a08a153563a26cc258ebab9e210a6440a89dc8e601c68f9fb223fe8b63ffa8894"
    "db62ed09ef";
static const char KAT_PLAIN[] =
    "{\"bot_token\":\"123456:ABC-def\",\"secret_token\":\"s3cret-0123456789\"}";

static void test_seal_known_answer(void **state)
{
    (void)state;
    uint8_t key[32], blob[96];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)i;
    assert_int_equal(strlen(KAT_BLOB), 2 * sizeof(blob));
    for (size_t i = 0; i < sizeof(blob); i++) {
        unsigned v;
        assert_int_equal(sscanf(KAT_BLOB + 2 * i, "%2x", &v), 1);
        blob[i] = (uint8_t)v;
    }
    char *plain = NULL;
    size_t plen = 0;
    assert_int_equal(ef_secret_open(key, blob, sizeof(blob), &plain, &plen), 0);
    assert_int_equal(plen, strlen(KAT_PLAIN));
    assert_memory_equal(plain, KAT_PLAIN, plen);
    ef_free(plain);
    for (size_t i = 0; i < sizeof(blob) * 8; i++) {
        blob[i / 8] ^= (uint8_t)(1u << (i % 8));
        plain = NULL;
        int rc = ef_secret_open(key, blob, sizeof(blob), &plain, &plen);
        assert_true(rc == EF_EAUTH || rc == EF_EINVAL);
        assert_null(plain);
        blob[i / 8] ^= (uint8_t)(1u << (i % 8));
    }
    plain = NULL;
    assert_int_not_equal(ef_secret_open(key, blob, sizeof(blob) - 1, &plain, &plen), 0);
    key[31] ^= 1;
    assert_int_equal(ef_secret_open(key, blob, sizeof(blob), &plain, &plen), EF_EAUTH);
}

/* RFC 4231 test cases 1 and 2; the hex compare takes either case and
 * nothing but exactly 64 hex digits. */
static void test_hmac_sha256_vectors(void **state)
{
    (void)state;
    uint8_t key1[20], mac[32];
    memset(key1, 0x0b, sizeof(key1));
    const char *hex1 = "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7";
    assert_int_equal(ef_hmac_sha256(key1, sizeof(key1), "Hi There", 8, mac), 0);
    assert_int_equal(mac[0], 0xb0);
    assert_int_equal(mac[31], 0xf7);
    assert_true(ef_hmac_sha256_hex_equal(key1, sizeof(key1), "Hi There", 8, hex1, 64));

    const char *data2 = "what do ya want for nothing?";
    const char *hex2 = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const char *upper2 = "5BDCC146BF60754E6A042426089575C75A003F089D2739839DEC58B964EC3843";
    assert_true(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), hex2, 64));
    assert_true(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), upper2, 64));
    /* one bit of the data, the key or the MAC changed */
    assert_false(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2) - 1, hex2, 64));
    assert_false(ef_hmac_sha256_hex_equal("Jeff", 4, data2, strlen(data2), hex2, 64));
    char bad[65];
    memcpy(bad, hex2, 65);
    bad[63] = '2';
    assert_false(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), bad, 64));
    /* malformed hex: short, long, not hex; an empty key */
    assert_false(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), hex2, 63));
    assert_false(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), hex2, 65));
    bad[63] = 'g';
    assert_false(ef_hmac_sha256_hex_equal("Jefe", 4, data2, strlen(data2), bad, 64));
    assert_false(ef_hmac_sha256_hex_equal("", 0, data2, strlen(data2), hex2, 64));
    /* an empty message is signable; data may then be NULL */
    assert_int_equal(ef_hmac_sha256("k", 1, NULL, 0, mac), 0);
    assert_int_equal(ef_hmac_sha256("k", 1, NULL, 5, mac), EF_EINVAL);
}

/* Results only (the timing property is by construction: fixed-size MACs). */
static void test_secure_equal(void **state)
{
    (void)state;
    assert_true(ef_secure_equal("secret-token", 12, "secret-token", 12));
    assert_true(ef_secure_equal("", 0, "", 0));
    assert_true(ef_secure_equal(NULL, 0, "", 0));
    assert_false(ef_secure_equal("secret-token", 12, "secret-tokeN", 12));
    assert_false(ef_secure_equal("secret-token", 12, "Secret-token", 12));
    /* A prefix, a longer string, the empty string: never equal. */
    assert_false(ef_secure_equal("secret-token", 12, "secret", 6));
    assert_false(ef_secure_equal("secret", 6, "secret-token", 12));
    assert_false(ef_secure_equal("", 0, "x", 1));
    assert_false(ef_secure_equal("x", 1, "", 0));
    /* Embedded NUL bytes count; lengths are what is compared, not C strings. */
    assert_true(ef_secure_equal("a\0b", 3, "a\0b", 3));
    assert_false(ef_secure_equal("a\0b", 3, "a\0c", 3));
    assert_false(ef_secure_equal("a\0", 2, "a", 1));
    /* Long inputs (several SHA-256 blocks), differing only in the last byte. */
    char x[1000], y[1000];
    memset(x, 'q', sizeof(x));
    memcpy(y, x, sizeof(y));
    assert_true(ef_secure_equal(x, sizeof(x), y, sizeof(y)));
    y[999] = 'r';
    assert_false(ef_secure_equal(x, sizeof(x), y, sizeof(y)));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_parse),
        cmocka_unit_test(test_secure_equal),
        cmocka_unit_test(test_seal_round_trip),
        cmocka_unit_test(test_open_refuses_tampering_and_wrong_key),
        cmocka_unit_test(test_cred_seal_bound_to_integration),
        cmocka_unit_test(test_password_hash_and_verify),
        cmocka_unit_test(test_hmac_sha256_vectors),
        cmocka_unit_test(test_seal_known_answer),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
