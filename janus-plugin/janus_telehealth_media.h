/*
 * The SFU's objects, shared by janus_telehealth_media.c (feeds and
 * subscribers), janus_telehealth_sdp.c (negotiation) and
 * janus_telehealth_forward.c (the media threads).  Private to the plugin.
 */

#ifndef JANUS_TELEHEALTH_MEDIA_H
#define JANUS_TELEHEALTH_MEDIA_H

#include <rtp.h>
#include <sdp-utils.h>

#include "janus_telehealth.h"

#define JANUS_TELEHEALTH_AUDIO 0
#define JANUS_TELEHEALTH_VIDEO 1

/* Payload types the plugin offers to subscribers. */
#define JANUS_TELEHEALTH_OPUS_PT 111
#define JANUS_TELEHEALTH_VP8_PT 96

/* Camera and screen. */
#define JANUS_TELEHEALTH_MAX_VIDEO 2

#define JANUS_TELEHEALTH_DESCRIPTION_MAX 32

/* Keyframe requests to one publisher stream, at most this often. */
#define JANUS_TELEHEALTH_PLI_INTERVAL (300 * 1000)
/* The REMB cap is repeated this often, as browsers forget it. */
#define JANUS_TELEHEALTH_REMB_INTERVAL G_USEC_PER_SEC


typedef struct janus_telehealth_feed_stream {
	janus_telehealth_feed *feed; /* back pointer */
	int mindex; /* in the publisher's SDP */
	int type;
	char *mid;
	char *description; /* microphone, camera, screen */
	/* Subscriber streams fed from this one (references). */
	GSList *subscribers;
	gint64 pli_last;
	/* Muted by a chair: incoming_rtp drops the stream's packets. */
	volatile gint blocked;
	janus_mutex mutex;
} janus_telehealth_feed_stream;

struct janus_telehealth_feed {
	char *participant_id;
	char *msid; /* participant id as an SDP token */
	janus_telehealth_session *session; /* reference */
	janus_telehealth_room *room; /* reference */
	GPtrArray *streams; /* of feed_stream, owned */
	guint32 bitrate;
	gint64 remb_last; /* the publisher's media thread */
	volatile gint active;
	janus_refcount ref;
};

typedef struct janus_telehealth_sub_stream {
	/* Back pointer: a subscriber outlives its streams' presence in feeds. */
	janus_telehealth_subscriber *subscriber;
	int mindex;
	int type;
	int pt;
	char *mid;
	janus_telehealth_feed *feed; /* reference; NULL: inactive */
	janus_telehealth_feed_stream *fstream; /* in feed */
	gboolean in_offer; /* active in the last offer */
	volatile gint ready; /* answered: forward */
	janus_rtp_switching_context context; /* publisher's media thread */
	janus_refcount ref;
} janus_telehealth_sub_stream;

struct janus_telehealth_subscriber {
	janus_telehealth_session *session; /* reference */
	janus_telehealth_room *room; /* reference */
	char *participant_id;
	/* sub_stream references, index == mindex; guarded by mutex */
	GPtrArray *streams;
	gboolean dirty; /* a stream went inactive */
	/* Handler thread only. */
	gboolean answered;
	gboolean offer_pending;
	guint64 sdp_version;
	janus_mutex mutex;
	janus_refcount ref;
};


/* janus_telehealth_media.c: objects, feeds and subscribers */
void janus_telehealth_feed_unref_cb(janus_telehealth_feed *feed);
void janus_telehealth_sub_stream_free(const janus_refcount *ss_ref);
void janus_telehealth_sub_stream_unref(janus_telehealth_sub_stream *ss);
void janus_telehealth_subscriber_unref(janus_telehealth_subscriber *sub);
const char *janus_telehealth_media_type_name(int type);
gboolean janus_telehealth_handle_usable(janus_plugin_session *handle);
janus_telehealth_feed *janus_telehealth_session_feed(janus_telehealth_session *session);
janus_telehealth_subscriber *janus_telehealth_session_subscriber(janus_telehealth_session *session);
void janus_telehealth_sub_stream_detach(janus_telehealth_sub_stream *ss);

/* janus_telehealth_sdp.c: negotiation (handler thread) */
gboolean janus_telehealth_subscriber_sync(janus_telehealth_subscriber *sub);
void janus_telehealth_subscriber_offer(janus_telehealth_subscriber *sub, const char *what, const char *transaction);
void janus_telehealth_room_renegotiate(janus_telehealth_room *room);
gboolean janus_telehealth_offer_profiles_known(janus_sdp *offer);
janus_sdp *janus_telehealth_publish_answer(janus_sdp *offer, json_t *descriptions, janus_telehealth_feed *feed);
gboolean janus_telehealth_feed_same(janus_telehealth_feed *a, janus_telehealth_feed *b);

/* janus_telehealth_forward.c: the media threads */
void janus_telehealth_feed_keyframe(janus_telehealth_feed *feed, janus_telehealth_feed_stream *fs);

#endif /* JANUS_TELEHEALTH_MEDIA_H */
