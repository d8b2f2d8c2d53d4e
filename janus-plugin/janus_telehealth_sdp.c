/*
 * SDP negotiation of janus.plugin.telehealth.
 *
 * A publisher offers and the plugin answers: the first Opus audio and the
 * first two VP8 videos are received, the rest is rejected.  A subscriber
 * is offered by the plugin: one m-line per remote stream of its own
 * (breakout) room, m-lines of streams gone are made inactive and reused,
 * and a new offer waits for the answer to the previous one.  Handler
 * thread only; the objects and locks are those of janus_telehealth_media.c.
 */

#include <string.h>

#include <debug.h>
#include <rtcp.h>
#include <rtp.h>
#include <sdp-utils.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"


/* Subscriber offers */

static janus_telehealth_sub_stream *janus_telehealth_sub_stream_slot(janus_telehealth_subscriber *sub, int type) {
	guint i;
	janus_telehealth_sub_stream *ss;

	/* An inactive m-line of the same kind is reused, as VideoRoom does. */
	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		if (ss->feed == NULL && ss->type == type) {
			return ss;
		}
	}

	ss = g_malloc0(sizeof(janus_telehealth_sub_stream));
	ss->subscriber = sub;
	ss->mindex = (int)sub->streams->len;
	ss->type = type;
	ss->pt = type == JANUS_TELEHEALTH_AUDIO ? JANUS_TELEHEALTH_OPUS_PT : JANUS_TELEHEALTH_VP8_PT;
	ss->mid = g_strdup_printf("%d", ss->mindex);
	janus_rtp_switching_context_reset(&ss->context);
	janus_refcount_init(&ss->ref, janus_telehealth_sub_stream_free);
	g_ptr_array_add(sub->streams, ss);

	return ss;
}


/*
 * Gives the subscriber an m-line for every stream of every other
 * participant's feed.  TRUE when its m-lines changed (new, or gone
 * inactive since the last sync).  Handler thread.
 */
gboolean janus_telehealth_subscriber_sync(janus_telehealth_subscriber *sub) {
	guint i, j;
	GList *feeds, *l;
	gboolean changed, found;
	janus_telehealth_feed *feed;
	janus_telehealth_sub_stream *ss;
	janus_telehealth_feed_stream *fs;
	janus_telehealth_participant *me, *other;

	/* Only the feeds of the subscriber's own (breakout) room. */
	feeds = NULL;
	janus_mutex_lock(&sub->room->mutex);
	me = g_hash_table_lookup(sub->room->participants, sub->participant_id);
	for (l = sub->room->feeds; l != NULL; l = l->next) {
		feed = l->data;
		other = g_hash_table_lookup(sub->room->participants, feed->participant_id);
		if (me == NULL || other == NULL || g_strcmp0(me->breakout, other->breakout) != 0) {
			continue;
		}
		janus_refcount_increase(&feed->ref);
		feeds = g_list_prepend(feeds, feed);
	}
	janus_mutex_unlock(&sub->room->mutex);
	feeds = g_list_reverse(feeds);

	janus_mutex_lock(&sub->mutex);
	changed = sub->dirty;
	sub->dirty = FALSE;

	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		if (ss->feed != NULL && (!g_atomic_int_get(&ss->feed->active) || g_list_find(feeds, ss->feed) == NULL)) {
			janus_telehealth_sub_stream_detach(ss);
			changed = TRUE;
		}
	}

	for (l = feeds; l != NULL; l = l->next) {
		feed = l->data;
		if (!g_atomic_int_get(&feed->active) || strcmp(feed->participant_id, sub->participant_id) == 0) {
			continue;
		}

		for (i = 0; i < feed->streams->len; i++) {
			fs = g_ptr_array_index(feed->streams, i);

			found = FALSE;
			for (j = 0; j < sub->streams->len && !found; j++) {
				ss = g_ptr_array_index(sub->streams, j);
				found = ss->fstream == fs;
			}
			if (found) {
				continue;
			}

			ss = janus_telehealth_sub_stream_slot(sub, fs->type);
			janus_refcount_increase(&feed->ref);
			ss->feed = feed;
			ss->fstream = fs;
			ss->in_offer = FALSE;
			g_atomic_int_set(&ss->ready, 0);
			/* A reused m-line keeps its context: the receiver sees one
             * stream whose source switched (no SRTP replay of old
             * sequence numbers). */

			janus_refcount_increase(&ss->ref);
			janus_mutex_lock(&fs->mutex);
			fs->subscribers = g_slist_append(fs->subscribers, ss);
			janus_mutex_unlock(&fs->mutex);

			changed = TRUE;
		}
	}
	janus_mutex_unlock(&sub->mutex);

	g_list_free_full(feeds, (GDestroyNotify)janus_telehealth_feed_unref_cb);

	return changed;
}


