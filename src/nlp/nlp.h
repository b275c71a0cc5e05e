/*
 * nlp.h -- understanding a customer message: the bot definition, the intent
 * matcher and the entity extractor.
 *
 * What it does: ef_bot_load() reads a bot definition (YAML,
 * docs/bot-definition.md), validates every key, compiles every pattern once
 * with PCRE2 (UTF, UCP, case-insensitive, JIT) and indexes the literal words
 * each pattern needs (the prefilter, see prefilter.c). ef_nlp_match() then
 * turns one UTF-8 message into the best intent with a confidence in [0,1],
 * the runners-up and the entities with normalized values (phone, email,
 * order_number, money, date, time, number and the bot's own) with byte
 * offsets into the message.
 * Nothing is allocated per message: the result is plain data and the
 * working memory lives in a per-thread ef_nlp_scratch.
 *
 * What it must never do: I/O other than reading the bot file (and the zone
 * file of the bot's timezone) inside ef_bot_load(); logging from
 * ef_nlp_match(); include lws/curl/libpq/hiredis headers; keep a pointer to
 * the caller's text after ef_nlp_match() returns.
 *
 * Thread model: an ef_bot is immutable once ef_bot_load() returns and may be
 * shared by any number of threads without a lock. An ef_nlp_scratch belongs
 * to one thread at a time (it holds the PCRE2 match data and JIT stack): give
 * every worker thread its own, created once with ef_nlp_scratch_new(bot), and
 * free it before the bot. ef_nlu_result is plain data owned by the caller.
 */
#ifndef EF_NLP_H
#define EF_NLP_H

#include "base/ef.h"

typedef struct ef_bot ef_bot;
typedef struct ef_nlp_scratch ef_nlp_scratch;
/* The compiled `fsm:` section (fsm.h). */
typedef struct ef_fsm_def ef_fsm_def;

/* The intent name reported when no intent reaches the bot's threshold. A
 * bot file may not define an intent with this name. */
#define EF_NLP_FALLBACK "fallback"

/* How many intents a result ranks, entities it carries, and bytes (with the
 * NUL) one entity value may hold. Longer values (only custom regex entities
 * can produce them) are cut at a UTF-8 character boundary. */
#define EF_NLU_MAX_RANKED 5
#define EF_NLU_MAX_ENTITIES 32
#define EF_NLU_VALUE_MAX 128

/* Only the first EF_NLP_MAX_TEXT bytes of a message are examined (cut at a
 * character boundary): more than any messenger lets a customer send at once. */
#define EF_NLP_MAX_TEXT 32768

/* ---- the bot definition (botdef.c) ------------------------------------ */

/* Loads and compiles the bot definition at path (docs/bot-definition.md).
 *
 * Returns 0 and sets *out (owned by the caller, ef_bot_free), or fails with
 * err set to one line "path:line:column: reason" (1-based; a PCRE2 compile
 * error names the offset in the pattern as written):
 *   EF_EIO     the file cannot be read (path: strerror),
 *   EF_EINVAL  anything wrong in it: YAML syntax, unknown key, wrong type,
 *              duplicate intent or entity, bad regex, unknown timezone,
 *              language not listed in bot.languages, an error the `fsm:`
 *              section's compiler (fsm.h) reports, ...
 *   EF_ELIMIT  the file is larger than 16 MiB or has too many nodes.
 * err is always NUL-terminated when errlen > 0. Call it on the main thread at
 * start (it compiles regexes and reads files); it touches no global state but
 * the counter that numbers bots (ef_bot_serial). */
int ef_bot_load(const char *path, ef_bot **out, char *err, size_t errlen);

/* Frees a bot and everything it owns (its compiled fsm included). A scratch
 * made for it must not be used afterwards; freeing the scratch later is
 * fine (ef_nlp_scratch_free never reads its bot). ef_bot_free(NULL) is a
 * no-op. */
void ef_bot_free(ef_bot *bot);

/* A number no other bot loaded by this process has (from 1): tells a bot
 * from one loaded later at the same address, e.g. to keep a scratch per bot
 * across a bot's replacement. 0 for NULL. */
uint64_t ef_bot_serial(const ef_bot *bot);

/* bot.name, and the file it came from. Borrowed from the bot. */
const char *ef_bot_name(const ef_bot *bot);
const char *ef_bot_path(const ef_bot *bot);

/* bot.languages in the file's order (the first is the default). i must be
 * below ef_bot_language_count(); the string is borrowed from the bot. */
