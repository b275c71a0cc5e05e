/*
 * vindex.c -- the repair vocabulary's indexes, built once at load and
 * immutable afterwards (so any number of threads read them without a lock):
 *
 *  - the known-word table: an open-addressing hash of every distinct text of
 *    the vocabulary, so "does the bot know this word or this stem" is one
 *    probe per length instead of a binary search;
 *  - two deletion indexes (SymSpell-style) over the Cyrillic entries the
 *    spelling repair may choose: every string obtained by deleting up to
 *    EF_NLP__DEL_MAX letters of an entry points back at the entry, together
 *    with how many letters were deleted.
 *
 * Why deletions find every candidate: the weighted distance normalize.c
 * ranks with charges at least 0.5 for any edit, so a word within a cost
 * bound B of an entry is at most e = floor(B / 0.5) edits (substitutions,
 * insertions, deletions, adjacent transpositions) away from it, and two
 * strings e edits apart reduce to a common string by at most e deletions
 * from each side. Looking up every deletion of the message's word (up to e)
 * therefore returns a superset of the entries within B; the caller ranks the
 * superset with the exact distance, so the answer is the brute-force one.
 *
 * Stems match a prefix of the word ("доставк" in "доставку"), and that
 * prefix has no fixed length. Their index keys are the first
 * EF_NLP__STEM_KEY letters of each deletion (or the whole deletion when it
 * is shorter): a prefix of the word within e edits of the stem shares that
 * key with it, and the key depends only on the first EF_NLP__STEM_KEY + e
 * letters of the word.
 *
 * Entries longer than EF_NLP__IDX_MAXCP letters (none in the demo bot) are
 * not indexed but always returned as candidates.
 */
#include "nlp/nlp_int.h"

#include <stdlib.h>
#include <string.h>

#define V_WORD 1
#define V_STEM 2
#define V_LATIN 4
#define MIN_ENTRY 4 /* entries shorter than MIN_SPELL (normalize.c) never repair */

/* ---- hashing -------------------------------------------------------------- */

static uint64_t mix(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    return h;
}

/* The key of cp[0..n) in index `tag` (never 0: 0 marks an empty slot). */
static uint64_t cp_key(const uint32_t *cp, size_t n, unsigned tag)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL * (tag + 1) + n;
    for (size_t i = 0; i < n; i++)
        h = (h ^ cp[i]) * 0x100000001B3ULL;
    h = mix(h);
    return h ? h : 1;
}

