/*
 * fuzz_wa_signature.c -- libFuzzer target for ef_wa_verify_signature()
 * (X-Hub-Signature-256 over the raw body).
 *
 * Input: when a '\n' occurs within the first 160 bytes, the bytes before it
 * are the header value and the rest is the body; otherwise the whole input
 * is the body and the header is absent. (So the wa_webhook corpus -- compact
 * one-line JSON -- seeds it as bodies.)
 *
 * Checked on every input, against an HMAC computed here independently:
 *  - the result is always 0 or EF_EAUTH;
 *  - the given header verifies if and only if it is "sha256=" followed by
 *    exactly the 64 hex digits of the MAC, in any letter case;
 *  - the correct header (lower and upper case) always verifies; the same
 *    header with one digit changed, a one-byte-shorter body, another key,
 *    or no secret never does.
 *
 * Build:
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -DEF_FUZZING \
 *     -Isrc/gateway -Isrc/platforms tests/fuzz/fuzz_wa_signature.c \
 *     <libef.a built with the same sanitizers> $(pkg-config --libs json-c) -lcrypto
 */
#include "platforms/platform.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char SECRET[] = "fuzz-app-secret-0123456789abcdef";

static void mac_hex(const char *key, const char *body, size_t len, bool upper, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    static const unsigned char empty[1] = {0};
    if (!HMAC(EVP_sha256(), key, (int)strlen(key), len ? (const unsigned char *)body : empty, len,
              md, &mdlen) ||
        mdlen != 32)
        abort();
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 7 + 2 * i, 3, upper ? "%02X" : "%02x", md[i]);
}

/* One WhatsApp channel keyed with SECRET, opened once (kept for the
 * process: still reachable, not a leak). */
static const void *channel(void)
{
    static void *cfg;
    if (!cfg) {
        ef_platform_policy policy;
        char err[256];
        char *creds =
            ef_asprintf("{\"app_secret\":\"%s\",\"phone_number_id\":\"106540352242922\"}", SECRET);
        if (ef_platform_whatsapp.open(creds, "{}", &cfg, &policy, err, sizeof(err)) != 0)
            abort();
        ef_free(creds);
    }
    return cfg;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* What the header should give: "sha256=" + the MAC's hex, any case. */
static bool header_matches(const char *hdr, const char *want)
{
    if (strlen(hdr) != 71 || memcmp(hdr, "sha256=", 7) != 0)
        return false;
    for (int i = 7; i < 71; i++)
        if (lower((unsigned char)hdr[i]) != want[i])
            return false;
    return true;
}

static void expect(int rc, int want)
{
    if (rc != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data;
    const char *nl = memchr(in, '\n', size < 160 ? size : 160);
    char *hdr = NULL;
    const char *body = in;
    size_t len = size;
    if (nl) {
        hdr = ef_strndup(in, (size_t)(nl - in)); /* stops at a NUL: a C string header */
        body = nl + 1;
        len = size - (size_t)(nl - in) - 1;
    }
    /* The body as its own allocation, so ASan sees any read past len. */
    char *b = ef_malloc(len ? len : 1);
    memcpy(b, body, len);

    char good[72], upper[72];
    mac_hex(SECRET, b, len, false, good);
    mac_hex(SECRET, b, len, true, upper);

    int rc = ef_wa_verify_signature(SECRET, hdr, b, len);
    if (rc != 0 && rc != EF_EAUTH)
        abort();
    expect(rc, hdr && header_matches(hdr, good) ? 0 : EF_EAUTH);

    expect(ef_wa_verify_signature(SECRET, good, b, len), 0);
    expect(ef_wa_verify_signature(SECRET, upper, b, len), 0);
    /* ...and through the adapter's verify slot, as the gateway calls it */
    ef_http_req rq = {.post = true, .auth = good, .body = b, .len = len};
    expect(ef_platform_verify(&ef_platform_whatsapp, channel(), &rq), 0);
    rq.auth = NULL;
    expect(ef_platform_verify(&ef_platform_whatsapp, channel(), &rq), EF_EAUTH);
    char bad[72];
    memcpy(bad, good, sizeof(bad));
    size_t at = 7 + (len % 64);
    bad[at] = bad[at] == '0' ? '1' : '0';
    expect(ef_wa_verify_signature(SECRET, bad, b, len), EF_EAUTH);
    if (len > 0)
        expect(ef_wa_verify_signature(SECRET, good, b, len - 1), EF_EAUTH);
    expect(ef_wa_verify_signature("another-secret", good, b, len), EF_EAUTH);
    expect(ef_wa_verify_signature("", good, b, len), EF_EAUTH);
    expect(ef_wa_verify_signature(NULL, good, b, len), EF_EAUTH);

    ef_free(b);
    ef_free(hdr);
    return 0;
}
