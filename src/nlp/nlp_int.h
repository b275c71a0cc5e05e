/*
 * nlp_int.h -- the compiled bot definition and the matcher's working memory,
 * shared by botdef.c (which builds a bot), prefilter.c (pattern rewriting and
 * the literal index), match.c (normalizing, matching, scoring), scratch.c
 * (the per-thread scratch), entities.c (entity extraction), lang.c
 * (language tags) and tz.c (the bot's timezone). Private to these files.
 *
 * What it must never do: be included outside src/nlp/ and its unit tests
 * (the FSM files have their own fsm_int.h), or hold anything mutable that a
 * bot shares between threads.
 *
 * Thread model: an ef_bot is immutable once ef_bot_load() returns; an
 * ef_nlp_scratch belongs to one thread at a time.
 */
#ifndef EF_NLP_INT_H
#define EF_NLP_INT_H

#include "nlp/nlp.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <pthread.h>

/* ---- built-in entity types ------------------------------------------- */

enum {
    EF_NLP__ENT_PHONE = 0,
    EF_NLP__ENT_EMAIL,
    EF_NLP__ENT_ORDER,
    EF_NLP__ENT_MONEY,
    EF_NLP__ENT_DATE,
    EF_NLP__ENT_TIME,
    EF_NLP__ENT_NUMBER,
    EF_NLP__ENT__BUILTIN
};
/* "phone", "email", ... indexed by the enum above. */
extern const char *const ef_nlp__builtin_names[EF_NLP__ENT__BUILTIN];

/* ---- timezone (tz.c) -------------------------------------------------- */

/* A POSIX TZ rule (the footer of a TZif file): std offset, and when dst is
 * set, the dst offset and the two yearly switch rules. */
typedef struct ef_nlp__tzrule {
    int32_t std_off; /* seconds east of UTC */
    int32_t dst_off;
    bool has_dst;
    /* kind 'J' (Julian day 1..365 without Feb 29), 'D' (zero-based day
     * 0..365) or 'M' (month, week 1..5, weekday 0..6); time in seconds of
     * local time (may be negative or above 24h). */
    struct {
        char kind;
        int a, b, c;
        int32_t time;
    } start, end;
} ef_nlp__tzrule;

typedef struct ef_nlp__tz {
    size_t n;       /* transitions */
    int64_t *at;    /* Unix seconds of each transition, ascending */
    int32_t *off;   /* offset in force from at[i] on */
    int32_t before; /* offset before the first transition */
    bool has_rule;
    ef_nlp__tzrule rule; /* after the last transition */
} ef_nlp__tz;

/* Loads zone `name` (e.g. "Europe/Moscow") from $TZDIR or
 * /usr/share/zoneinfo. Returns 0, EF_ENOTFOUND when there is no such zone
 * (or the name is not a plain relative path), EF_EINVAL when the file is not
 * a TZif file we understand (why says what). */
int ef_nlp__tz_load(ef_nlp__tz *tz, const char *name, char *why, size_t whylen);
void ef_nlp__tz_cleanup(ef_nlp__tz *tz);
int32_t ef_nlp__tz_offset(const ef_nlp__tz *tz, int64_t t);
/* Parses a POSIX TZ string such as "CET-1CEST,M3.5.0,M10.5.0/3". */
int ef_nlp__tzrule_parse(const char *s, ef_nlp__tzrule *out);

/* ---- patterns and the prefilter (prefilter.c) ------------------------- */

typedef enum ef_nlp__pat_kind {
    EF_NLP__PAT_INTENT = 0, /* owner = intent index */
    EF_NLP__PAT_ENTITY,     /* custom regex entity; owner = custom entity index */
    EF_NLP__PAT_SYNONYMS,   /* custom synonyms entity; owner = custom entity index */
    EF_NLP__PAT_ORDER       /* the order_number pattern */
} ef_nlp__pat_kind;

/* One compiled pattern. Intent patterns come first, grouped by intent in
 * file order; entity patterns follow. */