/* Eight bytes at a time: a word costs two or three multiplications. */
static uint64_t bytes_hash(const char *s, size_t n)
{
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ n;
    for (; n >= 8; s += 8, n -= 8) {
        uint64_t x;
        memcpy(&x, s, 8);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    if (n) {
        uint64_t x = 0;
        memcpy(&x, s, n);
        h = (h ^ x) * 0xff51afd7ed558ccdULL;
    }
    return mix(h);
}

static size_t pow2_above(size_t n)
{
    size_t c = 16;
    while (c < n * 2)
        c *= 2;
    return c;
}

/* ---- the known-word table ---------------------------------------------------- */

/* A bit of the stem filter for the head of a text: its first four bytes
 * when Latin, six (three letters) when Cyrillic; every stem has that many
 * (MIN_STEM letters), so a word shorter than its head has no stem. */
static size_t head_len(const char *w)
{
    return (unsigned char)w[0] < 0x80 ? 4 : 6;
}

static uint32_t head_bit(const char *w)
{
    uint64_t x = 0;
    memcpy(&x, w, head_len(w));
    x *= 0x9E3779B97F4A7C15ULL;
    return (uint32_t)(x >> (64 - 12)); /* 4096 bits */
}

static void known_build(ef_nlp__vocab *v)
{
    if (v->n >= 0xFFFFFF)
        return; /* 16M entries: no table (every lookup says unknown) */
    v->kmask = pow2_above(v->n) - 1;
    v->kslot = ef_calloc(v->kmask + 1, sizeof(uint64_t));
    for (size_t i = 0; i < v->n; i++) {
        if (i > 0 && strcmp(v->e[i - 1].w, v->e[i].w) == 0)
            continue; /* the run of one text starts at its first entry */
        size_t len = strlen(v->e[i].w);
        uint64_t h = bytes_hash(v->e[i].w, len);
        size_t s = h & v->kmask;
        while (v->kslot[s])
            s = (s + 1) & v->kmask;
        unsigned f = 0;
        for (size_t k = i; k < v->n && strcmp(v->e[k].w, v->e[i].w) == 0; k++)
            f |= v->e[k].flags;
        if ((f & V_STEM) && len > v->stem_maxb)
            v->stem_maxb = len;
        if ((f & V_STEM) && len >= head_len(v->e[i].w)) {
            uint32_t hb = head_bit(v->e[i].w);
            v->stem_head[hb / 64] |= 1ull << (hb % 64);
            v->stem_lens |= 1ull << (len < 63 ? len : 63);
        }
        v->kslot[s] = (h >> 40) << 40 | (uint64_t)f << 32 |
                      (uint64_t)(len < 255 ? len : 255) << 24 | ((uint64_t)i + 1);
    }
}

/* The flags of the entries whose text is w[0..n), given its bytes_hash. */
static unsigned flags_h(const ef_nlp__vocab *v, const char *w, size_t n, uint64_t h)
{
    for (size_t s = h & v->kmask; v->kslot[s]; s = (s + 1) & v->kmask) {
        uint64_t k = v->kslot[s];
        if (k >> 40 != h >> 40 || ((k >> 24) & 0xFF) != (n < 255 ? n : 255))
            continue;
        const char *t = v->e[(k & 0xFFFFFF) - 1].w;
        if (memcmp(t, w, n) == 0 && t[n] == '\0')
            return (unsigned)(k >> 32) & 0xFF;
    }
    return 0;
}

unsigned ef_nlp__vocab_flags(const ef_nlp__vocab *v, const char *w, size_t n)
{
    return v->kslot ? flags_h(v, w, n, bytes_hash(w, n)) : 0;
}

bool ef_nlp__vocab_knows(const ef_nlp__vocab *v, const char *w, size_t n, bool latin,
                         size_t min_stem)
{
    if (!v->kslot)
        return false;
    unsigned script = latin ? V_LATIN : 0;
    unsigned f = ef_nlp__vocab_flags(v, w, n);
    if ((f & V_LATIN) == script && ((f & V_WORD) || ((f & V_STEM) && n >= min_stem)))
        return true;
    /* then every prefix that may be a stem; most words start with no stem's
     * head */
    if (n < head_len(w))
        return false;
    uint32_t hb = head_bit(w);
    if (!(v->stem_head[hb / 64] >> (hb % 64) & 1))
        return false;
    size_t last = n < v->stem_maxb ? n : v->stem_maxb;
    for (size_t k = min_stem; k <= last && k < n; k++) {
        if (((unsigned char)w[k] & 0xC0) == 0x80 || !(v->stem_lens >> (k < 63 ? k : 63) & 1))
            continue;
        f = flags_h(v, w, k, bytes_hash(w, k));
        if ((f & V_STEM) && (f & V_LATIN) == script)
            return true;
    }
    return false;
}

/* ---- deletion indexes --------------------------------------------------------- */

typedef struct posting {
    uint64_t key;
    uint32_t entry; /* entry << 3 | deletions */
} posting;

typedef struct gen {
    posting *p;
    size_t n, cap;
    uint32_t entry;
    bool stem;
} gen;

static void gen_push(gen *g, const uint32_t *cp, size_t n, unsigned ndel)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? g->cap * 2 : 4096;
        g->p = ef_realloc(g->p, g->cap * sizeof(*g->p));
    }
    size_t k = g->stem && n > EF_NLP__STEM_KEY ? EF_NLP__STEM_KEY : n;
    g->p[g->n].key = cp_key(cp, k, g->stem);
    g->p[g->n].entry = g->entry << 3 | ndel;
    g->n++;
}

/* Emits cp[0..n) and every string made from it by deleting up to `left`
 * more letters at positions >= from (each set of positions once). */
static void gen_deletions(gen *g, const uint32_t *cp, size_t n, size_t from, unsigned ndel,
                          unsigned left)
{
    gen_push(g, cp, n, ndel);
    if (!left)
        return;
    uint32_t d[EF_NLP__IDX_MAXCP];
    for (size_t i = from; i < n; i++) {
        memcpy(d, cp, i * sizeof(uint32_t));
        memcpy(d + i, cp + i + 1, (n - i - 1) * sizeof(uint32_t));
        gen_deletions(g, d, n - 1, i, ndel + 1, left - 1);
    }
}

