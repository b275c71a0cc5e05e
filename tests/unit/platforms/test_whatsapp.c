/*
 * test_whatsapp.c -- the WhatsApp Cloud API adapter's inbound half:
 * X-Hub-Signature-256 checking and webhook normalization.
 *
 * Payloads are written the way Meta sends them: compact, non-ASCII escaped
 * as \uXXXX (astral characters as surrogate pairs), '/' escaped as \/. To
 * keep them readable, Q() turns the single quotes of a literal into double
 * quotes (no payload here contains an apostrophe).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <json-c/json.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "platforms/platform.h"

#define PNID "106540352242922"
#define PNID2 "115168804832001"
#define DISPLAY "79001234567"
#define WABA "102290129340398"
#define WABA2 "102290129340777"
#define IVAN "79161234567"
#define WAMID "wamid.HBgLNzkxNjEyMzQ1NjcVAgASGBQzQUE2RTFBNDE2QzU3QjQ2MDBGMAA="
#define SECRET "3c4f1d7e9a2b60e8d5c1f0a9b8e7d6c5"

/* Ivan Petrov in Cyrillic, as Meta escapes it. */
#define IVAN_NAME_ESC "\\u0418\\u0432\\u0430\\u043d \\u041f\\u0435\\u0442\\u0440\\u043e\\u0432"
#define IVAN_CONTACTS "'contacts':[{'profile':{'name':'" IVAN_NAME_ESC "'},'wa_id':'" IVAN "'}]"

/* ---- helpers ------------------------------------------------------------ */

/* A heap copy of s with every ' turned into ". */
static char *Q(const char *s)
{
    char *d = ef_strdup(s);
    for (char *p = d; *p; p++)
        if (*p == '\'')
            *p = '"';
    return d;
}

/* One entry, one "messages" change on PNID, with these value members. */
static char *wa_value(const char *members)
{
    char *v = ef_asprintf("{'object':'whatsapp_business_account','entry':[{'id':'" WABA
                          "','changes':[{'value':{'messaging_product':'whatsapp','metadata':{"
                          "'display_phone_number':'" DISPLAY "','phone_number_id':'" PNID
                          "'},%s},'field':'messages'}]}]}",
                          members);
    char *q = Q(v);
    ef_free(v);
    return q;
}

/* One message from Ivan (with his contacts entry). */
static char *wa_msg(const char *message)
{
    char *members = ef_asprintf(IVAN_CONTACTS ",'messages':[%s]", message);
    char *b = wa_value(members);
    ef_free(members);
    return b;
}

/* Strictly parses body and normalizes it into l (appending). */
static int parse_into(const char *body, ef_msg_list *l, ef_parse_info *info)
{
    struct json_object *root = NULL;
    char err[128];
    int rc = ef_json_parse(body, strlen(body), 64, &root, err, sizeof(err));
    if (rc != 0)
        fail_msg("test payload is not strict JSON: %s\n%s", err, body);
    rc = ef_platform_parse(&ef_platform_whatsapp, root, l, info);
    /* Events must own their strings: the tree goes away first. */
    json_object_put(root);
    return rc;
}

/* Parses a payload that must give exactly one event; takes ownership of
 * body. The caller frees the event with ef_msg_free(). */
static ef_msg *one(char *body)
{
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    int rc = parse_into(body, &l, &info);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, info.note);
    assert_int_equal(l.n, 1);
    ef_msg *m = l.items[0];
    l.n = 0;
    ef_msg_list_cleanup(&l);
    ef_free(body);
    assert_string_equal(m->platform, "whatsapp");
    assert_int_equal(m->update_id, 0);
    assert_null(m->callback_id);
    assert_non_null(m->text);
    assert_int_equal(strlen(m->text), m->text_len);
    return m;
}

/* Value at a dotted path ("errors.0.code") in o, NULL when absent. */
/* A payload whose messages are all refused one by one: accepted (0),
 * nothing stored, `n` refusals counted, the note naming the reason. */
static void refused(char *body, size_t n, const char *note_has)
{
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    int rc = parse_into(body, &l, &info);
    if (rc != 0)
        fail_msg("parse failed (%d): %s", rc, info.note);
    assert_int_equal(l.n, 0);
    assert_int_equal(info.refused, n);
    if (!strstr(info.note, note_has))
        fail_msg("note \"%s\" lacks \"%s\"", info.note, note_has);
    ef_free(body);
}

static struct json_object *jpath(struct json_object *o, const char *path)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s", path);
    char *seg = buf;
    while (seg && o) {
        char *dot = strchr(seg, '.');
        if (dot)
            *dot = '\0';
        if (json_object_is_type(o, json_type_array)) {
            char *end = NULL;
            long i = strtol(seg, &end, 10);
            if (*end || i < 0 || (size_t)i >= json_object_array_length(o))
                return NULL;
            o = json_object_array_get_idx(o, (size_t)i);
        } else if (!json_object_object_get_ex(o, seg, &o)) {
            return NULL;
        }
        seg = dot ? dot + 1 : NULL;
    }
    return o;
}

static struct json_object *meta_of(const ef_msg *m)
{
    struct json_object *o = NULL;
    char err[128];
    assert_non_null(m->meta_json);
    assert_int_equal(ef_json_parse(m->meta_json, strlen(m->meta_json), 64, &o, err, sizeof(err)),
                     0);
    return o;
}

/* meta string at path, or NULL. */
static const char *mstr(struct json_object *meta, const char *path)
{
    struct json_object *v = jpath(meta, path);
    if (!v || !json_object_is_type(v, json_type_string))
        return NULL;
    return json_object_get_string(v);
}

static void assert_meta_str(const ef_msg *m, const char *path, const char *want)
{
    struct json_object *meta = meta_of(m);
    const char *got = mstr(meta, path);
    if (!got || strcmp(got, want) != 0)
        fail_msg("meta.%s = %s, want %s (meta %s)", path, got ? got : "(absent)", want,
                 m->meta_json);
    json_object_put(meta);
}

static void assert_meta_absent(const ef_msg *m, const char *path)
{
    struct json_object *meta = meta_of(m);
    if (jpath(meta, path))
        fail_msg("meta.%s present in %s", path, m->meta_json);
    json_object_put(meta);
}

static int64_t meta_int(const ef_msg *m, const char *path)
{
    struct json_object *meta = meta_of(m);
    struct json_object *v = jpath(meta, path);
    if (!v || !json_object_is_type(v, json_type_int))
        fail_msg("meta.%s is not an integer in %s", path, m->meta_json);
    int64_t r = json_object_get_int64(v);
    json_object_put(meta);
    return r;
}

static bool meta_bool(const ef_msg *m, const char *path)
{
    struct json_object *meta = meta_of(m);
    struct json_object *v = jpath(meta, path);
    if (!v || !json_object_is_type(v, json_type_boolean))
        fail_msg("meta.%s is not a boolean in %s", path, m->meta_json);
    bool r = json_object_get_boolean(v);
    json_object_put(meta);
    return r;
}

static double meta_double(const ef_msg *m, const char *path)
{
    struct json_object *meta = meta_of(m);
    struct json_object *v = jpath(meta, path);
    if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
        fail_msg("meta.%s is not a number in %s", path, m->meta_json);
    double r = json_object_get_double(v);
    json_object_put(meta);
    return r;
}

static size_t meta_len(const ef_msg *m, const char *path)
{
    struct json_object *meta = meta_of(m);
    struct json_object *v = jpath(meta, path);
    if (!v || !json_object_is_type(v, json_type_array))
        fail_msg("meta.%s is not an array in %s", path, m->meta_json);
    size_t r = json_object_array_length(v);
    json_object_put(meta);
    return r;
}

/* "sha256=" + lower-case hex HMAC-SHA256(secret, body[0..len)). */
static void sign(const char *secret, const char *body, size_t len, char out[72])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_non_null(HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)body,
                         len, md, &mdlen));
    assert_int_equal(mdlen, 32);
    memcpy(out, "sha256=", 7);
    for (unsigned i = 0; i < mdlen; i++)
        snprintf(out + 7 + 2 * i, 3, "%02x", md[i]);
}

/* ---- signature ---------------------------------------------------------- */

/* A real-format image message: Cyrillic caption with an emoji, '/' escaped
 * in mime_type, sha256 and url -- exactly the bytes Meta signs. */