typedef struct ef_nlp__pat {
    pcre2_code *code;
    bool jit;    /* pcre2_jit_compile succeeded */
    bool always; /* no required literal: runs on every message */
    ef_nlp__pat_kind kind;
    uint32_t owner;
    uint32_t value_group; /* entity regex: number of the group "value", 0 = none */
    uint32_t canon;       /* synonyms: the variant's canonical value (entity's canon[]) */
    /* An intent pattern with a top-level alternation is compiled as one
     * entry per branch (ef_nlp__top_branches); all of them carry the index
     * of the first branch here and share its source. Else the own index. */
    uint32_t group;
    /* An intent's negative pattern: when it matches, the intent is no
     * candidate (its owner is the intent; never counted as a match). */
    bool negative;
    /* An intent pattern with a second required literal set: its prefilter
     * bit (above the patterns' and the gate's), which must be set too for
     * the pattern to run; 0: none. */
    uint32_t also;
    /* An intent pattern (branch) with a core (ef_nlp__pattern_core): its
     * compiled core, run first; NULL: none. */
    pcre2_code *core;
    bool core_jit;
    const char *lang; /* borrowed from the bot's languages, or NULL */
    char *source;     /* as written in the file; owned by pats[group] */
    int line;
} ef_nlp__pat;

/* What an unescaped `~` (a stem's ending) becomes: any letters, unless the
 * word they end is an adjective or adverb made of the stem with -ск- or
 * -ивн- and an ending (a different word: оператор~ does not match
 * "операторский", операт~ not "оперативно", курьер~ not "курьерская").
 * Inflections, verb forms and nouns stay (заказ~: заказа, заказать,
 * заказывала, заказчик; пропуск~: пропуска). A lookahead, so the literal
 * prefilter and the lowering see no new required text. */
#define EF_NLP__STEM_ENDING "(?!\\p{L}*?(?:ск|ивн)[аеиоуыя]\\p{L}{0,2}+(?!\\p{L}))\\p{L}*"

/* Rewrites a pattern as written into what PCRE2 compiles: an unescaped `~`
 * outside a character class becomes EF_NLP__STEM_ENDING (the stem syntax,
 * word-boundary aware), ё/Ё become е,
 * typographic apostrophes ’‘ become ', dashes ‐‑‒–—― and − become -, and
 * Unicode spaces become a plain space -- the same folds the matcher applies
 * to messages. Returns the new pattern (NUL-terminated, ef_free) with its
 * length in *outlen and, in *map (ef_free), for each byte of it plus one,
 * the offset in src it came from. */
char *ef_nlp__pattern_rewrite(const char *src, size_t n, size_t *outlen, uint32_t **map);

/* Splits a (rewritten) pattern at its top-level '|' into branches: returns
 * their number with their offsets and lengths in off/len, 1 when there is
 * nothing to split or splitting could change the meaning (inline options,
 * verbs, back references, \Q), 0 when there are more than max. Matching the
 * branches one by one and keeping the leftmost match (the earlier branch on
 * a tie) gives exactly what the whole pattern gives, and lets the prefilter
 * wake up only the branches whose own literals occur. */
size_t ef_nlp__top_branches(const char *p, size_t n, size_t *off, size_t *len, size_t max);

/* The core of a (rewritten) branch that opens with pieces which may match
 * nothing ("(?:\S+ ){0,2}\b(?:мтс|сбер~)(?: \S+){0,3}"): the branch
 * without its leading and trailing optional pieces, in p[*off..*off+*len).
 * Every match of the branch holds a match of the core, so where the core
 * does not match, neither does the branch -- and the core alone scans a
 * message for much less. false when the branch does not open with an
 * optional piece, is nothing else, or uses what this does not follow (see
 * ef_nlp__top_branches). */
bool ef_nlp__pattern_core(const char *p, size_t n, size_t *off, size_t *len);

/* The form of a rewritten pattern to compile without PCRE2_CASELESS (see
 * prefilter.c): lowercased, classes completed with lowercase twins. Returns
 * it (ef_free) with its length, or NULL when the pattern uses something
 * whose case behaviour this does not model; it is then compiled as is with
 * PCRE2_CASELESS. Either way the answers are the same on normalized text. */
char *ef_nlp__pattern_lower(const char *rw, size_t n, size_t *outlen);

/* Where an occurrence of a required literal stands (ef_nlp__lits.at): the
 * pattern asserts \b (EF_NLP__AT_WORD) or ^ / \A (EF_NLP__AT_START) right
 * before the literal, so an occurrence elsewhere (inside a word, after the
 * first byte) cannot be part of a match. */
