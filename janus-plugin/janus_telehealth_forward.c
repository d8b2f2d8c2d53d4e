/*
 * RTP forwarding of janus.plugin.telehealth: the core's media threads.
 *
 * incoming_rtp takes only the lock of the publisher's stream it forwards
 * (never a global lock, never Redis); incoming_rtcp takes only the
 * subscriber's own lock.  Feeds and subscribers are created and torn down
 * by the handler thread (janus_telehealth_media.c).
 */

#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <rtp.h>
#include <sdp-utils.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"
#include "janus_telehealth_metrics.h"


/* Keyframes */

/* Asks the publisher for a keyframe on one stream, at most so often. */
void janus_telehealth_feed_keyframe(janus_telehealth_feed *feed, janus_telehealth_feed_stream *fs) {
	gint64 now;
	gboolean send;

	if (fs->type != JANUS_TELEHEALTH_VIDEO || !g_atomic_int_get(&feed->active) ||
		!janus_telehealth_handle_usable(feed->session->handle)) {
		return;
	}

	now = janus_get_monotonic_time();

	janus_mutex_lock(&fs->mutex);
	send = now - fs->pli_last >= JANUS_TELEHEALTH_PLI_INTERVAL;
	if (send) {
		fs->pli_last = now;
	}
	janus_mutex_unlock(&fs->mutex);

	if (send) {
		janus_telehealth_gateway->send_pli_stream(feed->session->handle, fs->mindex);
	}
}


/* Media callbacks (the core's threads) */

static janus_telehealth_session *janus_telehealth_media_session(janus_plugin_session *handle) {
	janus_telehealth_session *session;

	if (handle == NULL || g_atomic_int_get(&handle->stopped) || g_atomic_int_get(&janus_telehealth_stopping)) {
		return NULL;
	}

	session = handle->plugin_handle;
	if (session == NULL || g_atomic_int_get(&session->destroyed)) {
		return NULL;
	}

	return session;
}


void janus_telehealth_setup_media(janus_plugin_session *handle) {
	guint i;
	GList *keyframes, *l;
	janus_telehealth_session *session;
	janus_telehealth_subscriber *sub;
	janus_telehealth_sub_stream *ss;

	session = janus_telehealth_media_session(handle);
	if (session == NULL) {
		return;
	}

	g_atomic_int_set(&session->hangingup, 0);
	JANUS_LOG(LOG_VERB, "[telehealth] PeerConnection up\n");

	sub = janus_telehealth_session_subscriber(session);
	if (sub == NULL) {
		return;
	}

	/* Receivers start with a keyframe of every video they get. */
	keyframes = NULL;
	janus_mutex_lock(&sub->mutex);
	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		if (ss->feed != NULL && ss->type == JANUS_TELEHEALTH_VIDEO) {
			janus_refcount_increase(&ss->feed->ref);
			keyframes = g_list_prepend(keyframes, ss->feed);
			keyframes = g_list_prepend(keyframes, ss->fstream);
		}
	}
	janus_mutex_unlock(&sub->mutex);

	for (l = keyframes; l != NULL; l = l->next->next) {
		/* fstream, then its feed (which keeps it alive) */
		janus_telehealth_feed_keyframe(l->next->data, l->data);
		janus_refcount_decrease(&((janus_telehealth_feed *)l->next->data)->ref);
	}
	g_list_free(keyframes);

	janus_telehealth_subscriber_unref(sub);
}