size_t ef_bot_language_count(const ef_bot *bot);
const char *ef_bot_language(const ef_bot *bot, size_t i);

/* bot.timezone (an IANA name, default "Europe/Moscow"), borrowed. */
const char *ef_bot_timezone(const ef_bot *bot);

/* Seconds east of UTC in the bot's timezone at the instant unix (Unix
 * seconds), following the zone's rules (DST included). Pure and thread-safe. */
int32_t ef_bot_utc_offset(const ef_bot *bot, int64_t unix_time);

/* bot.fallback_threshold, default 0.5. */
double ef_bot_fallback_threshold(const ef_bot *bot);

/* bot.model_threshold, default 0.8: the probability from which the
 * statistical second opinion's intent is taken on a message no rule
 * understood. 1 turns the model off in practice. */
double ef_bot_model_threshold(const ef_bot *bot);

/* The compiled `fsm:` section, or NULL when the file has none (an
 * understanding-only bot). Borrowed: it lives as long as the bot. */
const ef_fsm_def *ef_bot_fsm(const ef_bot *bot);

/* The intents in the file's order, not counting the reserved "fallback". */
size_t ef_bot_intent_count(const ef_bot *bot);
const char *ef_bot_intent_name(const ef_bot *bot, size_t i);

/* Every entity type a result can carry: the built-in ones first (phone,
 * email, order_number, money, date, time, number), then the bot's own in the
 * file's order. */
size_t ef_bot_entity_type_count(const ef_bot *bot);
const char *ef_bot_entity_type(const ef_bot *bot, size_t i);

/* One example or negative example of an intent, for `bot check`. Every
 * string is borrowed from the bot. */
typedef struct ef_bot_example {
    const char *intent; /* the intent the example belongs to */
    const char *text;   /* the utterance as written in the file */
    const char *lang;   /* its language when listed under one, else NULL */
    bool negative;      /* true: the text must NOT be understood as intent */
    int line, column;   /* 1-based position in the bot file */
} ef_bot_example;

/* All examples: positive and negative ones, intent by intent, in file order. */
size_t ef_bot_example_count(const ef_bot *bot);
/* Fills *out for example i. EF_EINVAL when i is out of range. */
int ef_bot_example_get(const ef_bot *bot, size_t i, ef_bot_example *out);

/* ---- matching (match.c, entities.c) ----------------------------------- */

/* One entity found in a message. */
typedef struct ef_nlu_entity {
    const char *type;             /* static for built-ins, the bot's for custom ones */
    size_t start, end;            /* byte offsets into the message as given: [start, end) */
    char value[EF_NLU_VALUE_MAX]; /* normalized value, NUL-terminated */
} ef_nlu_entity;

/* One intent that matched, with why. */
typedef struct ef_nlu_ranked {
    const char *intent;  /* borrowed from the bot */
    double confidence;   /* in [0,1] */
    const char *pattern; /* the pattern (as written) with the longest match, borrowed */
    int line;            /* its line in the bot file */
} ef_nlu_ranked;

/* How many repairs a result lists, and bytes (with the NUL) a repaired word
 * may show. */
#define EF_NLU_MAX_REPAIRS 8
#define EF_NLU_WORD_MAX 64

/* One word the normalizer repaired before matching (normalize.c): the
 * customer's word, what it was read as, and why. */
typedef struct ef_nlu_repair {
    const char *kind;           /* static: "layout", "translit" or "spelling" */
    size_t start, end;          /* byte offsets of the word in the message as given */
    char from[EF_NLU_WORD_MAX]; /* the word as written (folded), cut to fit */
    char to[EF_NLU_WORD_MAX];   /* what it was read as */
} ef_nlu_repair;

/* What the matcher understood. Plain data with no pointer into the message
 * and no heap memory: it may be copied with memcpy or assignment, and is
 * valid as long as the bot it came from. */