static int posting_cmp(const void *a, const void *b)
{
    const posting *x = a, *y = b;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    return x->entry < y->entry ? -1 : x->entry > y->entry;
}

/* Sorts the postings, keeps the fewest deletions per (key, entry) and lays
 * them out behind an open-addressing table of keys. */
static void dindex_pack(ef_nlp__dindex *ix, gen *g)
{
    if (g->n)
        qsort(g->p, g->n, sizeof(*g->p), posting_cmp);
    size_t o = 0, n_keys = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (o && g->p[o - 1].key == g->p[i].key && g->p[o - 1].entry >> 3 == g->p[i].entry >> 3)
            continue; /* sorted: the first has the fewest deletions */
        n_keys += !o || g->p[o - 1].key != g->p[i].key;
        g->p[o++] = g->p[i];
    }
    ix->post = ef_malloc((o ? o : 1) * sizeof(uint32_t));
    ix->mask = pow2_above(n_keys) - 1;
    ix->slot = ef_calloc(ix->mask + 1, sizeof(*ix->slot));
    /* one bit per key in a bitmap of 8-16 bits a key: a word no entry is
     * near (most of the keys a query tries) is told by a bitmap that stays
     * in cache, not by the slot table (megabytes) */
    ix->bloom_bits = 64;
    while (ix->bloom_bits < n_keys * 8)
        ix->bloom_bits *= 2;
    ix->bloom = ef_calloc(ix->bloom_bits / 64, sizeof(uint64_t));
    for (size_t i = 0; i < o;) {
        size_t j = i;
        while (j < o && g->p[j].key == g->p[i].key) {
            ix->post[j] = g->p[j].entry;
            j++;
        }
        size_t s = g->p[i].key & ix->mask;
        while (ix->slot[s].key)
            s = (s + 1) & ix->mask;
        ix->slot[s].key = g->p[i].key;
        size_t b = (g->p[i].key >> 32) & (ix->bloom_bits - 1);
        ix->bloom[b / 64] |= 1ull << (b % 64);
        ix->slot[s].off = (uint32_t)i;
        ix->slot[s].cnt = (uint32_t)(j - i);
        i = j;
    }
    ix->n_post = o;
}

static void dindex_build(ef_nlp__vocab *v, ef_nlp__dindex *ix, unsigned flag)
{
    gen g = {.stem = flag == V_STEM};
    for (size_t i = 0; i < v->n; i++) {
        const ef_nlp__ventry *e = &v->e[i];
        if ((e->flags & V_LATIN) || !(e->flags & flag) || e->ncp < MIN_ENTRY)
            continue;
        if (e->ncp > EF_NLP__IDX_MAXCP) {
            v->longe = ef_realloc(v->longe, (v->n_long + 1) * sizeof(uint32_t));
            v->longe[v->n_long++] = (uint32_t)i;
            continue;
        }
        g.entry = (uint32_t)i;
        gen_deletions(&g, e->cp, e->ncp, 0, 0, EF_NLP__DEL_MAX);
    }
    dindex_pack(ix, &g);
    ef_free(g.p);
}

void ef_nlp__vocab_index(ef_nlp__vocab *v)
{
    known_build(v);
    dindex_build(v, &v->words, V_WORD);
    dindex_build(v, &v->stems, V_STEM);
}

static void dindex_cleanup(ef_nlp__dindex *ix)
{
    ef_free(ix->slot);
    ef_free(ix->bloom);
    ef_free(ix->post);
}

void ef_nlp__vocab_index_cleanup(ef_nlp__vocab *v)
{
    ef_free(v->kslot);
    dindex_cleanup(&v->words);
    dindex_cleanup(&v->stems);
    ef_free(v->longe);
}

/* ---- lookups ------------------------------------------------------------------ */

typedef struct query {
    const ef_nlp__dindex *ix;
    unsigned e;      /* most deletions on the entry's side */
    uint32_t *stamp; /* per entry: the query that listed it last */
    uint32_t now;    /* this query's stamp */
    uint32_t *out;   /* candidates, one per entry */
    size_t n_out;
} query;

