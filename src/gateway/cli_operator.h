/*
 * cli_operator.h -- `easyflow operator add EMAIL --name NAME
 * [--role operator|admin] [--reset-password]`; `operator list`;
 * `operator disable|enable EMAIL` (disabling revokes the account's
 * sessions and hands its conversations back to the queue, as the admin API
 * does).
 *
 * `add` creates the account an operator logs into the console with. The
 * password is asked twice without echo when standard input is a terminal
 * (termios; both must match), else read as one line from standard input
 * (a pipe, a file). An existing account is never overwritten unless
 * --reset-password is given: then its password, name and role are
 * replaced, its refresh tokens revoked and the reset recorded in
 * operator_audit (who ran it, what, when; sql/016). The password is stored
 * as an Argon2id hash (base/crypto.h), never echoed, never logged.
 */
#ifndef EF_CLI_OPERATOR_H
#define EF_CLI_OPERATOR_H

/* argv holds the arguments after "operator". Returns the exit code: 0, 1
 * on failure (message on stderr), 2 on usage errors. */
int ef_operator_cli(int argc, char **argv);

#include <stdbool.h>

/* Whether e looks like an e-mail address (one '@', a dot after it, no
 * spaces, 3..255 bytes): the CLI and the admin API take the same ones. */
bool ef_operator_email_ok(const char *e);

#endif /* EF_CLI_OPERATOR_H */
