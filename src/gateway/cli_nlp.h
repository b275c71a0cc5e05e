/*
 * cli_nlp.h -- the `easyflow nlu` and `easyflow bot check` commands.
 *
 * What it does: loads a bot definition (nlp.h) and either understands one
 * message and prints the result as JSON, or runs every example and negative
 * example of the bot as a test and prints per-intent precision / recall / F1,
 * the confusions and a summary.
 *
 * What it must never do: start the server, touch the database or Redis, or
 * read the network. Output goes to stdout, problems to stderr.
 *
 * Thread model: main thread only; each call loads its own bot and frees it.
 */
#ifndef EF_CLI_NLP_H
#define EF_CLI_NLP_H

/* `easyflow nlu [--bot FILE] [--now ISO8601] [--] TEXT...`
 *
 * argv holds the subcommand's own arguments only (argv[0] is the first one
 * after "nlu"; argc may be 0). Options (also written --bot=FILE) may come
 * anywhere before a "--"; every other argument is a word of the text, and
 * the words are joined with single spaces. Without --bot, $EF_BOT_FILE is
 * used. --now fixes the current time for
 * relative dates: 2026-03-10T12:00:00+03:00, ...Z, a local time without an
 * offset (read in the bot's timezone), a date (noon local time), or @UNIX.
 * Prints one JSON object (ef_nlu_result_json) and a newline on stdout.
 * Returns the process exit status: 0 done, 1 the bot file was refused (its
 * "file:line:column: reason" on stderr), 2 bad arguments (usage on stderr). */
int ef_nlu_cli(int argc, char **argv);

/* `easyflow bot check [FILE]`
 *
 * argv holds the arguments after "check" (FILE; $EF_BOT_FILE when absent).
 * Loads the file (a refusal prints "file:line:column: reason" and returns 1),
 * runs every example (must be understood as its intent) and every negative
 * example (must not be), prints the per-intent table, each confusion with
 * its file position and the pattern that caused it, then a summary line.
 * Returns 0 when every example passed, 1 when one failed or the file was
 * refused, 2 on bad arguments. */
int ef_bot_check_cli(int argc, char **argv);

#endif /* EF_CLI_NLP_H */
