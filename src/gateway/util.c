/*
 * util.c -- error names, UTF-8/UTF-16 helpers, clocks, ef_msg lifetime.
 */
#include "ef.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const struct {
    int code;
    const char *name;
    const char *text;
} errors[] = {
    {EF_OK, "EF_OK", "success"},
    {EF_ENOMEM, "EF_ENOMEM", "out of memory"},
    {EF_EINVAL, "EF_EINVAL", "invalid argument"},
    {EF_EPROTO, "EF_EPROTO", "protocol error"},
    {EF_EIO, "EF_EIO", "input/output error"},
    {EF_ETIMEDOUT, "EF_ETIMEDOUT", "timed out"},
    {EF_ENOTFOUND, "EF_ENOTFOUND", "not found"},
    {EF_EDB, "EF_EDB", "database error"},
    {EF_ELIMIT, "EF_ELIMIT", "limit exceeded"},
    {EF_EUTF8, "EF_EUTF8", "invalid UTF-8"},
    {EF_EAUTH, "EF_EAUTH", "authentication failed"},
    {EF_ECONFLICT, "EF_ECONFLICT", "conflict"},
};

const char *ef_strerror(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].text;
    return "unknown error";
}

const char *ef_errname(int err)
{
    for (size_t i = 0; i < sizeof(errors) / sizeof(errors[0]); i++)
        if (errors[i].code == err)
            return errors[i].name;
    return "EF_E?";
}

void ef_errf(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

size_t ef_utf8_encode(uint32_t cp, char *o)
{
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

bool ef_utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        if (c < 0x80) {
            i++;
            continue;
        }
        size_t len;
        unsigned cp;
        if (c >= 0xC2 && c <= 0xDF) {
            len = 2;
            cp = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
            len = 3;
            cp = c & 0x0F;
        } else if (c >= 0xF0 && c <= 0xF4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n)
            return false;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return false;
            cp = (cp << 6) | (s[i + k] & 0x3F);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
            return false;
        i += len;
    }
    return true;
}

int ef_utf16_to_byte(const char *str, size_t n, int64_t off16, size_t *out)
{
    const unsigned char *s = (const unsigned char *)str;
    if (off16 < 0)
        return EF_EINVAL;
    int64_t units = 0;
    size_t i = 0;
    while (units < off16) {
        if (i >= n)
            return EF_EINVAL;
        unsigned c = s[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (i + len > n)
            return EF_EINVAL;
        units += len == 4 ? 2 : 1;
        i += len;
    }
    if (units != off16) /* the offset splits a surrogate pair */
        return EF_EINVAL;
    *out = i;
    return 0;
}

bool ef_secure_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    if (alen == 0)
        return true;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

int64_t ef_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t ef_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const char *const kind_names[EF_MSG__COUNT] = {
    "new", "edit", "callback", "reaction", "blocked", "unblocked", "migrate", "status", "identity"};

const char *ef_msg_kind_name(ef_msg_kind k)
{
    return (k >= 0 && k < EF_MSG__COUNT) ? kind_names[k] : "?";
}

ef_msg *ef_msg_new(ef_msg_kind kind, const char *platform)
{
    ef_msg *m = ef_calloc(1, sizeof(*m));
    m->kind = kind;
    m->platform = platform;
    return m;
}

void ef_msg_free(ef_msg *m)
{
    if (!m)
        return;
    ef_free(m->chat_id);
    ef_free(m->chat_type);
    ef_free(m->message_id);
    ef_free(m->sender_id);
    ef_free(m->sender_name);
    ef_free(m->sender_username);
    ef_free(m->sender_lang);
    ef_free(m->text);
    ef_free(m->content_type);
    ef_free(m->meta_json);
    ef_free(m->target_id);
    ef_free(m->status);
    ef_free(m->callback_id);
    ef_free(m->thread_id);
    ef_free(m->channel_id);
    ef_free(m);
}
