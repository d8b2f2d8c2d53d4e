/*
 * Media of janus.plugin.telehealth: the SFU's feeds and subscribers.
 * Their SDP is negotiated in janus_telehealth_sdp.c, their packets are
 * forwarded in janus_telehealth_forward.c, the objects are declared in
 * janus_telehealth_media.h.
 *
 * A joined handle may publish a feed: one Opus stream, a camera VP8 stream
 * and a second VP8 stream for a screen share (chairs and broadcasters
 * only).  Each participant receives the others' feeds on a second handle,
 * the subscriber: one PeerConnection, one m-line per remote stream, offered
 * by the plugin and renegotiated whenever a feed comes or goes.
 *
 * Threads.  The handler thread creates and tears down feeds and
 * subscribers (requests, hangups, leaving, closing); the core's media
 * threads forward.  incoming_rtp takes only the lock of the publisher's
 * stream it forwards (never a global lock, never Redis); incoming_rtcp
 * takes only the subscriber's own lock.  Lock order: room->mutex, then
 * subscriber->mutex, then feed stream mutex; session->mutex alone.
 *
 * References.  A feed holds its session and room; a subscriber holds its
 * session and room; a subscriber stream holds the feed it forwards; a feed
 * stream's list holds the subscriber streams fed from it.  The cycles are
 * cut explicitly when a feed or subscriber is removed.
 */

#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <rtp.h>
#include <sdp-utils.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"
#include "janus_telehealth_moderation.h"


/* Objects */

static void janus_telehealth_feed_free(const janus_refcount *feed_ref) {
	guint i;
	janus_telehealth_feed *feed;
	janus_telehealth_feed_stream *fs;

	feed = janus_refcount_containerof(feed_ref, janus_telehealth_feed, ref);

	for (i = 0; i < feed->streams->len; i++) {
		fs = g_ptr_array_index(feed->streams, i);
		janus_mutex_destroy(&fs->mutex);
		g_free(fs->mid);
		g_free(fs->description);
		g_free(fs);
	}
	g_ptr_array_free(feed->streams, TRUE);

	janus_telehealth_session_unref(feed->session);
	janus_telehealth_room_unref(feed->room);
	g_free(feed->participant_id);
	g_free(feed->msid);
	g_free(feed);
}


void janus_telehealth_feed_unref_cb(janus_telehealth_feed *feed) {
	janus_refcount_decrease(&feed->ref);
}


void janus_telehealth_sub_stream_free(const janus_refcount *ss_ref) {
	janus_telehealth_sub_stream *ss;

	ss = janus_refcount_containerof(ss_ref, janus_telehealth_sub_stream, ref);

	if (ss->feed != NULL) {
		janus_refcount_decrease(&ss->feed->ref);
	}
	g_free(ss->mid);
	g_free(ss);
}


void janus_telehealth_sub_stream_unref(janus_telehealth_sub_stream *ss) {
	janus_refcount_decrease(&ss->ref);
}


static void janus_telehealth_subscriber_free(const janus_refcount *sub_ref) {
	janus_telehealth_subscriber *sub;

	sub = janus_refcount_containerof(sub_ref, janus_telehealth_subscriber, ref);

	g_ptr_array_free(sub->streams, TRUE);
	janus_telehealth_session_unref(sub->session);
	janus_telehealth_room_unref(sub->room);
	janus_mutex_destroy(&sub->mutex);
	g_free(sub->participant_id);
	g_free(sub);
}


void janus_telehealth_subscriber_unref(janus_telehealth_subscriber *sub) {
	janus_refcount_decrease(&sub->ref);
}


const char *janus_telehealth_media_type_name(int type) {
	return type == JANUS_TELEHEALTH_AUDIO ? "audio" : "video";
}


gboolean janus_telehealth_handle_usable(janus_plugin_session *handle) {
	return handle != NULL && !g_atomic_int_get(&handle->stopped) && !g_atomic_int_get(&janus_telehealth_stopping);
}


static void janus_telehealth_close_pc(janus_telehealth_session *session) {
	if (!g_atomic_int_get(&session->destroyed) && janus_telehealth_handle_usable(session->handle)) {
		janus_telehealth_gateway->close_pc(session->handle);
	}
}


/* Feeds */

