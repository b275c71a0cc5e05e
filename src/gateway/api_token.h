/*
 * api_token.h -- the API's access tokens: short-lived, signed, verified
 * without the database.
 *
 * A token is a JWT (RFC 7519) signed with HS256: base64url of the fixed
 * header {"alg":"HS256","typ":"JWT"}, of the claims {"sub": user id,
 * "role": operator|admin, "iat", "exp"} and of the HMAC-SHA256 of the two,
 * joined by dots. The key is derived from EF_SECRET_KEY with HKDF-SHA256
 * under its own label, so it signs nothing else. Verification accepts only
 * that exact header (no algorithm negotiation), compares the MAC in
 * constant time before reading the claims, and refuses expired tokens.
 *
 * Pure (no globals, no I/O); any thread. Nothing here logs.
 */
#ifndef EF_GATEWAY_API_TOKEN_H
#define EF_GATEWAY_API_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#define EF_API_TOKEN_MAX 1024 /* longer bearer values are refused unread */

typedef struct ef_api_claims {
    char sub[40];  /* the user's UUID */
    char role[16]; /* operator | admin */
    int64_t iat;   /* issued, Unix seconds */
    int64_t exp;   /* expires, Unix seconds */
} ef_api_claims;

/* The signing key derived from secret (the 32 bytes of EF_SECRET_KEY)
 * with HKDF-SHA256. 0 or EF_EINVAL. */
int ef_api_token_key(const uint8_t *secret, size_t n, uint8_t key[32]);
/* A signed token for c; *out owned by the caller. EF_EINVAL when a claim
 * does not fit (empty sub or role, a character JSON would escape). */
int ef_api_token_sign(const uint8_t key[32], const ef_api_claims *c, char **out);
/* Checks token (len bytes) at time now (Unix seconds): 0 with *out
 * filled; EF_EAUTH when it is malformed, not ours or altered;
 * EF_ETIMEDOUT when it expired (exp <= now). */
int ef_api_token_verify(const uint8_t key[32], const char *token, size_t len, int64_t now,
                        ef_api_claims *out);

#endif /* EF_GATEWAY_API_TOKEN_H */
