/*
 * api_token.c -- HS256 access tokens. See api_token.h for the contract.
 */
#include "gateway/api_token.h"

#include "base/crypto.h"
#include "base/ef.h"
#include "base/json.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

#define HKDF_SALT "easyflow"
#define HKDF_INFO "easyflow api access token v1"
#define CLAIMS_MAX 512

/* base64url of {"alg":"HS256","typ":"JWT"}: the only header we sign or accept. */
static const char HEADER[] = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

int ef_api_token_key(const uint8_t *secret, size_t n, uint8_t key[32])
{
    if (!secret || n == 0)
        return EF_EINVAL;
    return ef_hkdf_sha256(secret, n, HKDF_SALT, HKDF_INFO, key, 32);
}

static bool plain_text(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n == 0 || n >= max)
        return false;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
              *p == '-' || *p == '_'))
            return false;
    return true;
}

int ef_api_token_sign(const uint8_t key[32], const ef_api_claims *c, char **out)
{
    if (!plain_text(c->sub, sizeof(c->sub)) || !plain_text(c->role, sizeof(c->role)))
        return EF_EINVAL;
    char claims[CLAIMS_MAX];
    snprintf(claims, sizeof(claims), "{\"sub\":\"%s\",\"role\":\"%s\",\"iat\":%lld,\"exp\":%lld}",
             c->sub, c->role, (long long)c->iat, (long long)c->exp);
    char *body = ef_base64url_encode(claims, strlen(claims));
    char *signing = ef_asprintf("%s.%s", HEADER, body);
    uint8_t mac[32];
    int rc = ef_hmac_sha256(key, 32, signing, strlen(signing), mac);
    if (rc == 0) {
        char *sig = ef_base64url_encode(mac, sizeof(mac));
        *out = ef_asprintf("%s.%s", signing, sig);
        ef_free(sig);
    }
    ef_free(body);
    ef_free(signing);
    return rc;
}

/* The claims JSON -> out; EF_EAUTH when any is missing or mistyped. */
static int read_claims(const char *json, size_t len, ef_api_claims *out)
{
    json_object *o = NULL;
    char err[64];
    if (ef_json_parse(json, len, 2, &o, err, sizeof(err)) != 0)
        return EF_EAUTH;
    const char *sub = NULL, *role = NULL;
    int64_t iat = 0, exp = 0;
    int rc = EF_EAUTH;
    if (ef_pj_str(o, "sub", true, &sub, NULL, NULL, NULL) == 1 &&
        ef_pj_str(o, "role", true, &role, NULL, NULL, NULL) == 1 &&
        ef_pj_int64(o, "iat", true, &iat, NULL, NULL) == 1 &&
        ef_pj_int64(o, "exp", true, &exp, NULL, NULL) == 1 && plain_text(sub, sizeof(out->sub)) &&
        plain_text(role, sizeof(out->role))) {
        snprintf(out->sub, sizeof(out->sub), "%s", sub);
        snprintf(out->role, sizeof(out->role), "%s", role);
        out->iat = iat;
        out->exp = exp;
        rc = 0;
    }
    json_object_put(o);
    return rc;
}

int ef_api_token_verify(const uint8_t key[32], const char *token, size_t len, int64_t now,
                        ef_api_claims *out)
{
    size_t hlen = sizeof(HEADER) - 1;
    if (!token || len > EF_API_TOKEN_MAX || len < hlen + 2 || memcmp(token, HEADER, hlen) != 0 ||
        token[hlen] != '.')
        return EF_EAUTH;
    const char *body = token + hlen + 1;
    const char *dot = memchr(body, '.', len - hlen - 1);
    if (!dot || dot == body)
        return EF_EAUTH;
    const char *sig = dot + 1;
    size_t siglen = len - (size_t)(sig - token);
    uint8_t want[32], got[32];
    size_t n = 0;
    if (ef_base64url_decode(sig, siglen, want, sizeof(want), &n) != 0 || n != sizeof(want))
        return EF_EAUTH;
    if (ef_hmac_sha256(key, 32, token, (size_t)(dot - token), got) != 0 ||
        !ef_secure_equal((const char *)got, sizeof(got), (const char *)want, sizeof(want)))
        return EF_EAUTH;
    uint8_t claims[CLAIMS_MAX];
    if (ef_base64url_decode(body, (size_t)(dot - body), claims, sizeof(claims) - 1, &n) != 0)
        return EF_EAUTH;
    ef_api_claims c;
    memset(&c, 0, sizeof(c));
    if (read_claims((const char *)claims, n, &c) != 0)
        return EF_EAUTH;
    if (c.exp <= now)
        return EF_ETIMEDOUT;
    *out = c;
    return 0;
}
