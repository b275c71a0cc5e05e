/*
 * fuzz_common.h -- what the libFuzzer targets of tests/fuzz/ share: the
 * "status line" input convention and the checks every adapter's output
 * must pass. Header-only (static functions): each target is one file.
 *
 * Input convention of the answer parsers (an HTTP answer is a status and a
 * body): when the input holds a '\n' within its first 96 bytes, the line
 * before it is "[<status>] [<word>]" -- the HTTP status as decimal digits
 * (200 when there are none) and an optional word (a cursor, a mode) -- and
 * the rest is the body;
 * otherwise the whole input is the body of a 200 and the word is empty. So
 * a corpus file is a real answer, optionally preceded by one such line.
 */
#ifndef EF_FUZZ_COMMON_H
#define EF_FUZZ_COMMON_H

#include "base/ef.h"
#include "base/json.h"
#include "base/utf8.h"
#include "platforms/platform.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One input split into status, word and body. body is its own
 * allocation of exactly len bytes (never NUL-terminated), so that
 * AddressSanitizer sees any read past the end. */
typedef struct fz_input {
    long status;
    char word[80];
    char *body;
    size_t len;
} fz_input;

static inline void fz_split(const uint8_t *data, size_t size, fz_input *in)
{
    const char *s = (const char *)data;
    const char *nl = memchr(s, '\n', size < 96 ? size : 96);
    memset(in, 0, sizeof(*in));
    in->status = 200;
    const char *body = s;
    size_t len = size;
    if (nl) {
        const char *p = s;
        long st = 0;
        for (; p < nl && *p >= '0' && *p <= '9' && st < 1000; p++)
            st = st * 10 + (*p - '0');
        if (p > s)
            in->status = st; /* no digits: a 200 */
        while (p < nl && *p == ' ')
            p++;
        size_t wl = (size_t)(nl - p);
        if (wl >= sizeof(in->word))
            wl = sizeof(in->word) - 1;
        memcpy(in->word, p, wl);
        in->word[strnlen(in->word, wl)] = '\0'; /* a NUL ends the word */
        body = nl + 1;
        len = size - (size_t)(nl - s) - 1;
    }
    in->body = ef_malloc(len ? len : 1);
    if (len)
        memcpy(in->body, body, len);
    in->len = len;
}

static inline void fz_free(fz_input *in)
{
    ef_free(in->body);
    in->body = NULL;
}

/* A NUL-terminated string of at most cap - 1 bytes (a fixed buffer). */
static inline void fz_check_cstr(const char *s, size_t cap)
{
    if (!s || strnlen(s, cap) >= cap)
        abort();
}

/* A string the store writes to a text column: valid UTF-8, no NUL
 * (strlen is its length by construction). */
static inline void fz_check_text(const char *s)
{
    if (s && !ef_utf8_valid(s, strlen(s)))
        abort();
}

/* Strict JSON that ef_json_parse accepts (the store reads it back). */
static inline void fz_check_json(const char *s)
{
    struct json_object *o = NULL;
    char err[128];
    if (!s || ef_json_parse(s, strlen(s), 64, &o, err, sizeof(err)) != 0)
        abort();
    json_object_put(o);
}

/* One event as the pipeline and the store need it: every key present,
 * text of text_len valid UTF-8 bytes, every string valid UTF-8, meta
 * strict JSON. (The per-kind keys of fuzz_tg_update.c hold for every
 * adapter: ef_ad__check_keys.) */
static inline void fz_check_msg(const ef_msg *m, const char *platform)
{
    if (!m || !m->platform || strcmp(m->platform, platform) != 0 || !m->chat_id || !*m->chat_id ||
        !m->text || !m->content_type)
        abort();
    if (m->kind < 0 || m->kind >= EF_MSG__COUNT)
        abort();
    if (strlen(m->text) != m->text_len || !ef_utf8_valid(m->text, m->text_len))
        abort();
    const char *strs[] = {m->chat_id,     m->chat_type,    m->message_id,      m->sender_id,
                          m->sender_name, m->content_type, m->sender_username, m->sender_lang,
                          m->target_id,   m->status,       m->callback_id,     m->thread_id,
                          m->channel_id};
    for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++)
        fz_check_text(strs[i]);
    switch (m->kind) {
    case EF_MSG_NEW:
    case EF_MSG_CALLBACK:
        if (!m->sender_id || !*m->sender_id || !m->message_id || !*m->message_id)
            abort();
        break;
    case EF_MSG_STATUS:
        if (!m->target_id || !m->status)
            abort();
        break;
    default:
        break;
    }
    fz_check_json(m->meta_json);
}

/* A poll answer's result: a known fault, NUL-terminated texts, a cursor
 * of valid UTF-8, no events with a fault, a wait that is not negative. */
static inline void fz_check_poll(const ef_poll_result *r, const ef_msg_list *out,
                                 const char *platform)
{
    fz_check_cstr(r->next_cursor, sizeof(r->next_cursor));
    fz_check_cstr(r->reason, sizeof(r->reason));
    if (r->fault != 0 && r->fault != EF_EAUTH && r->fault != EF_ECONFLICT && r->fault != EF_EIO &&
        r->fault != EF_EPROTO)
        abort();
    if (r->fault && (out->n || r->next_cursor[0]))
        abort();
    if (r->retry_after_ms < 0)
        abort();
    fz_check_text(r->next_cursor); /* the poller stores it in a text column */
    for (size_t i = 0; i < out->n; i++)
        fz_check_msg(out->items[i], platform);
}

/* A send answer's result: a known outcome, ids only where they belong,
 * valid UTF-8 in what the store writes, a wait that is not negative. */
static inline void fz_check_send(const ef_send_result *r)
{
    if (r->outcome < EF_SEND_OK || r->outcome > EF_SEND_AUTH)
        abort();
    fz_check_cstr(r->reason, sizeof(r->reason));
    if (r->outcome != EF_SEND_OK && r->platform_message_id)
        abort();
    if ((r->outcome == EF_SEND_MIGRATED) != (r->new_chat_id != NULL))
        abort();
    if (r->retry_after_ms < 0 || r->retry_after_ms > 86400LL * 1000)
        abort();
    fz_check_text(r->platform_message_id);
    fz_check_text(r->new_chat_id);
}

/* The target's fixed channel: ops->open(creds, settings) with its policy
 * into *policy (NULL: not kept), or abort with the reason, naming the
 * target (who). */
static inline void *fz_open(const ef_platform_ops *ops, const char *creds, const char *settings,
                            ef_platform_policy *policy, const char *who)
{
    void *cfg = NULL;
    char err[256];
    ef_platform_policy own;
    if (ops->open(creds, settings, &cfg, policy ? policy : &own, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", who, err);
        abort();
    }
    return cfg;
}

#endif /* EF_FUZZ_COMMON_H */
