/*
 * config.h -- easyflow's configuration: one table of keys (config.c).
 *
 * Sources, later wins: the table's defaults, then a file (--config FILE:
 * flat `KEY = value` lines, `#` comments), then the environment, then
 * command-line `--KEY value` overrides. Keys are the public environment
 * names of DESIGN.md (EF_DATABASE_URL, TELEGRAM_BOT_TOKEN, ...).
 *
 * The table also drives validation (types, ranges, enums), `--help`,
 * `--print-config` (secrets masked) and the README's configuration table.
 *
 * Thread model: built and validated on the main thread before any other
 * thread starts; read-only afterwards, so readers need no lock.
 */
#ifndef EF_CONFIG_H
#define EF_CONFIG_H

#include "base/ef.h"

#include <stdio.h>

typedef struct ef_config ef_config;

/* A new configuration holding every key's default. */
ef_config *ef_config_new(void);
void ef_config_free(ef_config *c);

/* Reads KEY = value lines (blanks around '=' optional; whole-line `#`
 * comments and blank lines skipped; a value may be wrapped in double
 * quotes, which are removed; a key given twice: the later line wins).
 * A secret's KEY_FILE = path line reads the secret from that file.
 * Unknown keys, bad lines and bad values fail with EF_EINVAL and
 * "path:line: reason" in err; a missing file is EF_ENOTFOUND, an unreadable
 * one EF_EIO ("path: reason"). Lines before a bad one stay applied. */
int ef_config_load_file(ef_config *c, const char *path, char *err, size_t errlen);
/* Takes every known key present in the environment (other variables are
 * ignored). The first bad value fails with EF_EINVAL ("KEY: reason").
 * A secret KEY may come from a file named by KEY_FILE (see
 * ef_config_read_secret_file); KEY and KEY_FILE both set (non-empty) is
 * EF_EINVAL naming both. */
int ef_config_load_env(ef_config *c, char *err, size_t errlen);
/* The same for one known key (KEY, or KEY_FILE for a secret). */
int ef_config_load_env_key(ef_config *c, const char *key, char *err, size_t errlen);
/* Whether key is a known secret key (never on the command line). */
bool ef_config_is_secret(const char *key);
/* The secret in the file at path: its bytes with one trailing newline
 * ("\n" or "\r\n") removed, *out owned by the caller (wipe it when done).
 * Errors name var (e.g. "EF_SECRET_KEY_FILE") and the path, never the
 * content: EF_EIO when it cannot be read, EF_EINVAL when it is empty or
 * larger than 64 KiB. */
int ef_config_read_secret_file(const char *var, const char *path, char **out, char *err,
                               size_t errlen);
/* Sets one key; validates the value's type and range ("EF_LISTEN: port
 * 70000 not in 1..65535"). Errors name the key and never repeat a secret's
 * value (URLs are shown redacted). A refused value leaves the key as it
 * was; "" or NULL puts the key back to its default. Values are normalized:
 * enum values to their canonical spelling, API URLs without a trailing '/'.
 * An unknown key is EF_EINVAL ("unknown key ..."). KEY_FILE for a secret
 * KEY reads KEY's value from the file named by value. */
int ef_config_set(ef_config *c, const char *key, const char *value, char *err, size_t errlen);
/* Cross-key checks (e.g. TELEGRAM_MODE=poll needs TELEGRAM_BOT_TOKEN). */
int ef_config_validate(const ef_config *c, char *err, size_t errlen);

/* Borrowed; NULL when the key is unset and has no default. "" counts as
 * unset. Asking for an unknown key is a programmer error (abort). */
const char *ef_cfg_get_str(const ef_config *c, const char *key);
int64_t ef_cfg_get_int(const ef_config *c, const char *key);
bool ef_cfg_get_bool(const ef_config *c, const char *key);

/* Splits a host:port value such as EF_LISTEN's ("[::1]:8080" for IPv6,
 * brackets removed) into host (NUL-terminated, at most hostlen bytes with
 * the NUL) and port (1..65535). Returns EF_EINVAL for anything else,
 * leaving host and port untouched. Pure; any thread. */
int ef_config_parse_listen(const char *s, char *host, size_t hostlen, int *port);

/* KEY=value lines, secrets shown as "***" when set. */
void ef_config_print(const ef_config *c, FILE *out);
/* The key table for --help: key, default, meaning. */
void ef_config_help(FILE *out);
/* The key table as a Markdown table (README). */
void ef_config_markdown(FILE *out);

#endif /* EF_CONFIG_H */