#define EF_NLP__AT_WORD 1u
#define EF_NLP__AT_START 2u
/* ... and every match of the pattern starts with that occurrence (no piece
 * before the literal consumes anything): the pattern cannot match before
 * the first place one of its literals counts, so it is run from there. */
#define EF_NLP__AT_MATCH 4u

/* A set of literal byte strings. */
typedef struct ef_nlp__lits {
    size_t n;
    char **s;
    uint32_t *len;
    unsigned at; /* EF_NLP__AT_*: true of the occurrence every match holds */
} ef_nlp__lits;

/* Finds literals that every match of the (rewritten) pattern must contain:
 * on true, *out holds a set such that any match contains at least one of
 * them (folded like the matcher folds text: lowercase, ё -> е); the one-byte
 * string "\x01" stands for "a decimal digit" (\d, [0-9]). false when no
 * such set was found (the pattern uses
 * constructs the analysis does not follow, or may match without any
 * literal); the pattern then runs on every message. Never wrong in the other
 * direction: skipping a pattern whose literals are absent cannot lose a
 * match. When also is not NULL and the pattern is one sequence (no
 * top-level alternation), *also may receive a second, different set that
 * every match also contains one of (from another part of the sequence:
 * "заказ~ .{0,30} где"); left untouched when there is none. */
bool ef_nlp__required_literals(const char *pat, size_t n, ef_nlp__lits *out, ef_nlp__lits *also);
void ef_nlp__lits_cleanup(ef_nlp__lits *l);

/* The literal index: which patterns may match, from one pass over the
 * message. Keys are the first 8 bytes of literals of 8 bytes or more (four
 * Cyrillic letters: two would be shared by too many literals), the first 4
 * of 4- to 7-byte ones and the first 2 of 2- and 3-byte ones; a bitmap per
 * key length rejects most positions with one memory access. One-byte (ASCII) literals sit in a
 * direct table, and patterns that need a digit are candidates whenever the
 * message may hold one. The literals of one bucket lie next to each other,
 * and so do their bytes: a bucket is read in one or two cache lines. */
typedef struct ef_nlp__pflit {
    uint64_t key; /* the first 8, 4 or 2 bytes, or the one byte */
    uint32_t off; /* into bytes */
    uint32_t len; /* bytes */
} ef_nlp__pflit;

/* A literal's patterns (in the order of lits): pat_ids[pats..pats+npats). */
typedef struct ef_nlp__pfpats {
    uint32_t pats;
    uint32_t npats;
    /* the EF_NLP__AT_* conditions every one of those patterns needs where
     * the literal starts: where one fails, the literal counts for none */
    uint32_t need;
} ef_nlp__pfpats;

typedef struct ef_nlp__prefilter {
    size_t n_bits;  /* patterns + gates */
    size_t n_words; /* 64-bit words of a candidate bitset */
    uint64_t *always;
    uint64_t *on_digit; /* patterns that are candidates when a digit may occur */
    /* patterns whose every match starts at an occurrence of one of their
     * literals (EF_NLP__AT_MATCH on all of them, none a digit): the probe's
     * first such occurrence is where their regex may start */
    uint64_t *from_first;
    uint64_t bloom2[1024]; /* 65536 bits, indexed by the 2-byte key itself */
    uint64_t bloom4[1024]; /* 65536 bits, indexed by a hash of the 4-byte key */
    uint64_t bloom8[1024]; /* 65536 bits, indexed by a hash of the 8-byte key */
    /* the buckets: literals [start[b], start[b + 1]) of lits; 256 for the
     * one-byte literals by their byte, then mask2 + 1, mask4 + 1 and
     * mask8 + 1 by the hash of the key (start1..start8 point into start) */
    uint32_t *start;
    const uint32_t *start1, *start2, *start4, *start8;
    uint32_t mask2, mask4, mask8;
    ef_nlp__pfpats *lpats;
    ef_nlp__pflit *lits;
    size_t n_lits;
    char *bytes;
    uint32_t *pat_ids;
    /* build-time list of (literal, bit) pairs */
    size_t n_pend, cap_pend;
    struct ef_nlp__pfpend *pend;
} ef_nlp__prefilter;

void ef_nlp__pf_init(ef_nlp__prefilter *pf, size_t n_bits);
void ef_nlp__pf_add(ef_nlp__prefilter *pf, const char *lit, size_t len, uint32_t bit);
/* The same for a literal of a set whose `at` is at (EF_NLP__AT_*): an
 * occurrence counts only where it can stand. */