/* Called with sub->mutex held. */
static json_t *janus_telehealth_subscriber_streams_json(janus_telehealth_subscriber *sub) {
	guint i;
	json_t *streams, *entry;
	janus_telehealth_sub_stream *ss;

	streams = json_array();
	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		entry = json_pack("{s:s, s:i, s:s, s:b}", "mid", ss->mid, "mindex", ss->mindex, "type",
			janus_telehealth_media_type_name(ss->type), "active", ss->feed != NULL);
		if (ss->feed != NULL) {
			json_object_set_new(entry, "participant", json_string(ss->feed->participant_id));
			json_object_set_new(entry, "description", json_string(ss->fstream->description));
			json_object_set_new(entry, "feed_mid", json_string(ss->fstream->mid));
		}
		json_array_append_new(streams, entry);
	}

	return streams;
}


/* Called with sub->mutex held. */
static json_t *janus_telehealth_subscriber_offer_jsep(janus_telehealth_subscriber *sub) {
	guint i;
	char name[160], *sdp, *mstid;
	json_t *jsep;
	gboolean active;
	janus_sdp *offer;
	janus_telehealth_sub_stream *ss;

	g_snprintf(name, sizeof(name), "Telehealth %s", sub->room->id);
	offer = janus_sdp_generate_offer(name, "0.0.0.0", JANUS_SDP_OA_DONE);

	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		active = ss->feed != NULL;
		ss->in_offer = active;
		mstid = active ? g_strdup_printf("%s-%s", ss->feed->msid, ss->fstream->mid) : NULL;

		janus_sdp_generate_offer_mline(offer, JANUS_SDP_OA_MLINE,
			ss->type == JANUS_TELEHEALTH_AUDIO ? JANUS_SDP_AUDIO : JANUS_SDP_VIDEO, JANUS_SDP_OA_MID, ss->mid,
			JANUS_SDP_OA_MSID, active ? ss->feed->msid : NULL, mstid, JANUS_SDP_OA_PT, ss->pt, JANUS_SDP_OA_CODEC,
			ss->type == JANUS_TELEHEALTH_AUDIO ? "opus" : "vp8", JANUS_SDP_OA_DIRECTION,
			active ? JANUS_SDP_SENDONLY : JANUS_SDP_INACTIVE, JANUS_SDP_OA_EXTENSION, JANUS_RTP_EXTMAP_MID,
			janus_rtp_extension_id(JANUS_RTP_EXTMAP_MID), JANUS_SDP_OA_DONE);

		g_free(mstid);
	}

	offer->o_version = ++sub->sdp_version;
	sdp = janus_sdp_write(offer);
	janus_sdp_destroy(offer);

	jsep = json_pack("{s:s, s:s}", "type", "offer", "sdp", sdp);
	g_free(sdp);

	return jsep;
}


/*
 * Sends the subscriber an offer of its current m-lines, in event "what"
 * (subscribed, updated).  While an offer is unanswered the next one waits
 * for the answer.  Handler thread.
 */
