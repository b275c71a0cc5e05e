/*
 * msg.c -- ef_msg lifetime and the event list.
 */
#include "base/msg.h"

#include "base/mem.h"

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
    ef_free(m->integration_id);
    ef_free(m);
}

/* ---- the event list ---------------------------------------------------- */

void ef_msg_list_init(ef_msg_list *l)
{
    l->items = NULL;
    l->n = 0;
    l->cap = 0;
}

void ef_msg_list_push(ef_msg_list *l, ef_msg *m)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4;
        l->items = ef_realloc(l->items, cap * sizeof(*l->items));
        l->cap = cap;
    }
    l->items[l->n++] = m;
}

void ef_msg_list_cleanup(ef_msg_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        ef_msg_free(l->items[i]);
    ef_free(l->items);
    ef_msg_list_init(l);
}
