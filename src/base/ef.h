/*
 * ef.h -- the umbrella of the base headers.
 *
 * What it holds: error codes, the logging macros, the allocation wrappers,
 * a small bounded byte buffer, and the plain data types that cross module
 * boundaries (ef_msg: one normalized inbound platform event).
 *
 * What it must never do: pull in a library header (lws, curl, libpq, hiredis,
 * json-c, pcre2). Modules include those themselves.
 *
 * Library rules, written once (see STYLE.md section 5):
 *  - json-c: json_object_object_get_ex() borrows (never put what it returns);
 *    json_object_object_add() / json_object_array_add() take the reference.
 *  - libpq: PQclear() every PGresult on every path.
 *  - hiredis: freeReplyObject() every reply on every path.
 *  - pcre2: compile once (with JIT) at start; one pcre2_match_data per thread.
 *
 * Thread model: everything here is thread-safe (the logger takes a lock per
 * line; the allocators abort on exhaustion).
 */
#ifndef EF_H
#define EF_H

#define EF_VERSION "0.1.0"

#include "base/buf.h"
#include "base/err.h"
#include "base/log.h"
#include "base/mem.h"
#include "base/msg.h"
#include "base/time.h"
#include "base/utf8.h"

#endif /* EF_H */