void janus_telehealth_subscriber_offer(janus_telehealth_subscriber *sub, const char *what, const char *transaction) {
	json_t *event, *jsep;

	if (sub->sdp_version > 0 && !sub->answered) {
		sub->offer_pending = TRUE;
		return;
	}

	jsep = NULL;
	event = json_object();
	json_object_set_new(event, "telehealth", json_string(what));
	json_object_set_new(event, "room", json_string(sub->room->id));

	janus_mutex_lock(&sub->mutex);
	json_object_set_new(event, "streams", janus_telehealth_subscriber_streams_json(sub));
	if (sub->streams->len > 0) {
		jsep = janus_telehealth_subscriber_offer_jsep(sub);
		sub->answered = FALSE;
		sub->offer_pending = FALSE;
	}
	janus_mutex_unlock(&sub->mutex);

	janus_telehealth_push_jsep(sub->session, transaction, event, jsep);
	json_decref(event);
	json_decref(jsep);
}


/* Renegotiates every subscriber of the room whose m-lines changed. */
void janus_telehealth_room_renegotiate(janus_telehealth_room *room) {
	GList *subs, *l;
	janus_telehealth_subscriber *sub;

	if (g_atomic_int_get(&room->closed)) {
		return;
	}

	janus_mutex_lock(&room->mutex);
	subs = g_list_copy(room->subscribers);
	for (l = subs; l != NULL; l = l->next) {
		janus_refcount_increase(&((janus_telehealth_subscriber *)l->data)->ref);
	}
	janus_mutex_unlock(&room->mutex);

	for (l = subs; l != NULL; l = l->next) {
		sub = l->data;
		if (janus_telehealth_subscriber_sync(sub)) {
			janus_telehealth_subscriber_offer(sub, "updated", NULL);
		}
		janus_telehealth_subscriber_unref(sub);
	}

	g_list_free(subs);
}


/* Publisher offers */

static const char *janus_telehealth_mline_mid(janus_sdp_mline *m) {
	GList *l;
	janus_sdp_attribute *a;

	for (l = m->attributes; l != NULL; l = l->next) {
		a = l->data;
		if (a->name != NULL && a->value != NULL && strcmp(a->name, "mid") == 0) {
			return a->value;
		}
	}

	return NULL;
}


static const char *janus_telehealth_description(json_t *descriptions, const char *mid) {
	size_t i;
	json_t *d;
	const char *d_mid, *text;

	json_array_foreach (descriptions, i, d) {
		d_mid = json_string_value(json_object_get(d, "mid"));
		text = json_string_value(json_object_get(d, "description"));
		if (d_mid != NULL && text != NULL && mid != NULL && strcmp(d_mid, mid) == 0 && text[0] != '\0' &&
			strlen(text) <= JANUS_TELEHEALTH_DESCRIPTION_MAX) {
			return text;
		}
	}

	return NULL;
}


/*
 * The transport profiles a WebRTC offer uses (RFC 8829, 8841).  An
 * m-line of any other is not a browser's, and Janus would echo it into
 * the answer as it came, where its own parser may refuse it (a profile
 * of hundreds of bytes): such an offer is refused whole.
 */
static const char *janus_telehealth_profiles[] = {"UDP/TLS/RTP/SAVPF", "UDP/TLS/RTP/SAVP", "TCP/TLS/RTP/SAVPF",
	"RTP/SAVPF", "RTP/SAVP", "RTP/AVPF", "RTP/AVP", "UDP/DTLS/SCTP", "TCP/DTLS/SCTP", "DTLS/SCTP", NULL};


gboolean janus_telehealth_offer_profiles_known(janus_sdp *offer) {
	int i;
	GList *l;
	janus_sdp_mline *m;

	for (l = offer->m_lines; l != NULL; l = l->next) {
		m = l->data;

		for (i = 0; janus_telehealth_profiles[i] != NULL; i++) {
			if (m->proto != NULL && strcasecmp(m->proto, janus_telehealth_profiles[i]) == 0) {
				break;
			}
		}

		if (janus_telehealth_profiles[i] == NULL) {
			return FALSE;
		}
	}

	return TRUE;
}


