/*
 * cli_integration.h -- `easyflow integration add|list|enable|disable|
 * rotate-key|sync`: connected bots, numbers and shops are integrations
 * rows; the credentials JSON (read on standard input, never an argument:
 * arguments show in `ps`) is checked by the platform's adapter, sealed
 * with AES-256-GCM under EF_SECRET_KEY and never printed. A running
 * gateway picks every change up within seconds (PostgreSQL NOTIFY).
 *
 * Environment: EF_DATABASE_URL, EF_SECRET_KEY (and EF_SECRET_KEY_OLD for
 * rotate-key: the new key is EF_SECRET_KEY, the old ones there), EF_LISTEN
 * (for the webhook URL printed by add).
 */
#ifndef EF_CLI_INTEGRATION_H
#define EF_CLI_INTEGRATION_H

/* argv holds the arguments after "integration". Returns the exit code:
 * 0, 1 on failure, 2 on a usage error. */
int ef_integration_cli(int argc, char **argv);

#endif /* EF_CLI_INTEGRATION_H */