static const char SIGNED_BODY[] =
    "{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"" WABA "\",\"changes\":[{"
    "\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":"
    "\"" DISPLAY "\",\"phone_number_id\":\"" PNID
    "\"},\"contacts\":[{\"profile\":{\"name\":\"" IVAN_NAME_ESC "\"},\"wa_id\":\"" IVAN
    "\"}],\"messages\":[{\"from\":\"" IVAN "\",\"id\":\"" WAMID
    "\",\"timestamp\":\"1717430400\",\"type\":\"image\",\"image\":{\"caption\":\"\\u0424\\u043e"
    "\\u0442\\u043e \\u0447\\u0435\\u043a\\u0430 \\ud83d\\udcf8\",\"mime_type\":\"image\\/jpeg\","
    "\"sha256\":\"HCaHabZ6gVq4V\\/SPmMzBTWkoEUI8NgjfVshSveeWM3c=\",\"id\":\"1479537139650973\","
    "\"url\":\"https:\\/\\/lookaside.fbsbx.com\\/whatsapp_business\\/attachments\\/?mid="
    "1479537139650973&ext=1717430700&hash=ATsK\"}}]},\"field\":\"messages\"}]}]}";

static void test_signature_over_raw_escaped_bytes(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    char hdr[72];
    sign(SECRET, SIGNED_BODY, len, hdr);
    assert_non_null(strstr(SIGNED_BODY, "image\\/jpeg"));
    assert_non_null(strstr(SIGNED_BODY, "\\u0418"));
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, SIGNED_BODY, len), 0);

    /* The same payload re-serialized -- what a verifier that parses first
     * would hash -- does not verify, in either of json-c's spellings. */
    struct json_object *root = NULL;
    char err[128];
    assert_int_equal(ef_json_parse(SIGNED_BODY, len, 64, &root, err, sizeof(err)), 0);
    const char *plain = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                 JSON_C_TO_STRING_NOSLASHESCAPE);
    assert_non_null(strstr(plain, "image/jpeg"));
    assert_non_null(strstr(plain, "Фото чека 📸"));
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, plain, strlen(plain)), EF_EAUTH);
    const char *slashes = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN);
    assert_non_null(strstr(slashes, "image\\/jpeg"));
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, slashes, strlen(slashes)), EF_EAUTH);

    /* ...and the unescaped copy does verify against its own signature, so
     * the failure above is about the bytes, not the content. */
    char hdr2[72];
    sign(SECRET, plain, strlen(plain), hdr2);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr2, plain, strlen(plain)), 0);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr2, SIGNED_BODY, len), EF_EAUTH);
    json_object_put(root);

    /* The verify slot checks this signature with the channel's app secret. */
    char creds[256];
    snprintf(creds, sizeof(creds),
             "{\"access_token\":\"EAAG-test\",\"app_secret\":\"%s\",\"phone_number_id\":\"1065\"}",
             SECRET);
    void *cfg = NULL;
    ef_platform_policy pol;
    char why[200];
    assert_int_equal(ef_platform_whatsapp.open(creds, NULL, &cfg, &pol, why, sizeof(why)), 0);
    ef_http_req rq = {.post = true, .auth = hdr, .body = SIGNED_BODY, .len = len};
    assert_int_equal(ef_platform_verify(&ef_platform_whatsapp, cfg, &rq), 0);
    rq.auth = hdr2;
    assert_int_equal(ef_platform_verify(&ef_platform_whatsapp, cfg, &rq), EF_EAUTH);
    rq.auth = NULL;
    assert_int_equal(ef_platform_verify(&ef_platform_whatsapp, cfg, &rq), EF_EAUTH);
    ef_platform_whatsapp.close(cfg);
}

static void test_signature_tampering(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    char hdr[72];
    sign(SECRET, SIGNED_BODY, len, hdr);

    /* one byte of the body changed */
    char *copy = ef_strdup(SIGNED_BODY);
    char *at = strstr(copy, "1717430400");
    at[9] = '1';
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, copy, len), EF_EAUTH);
    ef_free(copy);
    /* a prefix of the body, and the body plus a trailing newline */
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, SIGNED_BODY, len - 1), EF_EAUTH);
    char *nl = ef_asprintf("%s\n", SIGNED_BODY);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, nl, len + 1), EF_EAUTH);
    ef_free(nl);
    /* one hex digit of the signature changed */
    char bad[72];
    memcpy(bad, hdr, sizeof(bad));
    bad[40] = bad[40] == '0' ? '1' : '0';
    assert_int_equal(ef_wa_verify_signature(SECRET, bad, SIGNED_BODY, len), EF_EAUTH);
}

static void test_signature_wrong_secret(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    char hdr[72];
    sign(SECRET, SIGNED_BODY, len, hdr);
    assert_int_equal(ef_wa_verify_signature("another-app-secret", hdr, SIGNED_BODY, len), EF_EAUTH);
    /* a secret that differs in its last byte only */
    char near[] = SECRET;
    near[sizeof(near) - 2] ^= 1;
    assert_int_equal(ef_wa_verify_signature(near, hdr, SIGNED_BODY, len), EF_EAUTH);
    /* no secret configured: nothing verifies, not even an HMAC keyed with "" */
    char empty_key[72];
    sign("", SIGNED_BODY, len, empty_key);
    assert_int_equal(ef_wa_verify_signature("", empty_key, SIGNED_BODY, len), EF_EAUTH);
    assert_int_equal(ef_wa_verify_signature(NULL, hdr, SIGNED_BODY, len), EF_EAUTH);
}

static void test_signature_missing_header(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    assert_int_equal(ef_wa_verify_signature(SECRET, NULL, SIGNED_BODY, len), EF_EAUTH);
    assert_int_equal(ef_wa_verify_signature(SECRET, "", SIGNED_BODY, len), EF_EAUTH);
    /* a missing body with a length is refused, an empty one is signable */
    char hdr[72];
    sign(SECRET, "", 0, hdr);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, NULL, 5), EF_EAUTH);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, NULL, 0), 0);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, "", 0), 0);
}

static void test_signature_malformed_header(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    char hdr[72];
    sign(SECRET, SIGNED_BODY, len, hdr);
    const char *hex = hdr + 7;
    char buf[8][160];
    snprintf(buf[0], sizeof(buf[0]), "%s", hex);                /* no prefix */
    snprintf(buf[1], sizeof(buf[1]), "sha1=%s", hex);           /* X-Hub-Signature style */
    snprintf(buf[2], sizeof(buf[2]), "SHA256=%s", hex);         /* the prefix is lower case */
    snprintf(buf[3], sizeof(buf[3]), " sha256=%s", hex);        /* leading space */
    snprintf(buf[4], sizeof(buf[4]), "sha256=%s ", hex);        /* trailing space */
    snprintf(buf[5], sizeof(buf[5]), "sha256=%s0", hex);        /* 65 digits */
    snprintf(buf[6], sizeof(buf[6]), "sha256=%.63s", hex);      /* 63 digits */
    snprintf(buf[7], sizeof(buf[7]), "sha256=%s,%s", hex, hdr); /* two values */
    for (size_t i = 0; i < sizeof(buf) / sizeof(buf[0]); i++) {
        if (ef_wa_verify_signature(SECRET, buf[i], SIGNED_BODY, len) != EF_EAUTH)
            fail_msg("accepted malformed header \"%s\"", buf[i]);
    }
    /* a non-hex digit where a valid one would verify */
    char g[72];
    memcpy(g, hdr, sizeof(g));
    g[7 + 10] = 'g';
    assert_int_equal(ef_wa_verify_signature(SECRET, g, SIGNED_BODY, len), EF_EAUTH);
    /* "0x" in place of the first two digits */
    memcpy(g, hdr, sizeof(g));
    g[7] = '0';
    g[8] = 'x';
    assert_int_equal(ef_wa_verify_signature(SECRET, g, SIGNED_BODY, len), EF_EAUTH);
    assert_int_equal(ef_wa_verify_signature(SECRET, "sha256=", SIGNED_BODY, len), EF_EAUTH);
}

static void test_signature_uppercase_hex(void **state)
{
    (void)state;
    size_t len = sizeof(SIGNED_BODY) - 1;
    char hdr[72], up[72];
    sign(SECRET, SIGNED_BODY, len, hdr);
    memcpy(up, hdr, sizeof(up));
    bool changed = false;
    for (int i = 7; up[i]; i++) {
        if (up[i] >= 'a' && up[i] <= 'f') {
            up[i] = (char)(up[i] - 'a' + 'A');
            changed = true;
        }
    }
    assert_true(changed);
    assert_int_equal(ef_wa_verify_signature(SECRET, up, SIGNED_BODY, len), 0);
    /* mixed case too */
    for (int i = 7; up[i]; i += 2)
        up[i] = hdr[i];
    assert_int_equal(ef_wa_verify_signature(SECRET, up, SIGNED_BODY, len), 0);
}