void ef_nlp__pf_add_at(ef_nlp__prefilter *pf, const char *lit, size_t len, uint32_t bit,
                       unsigned at);
void ef_nlp__pf_set_always(ef_nlp__prefilter *pf, uint32_t bit);
void ef_nlp__pf_build(ef_nlp__prefilter *pf);
/* ORs into bits (n_words words) the bit of every pattern one of whose
 * literals occurs in s (normalized text), and of every pattern that needs a
 * digit when maybe_digit (s holds an ASCII digit or a character at or above
 * U+0660 outside the symbol and emoji blocks: where all other Unicode
 * decimal digits live). When first is not NULL (n_bits entries), first[b]
 * receives the byte offset of the occurrence that set bit b, for the bits
 * the probe set (its first one: the probe goes left to right). */
void ef_nlp__pf_probe(const ef_nlp__prefilter *pf, const char *s, size_t n, bool maybe_digit,
                      uint64_t *bits, uint32_t *first);
void ef_nlp__pf_cleanup(ef_nlp__prefilter *pf);

/* ---- the repair vocabulary (normalize.c) ------------------------------- */

/* One word or stem the bot knows, folded, with its code points. */
typedef struct ef_nlp__ventry {
    char *w;
    uint8_t flags; /* 1 word, 2 stem (any ending), 4 Latin script */
    uint8_t ncp;
    uint32_t mask; /* which of the letters а..я it has: a cheap bound on the distance */
    uint32_t cp[40];
} ef_nlp__ventry;

/* A deletion index (vindex.c): key (a hash of a string of letters) ->
 * postings, each entry << 3 | letters deleted from the entry. */
typedef struct ef_nlp__dslot {
    uint64_t key; /* 0: empty */
    uint32_t off, cnt;
} ef_nlp__dslot;

typedef struct ef_nlp__dindex {
    ef_nlp__dslot *slot; /* open addressing: one cache line a probe */
    uint64_t *bloom;     /* a bit per key (by its high half): most misses stop here */
    size_t bloom_bits;
    size_t mask;
    uint32_t *post;
    size_t n_post;
} ef_nlp__dindex;

#define EF_NLP__DEL_MAX 4      /* most deletions indexed: a cost bound of 2.0 */
#define EF_NLP__IDX_MAXCP 16   /* longer entries are always candidates */
#define EF_NLP__QUERY_MAXCP 24 /* longer words are compared with every entry */
#define EF_NLP__STEM_KEY 3     /* stem keys: the first letters of a deletion */

typedef struct ef_nlp__vocab {
    ef_nlp__ventry *e; /* sorted by w */
    size_t n, cap;
    /* built once at load (vindex.c), read-only afterwards */
    uint64_t *kslot; /* known-word table: 24 bits of hash, the flags of the
                      * text's entries, its length in bytes (255: longer),
                      * its first entry + 1 (24 bits); 0 empty */
    size_t kmask;
    size_t stem_maxb;            /* the longest stem, bytes */
    uint64_t stem_lens;          /* bit k: a stem of k bytes (63: longer) */
    uint64_t stem_head[64];      /* bit: a stem starts with this head (vindex.c) */
    ef_nlp__dindex words, stems; /* Cyrillic words and stems by deletions */
    uint32_t *longe;             /* Cyrillic entries too long to index */
    size_t n_long;
    void *spellers[4]; /* Hunhandles of bot.dictionary */
    size_t n_spellers;
    pthread_mutex_t lock; /* serializes the spellers (they keep state per check) */
} ef_nlp__vocab;

/* Builds the known-word table and the deletion indexes of v (vindex.c);
 * v->e must be sorted and final. */
void ef_nlp__vocab_index(ef_nlp__vocab *v);
void ef_nlp__vocab_index_cleanup(ef_nlp__vocab *v);
/* The flags of every entry whose text is exactly w[0..n), ORed; 0 when the
 * bot has no such word or stem. */
unsigned ef_nlp__vocab_flags(const ef_nlp__vocab *v, const char *w, size_t n);
/* Is w[0..n) (folded UTF-8 of one script) a word of the bot in that script,
 * or does it start with one of its stems (at least min_stem bytes long)? */