/*
 * Only an RTP profile carries what is answered here: Janus writes an
 * accepted m-line of another profile without its payload type, and that
 * answer would not parse.
 */
static gboolean janus_telehealth_offer_sends(janus_sdp_mline *m) {
	return m->port > 0 && m->proto != NULL && strstr(m->proto, "RTP/") != NULL &&
		(m->direction == JANUS_SDP_DEFAULT || m->direction == JANUS_SDP_SENDRECV || m->direction == JANUS_SDP_SENDONLY);
}


/*
 * Answers a publisher's offer: the first Opus audio and the first two VP8
 * videos are received, everything else is rejected.  Returns the answer
 * and fills feed->streams.
 */
janus_sdp *janus_telehealth_publish_answer(janus_sdp *offer, json_t *descriptions, janus_telehealth_feed *feed) {
	int naudio, nvideo;
	GList *l;
	janus_sdp *answer;
	const char *mid, *description;
	janus_sdp_mline *m, *am;
	janus_telehealth_feed_stream *fs;

	naudio = 0;
	nvideo = 0;
	answer = janus_sdp_generate_answer(offer);

	for (l = offer->m_lines; l != NULL; l = l->next) {
		m = l->data;

		if (m->type == JANUS_SDP_AUDIO && naudio == 0 && janus_telehealth_offer_sends(m) &&
			janus_sdp_get_codec_pt(offer, m->index, "opus") > 0) {
			janus_sdp_generate_answer_mline(offer, answer, m, JANUS_SDP_OA_MLINE, JANUS_SDP_AUDIO,
				JANUS_SDP_OA_DIRECTION, JANUS_SDP_RECVONLY, JANUS_SDP_OA_CODEC, "opus", JANUS_SDP_OA_ACCEPT_EXTMAP,
				JANUS_RTP_EXTMAP_MID, JANUS_SDP_OA_DONE);
			naudio++;
			description = "microphone";

		} else if (m->type == JANUS_SDP_VIDEO && nvideo < JANUS_TELEHEALTH_MAX_VIDEO &&
			janus_telehealth_offer_sends(m) && janus_sdp_get_codec_pt(offer, m->index, "vp8") > 0) {
			janus_sdp_generate_answer_mline(offer, answer, m, JANUS_SDP_OA_MLINE, JANUS_SDP_VIDEO,
				JANUS_SDP_OA_DIRECTION, JANUS_SDP_RECVONLY, JANUS_SDP_OA_CODEC, "vp8", JANUS_SDP_OA_ACCEPT_EXTMAP,
				JANUS_RTP_EXTMAP_MID, JANUS_SDP_OA_DONE);
			description = nvideo == 0 ? "camera" : "screen";
			nvideo++;

			am = janus_sdp_mline_find_by_index(answer, m->index);
			if (am != NULL && feed->bitrate > 0) {
				g_free(am->b_name);
				am->b_name = g_strdup("AS");
				am->b_value = feed->bitrate / 1000;
			}

		} else {
			if (m->type == JANUS_SDP_AUDIO || m->type == JANUS_SDP_VIDEO || m->type == JANUS_SDP_APPLICATION) {
				janus_sdp_generate_answer_mline(
					offer, answer, m, JANUS_SDP_OA_MLINE, m->type, JANUS_SDP_OA_ENABLED, FALSE, JANUS_SDP_OA_DONE);
			}
			continue;
		}

		mid = janus_telehealth_mline_mid(m);
		fs = g_malloc0(sizeof(janus_telehealth_feed_stream));
		fs->feed = feed;
		fs->mindex = m->index;
		fs->type = m->type == JANUS_SDP_AUDIO ? JANUS_TELEHEALTH_AUDIO : JANUS_TELEHEALTH_VIDEO;
		fs->mid = mid != NULL ? g_strdup(mid) : g_strdup_printf("%d", m->index);
		if (fs->type == JANUS_TELEHEALTH_VIDEO && janus_telehealth_description(descriptions, fs->mid) != NULL) {
			description = janus_telehealth_description(descriptions, fs->mid);
		}
		fs->description = g_strdup(description);
		janus_mutex_init(&fs->mutex);
		g_ptr_array_add(feed->streams, fs);
	}

	return answer;
}


