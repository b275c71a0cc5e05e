/*
 * base/msg.h -- ef_msg, the normalized inbound event, and a list of them.
 */
#ifndef EF_BASE_MSG_H
#define EF_BASE_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- the normalized inbound event ------------------------------------- */

/* What one platform event asks of the store. */
typedef enum ef_msg_kind {
    EF_MSG_NEW = 0,   /* a customer message: insert once */
    EF_MSG_EDIT,      /* new version of a known message: update, keep history */
    EF_MSG_CALLBACK,  /* a button press: recorded as an inbound message */
    EF_MSG_REACTION,  /* a reaction set on a stored message */
    EF_MSG_BLOCKED,   /* the customer blocked the bot: chat undeliverable */
    EF_MSG_UNBLOCKED, /* the customer unblocked the bot */
    EF_MSG_MIGRATE,   /* the chat moved to a new id (group -> supergroup) */
    EF_MSG_STATUS,    /* delivery status of one of our outbound messages */
    EF_MSG_IDENTITY,  /* the customer's platform identity changed */
    EF_MSG__COUNT
} ef_msg_kind;

const char *ef_msg_kind_name(ef_msg_kind k);

/* One normalized inbound event. Plain data; every string is owned by the
 * ef_msg and freed by ef_msg_free(). Ids are decimal strings of the
 * platform's int64 ids (Telegram) or the platform's own strings (WhatsApp),
 * so that no id is ever narrowed. Strings that do not apply are NULL. */
typedef struct ef_msg {
    ef_msg_kind kind;
    const char *platform; /* static: "telegram", "whatsapp", "webchat" */
    char *chat_id;        /* conversation key within the platform */
    char *chat_type;      /* private | group | supergroup | channel | ... */
    char *message_id;     /* platform_message_id, unique per platform */
    char *sender_id;      /* platform user id of the customer */
    char *sender_name;    /* display name as the customer gave it */
    char *sender_username;
    char *sender_lang; /* IETF language tag the client reported */
    bool sender_is_bot;
    char *text; /* text or caption, byte-exact UTF-8 ("" when none) */
    size_t text_len;
    char *content_type;   /* text, photo, voice, location, callback, ... */
    int64_t date;         /* Unix seconds of the event (edit_date on edits) */
    char *meta_json;      /* JSON object: everything else worth keeping */
    char *target_id;      /* EDIT/REACTION/STATUS: the message acted upon;
                             MIGRATE: the new chat id; IDENTITY: new user id */
    char *status;         /* STATUS: sent|delivered|read|failed; REACTION: emoji list */
    char *callback_id;    /* CALLBACK: the platform's id to answer the press */
    char *thread_id;      /* forum topic / thread to reply into */
    char *channel_id;     /* the business number / bot the event arrived on */
    char *integration_id; /* the integrations row it belongs to (set by the gateway) */
    int64_t update_id;    /* Telegram update_id (0 when none) */
    bool read_receipt;    /* queue a read receipt before the replies (the platform's policy) */
} ef_msg;

ef_msg *ef_msg_new(ef_msg_kind kind, const char *platform);
void ef_msg_free(ef_msg *m);

/* A growable list of normalized events; owns its ef_msg's. */
typedef struct ef_msg_list {
    ef_msg **items;
    size_t n;
    size_t cap;
} ef_msg_list;

void ef_msg_list_init(ef_msg_list *l);
/* Takes ownership of m. */
void ef_msg_list_push(ef_msg_list *l, ef_msg *m);
/* Frees every ef_msg still in the list. */
void ef_msg_list_cleanup(ef_msg_list *l);

#endif /* EF_BASE_MSG_H */