static void test_signature_binary_body(void **state)
{
    (void)state;
    /* The MAC covers len bytes, NULs included: never a C string. */
    const char body[] = "{\"a\":1}\0tail";
    size_t len = sizeof(body) - 1;
    char hdr[72];
    sign(SECRET, body, len, hdr);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, body, len), 0);
    assert_int_equal(ef_wa_verify_signature(SECRET, hdr, body, strlen(body)), EF_EAUTH);
}

/* ---- the adapter -------------------------------------------------------- */

static void test_ops(void **state)
{
    (void)state;
    const ef_platform_ops *p = &ef_platform_whatsapp;
    char err[128];
    assert_int_equal(ef_platform_check(p, err, sizeof(err)), 0);
    assert_ptr_equal(ef_platform_find("whatsapp"), p);
    assert_string_equal(p->name, "whatsapp");
    assert_string_equal(p->webhook_path, "/webhook/whatsapp");
    assert_true(p->supports & EF_PLAT_WEBHOOK);
    assert_true(p->supports & EF_PLAT_SIGNED);
    assert_true(p->supports & EF_PLAT_BUTTONS);
    assert_true(p->supports & EF_PLAT_TYPING);
    assert_false(p->supports & EF_PLAT_POLL);
    assert_string_equal(p->auth_header, "x-hub-signature-256");
    assert_true(p->verify_needs_body);
    assert_true(p->policy.route_by_key);
}

static void test_text_russian(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID
                           "','timestamp':'1717430400','text':{'body':'\\u041f\\u0440\\u0438\\u0432"
                           "\\u0435\\u0442! \\u0413\\u0434\\u0435 \\u043c\\u043e\\u0439 \\u0437"
                           "\\u0430\\u043a\\u0430\\u0437? \\ud83d\\udc4b'},'type':'text'}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->text, "Привет! Где мой заказ? 👋");
    assert_int_equal(m->text_len, strlen("Привет! Где мой заказ? 👋"));
    assert_string_equal(m->content_type, "text");
    assert_string_equal(m->message_id, WAMID);
    assert_string_equal(m->sender_id, IVAN);
    assert_string_equal(m->sender_name, "Иван Петров");
    assert_null(m->sender_username);
    assert_string_equal(m->chat_id, IVAN "@" PNID);
    assert_string_equal(m->chat_type, "private");
    assert_string_equal(m->channel_id, PNID);
    assert_int_equal(m->date, 1717430400);
    assert_null(m->target_id);
    assert_null(m->status);
    assert_meta_str(m, "phone_number_id", PNID);
    assert_meta_str(m, "display_phone_number", DISPLAY);
    assert_meta_str(m, "waba_id", WABA);
    assert_meta_str(m, "contact.wa_id", IVAN);
    assert_meta_str(m, "contact.name", "Иван Петров");
    assert_meta_absent(m, "reply_to");
    ef_msg_free(m);
}

static void test_reply_forward_referral(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'context':{'from':'" DISPLAY
                           "','id':'wamid.OUTBOUND1=='},'from':'" IVAN "','id':'" WAMID
                           "','timestamp':'1717430401','text':{'body':'ok'},'type':'text'}"));
    assert_meta_str(m, "reply_to.platform_message_id", "wamid.OUTBOUND1==");
    assert_meta_str(m, "context.id", "wamid.OUTBOUND1==");
    assert_meta_str(m, "context.from", DISPLAY);
    ef_msg_free(m);

    m = one(wa_msg("{'context':{'frequently_forwarded':true},'from':'" IVAN "','id':'" WAMID
                   "','timestamp':'1717430402','text':{'body':'fw'},'type':'text'}"));
    assert_true(meta_bool(m, "context.frequently_forwarded"));
    assert_meta_absent(m, "reply_to");
    ef_msg_free(m);

    m = one(wa_msg("{'context':{'from':'" DISPLAY "','id':'wamid.PROD','referred_product':{"
                   "'catalog_id':'354160437058781','product_retailer_id':'SKU-1'}},'referral':{"
                   "'source_url':'https:\\/\\/fb.me\\/2Xx','source_id':'120201','source_type':'ad',"
                   "'headline':'\\u0421\\u043a\\u0438\\u0434\\u043a\\u0430','ctwa_clid':'ARAk'},"
                   "'from':'" IVAN "','id':'" WAMID
                   "','timestamp':'1717430403','text':{'body':'?'},'type':'text'}"));
    assert_meta_str(m, "context.referred_product.product_retailer_id", "SKU-1");
    assert_meta_str(m, "referral.source_url", "https://fb.me/2Xx");
    assert_meta_str(m, "referral.headline", "Скидка");
    assert_meta_str(m, "referral.ctwa_clid", "ARAk");
    ef_msg_free(m);
}

static void test_media(void **state)
{
    (void)state;
    /* image with a caption; escaped slashes decoded */
    ef_msg *m = one(wa_msg(
        "{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'image','image':{"
        "'caption':'\\u0424\\u043e\\u0442\\u043e','mime_type':'image\\/jpeg','sha256':'HCaHab"
        "\\/SPm=','id':'1479537139650973','url':'https:\\/\\/lookaside.fbsbx.com\\/a?mid=1'}}"));
    assert_string_equal(m->content_type, "image");
    assert_string_equal(m->text, "Фото");
    assert_meta_str(m, "media.type", "image");
    assert_meta_str(m, "media.id", "1479537139650973");
    assert_meta_str(m, "media.mime_type", "image/jpeg");
    assert_meta_str(m, "media.sha256", "HCaHab/SPm=");
    assert_meta_str(m, "media.url", "https://lookaside.fbsbx.com/a?mid=1");
    ef_msg_free(m);

    /* video without caption */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'video',"
                   "'video':{'mime_type':'video\\/mp4','sha256':'Jh+2ij=','id':'765756756'}}"));
    assert_string_equal(m->content_type, "video");
    assert_string_equal(m->text, "");
    assert_meta_str(m, "media.mime_type", "video/mp4");
    ef_msg_free(m);

    /* document: file name and caption */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':"
                   "'document','document':{'caption':'\\u0421\\u0447\\u0451\\u0442','filename':"
                   "'\\u0441\\u0447\\u0451\\u0442-42.pdf','mime_type':'application\\/pdf',"
                   "'sha256':'grwf=','id':'1234567890'}}"));
    assert_string_equal(m->text, "Счёт");
    assert_meta_str(m, "media.filename", "счёт-42.pdf");
    assert_meta_str(m, "media.mime_type", "application/pdf");
    ef_msg_free(m);

    /* voice note, and a plain audio file */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'audio',"
                   "'audio':{'mime_type':'audio\\/ogg; codecs=opus','sha256':'m04p=','id':'55',"
                   "'voice':true}}"));
    assert_string_equal(m->content_type, "audio");
    assert_string_equal(m->text, "");
    assert_true(meta_bool(m, "media.voice"));
    assert_meta_str(m, "media.mime_type", "audio/ogg; codecs=opus");
    ef_msg_free(m);
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'audio',"
                   "'audio':{'mime_type':'audio\\/mpeg','sha256':'x=','id':'56','voice':false}}"));
    assert_false(meta_bool(m, "media.voice"));
    ef_msg_free(m);

    /* animated sticker */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'sticker',"
                   "'sticker':{'mime_type':'image\\/webp','sha256':'Hcwy=','id':'77',"
                   "'animated':true}}"));
    assert_string_equal(m->content_type, "sticker");
    assert_string_equal(m->text, "");
    assert_true(meta_bool(m, "media.animated"));
    assert_meta_str(m, "media.id", "77");
    ef_msg_free(m);
}

static void test_location(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg(
        "{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','location':{'latitude':"
        "55.7539303,'longitude':37.620795,'name':'"
        "\\u041a\\u0440\\u0430\\u0441\\u043d\\u0430\\u044f "
        "\\u043f\\u043b\\u043e\\u0449\\u0430\\u0434\\u044c','address':'\\u041c\\u043e\\u0441\\u043a"
        "\\u0432\\u0430','url':'https:\\/\\/maps.example\\/x'},'type':'location'}"));
    assert_string_equal(m->content_type, "location");
    assert_string_equal(m->text, "Красная площадь, Москва");
    assert_true(meta_double(m, "location.latitude") > 55.75392 &&
                meta_double(m, "location.latitude") < 55.75394);
    assert_true(meta_double(m, "location.longitude") > 37.6207 &&
                meta_double(m, "location.longitude") < 37.6209);
    assert_meta_str(m, "location.name", "Красная площадь");
    assert_meta_str(m, "location.address", "Москва");
    assert_meta_str(m, "location.url", "https://maps.example/x");
    /* the coordinates keep their source text */
    assert_non_null(strstr(m->meta_json, "55.7539303"));
    ef_msg_free(m);

    /* a current location: no name or address */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','location':{"
                   "'latitude':12.25089,'longitude':-43.90539},'type':'location'}"));
    assert_string_equal(m->text, "");
    assert_true(meta_double(m, "location.longitude") < -43.9);
    ef_msg_free(m);
}