/* Cuts every subscriber stream off one feed stream. */
static void janus_telehealth_feed_stream_detach_all(janus_telehealth_feed_stream *fs) {
	GSList *list, *l;
	janus_telehealth_feed *feed;
	janus_telehealth_subscriber *sub;
	janus_telehealth_sub_stream *ss;

	janus_mutex_lock(&fs->mutex);
	list = fs->subscribers;
	fs->subscribers = NULL;
	janus_mutex_unlock(&fs->mutex);

	for (l = list; l != NULL; l = l->next) {
		ss = l->data;
		sub = ss->subscriber;
		feed = NULL;

		janus_mutex_lock(&sub->mutex);
		if (ss->fstream == fs) {
			g_atomic_int_set(&ss->ready, 0);
			ss->fstream = NULL;
			feed = ss->feed;
			ss->feed = NULL;
			sub->dirty = TRUE;
		}
		janus_mutex_unlock(&sub->mutex);

		if (feed != NULL) {
			janus_refcount_decrease(&feed->ref);
		}
		janus_telehealth_sub_stream_unref(ss);
	}

	g_slist_free(list);
}


/* Takes a feed out of its room and off its session.  Handler thread. */
static void janus_telehealth_feed_remove(janus_telehealth_feed *feed) {
	guint i;
	GList *link;
	janus_telehealth_room *room;
	janus_telehealth_session *session;

	if (!g_atomic_int_compare_and_exchange(&feed->active, 1, 0)) {
		return;
	}

	room = feed->room;
	session = feed->session;

	janus_mutex_lock(&room->mutex);
	link = g_list_find(room->feeds, feed);
	if (link != NULL) {
		room->feeds = g_list_delete_link(room->feeds, link);
	}
	janus_mutex_unlock(&room->mutex);

	for (i = 0; i < feed->streams->len; i++) {
		janus_telehealth_feed_stream_detach_all(g_ptr_array_index(feed->streams, i));
	}

	janus_mutex_lock(&session->mutex);
	if (session->feed == feed) {
		session->feed = NULL;
		janus_refcount_decrease(&feed->ref);
	}
	janus_mutex_unlock(&session->mutex);

	JANUS_LOG(LOG_INFO,
		"[telehealth] participant %s stopped publishing in "
		"room %s\n",
		feed->participant_id, room->id);

	if (link != NULL) {
		janus_refcount_decrease(&feed->ref);
	}
}


janus_telehealth_feed *janus_telehealth_session_feed(janus_telehealth_session *session) {
	janus_telehealth_feed *feed;

	janus_mutex_lock(&session->mutex);
	feed = session->feed;
	if (feed != NULL) {
		janus_refcount_increase(&feed->ref);
	}
	janus_mutex_unlock(&session->mutex);

	return feed;
}


janus_telehealth_subscriber *janus_telehealth_session_subscriber(janus_telehealth_session *session) {
	janus_telehealth_subscriber *sub;

	janus_mutex_lock(&session->mutex);
	sub = session->subscriber;
	if (sub != NULL) {
		janus_refcount_increase(&sub->ref);
	}
	janus_mutex_unlock(&session->mutex);

	return sub;
}


static json_t *janus_telehealth_feed_streams_json(janus_telehealth_feed *feed) {
	guint i;
	json_t *streams;
	janus_telehealth_feed_stream *fs;

	streams = json_array();
	for (i = 0; i < feed->streams->len; i++) {
		fs = g_ptr_array_index(feed->streams, i);
		json_array_append_new(streams,
			json_pack("{s:s, s:i, s:s, s:s}", "mid", fs->mid, "mindex", fs->mindex, "type",
				janus_telehealth_media_type_name(fs->type), "description", fs->description));
	}

	return streams;
}


/* Subscribers */

/* Called with sub->mutex held. */
void janus_telehealth_sub_stream_detach(janus_telehealth_sub_stream *ss) {
	GSList *link;
	janus_telehealth_feed_stream *fs;

	fs = ss->fstream;
	g_atomic_int_set(&ss->ready, 0);

	if (fs != NULL) {
		janus_mutex_lock(&fs->mutex);
		link = g_slist_find(fs->subscribers, ss);
		if (link != NULL) {
			fs->subscribers = g_slist_delete_link(fs->subscribers, link);
		}
		janus_mutex_unlock(&fs->mutex);

		if (link != NULL) {
			janus_telehealth_sub_stream_unref(ss);
		}
		ss->fstream = NULL;
	}

	if (ss->feed != NULL) {
		janus_refcount_decrease(&ss->feed->ref);
		ss->feed = NULL;
	}
}


