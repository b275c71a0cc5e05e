/*
 * static.c -- the console's and the web chat's files, loaded once, looked up by name. See
 * static.h for the contract.
 */
#include "gateway/static.h"

#include "base/crypto.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifndef EF_DEFAULT_WEB_DIR
#define EF_DEFAULT_WEB_DIR "/usr/local/share/easyflow/web"
#endif

struct ef_static {
    ef_static_file files[EF_STATIC_MAX_FILES];
    unsigned char section[EF_STATIC_MAX_FILES]; /* each file's page (sections[]) */
    size_t n;
};

static const struct {
    const char *ext;
    const char *ctype;
} types[] = {
    {".html", "text/html; charset=utf-8"},
    {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"},
    {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},
    {".svg", "image/svg+xml"},
    {".png", "image/png"},
    {".ico", "image/x-icon"},
    {".txt", "text/plain; charset=utf-8"},
};

static const char *type_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (strcmp(dot, types[i].ext) == 0)
            return types[i].ctype;
    return NULL;
}

/* A plain file name: [A-Za-z0-9._-]+, no leading dot, no "..". */
static bool plain_name(const char *name)
{
    if (!name[0] || name[0] == '.' || strstr(name, "..") || strlen(name) > 128)
        return false;
    for (const char *p = name; *p; p++) {
        char ch = *p;
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_';
        if (!ok)
            return false;
    }
    return true;
}

static bool has_console(const char *dir)
{
    char *p = ef_asprintf("%s/console/index.html", dir);
    struct stat st;
    bool ok = stat(p, &st) == 0 && S_ISREG(st.st_mode);
    ef_free(p);
    return ok;
}

char *ef_static_default_dir(const char *cfg_dir)
{
    if (cfg_dir && *cfg_dir)
        return ef_strdup(cfg_dir);
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (n > 0) {
        exe[n] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = '\0';
            char *cand = ef_asprintf("%s/../web", exe);
            char buf[PATH_MAX];
            if (has_console(cand) && realpath(cand, buf)) {
                ef_free(cand);
                return ef_strdup(buf);
            }
            ef_free(cand);
            cand = ef_asprintf("%s/../share/easyflow/web", exe);
            if (has_console(cand) && realpath(cand, buf)) {
                ef_free(cand);
                return ef_strdup(buf);
            }
            ef_free(cand);
        }
    }
    return ef_strdup(EF_DEFAULT_WEB_DIR);
}

/* Reads path (a regular file of at most EF_STATIC_MAX_FILE bytes) into f. */
static int read_one(const char *path, ef_static_file *f, char *err, size_t errlen)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return EF_EIO;
    }
    struct stat st;
    if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode) ||
        (size_t)st.st_size > EF_STATIC_MAX_FILE) {
        snprintf(err, errlen, "%s: not a regular file of at most %zu bytes", path,
                 EF_STATIC_MAX_FILE);
        fclose(fp);
        return EF_ELIMIT;
    }
    f->len = (size_t)st.st_size;
    f->body = ef_malloc(f->len + 1);
    size_t got = fread(f->body, 1, f->len, fp);
    fclose(fp);
    if (got != f->len) {
        snprintf(err, errlen, "%s: short read", path);
        return EF_EIO;
    }
    f->body[f->len] = '\0';
    char hex[65];
    ef_sha256_hex(f->body, f->len, hex);
    snprintf(f->etag, sizeof(f->etag), "\"%.16s\"", hex);
    return 0;
}

/* Adds dir/name to s when it is a servable file; 0 or an error. */
static int add_file(ef_static *s, const char *dir, const char *name, char *err, size_t errlen)
{
    const char *ctype = type_of(name);
    if (!plain_name(name) || !ctype)
        return 0; /* not served: skipped */
    if (s->n == EF_STATIC_MAX_FILES) {
        snprintf(err, errlen, "%s: more than %d files", dir, EF_STATIC_MAX_FILES);
        return EF_ELIMIT;
    }
    char *path = ef_asprintf("%s/%s", dir, name);
    ef_static_file *f = &s->files[s->n];
    int rc = read_one(path, f, err, errlen);
    ef_free(path);
    if (rc != 0) {
        ef_free(f->body);
        memset(f, 0, sizeof(*f));
        return rc;
    }
    f->name = ef_strdup(name);
    f->ctype = ctype;
    s->n++;
    return 0;
}