static void test_contacts_message(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg(
        "{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':'contacts','contacts':"
        "[{'name':{'first_name':'\\u041e\\u043b\\u044c\\u0433\\u0430','formatted_name':'\\u041e"
        "\\u043b\\u044c\\u0433\\u0430 \\u0421.'},'phones':[{'phone':'+7 916 000-00-01','wa_id':"
        "'79160000001','type':'CELL'}]},{'name':{'formatted_name':'Monica'},'phones':[{'phone':"
        "'+1 666-666-6666','type':'HOME'}]},{'phones':[{'phone':'+1 777'}]}]}"));
    assert_string_equal(m->content_type, "contacts");
    assert_string_equal(m->text, "Ольга С., Monica");
    assert_int_equal(meta_len(m, "contacts"), 3);
    assert_meta_str(m, "contacts.0.phones.0.wa_id", "79160000001");
    /* value.contacts (the sender) is a different thing from the cards */
    assert_meta_str(m, "contact.wa_id", IVAN);
    ef_msg_free(m);
}

static void test_interactive(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'context':{'from':'" DISPLAY "','id':'wamid.MENU'},'from':'" IVAN
                           "','id':'" WAMID "','timestamp':'1717430400','type':'interactive',"
                           "'interactive':{'type':'button_reply','button_reply':{'id':'order:42',"
                           "'title':'\\u0414\\u0430'}}}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "interactive");
    assert_string_equal(m->text, "Да");
    assert_null(m->callback_id);
    assert_meta_str(m, "interactive.type", "button_reply");
    assert_meta_str(m, "interactive.id", "order:42");
    assert_meta_str(m, "interactive.title", "Да");
    assert_meta_str(m, "payload", "order:42");
    assert_meta_str(m, "reply_to.platform_message_id", "wamid.MENU");
    ef_msg_free(m);

    m = one(
        wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':"
               "'interactive','interactive':{'type':'list_reply','list_reply':{'id':'size_m',"
               "'title':'M','description':'\\u0421\\u0440\\u0435\\u0434\\u043d\\u0438\\u0439'}}}"));
    assert_string_equal(m->text, "M");
    assert_meta_str(m, "interactive.type", "list_reply");
    assert_meta_str(m, "interactive.id", "size_m");
    assert_meta_str(m, "interactive.description", "Средний");
    assert_meta_str(m, "payload", "size_m");
    ef_msg_free(m);

    m = one(
        wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1717430400','type':"
               "'interactive','interactive':{'type':'nfm_reply','nfm_reply':{'response_json':"
               "'{\\\"flow_token\\\":\\\"t1\\\",\\\"rating\\\":\\\"5\\\"}','body':'Sent','name':"
               "'flow'}}}"));
    assert_string_equal(m->text, "Sent");
    assert_meta_str(m, "interactive.type", "nfm_reply");
    assert_meta_str(m, "interactive.response_json", "{\"flow_token\":\"t1\",\"rating\":\"5\"}");
    ef_msg_free(m);
}

static void test_interactive_without_object(void **state)
{
    (void)state;
    /* Meta's "Unsupported webhook payload": no interactive object, the
     * error in value.errors. This message is refused (not stored, noted),
     * the webhook still accepted. */
    char *b = wa_value(IVAN_CONTACTS ",'messages':[{'context':{'from':'" DISPLAY "','id':"
                                     "'wamid.gvwe=='},'from':'" IVAN "','id':'" WAMID
                                     "','timestamp':'1700505494','type':'interactive'}],'errors':[{"
                                     "'code':131000,'title':'Something went wrong','message':"
                                     "'Something went wrong','error_data':{'details':'Unsupported "
                                     "webhook payload'}}]");
    refused(b, 1, "messages[0]: type interactive without its interactive object, not stored");
}

static void test_button_order(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'context':{'from':'" DISPLAY "','id':'wamid.TPL'},'from':'" IVAN
                           "','id':'" WAMID "','timestamp':'1717430400','type':'button','button':{"
                           "'payload':'STOP_PROMO','text':'\\u041e\\u0442\\u043f\\u0438\\u0441"
                           "\\u0430\\u0442\\u044c\\u0441\\u044f'}}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "button");
    assert_string_equal(m->text, "Отписаться");
    assert_null(m->callback_id);
    assert_meta_str(m, "payload", "STOP_PROMO");
    assert_meta_str(m, "button.payload", "STOP_PROMO");
    assert_meta_str(m, "button.text", "Отписаться");
    assert_meta_str(m, "reply_to.platform_message_id", "wamid.TPL");
    ef_msg_free(m);

    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1697044668','type':'order',"
                   "'order':{'catalog_id':'354160437058781','text':'\\u0411\\u044b\\u0441\\u0442"
                   "\\u0440\\u0435\\u0435','product_items':[{'product_retailer_id':'PIZZA',"
                   "'quantity':3,'item_price':30.5,'currency':'RUB'},{'product_retailer_id':'SODA',"
                   "'quantity':2,'item_price':10,'currency':'RUB'}]}}"));
    assert_string_equal(m->content_type, "order");
    assert_string_equal(m->text, "Быстрее");
    assert_meta_str(m, "order.catalog_id", "354160437058781");
    assert_int_equal(meta_len(m, "order.product_items"), 2);
    assert_int_equal(meta_int(m, "order.product_items.0.quantity"), 3);
    ef_msg_free(m);

    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1697044668','type':'order',"
                   "'order':{'catalog_id':'1','product_items':[]}}"));
    assert_string_equal(m->text, "");
    ef_msg_free(m);
}

static void test_unsupported_and_unknown(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1697044706','errors':"
                           "[{'code':131051,'title':'Message type unknown','message':'Message "
                           "type unknown','error_data':{'details':'Message type is currently not "
                           "supported.'}}],'type':'unsupported','unsupported':{'type':'poll'}}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "unsupported");
    assert_string_equal(m->text, "");
    assert_int_equal(meta_int(m, "errors.0.code"), 131051);
    assert_meta_str(m, "errors.0.title", "Message type unknown");
    assert_meta_str(m, "raw.unsupported.type", "poll");
    assert_string_equal(m->sender_name, "Иван Петров");
    ef_msg_free(m);

    /* a type from the future: stored by its name, its object kept */
    m = one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1797044706','type':"
                   "'hologram','hologram':{'id':'h1','depth':3}}"));
    assert_string_equal(m->content_type, "hologram");
    assert_string_equal(m->text, "");
    assert_meta_str(m, "raw.hologram.id", "h1");
    assert_meta_str(m, "raw.type", "hologram");
    ef_msg_free(m);

    /* a known type whose object is missing: refused (see
     * test_missing_object_refused_per_message) */
    refused(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1797044706','type':'image'}"),
            1, "type image without its image object");
}

/* A message whose type names an object that is missing is refused by
 * itself: the other messages of the same webhook are stored. */