bool ef_nlp__vocab_knows(const ef_nlp__vocab *v, const char *w, size_t n, bool latin,
                         size_t min_stem);
/* Lists in out (room for v->n) each Cyrillic entry that may lie within e
 * edits of the word a[0..na) (a word) or of a prefix of it (a stem), once:
 * entries already stamped `now` in stamp[] (v->n of them) are skipped and
 * listed ones are stamped. Returns how many, or SIZE_MAX when the word is
 * too long for the index (compare with every entry instead). */
size_t ef_nlp__vocab_candidates(const ef_nlp__vocab *v, const uint32_t *a, size_t na, unsigned e,
                                uint32_t *stamp, uint32_t now, uint32_t *out);

/* Builds bot->vocab from the bot's examples, patterns and synonyms. */
void ef_nlp__vocab_build(ef_bot *bot);
/* Loads hunspell dictionary `name` (e.g. "ru_RU", "en_US") for the repair
 * stage. Returns 0, or EF_ENOTFOUND / EF_EINVAL / EF_ELIMIT with why set. */
int ef_nlp__vocab_dictionary(ef_nlp__vocab *v, const char *name, char *why, size_t whylen);
void ef_nlp__vocab_cleanup(ef_nlp__vocab *v);

/* Reads sc->norm again with each unknown word repaired (layout,
 * transliteration, spelling: normalize.c) into sc->rbuf / rsrc / rsrcend
 * (sc->rn bytes, original byte ranges per byte) and lists the repairs in
 * sc->repairs. Returns their number (0: nothing to repair). */
size_t ef_nlp__repair(const ef_bot *bot, ef_nlp_scratch *sc);

/* A word the repair stage's first pass read before, in a thread's memo
 * (the scratch's kword, EF_NLP__KWORDS slots indexed by a hash of the
 * word's bytes; a slot holds the last word that landed on it): the pass's
 * decision depends on the word's bytes alone (its scripts, the bot's
 * vocabulary, the dictionaries), so a word seen before costs one compare
 * instead of the vocabulary, dictionary and spelling searches. Kept: what
 * the pass counted for a word it left as written, or the repair it made
 * (its kind and reading). Words, and readings, over EF_NLP__KWORD_BYTES
 * bytes are not kept. */
#define EF_NLP__KWORDS 512
#define EF_NLP__KWORD_BYTES 30
enum {
    EF_NLP__KW_ENG = 1,   /* kept: a Latin word a dictionary knows */
    EF_NLP__KW_RULAT = 2, /* kept: a Latin word of the bot's no dictionary knows */
    EF_NLP__KW_KIND = 12  /* repaired: 4 layout, 8 translit, 12 spelling */
};
typedef struct ef_nlp__kword {
    uint8_t len;    /* bytes of the word, 0: empty */
    uint8_t flags;  /* EF_NLP__KW_* */
    uint8_t to_len; /* bytes of the repaired reading */
    char w[EF_NLP__KWORD_BYTES];
    char to[EF_NLP__KWORD_BYTES + 1]; /* the repaired reading, NUL-terminated */
} ef_nlp__kword;

/* ---- the bot ---------------------------------------------------------- */

typedef struct ef_nlp__intent {
    char *name;
    int priority;
    uint32_t first_pat, n_pats;
} ef_nlp__intent;

typedef struct ef_nlp__entity {
    char *name;
    bool synonyms; /* else a regex entity */
    char **canon;  /* synonyms: the canonical values */
    size_t n_canon;
    uint32_t first_pat, n_pats;
} ef_nlp__entity;

typedef struct ef_nlp__example {
    uint32_t intent;
    uint32_t topic; /* out_of_scope examples: 0 untopiced, else 1 + the topic's index */
    char *text;
    const char *lang;
    bool negative;
    int line, column;
} ef_nlp__example;

/* The statistical second opinion (model.c): character n-gram naive Bayes
 * over the bot's examples. Classes: the intents, then out_of_scope's
 * untopiced examples (n_intents) and one per out_of_scope topic
 * (n_intents + 1 + k), then the negative examples (the last). Empty (slots
 * NULL) when the bot has examples of fewer than two classes. */