/* Takes a subscriber out of its room and off its session. */
static void janus_telehealth_subscriber_remove(
	janus_telehealth_subscriber *sub, const char *reason, gboolean close_pc) {
	guint i;
	GList *link;
	json_t *event;
	janus_telehealth_session *session;

	janus_mutex_lock(&sub->room->mutex);
	link = g_list_find(sub->room->subscribers, sub);
	if (link != NULL) {
		sub->room->subscribers = g_list_delete_link(sub->room->subscribers, link);
	}
	janus_mutex_unlock(&sub->room->mutex);

	janus_mutex_lock(&sub->mutex);
	for (i = 0; i < sub->streams->len; i++) {
		janus_telehealth_sub_stream_detach(g_ptr_array_index(sub->streams, i));
	}
	janus_mutex_unlock(&sub->mutex);

	session = sub->session;
	janus_mutex_lock(&session->mutex);
	if (session->subscriber == sub) {
		session->subscriber = NULL;
		janus_refcount_decrease(&sub->ref);
	}
	janus_mutex_unlock(&session->mutex);

	if (link != NULL && !g_atomic_int_get(&janus_telehealth_stopping)) {
		event = json_pack("{s:s, s:s, s:s}", "telehealth", "unsubscribed", "room", sub->room->id, "reason", reason);
		janus_telehealth_push(session, NULL, event);
		json_decref(event);

		if (close_pc) {
			janus_telehealth_close_pc(session);
		}
	}

	if (link != NULL) {
		JANUS_LOG(LOG_VERB,
			"[telehealth] subscriber of %s in room %s "
			"removed: %s\n",
			sub->participant_id, sub->room->id, reason);
		janus_telehealth_receivers_changed(sub->room);
		janus_telehealth_subscriber_unref(sub);
	}
}


/* Whether a feed carries a camera (a video stream other than a screen). */
static gboolean janus_telehealth_feed_has_camera(janus_telehealth_feed *feed) {
	guint i;
	janus_telehealth_feed_stream *fs;

	for (i = 0; i < feed->streams->len; i++) {
		fs = g_ptr_array_index(feed->streams, i);
		if (fs->type == JANUS_TELEHEALTH_VIDEO && g_strcmp0(fs->description, "screen") != 0) {
			return TRUE;
		}
	}

	return FALSE;
}


/* Requests (handler thread) */