static void test_missing_object_refused_per_message(void **state)
{
    (void)state;
    char *b =
        wa_value(IVAN_CONTACTS ",'messages':[{'from':'" IVAN "','id':'wamid.A','timestamp':"
                               "'1','type':'text','text':{'body':'one'}},{'from':'" IVAN
                               "','id':'wamid.B','timestamp':'2','type':'text'},{'from':'" IVAN
                               "','id':'wamid.C','timestamp':'3','type':'text','text':null},"
                               "{'from':'" IVAN "','id':'wamid.D','timestamp':'4','type':"
                               "'text','text':{'body':'four'}}]");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0]->message_id, "wamid.A");
    assert_string_equal(l.items[1]->message_id, "wamid.D");
    assert_string_equal(l.items[1]->text, "four");
    assert_int_equal(info.refused, 2);
    assert_non_null(strstr(info.note, "messages[1]: type text without its text object"));
    assert_non_null(strstr(info.note, "messages[2]: type text without its text object"));
    ef_msg_list_cleanup(&l);
    ef_free(b);

    static const char *const types[] = {
        "image",       "video",  "audio", "document", "sticker",  "location", "contacts",
        "interactive", "button", "order", "revoke",   "reaction", "edit",     "system"};
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        char *msg = ef_asprintf("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1','type':'%s'}",
                                types[i]);
        char *want = ef_asprintf("type %s without its %s object", types[i], types[i]);
        refused(wa_msg(msg), 1, want);
        ef_free(msg);
        ef_free(want);
    }
    /* inside: an interactive reply, an edit's new version */
    refused(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1','type':'interactive',"
                   "'interactive':{'type':'button_reply'}}"),
            1, "messages[0].interactive: type button_reply without its button_reply object");
    refused(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1','type':'interactive',"
                   "'interactive':{'type':'nfm_reply'}}"),
            1, "type nfm_reply without its nfm_reply object");
    refused(wa_msg("{'from':'" IVAN "','id':'wamid.E','timestamp':'1','type':'edit','edit':{"
                   "'original_message_id':'" WAMID "','message':{'type':'text'}}}"),
            1, "messages[0].edit.message: type text without its text object");
    refused(wa_msg("{'from':'" IVAN "','id':'wamid.E','timestamp':'1','type':'edit','edit':{"
                   "'original_message_id':'" WAMID "'}}"),
            1, "messages[0].edit: no message type");
    /* structural faults still refuse the whole payload */
    b = wa_msg("{'id':'" WAMID "','timestamp':'1','type':'text'}");
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), EF_EPROTO);
    assert_int_equal(l.n, 0);
    ef_free(b);
    /* a type from the future names no known object: still stored raw */
    ef_msg *m =
        one(wa_msg("{'from':'" IVAN "','id':'" WAMID "','timestamp':'1','type':'hologram'}"));
    assert_string_equal(m->content_type, "hologram");
    ef_msg_free(m);
}

static void test_reaction(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','id':'wamid.REACT1','timestamp':'1697044456','type':"
                           "'reaction','reaction':{'message_id':'wamid.OURS=','emoji':"
                           "'\\ud83d\\udc4d'}}"));
    assert_int_equal(m->kind, EF_MSG_REACTION);
    assert_string_equal(m->target_id, "wamid.OURS=");
    assert_string_equal(m->status, "[\"👍\"]");
    assert_string_equal(m->message_id, "wamid.REACT1");
    assert_string_equal(m->sender_id, IVAN);
    assert_string_equal(m->chat_id, IVAN "@" PNID);
    assert_string_equal(m->content_type, "reaction");
    assert_string_equal(m->text, "");
    assert_meta_str(m, "reaction.emoji", "👍");
    ef_msg_free(m);

    /* removal: empty emoji, or none at all */
    m = one(wa_msg("{'from':'" IVAN "','id':'wamid.REACT2','timestamp':'1697044457','type':"
                   "'reaction','reaction':{'message_id':'wamid.OURS=','emoji':''}}"));
    assert_int_equal(m->kind, EF_MSG_REACTION);
    assert_string_equal(m->status, "[]");
    assert_string_equal(m->target_id, "wamid.OURS=");
    ef_msg_free(m);
    m = one(wa_msg("{'from':'" IVAN "','id':'wamid.REACT3','timestamp':'1697044458','type':"
                   "'reaction','reaction':{'message_id':'wamid.OURS='}}"));
    assert_string_equal(m->status, "[]");
    ef_msg_free(m);
}

static void test_system_identity(void **state)
{
    (void)state;
    /* user_changed_number: no contacts array, new number in system.wa_id */
    ef_msg *m = one(wa_value("'messages':[{'from':'" IVAN "','id':'wamid.SYS1','timestamp':"
                             "'1753851315','system':{'body':'User A changed from " IVAN
                             " to 79169999999','wa_id':'79169999999','type':"
                             "'user_changed_number'},'type':'system'}]"));
    assert_int_equal(m->kind, EF_MSG_IDENTITY);
    assert_string_equal(m->sender_id, IVAN);
    assert_string_equal(m->target_id, "79169999999");
    assert_string_equal(m->chat_id, IVAN "@" PNID);
    assert_string_equal(m->sender_name, IVAN);
    assert_string_equal(m->content_type, "system");
    assert_string_equal(m->text, "User A changed from " IVAN " to 79169999999");
    assert_meta_str(m, "system.type", "user_changed_number");
    ef_msg_free(m);

    /* the legacy spelling */
    m = one(wa_value("'messages':[{'from':'" IVAN "','id':'wamid.SYS2','timestamp':'1653851315',"
                     "'system':{'body':'changed','new_wa_id':'79168888888','type':"
                     "'customer_changed_number'},'type':'system'}]"));
    assert_int_equal(m->kind, EF_MSG_IDENTITY);
    assert_string_equal(m->sender_id, IVAN);
    assert_string_equal(m->target_id, "79168888888");
    assert_meta_str(m, "system.new_wa_id", "79168888888");
    ef_msg_free(m);

    /* a BSUID change arrives without `from`: old id = previous_user_id */
    m = one(wa_value("'messages':[{'id':'wamid.SYS3','timestamp':'1753851315','system':{'body':"
                     "'User changed from CO.1234567890 to MX.0987654321','user_id':"
                     "'MX.0987654321','previous_user_id':'CO.1234567890','type':"
                     "'user_changed_user_id'},'type':'system'}]"));
    assert_int_equal(m->kind, EF_MSG_IDENTITY);
    assert_string_equal(m->sender_id, "CO.1234567890");
    assert_string_equal(m->target_id, "MX.0987654321");
    assert_string_equal(m->chat_id, "CO.1234567890@" PNID);
    ef_msg_free(m);

    /* another system notice: a placeholder with its body */
    m = one(wa_msg("{'from':'" IVAN "','id':'wamid.SYS4','timestamp':'1697044706','identity':{"
                   "'acknowledged':true,'created_timestamp':'1697044706','hash':'xyz'},'system':{"
                   "'body':'User identity changed','type':'customer_identity_changed'},'type':"
                   "'system'}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "system");
    assert_string_equal(m->text, "User identity changed");
    assert_null(m->target_id);
    assert_meta_str(m, "identity.hash", "xyz");
    ef_msg_free(m);
}

static void test_edit_and_revoke(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','id':'wamid.EDIT1','timestamp':'1697044968','type':"
                           "'edit','edit':{'original_message_id':'" WAMID "','message':{'type':"
                           "'text','text':{'body':'\\u0418\\u0441\\u043f\\u0440\\u0430\\u0432"
                           "\\u043b\\u0435\\u043d\\u043e'}}}}"));
    assert_int_equal(m->kind, EF_MSG_EDIT);
    assert_string_equal(m->target_id, WAMID);
    assert_string_equal(m->message_id, "wamid.EDIT1");
    assert_string_equal(m->text, "Исправлено");
    assert_string_equal(m->content_type, "text");
    assert_int_equal(m->date, 1697044968);
    assert_string_equal(m->chat_id, IVAN "@" PNID);
    assert_meta_str(m, "edit.original_message_id", WAMID);
    ef_msg_free(m);

    /* a new caption on an image */
    m = one(wa_msg("{'from':'" IVAN "','id':'wamid.EDIT2','timestamp':'1697044969','type':'edit',"
                   "'edit':{'original_message_id':'wamid.IMG','message':{'type':'image','image':{"
                   "'caption':'new caption','mime_type':'image\\/jpeg','sha256':'4654+8g=','id':"
                   "'65463453'}}}}"));
    assert_int_equal(m->kind, EF_MSG_EDIT);
    assert_string_equal(m->text, "new caption");
    assert_string_equal(m->content_type, "image");
    assert_meta_str(m, "media.id", "65463453");
    ef_msg_free(m);

    m = one(wa_msg("{'from':'" IVAN "','id':'wamid.REVOKE1','timestamp':'1697043223','type':"
                   "'revoke','revoke':{'original_message_id':'" WAMID "'}}"));
    assert_int_equal(m->kind, EF_MSG_NEW);
    assert_string_equal(m->content_type, "revoke");
    assert_string_equal(m->text, "");
    assert_string_equal(m->message_id, "wamid.REVOKE1");
    assert_meta_str(m, "original_message_id", WAMID);
    ef_msg_free(m);
}

