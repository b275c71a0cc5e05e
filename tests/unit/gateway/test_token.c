/*
 * test_token.c -- the API's access tokens (gateway/api_token.c) and the
 * crypto they and the logins stand on (base/crypto.c): a token verifies
 * with its key until it expires; any change of a byte, another key, another
 * header (alg "none"), a cut, padding or junk is refused; HKDF matches the
 * RFC 5869 test vector; passwords hash to Argon2id, the old PBKDF2 hashes
 * still verify and ask for a rehash.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "base/crypto.h"
#include "base/ef.h"
#include "gateway/api_token.h"

#include <string.h>

static const uint8_t SECRET[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
                                   17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

/* Not inlined: inlined, gcc -O2 takes the token for a pointer to sign()'s
 * local variable (-Wdangling-pointer, a false positive). */
__attribute__((noinline)) static char *sign(const uint8_t key[32], int64_t exp)
{
    ef_api_claims c = {
        .sub = "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab", .role = "operator", .iat = 1000, .exp = exp};
    char *t = NULL;
    assert_int_equal(ef_api_token_sign(key, &c, &t), 0);
    return t;
}

static void test_round_trip_and_expiry(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(ef_api_token_key(SECRET, sizeof(SECRET), key), 0);
    char *t = sign(key, 2000);
    assert_non_null(strstr(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."));
    ef_api_claims got;
    assert_int_equal(ef_api_token_verify(key, t, strlen(t), 1999, &got), 0);
    assert_string_equal(got.sub, "6f1d2c3b-aaaa-4bbb-8ccc-0123456789ab");
    assert_string_equal(got.role, "operator");
    assert_int_equal(got.iat, 1000);
    assert_int_equal(got.exp, 2000);
    assert_int_equal(ef_api_token_verify(key, t, strlen(t), 2000, &got), EF_ETIMEDOUT);
    assert_int_equal(ef_api_token_verify(key, t, strlen(t), 99999, &got), EF_ETIMEDOUT);
    ef_free(t);
}

static void test_every_byte_flip_refused(void **state)
{
    (void)state;
    uint8_t key[32];
    assert_int_equal(ef_api_token_key(SECRET, sizeof(SECRET), key), 0);
    char *t = sign(key, 2000);
    size_t n = strlen(t);
    ef_api_claims got;
    for (size_t i = 0; i < n; i++) {
        char saved = t[i];
        t[i] = saved == 'A' ? 'B' : 'A';
        assert_int_equal(ef_api_token_verify(key, t, n, 1500, &got), EF_EAUTH);
        t[i] = saved;
    }
    for (size_t cut = 0; cut < n; cut++)
        assert_int_equal(ef_api_token_verify(key, t, cut, 1500, &got), EF_EAUTH);
    char *longer = ef_asprintf("%s=", t);
    assert_int_equal(ef_api_token_verify(key, longer, strlen(longer), 1500, &got), EF_EAUTH);
    ef_free(longer);
    ef_free(t);
}

static void test_other_key_and_alg_none_refused(void **state)
{
    (void)state;
    uint8_t key[32], other[32], secret2[32];
    memcpy(secret2, SECRET, 32);
    secret2[31] ^= 1;
    assert_int_equal(ef_api_token_key(SECRET, 32, key), 0);
    assert_int_equal(ef_api_token_key(secret2, 32, other), 0);
    assert_memory_not_equal(key, other, 32);
    assert_memory_not_equal(key, SECRET, 32); /* derived, not the secret itself */
    char *t = sign(key, 2000);
    ef_api_claims got;
    assert_int_equal(ef_api_token_verify(other, t, strlen(t), 1500, &got), EF_EAUTH);
    /* {"alg":"none","typ":"JWT"} with the same claims and no signature. */
    const char *dot = strchr(t, '.');
    const char *dot2 = strchr(dot + 1, '.');
    char *none = ef_asprintf("eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.", (int)(dot2 - dot), dot);
    assert_int_equal(ef_api_token_verify(key, none, strlen(none), 1500, &got), EF_EAUTH);
    ef_free(none);
    assert_int_equal(ef_api_token_verify(key, "", 0, 1500, &got), EF_EAUTH);
    assert_int_equal(ef_api_token_verify(key, "a.b.c", 5, 1500, &got), EF_EAUTH);
    ef_free(t);
    /* Claims that would need JSON escaping are refused at signing. */
    ef_api_claims bad = {.sub = "x\",\"role\":\"admin", .role = "operator", .exp = 5};
    char *out = NULL;
    assert_int_equal(ef_api_token_sign(key, &bad, &out), EF_EINVAL);
    assert_null(out);
}

/* RFC 5869, test case 3 (no salt, no info). */
static void test_hkdf_rfc5869(void **state)
{
    (void)state;
    uint8_t ikm[22];
    memset(ikm, 0x0b, sizeof(ikm));
    uint8_t okm[42];
    assert_int_equal(ef_hkdf_sha256(ikm, sizeof(ikm), NULL, NULL, okm, sizeof(okm)), 0);
    static const uint8_t want[42] = {
        0x8d, 0xa4, 0xe7, 0x75, 0xa5, 0x63, 0xc1, 0x8f, 0x71, 0x5f, 0x80, 0x2a, 0x06, 0x3c,
        0x5a, 0x31, 0xb8, 0xa1, 0x1f, 0x5c, 0x5e, 0xe1, 0x87, 0x9e, 0xc3, 0x45, 0x4e, 0x5f,
        0x3c, 0x73, 0x8d, 0x2d, 0x9d, 0x20, 0x13, 0x95, 0xfa, 0xa4, 0xb6, 0x1a, 0x96, 0xc8};
    assert_memory_equal(okm, want, sizeof(want));
    assert_int_equal(ef_hkdf_sha256(ikm, sizeof(ikm), NULL, NULL, okm, 0), EF_EINVAL);
}

static void test_base64url_strict(void **state)
{
    (void)state;
    char *e = ef_base64url_encode("\xfb\xff", 2);
    assert_string_equal(e, "-_8");
    uint8_t out[8];
    size_t n = 0;
    assert_int_equal(ef_base64url_decode(e, strlen(e), out, sizeof(out), &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(out, "\xfb\xff", 2);
    ef_free(e);
    assert_int_equal(ef_base64url_decode("-_8=", 4, out, sizeof(out), &n), EF_EINVAL);
    assert_int_equal(ef_base64url_decode("+/8", 3, out, sizeof(out), &n), EF_EINVAL);
    assert_int_equal(ef_base64url_decode("-_9", 3, out, sizeof(out), &n), EF_EINVAL);
    assert_int_equal(ef_base64url_decode("AAAAAAAAAAAA", 12, out, sizeof(out), &n), EF_ELIMIT);
}

static void test_passwords_argon2id_and_pbkdf2(void **state)
{
    (void)state;
    char *h = NULL;
    assert_int_equal(ef_password_hash("пароль-оператора", &h), 0);
    assert_non_null(strstr(h, "$argon2id$v=19$m="));
    assert_int_equal(ef_password_verify("пароль-оператора", h), 0);
    assert_int_equal(ef_password_verify("пароль-оператор", h), EF_EAUTH);
    assert_false(ef_password_needs_rehash(h));
    /* The same hash with weaker parameters asks for a rehash. */
    char *weak = ef_strdup("$argon2id$v=19$m=8192,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$"
                           "9lfRcZH3Zlm+9r8P1+Cx1bNVTqz2TYPPpqH8oPE+vDc");
    assert_true(ef_password_needs_rehash(weak));
    ef_free(weak);
    ef_free(h);
    /* pbkdf2_sha256, 1000 iterations, made by Python's hashlib. */
    const char *old = "pbkdf2_sha256$1000$MDEyMzQ1Njc4OWFiY2RlZg==$"
                      "K2lNcecyyirtMcRrmsrKITw50FJj2YD0MqcgBz61dPc=";
    assert_int_equal(ef_password_verify("пароль", old), 0);
    assert_int_equal(ef_password_verify("пароль2", old), EF_EAUTH);
    assert_true(ef_password_needs_rehash(old));
    assert_int_equal(ef_password_verify("x", "$argon2i$v=19$m=8,t=1,p=1$AAAA$AAAA"), EF_EAUTH);
    assert_int_equal(ef_password_verify("x", NULL), EF_EAUTH);
    assert_true(ef_password_needs_rehash("plain"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_and_expiry),
        cmocka_unit_test(test_every_byte_flip_refused),
        cmocka_unit_test(test_other_key_and_alg_none_refused),
        cmocka_unit_test(test_hkdf_rfc5869),
        cmocka_unit_test(test_base64url_strict),
        cmocka_unit_test(test_passwords_argon2id_and_pbkdf2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
