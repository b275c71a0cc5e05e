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

#include "ef.h"

#include <stdio.h>

typedef struct ef_config ef_config;

/* A new configuration holding every key's default. */
ef_config *ef_config_new(void);
void ef_config_free(ef_config *c);

/* Reads KEY = value lines. Unknown keys, bad lines and bad values fail with
 * EF_EINVAL and "path:line: reason" in err. */
int ef_config_load_file(ef_config *c, const char *path, char *err, size_t errlen);
/* Takes every known key present in the environment. */
int ef_config_load_env(ef_config *c, char *err, size_t errlen);
/* Sets one key; validates the value's type and range ("EF_LISTEN: ..."). */
int ef_config_set(ef_config *c, const char *key, const char *value, char *err, size_t errlen);
/* Cross-key checks (e.g. TELEGRAM_MODE=poll needs TELEGRAM_BOT_TOKEN). */
int ef_config_validate(const ef_config *c, char *err, size_t errlen);

/* Borrowed; NULL when the key is unset and has no default. "" counts as
 * unset. Asking for an unknown key is a programmer error (abort). */
const char *ef_cfg_get_str(const ef_config *c, const char *key);
int64_t ef_cfg_get_int(const ef_config *c, const char *key);
bool ef_cfg_get_bool(const ef_config *c, const char *key);

/* KEY=value lines, secrets shown as "***" when set. */
void ef_config_print(const ef_config *c, FILE *out);
/* The key table for --help: key, default, meaning. */
void ef_config_help(FILE *out);
/* The key table as a Markdown table (README). */
void ef_config_markdown(FILE *out);

#endif /* EF_CONFIG_H */
