/*
 * ef.h -- the one header every easyflow module may include.
 *
 * What it holds: error codes, the logging macros, the allocation wrappers,
 * a small bounded byte buffer, and the plain data types that cross module
 * boundaries (ef_msg: one normalized inbound platform event).
 *
 * What it must never do: pull in a library header (lws, curl, libpq, hiredis,
 * json-c, pcre2). Modules include those themselves.
 *
 * Library rules, written once (see STYLE.md section 5):
 *  - json-c: json_object_object_get_ex() borrows (never put what it returns);
 *    json_object_object_add() / json_object_array_add() take the reference.
 *  - libpq: PQclear() every PGresult on every path.
 *  - hiredis: freeReplyObject() every reply on every path.
 *  - pcre2: compile once (with JIT) at start; one pcre2_match_data per thread.
 *
 * Thread model: everything here is thread-safe (the logger takes a lock per
 * line; the allocators abort on exhaustion).
 */
#ifndef EF_H
#define EF_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EF_VERSION "0.1.0"

/* ---- errors ----------------------------------------------------------- */

enum {
    EF_OK = 0,
    EF_ENOMEM = -1,    /* out of memory (normally we abort instead) */
    EF_EINVAL = -2,    /* bad argument or bad input */
    EF_EPROTO = -3,    /* payload does not follow the platform's protocol */
    EF_EIO = -4,       /* I/O or network failure */
    EF_ETIMEDOUT = -5, /* a deadline passed */
    EF_ENOTFOUND = -6, /* no such object */
    EF_EDB = -7,       /* the database refused or is unreachable */
    EF_ELIMIT = -8,    /* a configured bound was exceeded */
    EF_EUTF8 = -9,     /* text is not valid UTF-8 */
    EF_EAUTH = -10,    /* authentication failed */
    EF_ECONFLICT = -11 /* state conflicts with the request (e.g. checksum) */
};

/* Short human text for an EF_E* code ("out of memory"). Never NULL. */
const char *ef_strerror(int err);
/* Symbolic name for an EF_E* code ("EF_ENOMEM"). Never NULL. */
const char *ef_errname(int err);

/* ---- memory ----------------------------------------------------------- */

/* These abort the process (with a log line) when memory runs out, so callers
 * never check for NULL. ef_free(NULL) is a no-op. */
void *ef_malloc(size_t n);
void *ef_calloc(size_t n, size_t size);
void *ef_realloc(void *p, size_t n);
char *ef_strdup(const char *s);
char *ef_strndup(const char *s, size_t n);
void ef_free(void *p);
/* printf into a new heap string owned by the caller. */
char *ef_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- bounded buffer --------------------------------------------------- */

/* A growable byte buffer with a hard maximum (curl's dynbuf). The data is
 * always NUL-terminated so it can be used as a C string. */
typedef struct ef_buf {
    char *data;
    size_t len;
    size_t cap;
    size_t max; /* ef_buf_append() fails with EF_ELIMIT beyond this */
} ef_buf;

void ef_buf_init(ef_buf *b, size_t max);
int ef_buf_append(ef_buf *b, const void *p, size_t n);
int ef_buf_appendf(ef_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ef_buf_reset(ef_buf *b);
void ef_buf_cleanup(ef_buf *b);
/* Hands the data to the caller (who frees it with ef_free) and resets b. */
char *ef_buf_steal(ef_buf *b, size_t *len);

/* ---- logging ---------------------------------------------------------- */

typedef enum ef_log_level {
    EF_LOG_ERROR = 0,
    EF_LOG_WARN = 1,
    EF_LOG_INFO = 2,
    EF_LOG_DEBUG = 3,
    EF_LOG_TRACE = 4
} ef_log_level;

/* Components can be raised to DEBUG/TRACE one by one (log.debug = tg,pg). */
typedef enum ef_log_comp {
    EF_C_MAIN = 0,
    EF_C_HTTP,
    EF_C_TG,
    EF_C_WA,
    EF_C_NLP,
    EF_C_FSM,
    EF_C_PG,
    EF_C_REDIS,
    EF_C_CURL,
    EF_C_PIPE,
    EF_C_POLL,
    EF_C_CFG,
    EF_C__COUNT
} ef_log_comp;

extern int ef_log_levels[EF_C__COUNT];

void ef_log_set_level(ef_log_level lvl);
/* "tg,pg" -> those components at DEBUG. Returns EF_EINVAL naming nothing. */
int ef_log_set_debug(const char *csv);
int ef_log_parse_level(const char *s, ef_log_level *out);
void ef_log_write(ef_log_level lvl, ef_log_comp comp, const char *file, int line, const char *fmt,
                  ...) __attribute__((format(printf, 5, 6)));

/* One line per event on stderr: time, level, component, key=value, message.
 * The level is checked before any formatting work is done. */
#define EF_LOG(lvl, comp, ...)                                                                     \
    do {                                                                                           \
        if ((int)(lvl) <= ef_log_levels[(comp)])                                                   \
            ef_log_write((lvl), (comp), __FILE__, __LINE__, __VA_ARGS__);                          \
    } while (0)

#define EF_PANIC(...)                                                                              \
    do {                                                                                           \
        ef_log_write(EF_LOG_ERROR, EF_C_MAIN, __FILE__, __LINE__, __VA_ARGS__);                    \
        abort();                                                                                   \
    } while (0)

/* Returns url with any "bot<token>" path part and any user:password masked.
 * Owned by the caller. */
char *ef_redact_url(const char *url);

/* ---- small helpers (util.c) ------------------------------------------- */

/* printf into a caller's error buffer (err may be NULL or errlen 0). */
void ef_errf(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Writes code point cp (<= U+10FFFF) as UTF-8 into out (room for 4 bytes);
 * returns the number of bytes written. */
size_t ef_utf8_encode(uint32_t cp, char *out);
/* Strict UTF-8 check: no overlongs, no surrogates, nothing above U+10FFFF. */
bool ef_utf8_valid(const char *s, size_t n);
/* Converts a UTF-16 code unit offset into a byte offset within the UTF-8
 * string s of n bytes. Returns EF_EINVAL when off lies beyond the string or
 * in the middle of a surrogate pair. */
int ef_utf16_to_byte(const char *s, size_t n, int64_t off16, size_t *out);
/* Constant-time comparison of two byte strings (length leaks, content not). */
bool ef_secure_equal(const char *a, size_t alen, const char *b, size_t blen);
/* Monotonic and wall clocks in milliseconds. */
int64_t ef_now_ms(void);
int64_t ef_wall_ms(void);

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
    char *content_type; /* text, photo, voice, location, callback, ... */
    int64_t date;       /* Unix seconds of the event (edit_date on edits) */
    char *meta_json;    /* JSON object: everything else worth keeping */
    char *target_id;    /* EDIT/REACTION/STATUS: the message acted upon;
                           MIGRATE: the new chat id; IDENTITY: new user id */
    char *status;       /* STATUS: sent|delivered|read|failed; REACTION: emoji list */
    char *callback_id;  /* CALLBACK: the platform's id to answer the press */
    char *thread_id;    /* forum topic / thread to reply into */
    char *channel_id;   /* the business number / bot the event arrived on */
    int64_t update_id;  /* Telegram update_id (0 when none) */
} ef_msg;

ef_msg *ef_msg_new(ef_msg_kind kind, const char *platform);
void ef_msg_free(ef_msg *m);

#endif /* EF_H */