typedef struct ef_nlu_result {
    /* The best intent, or EF_NLP_FALLBACK when nothing reached the bot's
     * fallback_threshold. Borrowed from the bot (or static). */
    const char *intent;
    /* The best intent's confidence; for fallback, 1 minus the best
     * candidate's confidence (1 when nothing matched at all). */
    double confidence;
    /* Language of the message: the language of the winning pattern when it
     * was listed under one, else guessed from the script (Cyrillic letters ->
     * the bot's first Cyrillic-script language). One of the bot's languages. */
    const char *lang;
    /* Every intent with a matching pattern, best first (ranked[0] is the
     * winner unless the result is fallback), at most EF_NLU_MAX_RANKED. */
    size_t n_ranked;
    ef_nlu_ranked ranked[EF_NLU_MAX_RANKED];
    /* Non-overlapping entities in text order. */
    size_t n_entities;
    ef_nlu_entity entities[EF_NLU_MAX_ENTITIES];
    /* The words read otherwise than written (a keyboard layout left on
     * Latin, transliteration, a typo), in text order; the intent and the
     * entities come from the repaired text. */
    size_t n_repairs;
    ef_nlu_repair repairs[EF_NLU_MAX_REPAIRS];
    /* The statistical second opinion (the bot's examples as a character
     * n-gram model), asked only when no rule gave an intent: its best class
     * (an intent, or EF_NLP_FALLBACK when the message looks like the bot's
     * out-of-scope examples) and that class's probability; model_intent is
     * NULL when it was not asked or had nothing to say. by_model: the
     * intent above is the model's (model_confidence reached
     * bot.model_threshold; ranked then lists only what patterns matched). */
    const char *model_intent;
    double model_confidence;
    bool by_model;
} ef_nlu_result;

/* Creates the working memory one thread needs to match messages against bot:
 * PCRE2 match data, a JIT stack, a match context with limits and buffers
 * that grow to the longest message seen (then never again). Owned by the
 * caller (ef_nlp_scratch_free); use it from one thread at a time and only
 * with this bot. Returns NULL when bot is NULL. */
ef_nlp_scratch *ef_nlp_scratch_new(const ef_bot *bot);
void ef_nlp_scratch_free(ef_nlp_scratch *sc);

/* Options of a scratch (all off by default). */
enum {
    EF_NLP_NO_ENTITIES = 1 << 0,  /* skip entity extraction (intents only) */
    EF_NLP_NO_PREFILTER = 1 << 1, /* run every pattern on every message; the
                                     result must be identical (tests, fuzzing) */
    EF_NLP_NO_REPAIR = 1 << 2,    /* no second, repaired reading (layout,
                                     transliteration, spelling): the message
                                     only as written (measurements) */
    EF_NLP_NO_MODEL = 1 << 4,     /* no statistical second opinion on
                                     fallbacks: rules only (measurements) */
    EF_NLP_NO_WORD_MEMO = 1 << 3, /* ask the dictionaries (and the model's
                                     n-gram table) about every word, and
                                     repair every word anew, instead of
                                     remembering their answers in the
                                     scratch: same results, the cost of
                                     words never seen before (measurements) */
};
void ef_nlp_scratch_set_options(ef_nlp_scratch *sc, unsigned options);

/* Understands one message.
 *
 * text is UTF-8 of len bytes (it need not be NUL-terminated; only the first
 * EF_NLP_MAX_TEXT bytes are examined). now_unix is the current time in Unix
 * seconds: relative dates ("завтра", "в пятницу") are resolved against the
 * local date of that instant in the bot's timezone.
 *
 * Returns 0 and fills *out; EF_EINVAL when an argument is NULL or sc was made
 * for another bot; EF_EUTF8 when text is not valid UTF-8 (out untouched).
 * Never allocates once the scratch has grown to the message's length. A
 * pattern that exceeds PCRE2's match limit counts as not matching. */
int ef_nlp_match(const ef_bot *bot, ef_nlp_scratch *sc, const char *text, size_t len,
                 int64_t now_unix, ef_nlu_result *out);

/* Resets a result to empty (intent NULL, nothing ranked, no entities). The
 * result holds no heap memory, so this is only needed to reuse one safely. */
void ef_nlu_result_cleanup(ef_nlu_result *r);

/* The first entity of this type in r, or NULL. Borrowed from r. */
const ef_nlu_entity *ef_nlu_result_entity(const ef_nlu_result *r, const char *type);

/* Serializes a result as one JSON object, exactly:
 *   {"intent": "..", "confidence": 0.9, "entities": [{"type": "..",
 *    "value": "..", "start": 0, "end": 6}], "ranked": [{"intent": "..",
 *    "confidence": 0.9}]}
 * then, when there were any, "repairs": [{"from", "to", "kind", "start",
 * "end"}], and when the model was asked, "model": {"intent": "..",
 * "confidence": 0.83, "used": true}
 * (confidences rounded to 4 decimals). Returns a string owned by the caller
 * (ef_free), or NULL when r is NULL or r->intent is NULL. */
char *ef_nlu_result_json(const ef_nlu_result *r);

#endif /* EF_NLP_H */
