/*
 * wildberries_chat.c -- Wildberries buyer chats as events. Not built yet:
 * the adapter receives no chat messages (no EF_PLAT_POLL), so parse only
 * refuses.
 */
#include "platforms/wildberries_int.h"

int ef_wb__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    (void)root;
    (void)out;
    ef_ad__note(info, "wildberries: buyer chats are not received yet");
    return EF_EPROTO;
}