/* One n-gram of the model (8 bytes: the table stays in cache): its hash
 * (0 = empty slot) and info = start << 9 | len << 1 | of_intent, its
 * entries being [start, start + len) (len <= 255: a bot with more classes
 * keeps the first 255 that saw the n-gram), of_intent whether an intent's
 * example has it. len 0: an n-gram many classes saw, whose deltas are the
 * dense row `start` of the model's rows (model.c, rank_classes()). */
typedef struct ef_nlp__mslot {
    uint32_t key, info;
} ef_nlp__mslot;

/* A class that saw the n-gram: its log P of the n-gram less unseen[cls]. */
typedef struct ef_nlp__ment {
    uint32_t cls;
    float delta;
} ef_nlp__ment;

typedef struct ef_nlp__model {
    uint32_t n_classes;   /* n_intents + n_oos + 1 */
    uint32_t n_oos;       /* out_of_scope's classes: 1 + its topics */
    uint32_t mask;        /* slots - 1 */
    uint32_t n_features;  /* distinct n-grams seen in training */
    uint32_t n_trained;   /* classes with examples */
    ef_nlp__mslot *slots; /* open addressing by hash */
    ef_nlp__ment *ent;
    /* n_rows rows of row_len floats (n_classes rounded up to 4, 0 for a
     * class that never saw the n-gram): the n-grams of EF_NLP__DENSE_MIN
     * classes or more, added a vector at a time; NULL when the classes are
     * more than EF_NLP__DENSE_MAX */
    float *rows;
    uint32_t n_rows, row_len;
    bool *trained; /* per class: it has examples */
    float *unseen; /* per class: log P of an n-gram it never saw */
    /* per slot: the largest delta an out_of_scope class (untopiced or a
     * topic) adds for the n-gram, 0 when none saw it (model.c,
     * oos_cannot_win()), and the largest unseen[] of a trained one and
     * of their magnitudes */
    float *oos_max;
    float oos_unseen, oos_unseen_mag;
} ef_nlp__model;

#define EF_NLP__DENSE_MIN 10
/* out_of_scope topics a bot may have (the model's classes stay dense) */
#define EF_NLP__MAX_TOPICS 32
#define EF_NLP__DENSE_MAX 64

/* Trains bot->model from bot->examples (the intents' positive ones; the
 * out_of_scope and negative ones as the other class). Call once at load,
 * after the examples are read. */
void ef_nlp__model_train(ef_bot *bot);
void ef_nlp__model_cleanup(ef_nlp__model *m);

/* A word the model read before, in a thread's memo (the scratch's mword,
 * EF_NLP__MWORDS of them, at a hash of the word's bytes or beside it): its
 * n-grams' count and the slots of the known ones, for one reading (as
 * written, or transliterated). Words over EF_NLP__MWORD_BYTES bytes or with
 * more known n-grams than EF_NLP__MWORD_SLOTS are not kept. */
#define EF_NLP__MWORDS 512
#define EF_NLP__MWORD_BYTES 30
#define EF_NLP__MWORD_SLOTS 36
typedef struct ef_nlp__mword {
    uint8_t len;       /* bytes of the word, 0: empty */
    bool tl;           /* the transliterated reading */
    uint8_t known;     /* known n-grams: slot[0..known) */
    uint8_t of_intent; /* of them, those an intent's example has */
    uint16_t nf;       /* the word's n-grams */
    char w[EF_NLP__MWORD_BYTES];
    uint32_t slot[EF_NLP__MWORD_SLOTS];
} ef_nlp__mword;

/* Classifies text[0..n) (any UTF-8; folded here): *cls is the best class
 * (n_intents: out of scope, its topics' probabilities added up; the
 * last: the negative examples) and *p its probability. score holds
 * m->n_classes floats of working memory; memo, when not NULL, the calling
 * thread's word memo (the same answers, faster for words met before).
 * EF_ENOTFOUND when the model is empty or knows too few of the message's
 * n-grams to say anything. */
int ef_nlp__model_classify(const ef_nlp__model *m, const char *text, size_t n, float *score,
                           ef_nlp__mword *memo, uint32_t *cls, double *p);

/* Whether the model takes text[0..n) for "something else" (the
 * out_of_scope and negative examples) rather than any intent: 0 and *p,
 * that class's probability, when it does; EF_ENOTFOUND when another class
 * wins, the bot has no such examples, or the model knows under 70% of the
 * message's n-grams (in any class's examples). */