void janus_telehealth_incoming_rtp(janus_plugin_session *handle, janus_plugin_rtp *packet) {
	guint i;
	gint64 now;
	guint16 seq;
	guint32 ssrc, ts;
	GSList *l;
	gboolean video;
	janus_rtp_header *header;
	janus_plugin_rtp out;
	janus_plugin_session *target;
	janus_telehealth_feed *feed;
	janus_telehealth_session *session;
	janus_telehealth_sub_stream *ss;
	janus_telehealth_feed_stream *fs;
	int pt;

	session = janus_telehealth_media_session(handle);
	if (session == NULL || packet == NULL || packet->buffer == NULL || packet->length < 12) {
		return;
	}

	/* Only an accepted publisher's media goes anywhere: a viewer, a
     * subscriber or a handle that never published has no feed. */
	feed = janus_telehealth_session_feed(session);
	if (feed == NULL) {
		return;
	}

	fs = NULL;
	for (i = 0; i < feed->streams->len; i++) {
		fs = g_ptr_array_index(feed->streams, i);
		if (fs->mindex == packet->mindex) {
			break;
		}
		fs = NULL;
	}

	if (fs == NULL || !g_atomic_int_get(&feed->active) || g_atomic_int_get(&fs->blocked)) {
		janus_refcount_decrease(&feed->ref);
		return;
	}

	video = fs->type == JANUS_TELEHEALTH_VIDEO;

	if (video && feed->bitrate > 0) {
		now = janus_get_monotonic_time();
		if (now - feed->remb_last >= JANUS_TELEHEALTH_REMB_INTERVAL) {
			feed->remb_last = now;
			janus_telehealth_gateway->send_remb(handle, feed->bitrate);
		}
	}

	header = (janus_rtp_header *)packet->buffer;
	ssrc = header->ssrc;
	seq = header->seq_number;
	ts = header->timestamp;
	pt = header->type;

	/* the same for every subscriber but the m-line (the core copies it) */
	memset(&out, 0, sizeof(out));
	janus_plugin_rtp_extensions_reset(&out.extensions);
	out.video = video;
	out.buffer = packet->buffer;
	out.length = packet->length;

	janus_mutex_lock(&fs->mutex);
	for (l = fs->subscribers; l != NULL; l = l->next) {
		ss = l->data;
		target = ss->subscriber->session->handle;
		if (!g_atomic_int_get(&ss->ready) || target == NULL || g_atomic_int_get(&target->stopped)) {
			continue;
		}

		janus_rtp_header_update(header, &ss->context, video, 0);
		header->type = ss->pt;

		out.mindex = ss->mindex;
		janus_telehealth_gateway->relay_rtp(target, &out);
		janus_telehealth_metrics_forwarded(packet->length);

		header->ssrc = ssrc;
		header->seq_number = seq;
		header->timestamp = ts;
		header->type = pt;
	}
	janus_mutex_unlock(&fs->mutex);

	janus_refcount_decrease(&feed->ref);
}


void janus_telehealth_incoming_rtcp(janus_plugin_session *handle, janus_plugin_rtcp *packet) {
	janus_telehealth_feed *feed;
	janus_telehealth_session *session;
	janus_telehealth_subscriber *sub;
	janus_telehealth_sub_stream *ss;
	janus_telehealth_feed_stream *fs;

	session = janus_telehealth_media_session(handle);
	if (session == NULL || packet == NULL || packet->buffer == NULL) {
		return;
	}

	if (!janus_rtcp_has_pli(packet->buffer, packet->length) && !janus_rtcp_has_fir(packet->buffer, packet->length)) {
		return;
	}

	/* A subscriber asks for a keyframe: ask the publisher it watches. */
	sub = janus_telehealth_session_subscriber(session);
	if (sub == NULL) {
		return;
	}

	feed = NULL;
	fs = NULL;

	janus_mutex_lock(&sub->mutex);
	if (packet->mindex >= 0 && (guint)packet->mindex < sub->streams->len) {
		ss = g_ptr_array_index(sub->streams, packet->mindex);
		if (ss->feed != NULL) {
			feed = ss->feed;
			fs = ss->fstream;
			janus_refcount_increase(&feed->ref);
		}
	}
	janus_mutex_unlock(&sub->mutex);

	if (feed != NULL) {
		janus_telehealth_feed_keyframe(feed, fs);
		janus_refcount_decrease(&feed->ref);
	}

	janus_telehealth_subscriber_unref(sub);
}


void janus_telehealth_incoming_data(janus_plugin_session *handle, janus_plugin_data *packet) {
}


void janus_telehealth_data_ready(janus_plugin_session *handle) {
}


void janus_telehealth_slow_link(janus_plugin_session *handle, int mindex, gboolean video, gboolean uplink) {
}


void janus_telehealth_hangup_media(janus_plugin_session *handle) {
	janus_telehealth_session *session;

	session = janus_telehealth_media_session(handle);
	if (session == NULL) {
		return;
	}

	if (!g_atomic_int_compare_and_exchange(&session->hangingup, 0, 1)) {
		return;
	}

	/*
     * The PeerConnection is gone (ICE failure, DTLS alert, the peer hung
     * up): what it published or received stops, the person stays in the
     * room and may publish or subscribe again.
     */
	janus_telehealth_session_media_hangup(session);
}
