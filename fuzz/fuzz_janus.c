/*
 * The Janus core as the plugin targets see it: the callbacks table a
 * Janus gives a plugin, answering without a network (events are checked
 * and dropped, media goes nowhere).  The core's own functions (SDP,
 * config, JSON validation) are Janus's: the targets link against a copy
 * of the janus binary made loadable as a library (scripts/fuzz-janus.sh).
 */

#include <stdlib.h>

#include <jansson.h>
#include <plugins/plugin.h>

#include "fuzz_janus.h"


unsigned long fuzz_janus_events;


static int
fuzz_push_event(janus_plugin_session *handle, janus_plugin *plugin,
    const char *transaction, json_t *message, json_t *jsep)
{
    char *text;

    /* what a client gets: an object the core can serialise */
    if (!json_is_object(message) || (jsep != NULL && !json_is_object(jsep))) {
        abort();
    }

    text = json_dumps(message, JSON_COMPACT);
    if (text == NULL) {
        abort();
    }

    free(text);
    fuzz_janus_events++;

    return 0;
}


static void
fuzz_relay_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet)
{
}


static void
fuzz_relay_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet)
{
}


static void
fuzz_relay_data(janus_plugin_session *handle, janus_plugin_data *packet)
{
}


static void
fuzz_send_pli(janus_plugin_session *handle)
{
}


static void
fuzz_send_pli_stream(janus_plugin_session *handle, int mindex)
{
}


static void
fuzz_send_remb(janus_plugin_session *handle, guint32 bitrate)
{
}


static void
fuzz_close_pc(janus_plugin_session *handle)
{
}


static void
fuzz_end_session(janus_plugin_session *handle)
{
}


static gboolean
fuzz_events_is_enabled(void)
{
    return FALSE;
}


static void
fuzz_notify_event(janus_plugin *plugin, janus_plugin_session *handle,
    json_t *event)
{
    json_decref(event);
}


static gboolean
fuzz_auth_is_signed(void)
{
    return FALSE;
}


static gboolean
fuzz_auth_is_signature_valid(janus_plugin *plugin, const char *token)
{
    return FALSE;
}


static gboolean
fuzz_auth_signature_contains(janus_plugin *plugin, const char *token,
    const char *descriptor)
{
    return FALSE;
}


janus_callbacks fuzz_janus_callbacks = {
    .push_event = fuzz_push_event,
    .relay_rtp = fuzz_relay_rtp,
    .relay_rtcp = fuzz_relay_rtcp,
    .relay_data = fuzz_relay_data,
    .send_pli = fuzz_send_pli,
    .send_pli_stream = fuzz_send_pli_stream,
    .send_remb = fuzz_send_remb,
    .close_pc = fuzz_close_pc,
    .end_session = fuzz_end_session,
    .events_is_enabled = fuzz_events_is_enabled,
    .notify_event = fuzz_notify_event,
    .auth_is_signed = fuzz_auth_is_signed,
    .auth_is_signature_valid = fuzz_auth_is_signature_valid,
    .auth_signature_contains = fuzz_auth_signature_contains,
};
