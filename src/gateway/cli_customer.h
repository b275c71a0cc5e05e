/*
 * cli_customer.h -- `easyflow customer forget PLATFORM USER_ID
 * [--integration ID]`: erases one customer's messages and identity (a
 * request under 152-FZ / GDPR) in PostgreSQL, in one transaction recorded
 * in data_erasures, then their live sessions in Redis.
 *
 * Environment: EF_DATABASE_URL, EF_REDIS_URL.
 */
#ifndef EF_CLI_CUSTOMER_H
#define EF_CLI_CUSTOMER_H

/* argv holds the arguments after "customer". Returns the exit code: 0, 1
 * on failure (nothing matches, PostgreSQL unreachable), 2 on a usage
 * error. */
int ef_customer_cli(int argc, char **argv);

#endif /* EF_CLI_CUSTOMER_H */
