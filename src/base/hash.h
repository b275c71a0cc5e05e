/*
 * base/hash.h -- FNV-1a 64, the one non-cryptographic string hash (chat
 * sharding, per-chat tables). Chain calls to hash several strings:
 * ef_fnv1a64(b, ef_fnv1a64(a, EF_FNV1A64_INIT)).
 */
#ifndef EF_BASE_HASH_H
#define EF_BASE_HASH_H

#include <stdint.h>

#define EF_FNV1A64_INIT 1469598103934665603ULL

/* Folds the NUL-terminated s (NULL hashes as "") into h. */
static inline uint64_t ef_fnv1a64(const char *s, uint64_t h)
{
    for (; s && *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

#endif /* EF_BASE_HASH_H */