int ef_nlp__model_other(const ef_nlp__model *m, const char *text, size_t n, float *score,
                        ef_nlp__mword *memo, double *p);

/* ef_nlp__model_other() when the caller knows an intent (rival, a class
 * under n_intents; UINT32_MAX: none) the message may be about: the same
 * answer, cheaper where the rival's score alone shows that no out_of_scope
 * class can be the best (most weak rule answers the model does not veto). */
int ef_nlp__model_other_than(const ef_nlp__model *m, const char *text, size_t n, float *score,
                             ef_nlp__mword *memo, uint32_t rival, double *p);

/* Gate bits after the patterns in a candidate bitset: set when a date or
 * time keyword stem ("завтр", "понедельн", "noon", ...) occurs. */
#define EF_NLP__GATE_WORDS(bot) ((uint32_t)(bot)->n_pats)

struct ef_bot {
    uint64_t serial; /* ef_bot_serial */
    char *path;
    char *name;
    char **langs;
    size_t n_langs;
    int cyr_lang; /* index of the first Cyrillic-script language, or -1 */
    char *tz_name;
    ef_nlp__tz tz;
    double threshold;
    double model_threshold; /* bot.model_threshold: the model's answer counts from here */

    ef_nlp__intent *intents;
    size_t n_intents;
    /* bot-level out_of_scope patterns: intent patterns whose owner is
     * n_intents (a hidden candidate scored like an intent; when it explains
     * the message at least as well as the best intent, the answer is
     * fallback). Its examples are examples of intent n_intents (fallback). */
    uint32_t n_oos_pats;
    /* out_of_scope.topics: the author's topics of out-of-scope examples
     * (their names; example topic k + 1 is oos_topics[k]). The model has a
     * class per topic and one for the untopiced examples (model.c). */
    char **oos_topics;
    uint32_t n_oos_topics;
    ef_nlp__entity *entities; /* custom */
    size_t n_entities;
    ef_nlp__pat *pats;
    size_t n_pats;
    size_t n_intent_pats; /* pats[0 .. n_intent_pats) belong to intents */
    /* index of the pattern of bot.order_number_pattern, or UINT32_MAX for
     * the built-in order numbers (entities.c recognizes those itself) */
    uint32_t order_pat;
    uint32_t max_groups; /* largest capture group count of any pattern */
    ef_nlp__prefilter pf;

    ef_nlp__example *examples;
    size_t n_examples;

    const char **intent_names; /* n_intents + 1: ... then "fallback" */
    const char **entity_types; /* built-ins then custom */
    size_t n_entity_types;

    ef_fsm_def *fsm;
    ef_nlp__vocab vocab; /* for the repair stage (normalize.c) */
    ef_nlp__model model; /* the second opinion on fallbacks (model.c) */
};

/* ---- the scratch ------------------------------------------------------ */

/* One entity candidate before overlaps are resolved. Offsets are in the
 * normalized text. */
typedef struct ef_nlp__cand {
    const char *type;
    int rank;     /* lower wins a tie of equal length: custom < email < phone < ... */
    uint32_t seq; /* order of discovery: the last tie-break, for determinism */
    uint32_t start, end;
    char value[EF_NLU_VALUE_MAX];
} ef_nlp__cand;

#define EF_NLP__MAX_CANDS 256
#define EF_NLP__MAX_SPANS 4

typedef struct ef_nlp__acc {
    bool vetoed; /* a negative pattern of the intent matched */
    uint32_t n_matched;
    uint32_t best_pat, best_len;
    uint32_t n_spans;
    uint32_t span[EF_NLP__MAX_SPANS][2];
} ef_nlp__acc;

struct ef_nlp_scratch {
    const ef_bot *bot;
    unsigned options;
    const char *text; /* the message, during ef_nlp_match() only */
    pcre2_match_data *md;
    pcre2_match_context *mctx;
    pcre2_jit_stack *jit_stack;

    /* the normalized message and, per byte of it, where it came from */
    size_t cap;
    size_t n;
    bool maybe_digit; /* see ef_nlp__pf_probe */
    bool has_digit;   /* an ASCII digit occurs */
    bool has_at;      /* '@' occurs */
    bool has_sign;    /* '$' or a currency sign U+20A0..U+20BF occurs */
    bool has_stop;    /* '.', '!' or '?' occurs (match.c: sentences) */
    char *norm;
    uint32_t *src, *srcend;
    uint32_t *alnum; /* alnum[i]: letters and digits in norm[0..i) */

