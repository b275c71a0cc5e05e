/*
 * cli_operator.c -- operator accounts from the command line. See the header.
 */
#include "gateway/cli_operator.h"

#include "base/ef.h"
#include "base/json.h"
#include "store/console.h"
#include "store/store.h"

#include <json-c/json.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#define PASSWORD_MIN 8
#define PASSWORD_MAX 1024

static int usage(void)
{
    fprintf(stderr,
            "usage: easyflow operator add EMAIL --name NAME [--role operator|admin] "
            "[--reset-password]\n"
            "       (the password is asked twice without echo on a terminal, else read as one\n"
            "       line from standard input; --reset-password replaces an existing account's\n"
            "       password and revokes its sessions)\n"
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
static int read_line(char *buf, size_t len)
{
    if (!fgets(buf, (int)len, stdin))
        return ferror(stdin) ? EF_EIO : EF_EINVAL;
    size_t n = strlen(buf);
    if (n == len - 1 && buf[n - 1] != '\n')
        return EF_ELIMIT;
    while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    return 0;
}

/* Set by SIGINT/SIGTERM/SIGHUP while the terminal does not echo: the read
 * is interrupted (no SA_RESTART), the echo restored, the command ends. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Prompts on stderr (once the echo is off, so nothing typed after the
 * prompt is lost to the flush) and reads one line. */
static int prompt_line(const char *prompt, char *buf, size_t len)
{
    fputs(prompt, stderr);
    fflush(stderr);
    int rc = read_line(buf, len);
    fputc('\n', stderr);
    return interrupted ? EF_EIO : rc;
}

/* From a terminal on stdin: asked twice with the echo off (typeahead
 * discarded first), both must match; the terminal's settings and the
 * signal dispositions are restored on every path. */
static int read_password_tty(char *buf, size_t len)
{
    struct termios saved, quiet;
    if (tcgetattr(STDIN_FILENO, &saved) != 0)
        return EF_EIO;
    struct sigaction sa, old[3];
    const int sigs[3] = {SIGINT, SIGTERM, SIGHUP};
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &sa, &old[i]);
    quiet = saved;
    quiet.c_lflag &= ~(tcflag_t)(ECHO | ECHOE | ECHOK | ECHONL);
    char again[PASSWORD_MAX + 2] = "";
    int rc = EF_EIO;
    if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) == 0) {
        rc = prompt_line("Password: ", buf, len);
        if (rc == 0)
            rc = prompt_line("Password again: ", again, sizeof(again));
        tcsetattr(STDIN_FILENO, TCSANOW, &saved);
    }
    for (int i = 0; i < 3; i++)
        sigaction(sigs[i], &old[i], NULL);
    if (rc == 0 && strcmp(buf, again) != 0) {
        fprintf(stderr, "easyflow operator: the passwords do not match\n");
        rc = EF_ECONFLICT;
    }
    explicit_bzero(again, sizeof(again));
    return rc;
}

/* The new password into buf (PASSWORD_MAX + 2 bytes): from the terminal
 * (twice, no echo) or one line from a pipe. 0, or 1 after a message. */
static int get_password(char *buf, size_t len)
{
    bool tty = isatty(STDIN_FILENO);
    int rc = tty ? read_password_tty(buf, len) : read_line(buf, len);
    if (rc == EF_ECONFLICT)
        return 1;
    if (rc == 0 && interrupted)
        rc = EF_EIO;
    if (rc || strlen(buf) < PASSWORD_MIN || !ef_utf8_valid(buf, strlen(buf))) {
        if (interrupted)
            fprintf(stderr, "easyflow operator: interrupted\n");
        else
            fprintf(stderr,
                    "easyflow operator: give the password (at least %d characters, one line) "
                    "%s\n",
                    PASSWORD_MIN, tty ? "at the prompt" : "on standard input");
        explicit_bzero(buf, len);
        return 1;
    }
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

/* What `operator add` was given. */
typedef struct add_opts {
    const char *email, *name, *role;
    bool reset;
} add_opts;

/* 0, or 2 after a usage message. */
static int parse_add(int argc, char **argv, add_opts *o)
{
    o->email = argv[1];
    o->name = NULL;
    o->role = "operator";
    o->reset = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            o->name = argv[++i];
        else if (strcmp(argv[i], "--role") == 0 && i + 1 < argc)
            o->role = argv[++i];
        else if (strcmp(argv[i], "--reset-password") == 0)
            o->reset = true;
        else
            return usage();
    }
    if (!ef_operator_email_ok(o->email)) {
        fprintf(stderr, "easyflow operator: \"%s\" is not an e-mail address\n", o->email);
        return 2;
    }
    if (!o->name || !*o->name || strlen(o->name) > 255) {
        fprintf(stderr, "easyflow operator: --name NAME is required (1-255 bytes)\n");
        return 2;
    }
    if (strcmp(o->role, "operator") != 0 && strcmp(o->role, "admin") != 0) {
        fprintf(stderr, "easyflow operator: --role must be operator or admin\n");
        return 2;
    }
    return 0;
}