static void test_bsuid_customers(void **state)
{
    (void)state;
    /* Two username-only customers (empty wa_id and from): each keyed on its
     * own BSUID, never merged; a third has both ids and keeps the phone. */
    char *b = wa_value(
        "'contacts':[{'profile':{'name':'\\u0410\\u043d\\u043d\\u0430','username':'anna.k'},"
        "'wa_id':'','user_id':'US.13491208655302741918','country_code':'US'},{'profile':{"
        "'name':''},'wa_id':'','user_id':'US.99991208655302741000'},{'profile':{'name':'Krish'},"
        "'wa_id':'919810218674','user_id':'IN.1410018717833190','country_code':'IN'}],"
        "'messages':[{'from':'','from_user_id':'US.13491208655302741918','id':'wamid.B1',"
        "'timestamp':'1779372805','text':{'body':'a'},'type':'text'},{'from':'','from_user_id':"
        "'US.99991208655302741000','id':'wamid.B2','timestamp':'1779372806','text':{'body':'b'},"
        "'type':'text'},{'from':'919810218674','from_user_id':'IN.1410018717833190','id':"
        "'wamid.B3','timestamp':'1779372807','text':{'body':'c'},'from_logical_id':'95000398',"
        "'type':'text'}]");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    ef_free(b);
    assert_int_equal(l.n, 3);
    ef_msg *a = l.items[0], *bb = l.items[1], *k = l.items[2];
    assert_string_equal(a->sender_id, "US.13491208655302741918");
    assert_string_equal(a->chat_id, "US.13491208655302741918@" PNID);
    assert_string_equal(a->sender_name, "Анна");
    assert_string_equal(a->sender_username, "anna.k");
    assert_meta_str(a, "from_user_id", "US.13491208655302741918");
    assert_meta_str(a, "contact.country_code", "US");
    assert_string_equal(bb->sender_id, "US.99991208655302741000");
    assert_string_equal(bb->chat_id, "US.99991208655302741000@" PNID);
    assert_string_equal(bb->sender_name, "US.99991208655302741000"); /* empty profile name */
    assert_null(bb->sender_username);
    assert_string_not_equal(a->chat_id, bb->chat_id);
    assert_string_equal(k->sender_id, "919810218674");
    assert_string_equal(k->sender_name, "Krish");
    assert_meta_str(k, "contact.user_id", "IN.1410018717833190");
    ef_msg_list_cleanup(&l);
}

static void test_group_message(void **state)
{
    (void)state;
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','group_id':'120363025246125486','id':'" WAMID
                           "','timestamp':'1717430400','text':{'body':'@all hi'},'type':'text'}"));
    assert_string_equal(m->chat_type, "group");
    assert_string_equal(m->chat_id, "120363025246125486@" PNID);
    assert_string_equal(m->sender_id, IVAN);
    assert_string_equal(m->sender_name, "Иван Петров");
    assert_meta_str(m, "group_id", "120363025246125486");
    ef_msg_free(m);

    /* Two members in one value: each message gets its own sender's name. */
    char *body = wa_value(
        "'contacts':[{'profile':{'name':'" IVAN_NAME_ESC "'},'wa_id':'" IVAN "'},{'profile':{"
        "'name':'\\u041e\\u043b\\u044c\\u0433\\u0430'},'wa_id':'79160000001'}],'messages':[{"
        "'from':'79160000001','group_id':'120363025246125486','id':'wamid.G1','timestamp':"
        "'1717430400','text':{'body':'first'},'type':'text'},{'from':'" IVAN "','group_id':"
        "'120363025246125486','id':'wamid.G2','timestamp':'1717430401','text':{'body':'second'},"
        "'type':'text'}]");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(body, &l, &info), 0);
    ef_free(body);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.items[0]->sender_id, "79160000001");
    assert_string_equal(l.items[0]->sender_name, "Ольга");
    assert_string_equal(l.items[1]->sender_id, IVAN);
    assert_string_equal(l.items[1]->sender_name, "Иван Петров");
    assert_string_equal(l.items[0]->chat_id, l.items[1]->chat_id);
    ef_msg_list_cleanup(&l);
}

static void test_statuses(void **state)
{
    (void)state;
    char *b = wa_value(
        "'statuses':[{'id':'wamid.OUT1','status':'sent','timestamp':'1698266945','recipient_id':"
        "'" IVAN
        "','conversation':{'id':'7270432eae','expiration_timestamp':'1698339900','origin':{'type':"
        "'service'}},'pricing':{'billable':true,'pricing_model':'CBP','category':'service'}},{'id':"
        "'wamid.OUT1','status':'read','timestamp':'1698266950','recipient_id':'" IVAN
        "','pricing':{"
        "'billable':false,'pricing_model':'PMP','category':'service','type':"
        "'free_customer_service'},'biz_opaque_callback_data':'row:17'},{'id':'wamid.OUT2',"
        "'status':'failed','timestamp':'1689380458','recipient_id':'" IVAN "','errors':[{'code':"
        "131047,'title':'Re-engagement message','message':'Re-engagement message','error_data':{"
        "'details':'Message failed to send because more than 24 hours have passed since the "
        "customer last replied to this number.'},'href':'https:\\/\\/developers.facebook.com\\/docs"
        "\\/whatsapp\\/cloud-api\\/support\\/error-codes\\/'}]},{'id':'wamid.OUT3','status':"
        "'played','timestamp':'1689380460','recipient_id':'','recipient_user_id':"
        "'US.13491208655302741918'}]");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    ef_free(b);
    assert_int_equal(l.n, 4);
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.items[i]->kind, EF_MSG_STATUS);
        assert_string_equal(l.items[i]->channel_id, PNID);
        assert_string_equal(l.items[i]->content_type, "status");
        assert_string_equal(l.items[i]->text, "");
    }
    ef_msg *s = l.items[0];
    assert_string_equal(s->target_id, "wamid.OUT1");
    assert_string_equal(s->status, "sent");
    assert_string_equal(s->message_id, "wamid.OUT1:sent");
    assert_int_equal(s->date, 1698266945);
    assert_string_equal(s->sender_id, IVAN);
    assert_string_equal(s->chat_id, IVAN "@" PNID);
    assert_meta_str(s, "conversation.origin.type", "service");
    assert_meta_str(s, "pricing.pricing_model", "CBP");
    assert_meta_str(s, "recipient_id", IVAN);

    s = l.items[1];
    assert_string_equal(s->status, "read");
    assert_string_equal(s->message_id, "wamid.OUT1:read");
    assert_meta_str(s, "pricing.type", "free_customer_service");
    assert_meta_str(s, "biz_opaque_callback_data", "row:17");

    s = l.items[2];
    assert_string_equal(s->status, "failed");
    assert_string_equal(s->target_id, "wamid.OUT2");
    assert_int_equal(meta_int(s, "errors.0.code"), 131047);
    assert_meta_str(s, "errors.0.title", "Re-engagement message");
    assert_meta_str(s, "errors.0.error_data.details",
                    "Message failed to send because more than 24 hours have passed since the "
                    "customer last replied to this number.");
    assert_meta_str(s, "errors.0.href",
                    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/");

    s = l.items[3];
    assert_string_equal(s->status, "played");
    assert_string_equal(s->sender_id, "US.13491208655302741918");
    assert_string_equal(s->chat_id, "US.13491208655302741918@" PNID);
    assert_meta_str(s, "recipient_user_id", "US.13491208655302741918");
    ef_msg_list_cleanup(&l);
}

