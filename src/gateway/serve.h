/*
 * serve.h -- `easyflow serve`.
 */
#ifndef EF_SERVE_H
#define EF_SERVE_H

/* argv holds the arguments after "serve". Returns the exit code. */
int ef_serve_cli(int argc, char **argv);

#endif /* EF_SERVE_H */