static void probe(query *q, uint64_t key)
{
    const ef_nlp__dindex *ix = q->ix;
    size_t b = (key >> 32) & (ix->bloom_bits - 1);
    if (!(ix->bloom[b / 64] >> (b % 64) & 1))
        return;
    for (size_t s = key & ix->mask; ix->slot[s].key; s = (s + 1) & ix->mask) {
        if (ix->slot[s].key != key)
            continue;
        const uint32_t *post = ix->post + ix->slot[s].off;
        for (uint32_t k = 0; k < ix->slot[s].cnt; k++) {
            uint32_t p = post[k], entry = p >> 3;
            if ((p & 7) > q->e || q->stamp[entry] == q->now)
                continue;
            q->stamp[entry] = q->now;
            q->out[q->n_out++] = entry;
        }
        return;
    }
}

/* Probes the key of cp[0..n) (cut to `keep` letters) and of every string
 * made from it by deleting up to `left` more letters at positions >= from.
 * A deletion at or past `keep` leaves the first `keep` letters, and so the
 * key, as they were: only earlier positions are tried. */
static void probe_deletions(query *q, const uint32_t *cp, size_t n, size_t from, unsigned left,
                            unsigned tag, size_t keep)
{
    /* an entry (MIN_ENTRY letters or more) never shrinks below
     * MIN_ENTRY - e letters within e deletions; n < keep: cp is all of the
     * word, not a head cut at keep + e letters */
    if (n < keep && n + q->e < MIN_ENTRY)
        return;
    probe(q, cp_key(cp, n < keep ? n : keep, tag));
    if (!left)
        return;
    uint32_t d[EF_NLP__QUERY_MAXCP];
    size_t last = n < keep ? n : keep;
    for (size_t i = from; i < last; i++) {
        memcpy(d, cp, i * sizeof(uint32_t));
        memcpy(d + i, cp + i + 1, (n - i - 1) * sizeof(uint32_t));
        probe_deletions(q, d, n - 1, i, left - 1, tag, keep);
    }
}

/* Probes, in the stem index, every string made from cp[0..n) by deleting
 * exactly `left` letters at positions >= from. */
static void probe_exact(query *q, const uint32_t *cp, size_t n, size_t from, unsigned left)
{
    if (!left) {
        if (n + q->e >= MIN_ENTRY)
            probe(q, cp_key(cp, n, 1));
        return;
    }
    uint32_t d[EF_NLP__QUERY_MAXCP];
    for (size_t i = from; i + left <= n; i++) {
        memcpy(d, cp, i * sizeof(uint32_t));
        memcpy(d + i, cp + i + 1, (n - i - 1) * sizeof(uint32_t));
        probe_exact(q, d, n - 1, i, left - 1);
    }
}

size_t ef_nlp__vocab_candidates(const ef_nlp__vocab *v, const uint32_t *a, size_t na, unsigned e,
                                uint32_t *stamp, uint32_t now, uint32_t *out)
{
    if (na > EF_NLP__QUERY_MAXCP || e > EF_NLP__DEL_MAX || !v->kslot)
        return SIZE_MAX;
    query q = {.e = e, .stamp = stamp, .now = now, .out = out};
    /* words: every deletion of the whole word */
    q.ix = &v->words;
    if (v->words.n_post)
        probe_deletions(&q, a, na, 0, e, 0, SIZE_MAX);
    /* stems: the prefix a[0..j) of any length within e edits of a stem; its
     * deletions that keep at least STEM_KEY letters share their first
     * STEM_KEY letters with the deletions of a[0..STEM_KEY + e) cut there;
     * shorter ones are whole deletions of a short prefix */
    q.ix = &v->stems;
    if (v->stems.n_post) {
        size_t head = na < EF_NLP__STEM_KEY + e ? na : EF_NLP__STEM_KEY + e;
        probe_deletions(&q, a, head, 0, e, 1, EF_NLP__STEM_KEY);
        for (size_t j = 1; j <= na && j < EF_NLP__STEM_KEY + e; j++)
            for (unsigned d = j >= EF_NLP__STEM_KEY ? (unsigned)(j - EF_NLP__STEM_KEY + 1) : 0;
                 d <= e && d <= j; d++)
                probe_exact(&q, a, j, 0, d);
    }
    for (size_t k = 0; k < v->n_long; k++)
        if (stamp[v->longe[k]] != now) {
            stamp[v->longe[k]] = now;
            out[q.n_out++] = v->longe[k];
        }
    return q.n_out;
}
