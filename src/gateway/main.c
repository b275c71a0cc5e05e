/*
 * main.c -- the easyflow command line: serve (serve.c), migrate, operator,
 * integration, nlu, bot check, help, version.
 */
#include "base/ef.h"
#include "gateway/cli_customer.h"
#include "gateway/cli_integration.h"
#include "gateway/cli_nlp.h"
#include "gateway/cli_operator.h"
#include "gateway/config.h"
#include "gateway/serve.h"
#include "store/store.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *out)
{
    fprintf(out,
            "easyflow %s -- messaging bot gateway (messengers, web chat, marketplaces)\n"
            "\n"
            "usage:\n"
            "  easyflow serve [--config FILE] [--print-config] [--KEY value ...]\n"
            "                                  serve webhooks, long polling, /api/v1, /console,\n"
            "                                  /livez, /readyz (= /healthz), /metrics\n"
            "  easyflow migrate [--config FILE] [--sql-dir DIR] [--status]\n"
            "                                  apply pending sql/NNN_*.sql migrations\n"
            "  easyflow nlu --bot FILE [--now ISO8601] TEXT\n"
            "                                  what the bot understands of TEXT, as JSON\n"
            "  easyflow bot check FILE         validate a bot definition and run its examples\n"
            "  easyflow operator add EMAIL --name NAME [--role operator|admin] [--reset-password]\n"
            "                                  create an operator (password asked without echo,\n"
            "                                  or one line on stdin); --reset-password replaces\n"
            "                                  an existing one's password, revokes its sessions\n"
            "  easyflow operator list | disable EMAIL | enable EMAIL\n"
            "                                  list accounts; disabling revokes its sessions\n"
            "  easyflow integration add PLATFORM --name NAME [--bot FILE] [--setting K=V ...]\n"
            "                                  connect a bot / number (credentials JSON on stdin)\n"
            "  easyflow integration list | enable ID | disable ID | rotate-key\n"
            "  easyflow customer forget PLATFORM USER_ID [--integration ID]\n"
            "                                  erase one customer's messages and identity\n"
            "  easyflow help config            the configuration keys as a Markdown table\n"
            "  easyflow --help | --version\n"
            "\n"
            "configuration (environment variables; a --config file and --KEY value set the "
            "same keys):\n",
            EF_VERSION);
    ef_config_help(out);
}

/*
 * `migrate`, `operator` and `integration` take their settings from the
 * environment. A `--config FILE` among their arguments is honoured the same
 * way as for serve (file < environment), and so is EF_SECRET_KEY_FILE (and
 * EF_SECRET_KEY_OLD_FILE) with or without a file: the keys they use are
 * exported (a secret read from its file replaces the _FILE variable), and
 * --config FILE is removed before the subcommand sees its argv.
 */
static const char *const exported_keys[] = {"EF_DATABASE_URL", "EF_SQL_DIR", "EF_SECRET_KEY",
                                            "EF_SECRET_KEY_OLD", "EF_LISTEN"};
#define NEXPORTED (sizeof(exported_keys) / sizeof(exported_keys[0]))

/* Without --config only the secrets given as KEY_FILE are read. */
static int load_exported(ef_config *c, const char *file, char *err, size_t errlen)
{
    if (file) {
        int rc = ef_config_load_file(c, file, err, errlen);
        return rc ? rc : ef_config_load_env(c, err, errlen);
    }
    /* The database URL is checked as serve checks it (`mysql://...` is
     * refused by its scheme, not reported as a socket failure by libpq);
     * checked only, not exported. */
    if (getenv("EF_DATABASE_URL")) {
        int rc = ef_config_load_env_key(c, "EF_DATABASE_URL", err, errlen);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < NEXPORTED; i++) {
        char name[96];
        snprintf(name, sizeof(name), "%s_FILE", exported_keys[i]);
        if (!ef_config_is_secret(exported_keys[i]) || !getenv(name))
            continue;
        int rc = ef_config_load_env_key(c, exported_keys[i], err, errlen);
        if (rc)
            return rc;
    }
    return 0;
}

static int apply_config_file(int *argc, char **argv)
{
    int out = 0;
    const char *file = NULL;
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "easyflow: --config needs a file\n");
                return EF_EINVAL;
            }
            file = argv[++i];
            continue;
        }
        argv[out++] = argv[i];
    }
    *argc = out;
    char err[512];
    ef_config *c = ef_config_new();
    int rc = load_exported(c, file, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "easyflow: %s\n", err);
        ef_config_free(c);
        return rc;
    }
    for (size_t i = 0; i < NEXPORTED; i++) {
        bool secret = ef_config_is_secret(exported_keys[i]);
        const char *v = ef_cfg_get_str(c, exported_keys[i]);
        if (v && (file || secret)) /* without a file, only secrets were read */
            setenv(exported_keys[i], v, 1);
        if (secret) {
            char name[96];
            snprintf(name, sizeof(name), "%s_FILE", exported_keys[i]);
            unsetenv(name);
        }
    }
    ef_config_free(c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("easyflow %s\n", EF_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 && argc > 2 && strcmp(argv[2], "config") == 0) {
        ef_config_markdown(stdout); /* the README's configuration table */
        return 0;
    }
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    if (strcmp(cmd, "serve") == 0)
        return ef_serve_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "migrate") == 0 || strcmp(cmd, "operator") == 0 ||
        strcmp(cmd, "integration") == 0) {
        int sub_argc = argc - 2;
        if (apply_config_file(&sub_argc, argv + 2) != 0)
            return 1;
        return cmd[0] == 'm'   ? ef_migrate_cli(sub_argc, argv + 2)
               : cmd[0] == 'o' ? ef_operator_cli(sub_argc, argv + 2)
                               : ef_integration_cli(sub_argc, argv + 2);
    }
    if (strcmp(cmd, "customer") == 0)
        return ef_customer_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "nlu") == 0)
        return ef_nlu_cli(argc - 2, argv + 2);
    if (strcmp(cmd, "bot") == 0 && argc > 2 && strcmp(argv[2], "check") == 0)
        return ef_bot_check_cli(argc - 3, argv + 3);
    fprintf(stderr, "easyflow: unknown command \"%s\" (see easyflow --help)\n", cmd);
    return 2;
}
