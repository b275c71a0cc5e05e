/*
 * ozon_chat.c -- Ozon buyer chats as events. Not built yet: the adapter
 * receives no chat messages (no EF_PLAT_POLL), so parse only refuses.
 */
#include "platforms/ozon_int.h"

int ef_oz__parse(struct json_object *root, ef_msg_list *out, ef_parse_info *info)
{
    (void)root;
    (void)out;
    ef_ad__note(info, "ozon: buyer chats are not received yet");
    return EF_EPROTO;
}
