/*
 * main.c -- the easyflow command line: serve, migrate, version, help.
 */
#include "ef.h"

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0)) {
        printf("easyflow %s\n", EF_VERSION);
        return 0;
    }
    fprintf(stderr, "usage: easyflow serve|migrate|--help|--version\n");
    return 2;
}
