/*
 * cli_operator.c -- operator accounts from the command line. See the header.
 */
#include "gateway/cli_operator.h"

#include "base/ef.h"
#include "base/json.h"
#include "store/console.h"
#include "store/store.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

static int usage(void)
{
    fprintf(stderr, "usage: easyflow operator add EMAIL --name NAME [--role operator|admin]\n"
                    "       (the password is read from standard input)\n"
                    "       easyflow operator list\n"
                    "       easyflow operator disable|enable EMAIL\n");
    return 2;
}

bool ef_operator_email_ok(const char *e)
{
    size_t n = strlen(e);
    const char *at = strchr(e, '@');
    if (n < 3 || n > 255 || !at || at == e || !at[1] || strchr(at + 1, '@'))
        return false;
    for (const char *p = e; *p; p++)
        if ((unsigned char)*p <= ' ')
            return false;
    return strchr(at + 1, '.') != NULL;
}

/* One line from stdin without its line end. */
static int read_password(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin))
        return EF_EINVAL;
    size_t n = strlen(buf);
    if (n == len - 1 && buf[n - 1] != '\n')
        return EF_ELIMIT;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return 0;
}

static ef_store *connect(void)
{
    const char *url = getenv("EF_DATABASE_URL");
    return ef_store_new(url && *url ? url : "postgresql://127.0.0.1:5432/easyflow");
}

/* One line per account: e-mail, role, active/disabled, name. */
static int cmd_list(void)
{
    ef_store *st = connect();
    char *text = NULL, err[80];
    json_object *o = NULL, *arr = NULL;
    int rc = ef_store_operators_list(st, &text);
    if (rc == 0 && ef_json_parse(text, strlen(text), 8, &o, err, sizeof(err)) == 0 &&
        json_object_object_get_ex(o, "operators", &arr)) {
        printf("EMAIL\tROLE\tSTATUS\tNAME\n");
        for (size_t i = 0; i < json_object_array_length(arr); i++) {
            const char *email = NULL, *role = NULL, *name = NULL;
            bool active = true;
            json_object *it = json_object_array_get_idx(arr, i), *v = NULL;
            ef_pj_str(it, "email", false, &email, NULL, NULL, NULL);
            ef_pj_str(it, "role", false, &role, NULL, NULL, NULL);
            ef_pj_str(it, "name", false, &name, NULL, NULL, NULL);
            if (json_object_object_get_ex(it, "active", &v))
                active = json_object_get_boolean(v);
            printf("%s\t%s\t%s\t%s\n", email ? email : "", role ? role : "",
                   active ? "active" : "disabled", name ? name : "");
        }
    } else {
        fprintf(stderr, "easyflow operator list: %s\n", rc ? ef_store_errmsg(st) : "bad answer");
        rc = rc ? rc : EF_EIO;
    }
    if (o)
        json_object_put(o);
    ef_free(text);
    ef_store_free(st);
    return rc ? 1 : 0;
}

/* Disabling also revokes the account's refresh tokens and hands its
 * conversations back to the queue (store/console.h). */
static int cmd_set_active(const char *email, bool active)
{
    ef_store *st = connect();
    ef_operator op;
    memset(&op, 0, sizeof(op));
    char *text = NULL;
    int rc = ef_store_operator_by_email(st, email, &op);
    if (rc == 0)
        rc = ef_store_operator_set_active(st, op.id, active, NULL, &text);
    if (rc == EF_ENOTFOUND)
        fprintf(stderr, "easyflow operator: no operator or admin %s\n", email);
    else if (rc)
        fprintf(stderr, "easyflow operator: %s\n", ef_store_errmsg(st));
    else
        printf("operator %s %s\n", email, active ? "enabled" : "disabled");
    ef_free(text);
    ef_operator_cleanup(&op);
    ef_store_free(st);
    return rc ? 1 : 0;
}

int ef_operator_cli(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cmd_list();
    if (argc == 2 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0))
        return cmd_set_active(argv[1], argv[0][0] == 'e');
    if (argc < 2 || strcmp(argv[0], "add") != 0)
        return usage();
    const char *email = argv[1], *name = NULL, *role = "operator";
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            role = argv[++i];
        else
            return usage();
    }
    if (!ef_operator_email_ok(email)) {
        fprintf(stderr, "easyflow operator: \"%s\" is not an e-mail address\n", email);
        return 2;
    }
    if (!name || !*name || strlen(name) > 255) {
        fprintf(stderr, "easyflow operator: --name NAME is required (1-255 bytes)\n");
        return 2;
    }
    if (strcmp(role, "operator") != 0 && strcmp(role, "admin") != 0) {
        fprintf(stderr, "easyflow operator: --role must be operator or admin\n");
        return 2;
    }
    char pw[PASSWORD_MAX + 2];
    int rc = read_password(pw, sizeof(pw));
    if (rc || strlen(pw) < PASSWORD_MIN || !ef_utf8_valid(pw, strlen(pw))) {
        fprintf(stderr,
                "easyflow operator: give the password (at least %d characters, one line) "
                "on standard input\n",
                PASSWORD_MIN);
        return 1;
    }
    char *hash = NULL;
    if (ef_password_hash(pw, &hash) != 0) {
        fprintf(stderr, "easyflow operator: cannot hash the password\n");
        return 1;
    }
    memset(pw, 0, sizeof(pw));
    ef_store *st = connect();
    bool created = false;
    rc = ef_store_operator_upsert(st, email, name, role, hash, &created);
    if (rc) {
        fprintf(stderr, "easyflow operator: %s\n", ef_store_errmsg(st));
    } else {
        printf("operator %s %s (role %s)\n", email, created ? "added" : "updated", role);
    }
    ef_store_free(st);
    ef_free(hash);
    return rc ? 1 : 0;
}