    uint64_t *cand;  /* candidate patterns, pf.n_words words */
    uint32_t *first; /* per prefilter bit: where its first literal occurs (pf_probe) */

    ef_nlp__acc *acc; /* per intent, and one for out_of_scope (n_intents) */
    bool oos;         /* the last reading fell back as out of scope */
    uint32_t *touched;
    size_t n_touched;

    ef_nlp__cand *cands;
    size_t n_cands;

    /* the repaired reading (normalize.c) and the second result */
    char *rbuf;
    uint32_t *rsrc, *rsrcend;
    size_t rn, rcap;
    size_t n_repairs;
    ef_nlu_repair repairs[EF_NLU_MAX_REPAIRS];
    ef_nlu_result alt;
    /* spelling candidates (vindex.c): stamps and list, bot->vocab.n each */
    uint32_t *vstamp, *vcand;
    uint32_t vnow;
    /* this thread's memo of dictionary answers (normalize.c) */
    uint64_t *dmemo; /* EF_NLP__DMEMO slots: word hash | answer bit, 0 empty */
    size_t dmemo_n;
    ef_nlp__kword *kword; /* words the repair stage read, EF_NLP__KWORDS
                             (normalize.c); made at its first call */
    bool read_repaired;   /* norm holds the repaired reading (match.c) */
    float *mscore;        /* the model's class scores, bot->model.n_classes */
    ef_nlp__mword *mword; /* the model's word memo, EF_NLP__MWORDS (model.c);
                             made when the model is first asked (match.c) */
    /* a message of several sentences won by small talk: the sentences it
     * did not touch, [rest_s, rest_e) of norm, empty when none (match.c) */
    uint32_t rest_s, rest_e;
};

#define EF_NLP__DMEMO 4096

/* ---- scratch.c: what match.c and entities.c share on the scratch ------- */

/* Runs a compiled pattern on the normalized text from offset `from`; returns
 * the pcre2 result (> 0 on a match, ovector in sc->md). */
int ef_nlp__exec(ef_nlp_scratch *sc, const ef_nlp__pat *p, size_t from);
/* Runs an intent pattern's core (p->core, not NULL) on the normalized
 * text: the pcre2 result, the ovector clobbered. */
int ef_nlp__exec_core(ef_nlp_scratch *sc, const ef_nlp__pat *p);

/* Adds an entity candidate (value truncated at a character boundary to fit).
 * Silently ignored beyond EF_NLP__MAX_CANDS. */
void ef_nlp__cand_add(ef_nlp_scratch *sc, const char *type, int rank, size_t start, size_t end,
                      const char *value, size_t vlen);

/* Finds every entity candidate in sc->norm (built-in and custom; the custom
 * ones only when their pattern's bit is set in sc->cand). */
void ef_nlp__entities_scan(const ef_bot *bot, ef_nlp_scratch *sc, int64_t now_unix);

/* The i-th date or time keyword that can stand alone ("завтра", "пятницу",
 * "noon"), or NULL past the last: botdef.c indexes them in the prefilter
 * under the word gate bit, so entities.c runs its word pass only when one
 * occurs. */
const char *ef_nlp__gate_word(size_t i);

/* How many of entities.c's keywords (date, time, amount and currency
 * words) its look-up does not find as written: 0 unless the signature map
 * that answers most look-ups before hashing loses one (unit tests). */
size_t ef_nlp__keywords_missed(void);

/* Where the e-mail address or URL that holds byte i of the normalized
 * text s[0..n) ends ("ivan@почта.рф", "https://ozon.ru/t/x", "www.wb.ru",
 * "wildberries.ru/catalog"), or 0 when byte i is in none: the repair stage
 * must leave such a token as it is (entities.c). */
size_t ef_nlp__address_end(const char *s, size_t n, size_t i);

/* True for languages written in Cyrillic script ("ru", "uk", "kk", ...)
 * (lang.c). */
bool ef_nlp__lang_cyrillic(const char *lang);

/* UTF-8 helpers shared by the nlp files. */
static inline size_t ef_nlp__u8len(unsigned char c)
{
    return c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
}

#endif /* EF_NLP_INT_H */