int janus_telehealth_media_publish(janus_telehealth_session *session, json_t *root, json_t *jsep,
	const char *transaction, char *error, size_t error_size) {
	char *sdp_text, parse_error[200];
	json_t *event, *answer_jsep, *descriptions;
	gboolean viewer, waiting;
	janus_sdp *offer, *answer;
	const char *type, *sdp;
	janus_telehealth_feed *feed, *old;
	janus_telehealth_room *room;
	janus_telehealth_participant *participant;

	participant = janus_telehealth_session_participant(session);

	if (participant == NULL) {
		g_snprintf(error, error_size, "Not in a room");
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	room = participant->room;
	janus_mutex_lock(&room->mutex);
	viewer = strcmp(participant->role, TH_ROLE_VIEWER) == 0;
	waiting = participant->waiting;
	janus_mutex_unlock(&room->mutex);

	/*
     * The core has taken the refused offer in: the PeerConnection it began
     * is let go, so that the handle can publish later (once admitted, or
     * made broadcaster).
     */
	if (waiting) {
		janus_refcount_decrease(&participant->ref);
		if (jsep != NULL) {
			janus_telehealth_close_pc(session);
		}
		g_snprintf(error, error_size,
			"Please wait: a chair has not "
			"admitted you yet");
		return JANUS_TELEHEALTH_ERROR_WAITING;
	}

	if (viewer) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] participant %s (viewer) may not "
			"publish in room %s\n",
			participant->id, room->id);
		janus_refcount_decrease(&participant->ref);
		if (jsep != NULL) {
			janus_telehealth_close_pc(session);
		}
		g_snprintf(error, error_size, "Viewers cannot publish media");
		return JANUS_TELEHEALTH_ERROR_PUBLISH_NOT_ALLOWED;
	}

	type = json_string_value(json_object_get(jsep, "type"));
	sdp = json_string_value(json_object_get(jsep, "sdp"));
	if (type == NULL || sdp == NULL || strcasecmp(type, "offer") != 0) {
		janus_refcount_decrease(&participant->ref);
		g_snprintf(error, error_size, "publish needs a JSEP offer");
		return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
	}

	offer = janus_sdp_parse(sdp, parse_error, sizeof(parse_error));
	if (offer == NULL) {
		janus_refcount_decrease(&participant->ref);
		g_snprintf(error, error_size, "Invalid SDP offer: %s", parse_error);
		return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
	}

	if (!janus_telehealth_offer_profiles_known(offer)) {
		janus_sdp_destroy(offer);
		janus_refcount_decrease(&participant->ref);
		g_snprintf(error, error_size,
			"Invalid SDP offer: an m-line of an "
			"unknown transport profile");
		return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
	}

	feed = g_malloc0(sizeof(janus_telehealth_feed));
	feed->participant_id = g_strdup(participant->id);
	feed->msid = g_strdup(participant->id);
	g_strdelimit(feed->msid, ":", '-');
	janus_refcount_increase(&session->ref);
	feed->session = session;
	janus_refcount_increase(&room->ref);
	feed->room = room;
	feed->streams = g_ptr_array_new();
	feed->bitrate = room->bitrate;
	g_atomic_int_set(&feed->active, 1);
	janus_refcount_init(&feed->ref, janus_telehealth_feed_free);

	descriptions = json_object_get(root, "descriptions");
	answer = janus_telehealth_publish_answer(offer, descriptions, feed);
	janus_sdp_destroy(offer);

	if (feed->streams->len == 0) {
		janus_sdp_destroy(answer);
		janus_refcount_decrease(&feed->ref);
		janus_refcount_decrease(&participant->ref);
		g_snprintf(error, error_size,
			"The offer has no Opus audio or VP8 "
			"video to send");
		return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
	}

	sdp_text = janus_sdp_write(answer);
	janus_sdp_destroy(answer);
	answer_jsep = json_pack("{s:s, s:s}", "type", "answer", "sdp", sdp_text);
	g_free(sdp_text);

	/* A renegotiation with the same streams keeps the feed as it is. */
	old = janus_telehealth_session_feed(session);
	if (old != NULL && janus_telehealth_feed_same(old, feed)) {
		janus_refcount_decrease(&feed->ref);
		feed = old;

	} else {
		if (old != NULL) {
			janus_telehealth_feed_remove(old);
			janus_refcount_decrease(&old->ref);
		}

		janus_mutex_lock(&room->mutex);
		janus_refcount_increase(&feed->ref);
		room->feeds = g_list_append(room->feeds, feed);
		janus_mutex_unlock(&room->mutex);

		janus_mutex_lock(&session->mutex);
		session->feed = feed; /* takes our reference */
		janus_mutex_unlock(&session->mutex);

		/* A chair's mute outlives a new PeerConnection. */
		janus_mutex_lock(&room->mutex);
		janus_telehealth_media_block(session, participant->audio_blocked, participant->video_blocked);
		janus_mutex_unlock(&room->mutex);

		JANUS_LOG(LOG_INFO,
			"[telehealth] participant %s publishes %u "
			"streams in room %s\n",
			participant->id, feed->streams->len, room->id);

		/* audio only, as far as the others can tell: no camera */
		janus_mutex_lock(&room->mutex);
		participant->audio_only = !janus_telehealth_feed_has_camera(feed);
		janus_mutex_unlock(&room->mutex);
		janus_telehealth_moderation_store(room, participant);
	}

	event = json_object();
	json_object_set_new(event, "telehealth", json_string("published"));
	json_object_set_new(event, "room", json_string(room->id));
	json_object_set_new(event, "streams", janus_telehealth_feed_streams_json(feed));
	json_object_set_new(event, "bitrate", json_integer(feed->bitrate));
	janus_telehealth_push_jsep(session, transaction, event, answer_jsep);
	json_decref(event);
	json_decref(answer_jsep);

	if (feed == old) {
		janus_refcount_decrease(&old->ref);

	} else {
		janus_telehealth_room_push_participants(room, NULL);
	}

	janus_telehealth_room_renegotiate(room);
	janus_refcount_decrease(&participant->ref);

	return 0;
}


int janus_telehealth_media_unpublish(
	janus_telehealth_session *session, const char *transaction, char *error, size_t error_size) {
	json_t *event;
	janus_telehealth_feed *feed;
	janus_telehealth_room *room;

	feed = janus_telehealth_session_feed(session);
	if (feed == NULL) {
		g_snprintf(error, error_size, "Not publishing");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	room = feed->room;
	janus_refcount_increase(&room->ref);
	janus_telehealth_feed_remove(feed);
	janus_refcount_decrease(&feed->ref);

	event = json_pack("{s:s, s:s}", "telehealth", "unpublished", "room", room->id);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);

	janus_telehealth_close_pc(session);
	janus_telehealth_room_renegotiate(room);
	janus_telehealth_room_push_participants(room, NULL);
	janus_telehealth_room_unref(room);

	return 0;
}


