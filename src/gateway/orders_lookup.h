/*
 * orders_lookup.h -- answers from the shop's real orders (issue 10): before
 * the FSM runs, the order a message names (the matcher's order_number
 * entity) or its chat is linked to (a marketplace buyer chat's order_ref)
 * is looked up among the orders of the integration's business, and its
 * state is put into the context for the bot's templates:
 *
 *   order_reply        one sentence in the customer's language: "Заказ
 *                      5001: передан в доставку 3 декабря." or that the
 *                      number is not among the shop's orders
 *   order_number, order_status (new .. returned), order_status_text,
 *   order_date ("3 декабря"), order_items ("Футболка × 2")
 *   order_found        "yes" | "no"
 *
 * The keys are set for this message only (never in the context patch): a
 * message that names no order sees none of them, so a template's default
 * ({context.order_reply|Назовите номер заказа}) asks for the number.
 *
 * Thread model: a pipeline worker, with its own store.
 */
#ifndef EF_ORDERS_LOOKUP_H
#define EF_ORDERS_LOOKUP_H

#include "base/ef.h"
#include "nlp/nlp.h"
#include "store/store.h"

struct json_object;

/* Looks up the order m names (nlu may be NULL) and sets or removes the
 * keys above in *context (created when NULL). A store error leaves the
 * keys out (the bot asks for the number), logged at WARN. */
void ef_orders_lookup_context(ef_store *st, const ef_msg *m, const ef_nlu_result *nlu,
                              const char *lang, struct json_object **context);

#endif /* EF_ORDERS_LOOKUP_H */