static void test_batch_order(void **state)
{
    (void)state;
    /* 2 entries x 2 changes, messages and statuses mixed, two numbers. */
    char *b =
        Q("{'object':'whatsapp_business_account','entry':["
          "{'id':'" WABA "','changes':["
          "{'value':{'messaging_product':'whatsapp','metadata':{'display_phone_number':'" DISPLAY
          "','phone_number_id':'" PNID "'}," IVAN_CONTACTS ",'messages':["
          "{'from':'" IVAN "','id':'wamid.M1','timestamp':'1717430401','text':{'body':'one'},"
          "'type':'text'},"
          "{'from':'" IVAN "','id':'wamid.M2','timestamp':'1717430402','text':{'body':'two'},"
          "'type':'text'},"
          "{'from':'" IVAN "','id':'wamid.M3','timestamp':'1717430403','type':'reaction',"
          "'reaction':{'message_id':'wamid.M1','emoji':'\\u2764\\ufe0f'}}]},'field':'messages'},"
          "{'value':{'messaging_product':'whatsapp','metadata':{'display_phone_number':'" DISPLAY
          "','phone_number_id':'" PNID "'},'statuses':["
          "{'id':'wamid.S1','status':'sent','timestamp':'1717430404','recipient_id':'" IVAN "'},"
          "{'id':'wamid.S1','status':'delivered','timestamp':'1717430405','recipient_id':'" IVAN
          "'}]},'field':'messages'}]},"
          "{'id':'" WABA2 "','changes':["
          "{'value':{'messaging_product':'whatsapp','metadata':{'display_phone_number':"
          "'74950000000','phone_number_id':'" PNID2 "'}," IVAN_CONTACTS ",'messages':["
          "{'from':'" IVAN "','id':'wamid.M4','timestamp':'1717430406','text':{'body':'four'},"
          "'type':'text'},"
          "{'from':'" IVAN "','id':'wamid.M5','timestamp':'1717430407','type':'image','image':{"
          "'id':'9','mime_type':'image\\/png'}}],'statuses':["
          "{'id':'wamid.S2','status':'read','timestamp':'1717430408','recipient_id':'" IVAN "'}]},"
          "'field':'messages'},"
          "{'value':{'messaging_product':'whatsapp','metadata':{'display_phone_number':"
          "'74950000000','phone_number_id':'" PNID2 "'},'statuses':["
          "{'id':'wamid.S3','status':'failed','timestamp':'1717430409','recipient_id':'" IVAN
          "','errors':[{'code':131026,'title':'Message undeliverable'}]},"
          "{'id':'wamid.S4','status':'sent','timestamp':'1717430410','recipient_id':'" IVAN
          "'}]},'field':'messages'}]}]}");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    ef_free(b);
    static const struct {
        ef_msg_kind kind;
        const char *id;
        const char *channel;
    } want[] = {
        {EF_MSG_NEW, "wamid.M1", PNID},
        {EF_MSG_NEW, "wamid.M2", PNID},
        {EF_MSG_REACTION, "wamid.M3", PNID},
        {EF_MSG_STATUS, "wamid.S1:sent", PNID},
        {EF_MSG_STATUS, "wamid.S1:delivered", PNID},
        {EF_MSG_NEW, "wamid.M4", PNID2},
        {EF_MSG_NEW, "wamid.M5", PNID2},
        {EF_MSG_STATUS, "wamid.S2:read", PNID2},
        {EF_MSG_STATUS, "wamid.S3:failed", PNID2},
        {EF_MSG_STATUS, "wamid.S4:sent", PNID2},
    };
    assert_int_equal(l.n, sizeof(want) / sizeof(want[0]));
    for (size_t i = 0; i < l.n; i++) {
        assert_int_equal(l.items[i]->kind, want[i].kind);
        assert_string_equal(l.items[i]->message_id, want[i].id);
        assert_string_equal(l.items[i]->channel_id, want[i].channel);
        assert_int_equal(l.items[i]->date, 1717430401 + (int64_t)i);
    }
    /* the same customer on two business numbers: two conversations */
    assert_string_equal(l.items[0]->chat_id, IVAN "@" PNID);
    assert_string_equal(l.items[5]->chat_id, IVAN "@" PNID2);
    assert_meta_str(l.items[5], "waba_id", WABA2);
    assert_meta_str(l.items[5], "display_phone_number", "74950000000");
    assert_meta_str(l.items[0], "waba_id", WABA);
    assert_string_equal(l.items[2]->status, "[\"❤️\"]");
    assert_string_equal(info.what, "messages");
    assert_int_equal(info.update_id, 0);
    ef_msg_list_cleanup(&l);
}

static void test_unknown_fields(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','time':1739321024,"
        "'changes':[{'value':{'phone_number':'" DISPLAY "','event':'VERIFIED_ACCOUNT'},'field':"
        "'account_update'}]}]}",
        "{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','changes':[{'value':{"
        "'event':'APPROVED','message_template_id':12345,'message_template_name':'promo',"
        "'message_template_language':'ru','reason':'NONE'},'field':"
        "'message_template_status_update'}]}]}",
        "{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','changes':[{'value':{"
        "'messaging_product':'whatsapp','metadata':{'display_phone_number':'" DISPLAY "',"
        "'phone_number_id':'" PNID "'},'contacts':[{'wa_id':'" IVAN "'}],'user_preferences':[{"
        "'wa_id':'" IVAN "','detail':'User requested to stop marketing messages','category':"
        "'marketing_messages','value':'stop','timestamp':1731705721}]},'field':"
        "'user_preferences'}]}]}",
        "{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','changes':[{'value':"
        "null,'field':'calls'}]}]}",
    };
    static const char *const fields[] = {"account_update", "message_template_status_update",
                                         "user_preferences", "calls"};
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        char *b = Q(bodies[i]);
        ef_msg_list l;
        ef_parse_info info;
        ef_msg_list_init(&l);
        int rc = parse_into(b, &l, &info);
        if (rc != 0)
            fail_msg("%s: rc %d (%s)", fields[i], rc, info.note);
        assert_int_equal(l.n, 0);
        assert_string_equal(info.what, fields[i]);
        assert_non_null(strstr(info.note, fields[i]));
        assert_non_null(strstr(info.note, "not handled"));
        ef_free(b);
    }

    /* an unknown field next to messages: the messages are still stored */
    char *b =
        Q("{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','changes':[{"
          "'value':{'event':'X'},'field':'account_update'},{'value':{'messaging_product':"
          "'whatsapp','metadata':{'display_phone_number':'" DISPLAY "','phone_number_id':'" PNID
          "'},'messages':[{'from':'" IVAN "','id':'wamid.K','timestamp':'1717430400','text':"
          "{'body':'still here'},'type':'text'}]},'field':'messages'}]}]}");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    ef_free(b);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.items[0]->text, "still here");
    assert_string_equal(info.what, "account_update");
    assert_non_null(strstr(info.note, "account_update"));
    ef_msg_list_cleanup(&l);
}

static void test_errors_only(void **state)
{
    (void)state;
    char *b = wa_value("'errors':[{'code':131052,'title':'Media download error','message':"
                       "'Media download error','error_data':{'details':'Unable to download the "
                       "media sent by the user.'}},{'code':1,'title':'second'}]");
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    assert_int_equal(parse_into(b, &l, &info), 0);
    ef_free(b);
    assert_int_equal(l.n, 0);
    assert_non_null(strstr(info.note, "131052"));
    assert_non_null(strstr(info.note, "Media download error"));
    assert_null(strstr(info.note, "second"));
    assert_string_equal(info.what, "messages");

    /* empty envelopes are genuine too */
    b = Q("{'object':'whatsapp_business_account','entry':[]}");
    assert_int_equal(parse_into(b, &l, &info), 0);
    assert_int_equal(l.n, 0);
    ef_free(b);
}

/* ---- refusals ----------------------------------------------------------- */

/* The payload must be refused with EF_EPROTO, the note naming want, and
 * nothing appended to a list that already holds one event. */
static void expect_eproto(const char *payload, const char *want)
{
    char *b = Q(payload);
    ef_msg_list l;
    ef_parse_info info;
    ef_msg_list_init(&l);
    ef_msg *sentinel = ef_msg_new(EF_MSG_NEW, "whatsapp");
    ef_msg_list_push(&l, sentinel);
    int rc = parse_into(b, &l, &info);
    if (rc != EF_EPROTO)
        fail_msg("rc %d (want EF_EPROTO) for %s", rc, b);
    if (!strstr(info.note, want))
        fail_msg("note \"%s\" does not name \"%s\"", info.note, want);
    assert_int_equal(l.n, 1);
    assert_ptr_equal(l.items[0], sentinel);
    ef_msg_list_cleanup(&l);
    ef_free(b);
}

#define ENV_HEAD                                                                                   \
    "{'object':'whatsapp_business_account','entry':[{'id':'" WABA "','changes':[{'value':{"        \
    "'messaging_product':'whatsapp','metadata':{'display_phone_number':'" DISPLAY                  \
    "','phone_number_id':'" PNID "'},"
#define ENV_TAIL "},'field':'messages'}]}]}"
#define MSG_OK                                                                                     \
    "{'from':'" IVAN "','id':'wamid.OK','timestamp':'1717430400','text':{'body':'x'},'type':'"     \
    "text'}"

static void test_structure_refused(void **state)
{
    (void)state;
    expect_eproto("[1,2]", "expected object");
    expect_eproto("{'object':'page','entry':[]}", "object");
    expect_eproto("{'entry':[]}", "object: missing");
    expect_eproto("{'object':'whatsapp_business_account'}", "entry: missing");
    expect_eproto("{'object':'whatsapp_business_account','entry':{}}", "entry: expected array");
    expect_eproto("{'object':'whatsapp_business_account','entry':[7]}", "entry[0]");
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':'1','changes':{}}]}",
                  "entry[0].changes: expected array");
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':1,'changes':[]}]}",
                  "entry[0].id: expected string");
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':'1','changes':[{'value':"
                  "{}}]}]}",
                  "entry[0].changes[0].field: missing");
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':'1','changes':[{'value':"
                  "[],'field':'messages'}]}]}",
                  "entry[0].changes[0].value: expected object");
    expect_eproto(ENV_HEAD "'messages':{}" ENV_TAIL, "value.messages: expected array");
    expect_eproto(ENV_HEAD "'statuses':'x'" ENV_TAIL, "value.statuses: expected array");
    expect_eproto(ENV_HEAD "'contacts':[{'wa_id':5}]" ENV_TAIL, "contacts[0].wa_id");
    expect_eproto(ENV_HEAD "'messages':['text']" ENV_TAIL, "messages[0]");
    /* events need the business number they arrived on */
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':'1','changes':[{'value':{"
                  "'messages':[" MSG_OK "]},'field':'messages'}]}]}",
                  "metadata: missing");
    expect_eproto("{'object':'whatsapp_business_account','entry':[{'id':'1','changes':[{'value':{"
                  "'metadata':{'phone_number_id':''},'messages':[" MSG_OK "]},'field':"
                  "'messages'}]}]}",
                  "metadata.phone_number_id: empty");
}