/* The pages served, each from <dir>/<name>/ at its prefix: the console
 * (required) and the web chat (served when its folder is there). */
static const struct {
    const char *prefix;
    const char *name;
    bool required;
} sections[] = {{EF_STATIC_PREFIX, "console", true}, {EF_STATIC_CHAT_PREFIX, "chat", false}};

/* Reads <dir>/<name>/ into s, each file marked as section k's. */
static int load_section(ef_static *s, const char *dir, size_t k, char *err, size_t errlen)
{
    char *sub = ef_asprintf("%s/%s", dir, sections[k].name);
    DIR *d = opendir(sub);
    if (!d) {
        int rc = sections[k].required ? EF_ENOTFOUND : 0;
        if (rc)
            snprintf(err, errlen, "%s: %s", sub, strerror(errno));
        ef_free(sub);
        return rc;
    }
    size_t first = s->n;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL)
        rc = add_file(s, sub, de->d_name, err, errlen);
    closedir(d);
    for (size_t i = first; i < s->n; i++)
        s->section[i] = (unsigned char)k;
    if (rc == 0 && !ef_static_find(s, sections[k].prefix)) {
        snprintf(err, errlen, "%s: no index.html", sub);
        rc = EF_ENOTFOUND;
    }
    ef_free(sub);
    return rc;
}

ef_static *ef_static_load(const char *dir, char *err, size_t errlen)
{
    ef_static *s = ef_calloc(1, sizeof(*s));
    int rc = 0;
    for (size_t k = 0; rc == 0 && k < sizeof(sections) / sizeof(sections[0]); k++)
        rc = load_section(s, dir, k, err, errlen);
    if (rc != 0) {
        ef_static_free(s);
        return NULL;
    }
    return s;
}

void ef_static_free(ef_static *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++) {
        ef_free(s->files[i].name);
        ef_free(s->files[i].body);
    }
    ef_free(s);
}

/* The section uri is under, or -1. */
static int section_of(const char *uri)
{
    for (size_t k = 0; k < sizeof(sections) / sizeof(sections[0]); k++) {
        size_t n = strlen(sections[k].prefix);
        if (strncmp(uri, sections[k].prefix, n) == 0 && (uri[n] == '\0' || uri[n] == '/'))
            return (int)k;
    }
    return -1;
}

bool ef_static_handles(const char *uri)
{
    return section_of(uri) >= 0;
}

const ef_static_file *ef_static_find(const ef_static *s, const char *uri)
{
    int k = s ? section_of(uri) : -1;
    if (k < 0)
        return NULL;
    const char *name = uri + strlen(sections[k].prefix);
    if (*name == '/')
        name++;
    if (!*name)
        name = "index.html";
    if (!plain_name(name))
        return NULL;
    for (size_t i = 0; i < s->n; i++)
        if (s->section[i] == (unsigned char)k && strcmp(s->files[i].name, name) == 0)
            return &s->files[i];
    return NULL;
}

bool ef_static_not_modified(const ef_static_file *f, const char *inm)
{
    if (!f || !inm)
        return false;
    size_t elen = strlen(f->etag);
    /* A list of entity tags, possibly weak (W/"..."), or "*". */
    for (const char *p = inm; *p;) {
        p += strspn(p, " \t,");
        if (*p == '*')
            return true;
        if (strncmp(p, "W/", 2) == 0)
            p += 2;
        if (strncmp(p, f->etag, elen) == 0 && (p[elen] == '\0' || strchr(" \t,", p[elen])))
            return true;
        p += strcspn(p, ",");
    }
    return false;
}

size_t ef_static_count(const ef_static *s)
{
    return s ? s->n : 0;
}