/* Same streams (index, kind, description) as an existing feed? */
gboolean janus_telehealth_feed_same(janus_telehealth_feed *a, janus_telehealth_feed *b) {
	guint i;
	janus_telehealth_feed_stream *fa, *fb;

	if (a->streams->len != b->streams->len) {
		return FALSE;
	}

	for (i = 0; i < a->streams->len; i++) {
		fa = g_ptr_array_index(a->streams, i);
		fb = g_ptr_array_index(b->streams, i);
		if (fa->mindex != fb->mindex || fa->type != fb->type || strcmp(fa->description, fb->description) != 0) {
			return FALSE;
		}
	}

	return TRUE;
}


/* Subscriber answers */

int janus_telehealth_media_start(
	janus_telehealth_session *session, json_t *jsep, const char *transaction, char *error, size_t error_size) {
	guint i;
	GList *keyframes, *l;
	json_t *event;
	const char *type;
	janus_telehealth_feed *feed;
	janus_telehealth_subscriber *sub;
	janus_telehealth_sub_stream *ss;
	janus_telehealth_feed_stream *fs;

	sub = janus_telehealth_session_subscriber(session);
	if (sub == NULL) {
		g_snprintf(error, error_size, "Not subscribed");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	type = json_string_value(json_object_get(jsep, "type"));
	if (type == NULL || strcasecmp(type, "answer") != 0 || !json_is_string(json_object_get(jsep, "sdp"))) {
		janus_telehealth_subscriber_unref(sub);
		g_snprintf(error, error_size, "start needs a JSEP answer");
		return JANUS_TELEHEALTH_ERROR_INVALID_SDP;
	}

	if (sub->answered || sub->sdp_version == 0) {
		janus_telehealth_subscriber_unref(sub);
		g_snprintf(error, error_size, "No offer to answer");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	keyframes = NULL;

	janus_mutex_lock(&sub->mutex);
	sub->answered = TRUE;
	for (i = 0; i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		if (ss->feed == NULL || !ss->in_offer) {
			continue;
		}
		if (!g_atomic_int_get(&ss->ready)) {
			g_atomic_int_set(&ss->ready, 1);
			if (ss->type == JANUS_TELEHEALTH_VIDEO) {
				janus_refcount_increase(&ss->ref);
				keyframes = g_list_prepend(keyframes, ss);
			}
		}
	}
	janus_mutex_unlock(&sub->mutex);

	event = json_pack("{s:s, s:s}", "telehealth", "started", "room", sub->room->id);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);

	/* The new receivers need a keyframe to start decoding. */
	for (l = keyframes; l != NULL; l = l->next) {
		ss = l->data;
		janus_mutex_lock(&sub->mutex);
		feed = ss->feed;
		fs = ss->fstream;
		if (feed != NULL) {
			janus_refcount_increase(&feed->ref);
		}
		janus_mutex_unlock(&sub->mutex);

		if (feed != NULL) {
			janus_telehealth_feed_keyframe(feed, fs);
			janus_refcount_decrease(&feed->ref);
		}
		janus_telehealth_sub_stream_unref(ss);
	}
	g_list_free(keyframes);

	if (sub->offer_pending) {
		janus_telehealth_subscriber_offer(sub, "updated", NULL);
	}

	janus_telehealth_subscriber_unref(sub);

	return 0;
}
