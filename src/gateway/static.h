/*
 * static.h -- the gateway's static files (the operator console): every
 * file of <web dir>/console read once at start into memory, served by
 * http.c on the lws thread with no file system access per request.
 *
 * The web chat's page is served the same way from <web dir>/chat at /chat
 * (when that folder exists).
 *
 * URLs: GET /console and /console/ are console/index.html; /console/NAME
 * is console/NAME when NAME is a plain file name (letters, digits, '.',
 * '-', '_'; no leading dot, no "..", no '/') with a known extension.
 * Anything else under /console is 404. Each file has a strong ETag (the
 * first 16 hex digits of its SHA-256); answers carry Cache-Control:
 * no-cache (always revalidated, 304 when unchanged), nosniff and a
 * same-origin Content-Security-Policy.
 *
 * Must never: read outside <web dir>/console, follow a path from the
 * request to the file system, load a file over EF_STATIC_MAX_FILE or more
 * than EF_STATIC_MAX_FILES files.
 *
 * Thread model: load/free at start and stop; ef_static_find and
 * ef_static_add_headers from any thread (the set is read-only).
 */
#ifndef EF_GATEWAY_STATIC_H
#define EF_GATEWAY_STATIC_H

#include "base/ef.h"

#define EF_STATIC_PREFIX "/console"
#define EF_STATIC_CHAT_PREFIX "/chat" /* web/chat/, when there */
#define EF_STATIC_MAX_FILE ((size_t)1024 * 1024)
#define EF_STATIC_MAX_FILES 64

typedef struct ef_static ef_static;

typedef struct ef_static_file {
    char *name; /* "index.html" */
    char *body; /* the whole file */
    size_t len; /* its size */
    const char *ctype;
    char etag[21]; /* "\"<16 hex>\"" */
} ef_static_file;

/* Where the web files are: cfg_dir when non-empty, else <exe>/../web when
 * it holds console/, else <exe>/../share/easyflow/web. Owned string. */
char *ef_static_default_dir(const char *cfg_dir);

/* Reads <dir>/console/ (regular files with a known extension, one level).
 * NULL with err filled when the folder is missing, unreadable, or a file
 * is over the limits. */
ef_static *ef_static_load(const char *dir, char *err, size_t errlen);
void ef_static_free(ef_static *s);

/* Whether uri (no query) is under EF_STATIC_PREFIX. */
bool ef_static_handles(const char *uri);

/* The file uri names, or NULL (unknown, or a name refused). */
const ef_static_file *ef_static_find(const ef_static *s, const char *uri);

/* Whether an If-None-Match header value matches f's ETag. */
bool ef_static_not_modified(const ef_static_file *f, const char *if_none_match);

/* Number of files loaded. */
size_t ef_static_count(const ef_static *s);

#endif /* EF_GATEWAY_STATIC_H */