int janus_telehealth_media_subscribe(janus_telehealth_session *session, janus_telehealth_room *room,
	const char *participant_id, const char *transaction, char *error, size_t error_size) {
	gboolean busy, joined, waiting;
	janus_telehealth_subscriber *sub;
	janus_telehealth_participant *p;

	janus_mutex_lock(&session->mutex);
	busy = session->participant != NULL || session->feed != NULL || session->subscriber != NULL;
	janus_mutex_unlock(&session->mutex);

	if (busy) {
		g_snprintf(error, error_size,
			"This handle is already in a room or "
			"subscribed: subscribe from a handle of its own");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	janus_mutex_lock(&room->mutex);
	p = g_hash_table_lookup(room->participants, participant_id);
	joined = p != NULL && p->session != NULL && !g_atomic_int_get(&room->closed);
	waiting = joined && p->waiting;
	janus_mutex_unlock(&room->mutex);

	if (!joined) {
		g_snprintf(error, error_size, "Join the room before subscribing");
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	if (waiting) {
		g_snprintf(error, error_size,
			"Please wait: a chair has not "
			"admitted you yet");
		return JANUS_TELEHEALTH_ERROR_WAITING;
	}

	sub = g_malloc0(sizeof(janus_telehealth_subscriber));
	janus_refcount_increase(&session->ref);
	sub->session = session;
	janus_refcount_increase(&room->ref);
	sub->room = room;
	sub->participant_id = g_strdup(participant_id);
	sub->streams = g_ptr_array_new_with_free_func((GDestroyNotify)janus_telehealth_sub_stream_unref);
	janus_mutex_init(&sub->mutex);
	janus_refcount_init(&sub->ref, janus_telehealth_subscriber_free);

	janus_mutex_lock(&room->mutex);
	janus_refcount_increase(&sub->ref);
	room->subscribers = g_list_append(room->subscribers, sub);
	janus_mutex_unlock(&room->mutex);

	janus_mutex_lock(&session->mutex);
	session->subscriber = sub; /* takes our reference */
	janus_mutex_unlock(&session->mutex);

	JANUS_LOG(LOG_VERB, "[telehealth] participant %s subscribes in room %s\n", participant_id, room->id);

	(void)janus_telehealth_subscriber_sync(sub);
	janus_telehealth_subscriber_offer(sub, "subscribed", transaction);

	return 0;
}


void janus_telehealth_media_session_gone(janus_telehealth_session *session, gboolean pc_only) {
	janus_telehealth_feed *feed;
	janus_telehealth_room *room;
	janus_telehealth_subscriber *sub;

	feed = janus_telehealth_session_feed(session);
	if (feed != NULL) {
		room = feed->room;
		janus_refcount_increase(&room->ref);
		janus_telehealth_feed_remove(feed);
		janus_refcount_decrease(&feed->ref);

		if (pc_only) {
			json_t *event;

			event = json_pack("{s:s, s:s, s:s}", "telehealth", "unpublished", "room", room->id, "reason", "hangup");
			janus_telehealth_push(session, NULL, event);
			json_decref(event);
		}

		janus_telehealth_room_renegotiate(room);
		if (!g_atomic_int_get(&room->closed)) {
			janus_telehealth_room_push_participants(room, NULL);
		}
		janus_telehealth_room_unref(room);
	}

	sub = janus_telehealth_session_subscriber(session);
	if (sub != NULL) {
		janus_telehealth_subscriber_remove(sub, TH_LEFT_HANGUP, FALSE);
		janus_telehealth_subscriber_unref(sub);
	}
}


void janus_telehealth_media_participant_out(
	janus_telehealth_room *room, janus_telehealth_session *session, const char *participant_id, const char *reason) {
	GList *subs, *l;
	gboolean renegotiate;
	janus_telehealth_feed *feed;
	janus_telehealth_subscriber *sub;

	renegotiate = FALSE;

	feed = session != NULL ? janus_telehealth_session_feed(session) : NULL;
	if (feed != NULL) {
		janus_telehealth_feed_remove(feed);
		janus_refcount_decrease(&feed->ref);
		janus_telehealth_close_pc(session);
		renegotiate = TRUE;
	}

	subs = NULL;
	janus_mutex_lock(&room->mutex);
	for (l = room->subscribers; l != NULL; l = l->next) {
		sub = l->data;
		if (strcmp(sub->participant_id, participant_id) == 0) {
			janus_refcount_increase(&sub->ref);
			subs = g_list_prepend(subs, sub);
		}
	}
	janus_mutex_unlock(&room->mutex);

	for (l = subs; l != NULL; l = l->next) {
		janus_telehealth_subscriber_remove(l->data, reason, TRUE);
		janus_telehealth_subscriber_unref(l->data);
	}
	g_list_free(subs);

	if (renegotiate) {
		janus_telehealth_room_renegotiate(room);
	}
}


void janus_telehealth_media_room_clear(janus_telehealth_room *room) {
	GList *list, *l;
	janus_telehealth_feed *feed;

	janus_mutex_lock(&room->mutex);
	list = g_list_copy(room->feeds);
	for (l = list; l != NULL; l = l->next) {
		janus_refcount_increase(&((janus_telehealth_feed *)l->data)->ref);
	}
	janus_mutex_unlock(&room->mutex);

	for (l = list; l != NULL; l = l->next) {
		feed = l->data;
		janus_telehealth_feed_remove(feed);
		janus_telehealth_close_pc(feed->session);
		janus_refcount_decrease(&feed->ref);
	}
	g_list_free(list);

	janus_mutex_lock(&room->mutex);
	list = g_list_copy(room->subscribers);
	for (l = list; l != NULL; l = l->next) {
		janus_refcount_increase(&((janus_telehealth_subscriber *)l->data)->ref);
	}
	janus_mutex_unlock(&room->mutex);

	for (l = list; l != NULL; l = l->next) {
		janus_telehealth_subscriber_remove(l->data, TH_LEFT_ROOM_CLOSED, TRUE);
		janus_telehealth_subscriber_unref(l->data);
	}
	g_list_free(list);
}


void janus_telehealth_media_block(janus_telehealth_session *session, int audio, int video) {
	guint i;
	int block;
	gboolean resumed;
	janus_telehealth_feed *feed;
	janus_telehealth_feed_stream *fs;

	feed = janus_telehealth_session_feed(session);
	if (feed == NULL) {
		return;
	}

	for (i = 0; i < feed->streams->len; i++) {
		fs = g_ptr_array_index(feed->streams, i);
		block = fs->type == JANUS_TELEHEALTH_AUDIO ? audio : video;
		if (block < 0) {
			continue;
		}
		resumed = g_atomic_int_get(&fs->blocked) && !block;
		g_atomic_int_set(&fs->blocked, block ? 1 : 0);

		/* Receivers decode again from a keyframe. */
		if (resumed) {
			janus_telehealth_feed_keyframe(feed, fs);
		}
	}

	janus_refcount_decrease(&feed->ref);
}


void janus_telehealth_media_stop_publishing(janus_telehealth_session *session, const char *reason) {
	json_t *event;
	janus_telehealth_feed *feed;
	janus_telehealth_room *room;

	feed = janus_telehealth_session_feed(session);
	if (feed == NULL) {
		return;
	}

	room = feed->room;
	janus_refcount_increase(&room->ref);
	janus_telehealth_feed_remove(feed);
	janus_refcount_decrease(&feed->ref);

	event = json_pack("{s:s, s:s, s:s}", "telehealth", "unpublished", "room", room->id, "reason", reason);
	janus_telehealth_push(session, NULL, event);
	json_decref(event);

	janus_telehealth_close_pc(session);
	janus_telehealth_room_renegotiate(room);
	janus_telehealth_room_unref(room);
}


void janus_telehealth_media_renegotiate(janus_telehealth_room *room) {
	janus_telehealth_room_renegotiate(room);
}


void janus_telehealth_media_feed_state(
	janus_telehealth_session *session, gboolean *publishing, gboolean *screen_sharing) {
	guint i, nvideo;
	janus_telehealth_feed_stream *fs;

	*publishing = FALSE;
	*screen_sharing = FALSE;
	nvideo = 0;

	janus_mutex_lock(&session->mutex);
	if (session->feed != NULL) {
		*publishing = TRUE;
		for (i = 0; i < session->feed->streams->len; i++) {
			fs = g_ptr_array_index(session->feed->streams, i);
			if (fs->type != JANUS_TELEHEALTH_VIDEO) {
				continue;
			}
			nvideo++;
			if (nvideo > 1 || strcmp(fs->description, "screen") == 0) {
				*screen_sharing = TRUE;
			}
		}
	}
	janus_mutex_unlock(&session->mutex);
}
