/*
 * Media callbacks of janus.plugin.telehealth.
 *
 * Forwarding between participants (the SFU) comes with a later change;
 * until then media is accepted and dropped.  Rules for whatever goes
 * here: these run on the core's media threads, so no global lock, no
 * Redis, no blocking; read the session's participant under the room's
 * own mutex at most.
 */

#include <debug.h>

#include "janus_telehealth.h"


static janus_telehealth_session *
janus_telehealth_media_session(janus_plugin_session *handle)
{
    janus_telehealth_session  *session;

    if (handle == NULL || g_atomic_int_get(&handle->stopped)
        || g_atomic_int_get(&janus_telehealth_stopping))
    {
        return NULL;
    }

    session = handle->plugin_handle;
    if (session == NULL || g_atomic_int_get(&session->destroyed)) {
        return NULL;
    }

    return session;
}


void
janus_telehealth_setup_media(janus_plugin_session *handle)
{
    janus_telehealth_session  *session;

    session = janus_telehealth_media_session(handle);
    if (session == NULL) {
        return;
    }

    g_atomic_int_set(&session->hangingup, 0);
    JANUS_LOG(LOG_VERB, "[telehealth] PeerConnection up\n");
}


void
janus_telehealth_incoming_rtp(janus_plugin_session *handle,
    janus_plugin_rtp *packet)
{
    /* No forwarding yet: dropped. */
}


void
janus_telehealth_incoming_rtcp(janus_plugin_session *handle,
    janus_plugin_rtcp *packet)
{
}


void
janus_telehealth_incoming_data(janus_plugin_session *handle,
    janus_plugin_data *packet)
{
}


void
janus_telehealth_data_ready(janus_plugin_session *handle)
{
}


void
janus_telehealth_slow_link(janus_plugin_session *handle, int mindex,
    gboolean video, gboolean uplink)
{
}


void
janus_telehealth_hangup_media(janus_plugin_session *handle)
{
    janus_telehealth_session  *session;

    session = janus_telehealth_media_session(handle);
    if (session == NULL) {
        return;
    }

    if (!g_atomic_int_compare_and_exchange(&session->hangingup, 0, 1)) {
        return;
    }

    /*
     * The PeerConnection is gone (ICE failure, DTLS alert, the peer hung
     * up): the person leaves the room with reason "hangup" and may rejoin.
     */
    janus_telehealth_session_hangup(session);
}
