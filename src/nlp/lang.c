/*
 * lang.c -- language tags: which ones are written in Cyrillic script (the
 * matcher's language guess and the bot loader both ask).
 */
#include "nlp/nlp_int.h"

#include <string.h>

bool ef_nlp__lang_cyrillic(const char *lang)
{
    static const char *const cyr[] = {"ru", "uk", "be", "bg", "sr", "mk", "kk",  "ky", "tg",
                                      "mn", "ba", "tt", "cv", "ce", "os", "sah", "ab"};
    for (size_t i = 0; i < sizeof(cyr) / sizeof(cyr[0]); i++)
        if (strcmp(lang, cyr[i]) == 0)
            return true;
    return false;
}
