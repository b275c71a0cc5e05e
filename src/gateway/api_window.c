/*
 * api_window.c -- a conversation's reply window as the API sees it: the
 * live channel's policy (platforms/platform.h reply_window_ms: WhatsApp
 * lets a business answer freely for 24 hours after the customer's last
 * message), the integration's re-engagement template (its "template"
 * setting, "name" or "name:lang"), and the bot's hand-off message
 * (fsm.handoff, nlp/fsm.h).
 *
 * The dispatcher checks the window again when it sends (it may have
 * closed meanwhile): this is the up-front answer an operator gets before
 * anything is queued.
 */
#include "gateway/api_int.h"

#include "base/json.h"
#include "gateway/channels.h"
#include "nlp/fsm.h"
#include "nlp/nlp.h"
#include "store/console.h"

#include <json-c/json.h>
#include <stdio.h>
#include <string.h>

/* The integration's template setting into w (nothing when it has none). */
static void read_template(ef_work_conn *conn, const char *integration_id, api_window *w)
{
    ef_integration_row row;
    memset(&row, 0, sizeof(row));
    if (ef_store_integration_get(conn->st, integration_id, &row) != 0)
        return;
    json_object *settings = NULL;
    char err[80];
    const char *spec = NULL;
    if (row.settings_json &&
        ef_json_parse(row.settings_json, strlen(row.settings_json), 8, &settings, err,
                      sizeof(err)) == 0 &&
        ef_pj_str(settings, "template", false, &spec, NULL, NULL, NULL) == 1 && spec && *spec) {
        const char *colon = strchr(spec, ':');
        size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
        if (n < sizeof(w->template_)) {
            memcpy(w->template_, spec, n);
            w->template_[n] = '\0';
            snprintf(w->lang, sizeof(w->lang), "%s", colon ? colon + 1 : "");
        }
    }
    if (settings)
        json_object_put(settings);
    ef_integration_row_cleanup(&row);
}

int ef_api__window(ef_api_call *c, ef_work_conn *conn, const char *conv_id, api_window *w)
{
    memset(w, 0, sizeof(*w));
    ef_conversation_channel cc;
    int rc = ef_store_conversation_channel(conn->st, conv_id, &cc);
    if (rc != 0)
        return rc;
    const char *integration_id = cc.integration_id;
    int64_t last_in = cc.last_inbound_s;
    snprintf(w->status, sizeof(w->status), "%s", cc.status);
    ef_channel *ch = integration_id && c->api->opts.channels
                         ? ef_channels_get(c->api->opts.channels, integration_id)
                         : NULL;
    if (ch && ch->bot && ef_bot_fsm(ch->bot))
        snprintf(w->handoff, sizeof(w->handoff), "%s",
                 ef_fsm_def_handoff(ef_bot_fsm(ch->bot), cc.lang[0] ? cc.lang : NULL));
    if (ch) {
        w->known = true;
        w->limit_s = ch->policy.reply_window_ms / 1000;
        if (w->limit_s > 0 && last_in > 0) {
            w->closes_at = last_in + w->limit_s;
            w->closed = ef_wall_ms() / 1000 >= w->closes_at;
        }
        if (w->limit_s > 0 && ch->policy.window_template)
            read_template(conn, integration_id, w);
        ef_channel_unref(ch);
    }
    ef_conversation_channel_cleanup(&cc);
    return 0;
}

json_object *ef_api__window_json(const api_window *w)
{
    json_object *o = json_object_new_object();
    json_object_object_add(o, "limit_s", json_object_new_int64(w->limit_s));
    json_object_object_add(o, "open", json_object_new_boolean(!w->closed));
    json_object_object_add(o, "closes_at",
                           w->closes_at ? json_object_new_int64(w->closes_at) : NULL);
    json_object *t = json_object_new_array();
    if (w->template_[0]) {
        json_object *one = json_object_new_object();
        json_object_object_add(one, "name", json_object_new_string(w->template_));
        json_object_object_add(one, "language",
                               w->lang[0] ? json_object_new_string(w->lang) : NULL);
        json_object_array_add(t, one);
    }
    json_object_object_add(o, "templates", t);
    return o;
}