static void test_message_refused(void **state)
{
    (void)state;
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN
                           "','timestamp':'1','type':'text'}]" ENV_TAIL,
                  "messages[0].id: missing");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN
                           "','id':'','timestamp':'1','type':'text'}]" ENV_TAIL,
                  "messages[0].id: empty");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1'}]" ENV_TAIL,
                  "messages[0].type: missing");
    expect_eproto(ENV_HEAD "'messages':[{'id':'w','timestamp':'1','type':'text'}]" ENV_TAIL,
                  "messages[0].from");
    expect_eproto(ENV_HEAD "'messages':[{'from':'','from_user_id':'','id':'w','timestamp':'1',"
                           "'type':'text'}]" ENV_TAIL,
                  "messages[0].from");
    expect_eproto(ENV_HEAD "'messages':[{'from':" IVAN
                           ",'id':'w','timestamp':'1','type':'text'}]" ENV_TAIL,
                  "messages[0].from: expected string");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':'text',"
                           "'text':'hi'}]" ENV_TAIL,
                  "messages[0].text: expected object");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':'text',"
                           "'text':{'body':5}}]" ENV_TAIL,
                  "messages[0].text.body: expected string");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':"
                           "'reaction','reaction':{'emoji':'x'}}]" ENV_TAIL,
                  "messages[0].reaction.message_id: missing");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':"
                           "'location','location':{'latitude':'55.7','longitude':37.6}}]" ENV_TAIL,
                  "messages[0].location.latitude: expected number");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':"
                           "'audio','audio':{'id':'1','voice':'true'}}]" ENV_TAIL,
                  "messages[0].audio.voice: expected boolean");
    expect_eproto(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':'1','type':"
                           "'interactive','interactive':{'type':'button_reply','button_reply':{"
                           "'title':'x'}}}]" ENV_TAIL,
                  "messages[0].interactive.button_reply.id: missing");
    /* a broken third message: the two good ones before it are not kept */
    expect_eproto(ENV_HEAD "'messages':[" MSG_OK "," MSG_OK ",{'from':'" IVAN "','id':'w3',"
                           "'timestamp':'1','type':'text','context':[]}]" ENV_TAIL,
                  "messages[2].context: expected object");
    expect_eproto(ENV_HEAD
                  "'statuses':[{'status':'sent','timestamp':'1','recipient_id':'1'}]" ENV_TAIL,
                  "statuses[0].id: missing");
    expect_eproto(ENV_HEAD "'statuses':[{'id':'w','timestamp':'1','recipient_id':'1'}]" ENV_TAIL,
                  "statuses[0].status: missing");
    expect_eproto(ENV_HEAD "'statuses':[{'id':'w','status':'sent','timestamp':'1'}]" ENV_TAIL,
                  "statuses[0].recipient_id");
    expect_eproto(ENV_HEAD "'statuses':[{'id':'w','status':'sent','timestamp':'1','recipient_id':"
                           "'1','errors':{}}]" ENV_TAIL,
                  "statuses[0].errors: expected array");
}

static void test_timestamps(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "'17174304OO'",  "''",           "'-1'",   "'+1717430400'",         "' 1717430400'",
        "'1717430400 '", "'1.5'",        "'0x10'", "'9223372036854775808'", "'1e9'",
        "1717430400",    "1717430400.0", "null",
    };
    char *p = NULL;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        p = ef_asprintf(ENV_HEAD "'messages':[{'from':'" IVAN "','id':'w','timestamp':%s,'type':"
                                 "'text','text':{'body':'x'}}]" ENV_TAIL,
                        bad[i]);
        expect_eproto(p, "messages[0].timestamp");
        ef_free(p);
        p = ef_asprintf(ENV_HEAD "'statuses':[{'id':'w','status':'read','timestamp':%s,"
                                 "'recipient_id':'1'}]" ENV_TAIL,
                        bad[i]);
        expect_eproto(p, "statuses[0].timestamp");
        ef_free(p);
    }
    ef_msg *m = one(wa_msg("{'from':'" IVAN "','id':'w','timestamp':'9223372036854775807','type':"
                           "'text','text':{'body':'x'}}"));
    assert_int_equal(m->date, INT64_MAX);
    ef_msg_free(m);
    m = one(wa_msg("{'from':'" IVAN "','id':'w','timestamp':'0001717430400','type':'text','text':"
                   "{'body':'x'}}"));
    assert_int_equal(m->date, 1717430400);
    ef_msg_free(m);
}

/* api_url carries the access token: https://, or http:// on loopback only
 * (the same rule for every adapter: channel.c). */
static void test_api_url_https_or_loopback(void **state)
{
    (void)state;
    static const char creds[] = "{\"access_token\":\"EAAG-test\",\"app_secret\":\"" SECRET
                                "\",\"phone_number_id\":\"1065\"}";
    static const char *const ok[] = {
        "https://graph.example.org/v25.0",
        "HTTPS://graph.example.org",
        "http://127.0.0.1:9",
        "http://127.3.2.1/v1",
        "http://[::1]:8080/v25.0",
        "http://localhost:9",
        "http://LocalHost/x",
        "http://user:pw@127.0.0.1:9",
        "",
    };
    static const char *const bad[] = {
        "http://graph.facebook.com/v25.0",
        "http://10.0.0.1:9",
        "http://128.0.0.1",
        "http://[::2]:80",
        "http://localhost.evil.example",
        "http://127.0.0.1.evil.example",
        "http://127.0.0.1@evil.example",
        "ftp://127.0.0.1",
        "graph.facebook.com",
        "http://",
    };
    char settings[256], why[256];
    ef_platform_policy pol;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        void *cfg = NULL;
        snprintf(settings, sizeof(settings), "{\"api_url\":\"%s\"}", ok[i]);
        if (ef_platform_whatsapp.open(creds, settings, &cfg, &pol, why, sizeof(why)) != 0)
            fail_msg("api_url %s refused: %s", ok[i], why);
        ef_platform_whatsapp.close(cfg);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        void *cfg = NULL;
        snprintf(settings, sizeof(settings), "{\"api_url\":\"%s\"}", bad[i]);
        if (ef_platform_whatsapp.open(creds, settings, &cfg, &pol, why, sizeof(why)) != EF_EINVAL)
            fail_msg("api_url %s accepted", bad[i]);
        assert_null(cfg);
        assert_string_equal(why, "settings: \"api_url\" must be https:// (plain http:// only on a "
                                 "loopback address: 127.0.0.0/8, ::1, localhost)");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_signature_over_raw_escaped_bytes),
        cmocka_unit_test(test_signature_tampering),
        cmocka_unit_test(test_signature_wrong_secret),
        cmocka_unit_test(test_signature_missing_header),
        cmocka_unit_test(test_signature_malformed_header),
        cmocka_unit_test(test_signature_uppercase_hex),
        cmocka_unit_test(test_signature_binary_body),
        cmocka_unit_test(test_ops),
        cmocka_unit_test(test_api_url_https_or_loopback),
        cmocka_unit_test(test_text_russian),
        cmocka_unit_test(test_reply_forward_referral),
        cmocka_unit_test(test_media),
        cmocka_unit_test(test_location),
        cmocka_unit_test(test_contacts_message),
        cmocka_unit_test(test_interactive),
        cmocka_unit_test(test_interactive_without_object),
        cmocka_unit_test(test_button_order),
        cmocka_unit_test(test_unsupported_and_unknown),
        cmocka_unit_test(test_reaction),
        cmocka_unit_test(test_system_identity),
        cmocka_unit_test(test_edit_and_revoke),
        cmocka_unit_test(test_missing_object_refused_per_message),
        cmocka_unit_test(test_bsuid_customers),
        cmocka_unit_test(test_group_message),
        cmocka_unit_test(test_statuses),
        cmocka_unit_test(test_batch_order),
        cmocka_unit_test(test_unknown_fields),
        cmocka_unit_test(test_errors_only),
        cmocka_unit_test(test_structure_refused),
        cmocka_unit_test(test_message_refused),
        cmocka_unit_test(test_timestamps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