static void refuse_existing(const char *email)
{
    fprintf(stderr,
            "easyflow operator: %s already has an account; nothing changed. To replace its "
            "password (and name, role), run again with --reset-password: its sessions are "
            "revoked and the reset is audited\n",
            email);
}

/* Who runs the command, for the audit row: the login name and uid. */
static void actor_name(char *buf, size_t len)
{
    uid_t uid = getuid();
    struct passwd *pw = getpwuid(uid);
    const char *sudo = getenv("SUDO_USER");
    snprintf(buf, len, "cli user=%s uid=%ld%s%s", pw && pw->pw_name ? pw->pw_name : "?", (long)uid,
             sudo && *sudo ? " sudo_user=" : "", sudo && *sudo ? sudo : "");
}

/* The "result" of a store answer and its "revoked" count; 0 or EF_EPROTO. */
static int answer_of(const char *text, char *result, size_t len, long *revoked)
{
    json_object *o = NULL, *v = NULL;
    const char *r = NULL;
    char err[80];
    if (!text || ef_json_parse(text, strlen(text), 8, &o, err, sizeof(err)) != 0)
        return EF_EPROTO;
    int rc = ef_pj_str(o, "result", true, &r, NULL, NULL, NULL) == 1 ? 0 : EF_EPROTO;
    if (rc == 0)
        snprintf(result, len, "%s", r);
    *revoked = json_object_object_get_ex(o, "revoked", &v) ? json_object_get_int64(v) : 0;
    json_object_put(o);
    return rc;
}

/* Writes the account: a new one, or with --reset-password a reset. 0 or
 * 1 after a message. */
static int store_account(ef_store *st, const add_opts *o, const char *hash)
{
    char *text = NULL, result[32] = "", actor[160];
    long revoked = 0;
    int rc;
    if (o->reset) {
        actor_name(actor, sizeof(actor));
        rc = ef_store_operator_reset_password(st, o->email, o->name, o->role, hash, actor, &text);
    } else {
        rc = ef_store_operator_add(st, o->email, o->name, o->role, hash, &text);
    }
    if (rc == 0)
        rc = answer_of(text, result, sizeof(result), &revoked);
    ef_free(text);
    if (rc) {
        fprintf(stderr, "easyflow operator: %s\n",
                rc == EF_EPROTO ? "unexpected answer from the database" : ef_store_errmsg(st));
        return 1;
    }
    if (strcmp(result, "ok") == 0 || strcmp(result, "created") == 0) {
        printf("operator %s added (role %s)\n", o->email, o->role);
        return 0;
    }
    if (strcmp(result, "reset") == 0) {
        printf("operator %s password reset (role %s); %ld session%s revoked\n", o->email, o->role,
               revoked, revoked == 1 ? "" : "s");
        return 0;
    }
    if (strcmp(result, "customer") == 0)
        fprintf(stderr, "easyflow operator: %s belongs to a customer; nothing changed\n", o->email);
    else
        refuse_existing(o->email);
    return 1;
}

static int cmd_add(int argc, char **argv)
{
    add_opts o;
    int rc = parse_add(argc, argv, &o);
    if (rc)
        return rc;
    ef_store *st = connect();
    ef_operator op;
    memset(&op, 0, sizeof(op));
    /* Refused before the password is asked for (the store refuses again,
     * should another command create the account meanwhile). */
    rc = ef_store_operator_by_email(st, o.email, &op);
    ef_operator_cleanup(&op);
    if (rc == 0 && !o.reset) {
        refuse_existing(o.email);
        ef_store_free(st);
        return 1;
    }
    if (rc && rc != EF_ENOTFOUND) {
        fprintf(stderr, "easyflow operator: %s\n", ef_store_errmsg(st));
        ef_store_free(st);
        return 1;
    }
    char pw[PASSWORD_MAX + 2];
    char *hash = NULL;
    rc = get_password(pw, sizeof(pw));
    if (rc == 0 && ef_password_hash(pw, &hash) != 0) {
        fprintf(stderr, "easyflow operator: cannot hash the password\n");
        rc = 1;
    }
    explicit_bzero(pw, sizeof(pw));
    if (rc == 0)
        rc = store_account(st, &o, hash);
    if (hash)
        explicit_bzero(hash, strlen(hash));
    ef_free(hash);
    ef_store_free(st);
    return rc;
}

int ef_operator_cli(int argc, char **argv)
{
    if (argc == 1 && strcmp(argv[0], "list") == 0)
        return cmd_list();
    if (argc == 2 && (strcmp(argv[0], "disable") == 0 || strcmp(argv[0], "enable") == 0))
        return cmd_set_active(argv[1], argv[0][0] == 'e');
    if (argc < 2 || strcmp(argv[0], "add") != 0)
        return usage();
    return cmd_add(argc, argv);
}
