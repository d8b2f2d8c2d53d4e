/*
 * Rooms and participants of janus.plugin.telehealth: the registry.
 *
 * A room is opened by the nginx module (the Redis hash <prefix>room:<id>);
 * the first join on this node makes us its host.  Only the handler thread
 * changes rooms; other threads read them under the locks below.  Lock
 * order: rooms_mutex, then room->mutex, then session->mutex.
 *
 * Joining and leaving are in janus_telehealth_join.c, the housekeeping
 * thread (leases, deadlines, empty rooms) in
 * janus_telehealth_housekeeping.c.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"
#include "janus_telehealth_room.h"


/* room id -> room (reference) */
static GHashTable *rooms;
static janus_mutex rooms_mutex = JANUS_MUTEX_INITIALIZER;


/* Objects */

static void janus_telehealth_room_free(const janus_refcount *room_ref) {
	janus_telehealth_room *room;

	room = janus_refcount_containerof(room_ref, janus_telehealth_room, ref);

	g_hash_table_destroy(room->participants);
	g_hash_table_destroy(room->admitted);
	g_list_free_full(room->breakouts, g_free);
	janus_mutex_destroy(&room->mutex);
	g_free(room->leave_policy);
	g_free(room->id);
	g_free(room->session_id);
	g_free(room->org_id);
	g_free(room->kind);
	g_free(room->patient_id);
	g_free(room);
}


void janus_telehealth_room_unref(janus_telehealth_room *room) {
	janus_refcount_decrease(&room->ref);
}


void janus_telehealth_participant_free(const janus_refcount *participant_ref) {
	janus_telehealth_participant *participant;

	participant = janus_refcount_containerof(participant_ref, janus_telehealth_participant, ref);

	if (participant->room != NULL) {
		janus_refcount_decrease(&participant->room->ref);
	}

	g_free(participant->id);
	g_free(participant->display);
	g_free(participant->breakout);
	g_free(participant->jti);
	g_free(participant->subscribe_token);
	g_free(participant);
}


void janus_telehealth_participant_unref(janus_telehealth_participant *participant) {
	janus_refcount_decrease(&participant->ref);
}


static janus_telehealth_room *janus_telehealth_room_new(
	const janus_telehealth_join *join, const janus_telehealth_room_info *info) {
	janus_telehealth_room *room;

	room = g_malloc0(sizeof(janus_telehealth_room));
	room->id = g_strdup(join->room_id);
	room->session_id = g_strdup(join->session_id);
	/* The room hash is the authority; the credential fills its gaps. */
	room->org_id = g_strdup(info->org_id != NULL ? info->org_id : join->org_id);
	room->kind = g_strdup(info->kind != NULL ? info->kind : join->kind);
	room->patient_id = g_strdup(info->patient_id);
	room->bitrate = info->bitrate > 0 ? info->bitrate : (guint32)janus_telehealth_cfg.bitrate;
	room->empty_timeout = info->empty_timeout;
	room->participants =
		g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)janus_telehealth_participant_unref);
	room->admitted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	janus_mutex_init(&room->mutex);
	janus_refcount_init(&room->ref, janus_telehealth_room_free);

	return room;
}


janus_telehealth_room *janus_telehealth_rooms_lookup(const char *room_id) {
	janus_telehealth_room *room;

	janus_mutex_lock(&rooms_mutex);
	room = rooms != NULL ? g_hash_table_lookup(rooms, room_id) : NULL;
	if (room != NULL) {
		janus_refcount_increase(&room->ref);
	}
	janus_mutex_unlock(&rooms_mutex);

	return room;
}


janus_telehealth_room *janus_telehealth_room_find(const char *room_id) {
	return janus_telehealth_rooms_lookup(room_id);
}


/* The policy fields of the room hash, as the last join read them.  Called
 * with the room mutex held. */
void janus_telehealth_room_apply_policy(janus_telehealth_room *room, const janus_telehealth_room_info *info) {
	/* nginx writes the session's leave_policy into every room hash; a
     * hash without one (an older nginx) keeps the room open: stay. */
	g_free(room->leave_policy);
	room->leave_policy = g_strdup(info->leave_policy != NULL ? info->leave_policy : TH_POLICY_STAY);

	if (info->duration_limit != room->duration_limit) {
		room->warned = FALSE;
	}
	room->duration_limit = info->duration_limit;
	if (info->opened_at_ms > 0) {
		room->opened_at_ms = info->opened_at_ms;
	}
}


/* The session's participant (reference), or NULL when not in a room. */
janus_telehealth_participant *janus_telehealth_session_participant(janus_telehealth_session *session) {
	janus_telehealth_participant *participant;

	janus_mutex_lock(&session->mutex);
	participant = session->participant;
	if (participant != NULL) {
		janus_refcount_increase(&participant->ref);
	}
	janus_mutex_unlock(&session->mutex);

	return participant;
}


janus_telehealth_room *janus_telehealth_session_room(janus_telehealth_session *session) {
	janus_telehealth_room *room;

	room = NULL;

	janus_mutex_lock(&session->mutex);
	if (session->participant != NULL) {
		room = session->participant->room;
		janus_refcount_increase(&room->ref);
	}
	janus_mutex_unlock(&session->mutex);

	return room;
}


/*
 * Cuts the links between a participant and its session, both ways.
 * Handler thread only; the room mutex must be held so that readers of
 * participant->session never see a session being released.
 */
void janus_telehealth_participant_detach(janus_telehealth_participant *participant) {
	janus_telehealth_session *session;

	session = participant->session;
	if (session == NULL) {
		return;
	}

	janus_mutex_lock(&session->mutex);
	if (session->participant == participant) {
		session->participant = NULL;
		janus_refcount_decrease(&participant->ref);
	}
	janus_mutex_unlock(&session->mutex);

	participant->session = NULL;
	janus_telehealth_session_unref(session);
}


gboolean janus_telehealth_is_staff_chair(const janus_telehealth_participant *p) {
	return strcmp(p->role, TH_ROLE_CHAIR) == 0 && g_str_has_prefix(p->id, "staff:");
}


/* JSON */

/* Called with the room mutex held. */
json_t *janus_telehealth_participant_json(const janus_telehealth_participant *p) {
	gboolean publishing, screen;

	publishing = FALSE;
	screen = FALSE;
	if (p->session != NULL) {
		janus_telehealth_media_feed_state(p->session, &publishing, &screen);
	}

	return json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b, s:b,"
					 " s:b, s:o}",
		"id", p->id, "display", p->display, "role", p->role, "state", p->waiting ? "waiting" : "in", "audio_muted",
		p->audio_muted, "video_paused", p->video_paused, "audio_muted_by_chair", p->audio_blocked,
		"video_muted_by_chair", p->video_blocked, "publishing", publishing, "screen_sharing", screen, "audio_only",
		p->audio_only, "breakout", p->breakout != NULL ? json_string(p->breakout) : json_null());
}


/* The value of a member in <prefix>room:<room>:members. */
char *janus_telehealth_member_json(const janus_telehealth_participant *p) {
	char *text;
	json_t *member;

	member = json_pack("{s:s, s:s, s:s, s:b, s:b, s:b, s:b, s:b}", "role", p->role, "display", p->display, "state",
		p->waiting ? "waiting" : "in", "audio_muted", p->audio_muted, "video_paused", p->video_paused,
		"audio_muted_by_chair", p->audio_blocked, "video_muted_by_chair", p->video_blocked, "audio_only",
		p->audio_only);
	if (p->breakout != NULL) {
		json_object_set_new(member, "breakout", json_string(p->breakout));
	}
	text = json_dumps(member, JSON_COMPACT);
	json_decref(member);

	return text;
}


static gint janus_telehealth_participant_order(gconstpointer a, gconstpointer b) {
	const janus_telehealth_participant *pa = a, *pb = b;

	return pa->seq < pb->seq ? -1 : (pa->seq > pb->seq ? 1 : 0);
}


/* Called with the room mutex held.  Waiting people only for chairs. */
static json_t *janus_telehealth_room_participants_locked(janus_telehealth_room *room, gboolean with_waiting) {
	GList *list, *l;
	json_t *participants;
	janus_telehealth_participant *p;

	participants = json_array();

	list = g_hash_table_get_values(room->participants);
	list = g_list_sort(list, janus_telehealth_participant_order);
	for (l = list; l != NULL; l = l->next) {
		p = l->data;
		if (p->waiting && !with_waiting) {
			continue;
		}
		json_array_append_new(participants, janus_telehealth_participant_json(p));
	}
	g_list_free(list);

	return participants;
}


json_t *janus_telehealth_room_participants(janus_telehealth_room *room, gboolean with_waiting) {
	json_t *participants;

	janus_mutex_lock(&room->mutex);
	participants = janus_telehealth_room_participants_locked(room, with_waiting);
	janus_mutex_unlock(&room->mutex);

	return participants;
}


/*
 * Chairs see everyone, waiting people included; the others see who is in;
 * people who wait see nobody.
 */
void janus_telehealth_room_push_participants(janus_telehealth_room *room, janus_telehealth_session *except) {
	GList *targets, *l;
	json_t *full, *in, *event;
	GHashTableIter iter;
	janus_telehealth_participant *p;

	targets = NULL;
	full = json_pack("{s:s, s:s}", "telehealth", "participants", "room", room->id);
	in = json_deep_copy(full);

	janus_mutex_lock(&room->mutex);
	json_object_set_new(full, "participants", janus_telehealth_room_participants_locked(room, TRUE));
	json_object_set_new(in, "participants", janus_telehealth_room_participants_locked(room, FALSE));

	g_hash_table_iter_init(&iter, room->participants);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&p)) {
		if (p->session == NULL || p->session == except || p->waiting) {
			continue;
		}
		janus_refcount_increase(&p->session->ref);
		targets = g_list_prepend(targets, p->session);
		targets = g_list_prepend(targets, strcmp(p->role, TH_ROLE_CHAIR) == 0 ? full : in);
	}
	janus_mutex_unlock(&room->mutex);

	/* event, then its session */
	for (l = targets; l != NULL; l = l->next->next) {
		event = l->data;
		janus_telehealth_push(l->next->data, NULL, event);
		janus_telehealth_session_unref(l->next->data);
	}

	g_list_free(targets);
	json_decref(full);
	json_decref(in);
}


/* Pushes event to every participant in the room whom to() picks. */
void janus_telehealth_room_push_to(
	janus_telehealth_room *room, json_t *event, gboolean (*to)(const janus_telehealth_participant *p)) {
	GList *sessions, *l;
	GHashTableIter iter;
	janus_telehealth_participant *p;

	sessions = NULL;

	janus_mutex_lock(&room->mutex);
	g_hash_table_iter_init(&iter, room->participants);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&p)) {
		if (p->session != NULL && to(p)) {
			janus_refcount_increase(&p->session->ref);
			sessions = g_list_prepend(sessions, p->session);
		}
	}
	janus_mutex_unlock(&room->mutex);

	for (l = sessions; l != NULL; l = l->next) {
		janus_telehealth_push(l->data, NULL, event);
		janus_telehealth_session_unref(l->data);
	}

	g_list_free(sessions);
}


static gboolean janus_telehealth_is_chair(const janus_telehealth_participant *p) {
	return strcmp(p->role, TH_ROLE_CHAIR) == 0;
}


void janus_telehealth_room_push_chairs(janus_telehealth_room *room, json_t *event) {
	janus_telehealth_room_push_to(room, event, janus_telehealth_is_chair);
}


void janus_telehealth_push_simple(janus_telehealth_session *session, const char *transaction, const char *what,
	const char *room_id, const char *reason) {
	json_t *event;

	event = json_object();
	json_object_set_new(event, "telehealth", json_string(what));
	json_object_set_new(event, "room", json_string(room_id));
	if (reason != NULL) {
		json_object_set_new(event, "reason", json_string(reason));
	}

	janus_telehealth_push(session, transaction, event);
	json_decref(event);
}


/*
 * The room this node hosts under join->room_id, made from the join's answer
 * when it is the first join here.  Returns a reference.  Handler thread.
 */
janus_telehealth_room *janus_telehealth_room_host(
	const janus_telehealth_join *join, const janus_telehealth_room_info *info) {
	janus_telehealth_room *room;

	janus_mutex_lock(&rooms_mutex);
	room = g_hash_table_lookup(rooms, join->room_id);
	if (room == NULL) {
		room = janus_telehealth_room_new(join, info);
		g_hash_table_insert(rooms, room->id, room);
		JANUS_LOG(LOG_INFO, "[telehealth] hosting room %s (session %s)\n", room->id, room->session_id);
	}
	janus_refcount_increase(&room->ref);
	janus_mutex_unlock(&rooms_mutex);

	return room;
}


/* Every room hosted here, each with a reference (for other threads). */
GList *janus_telehealth_rooms_snapshot(void) {
	GList *snapshot, *l;

	janus_mutex_lock(&rooms_mutex);
	snapshot = rooms != NULL ? g_hash_table_get_values(rooms) : NULL;
	for (l = snapshot; l != NULL; l = l->next) {
		janus_refcount_increase(&((janus_telehealth_room *)l->data)->ref);
	}
	janus_mutex_unlock(&rooms_mutex);

	return snapshot;
}


/* Close */

/*
 * Closes a room for everyone in it.  With update_redis the room is marked
 * closed in Redis, its members and patient lock go, and room.closed is
 * emitted; without, the room was already taken from us (expired, closed
 * elsewhere, hosted elsewhere) and only the people here are let go.
 */
void janus_telehealth_room_close(janus_telehealth_room *room, const char *reason, gboolean update_redis) {
	GList *participants, *l;
	json_t *event;
	janus_telehealth_session *session;
	janus_telehealth_participant *p;

	if (!g_atomic_int_compare_and_exchange(&room->closed, 0, 1)) {
		return;
	}

	janus_mutex_lock(&rooms_mutex);
	if (g_hash_table_lookup(rooms, room->id) == room) {
		/* Our reference keeps the room alive past the table's. */
		g_hash_table_remove(rooms, room->id);
	}
	janus_mutex_unlock(&rooms_mutex);

	event = json_object();
	json_object_set_new(event, "telehealth", json_string("closed"));
	json_object_set_new(event, "room", json_string(room->id));
	json_object_set_new(event, "reason", json_string(reason));

	janus_mutex_lock(&room->mutex);
	participants = g_hash_table_get_values(room->participants);
	for (l = participants; l != NULL; l = l->next) {
		janus_refcount_increase(&((janus_telehealth_participant *)l->data)->ref);
	}
	g_hash_table_remove_all(room->participants);
	janus_mutex_unlock(&room->mutex);

	for (l = participants; l != NULL; l = l->next) {
		p = l->data;

		janus_mutex_lock(&room->mutex);
		session = p->session;
		if (session != NULL) {
			janus_refcount_increase(&session->ref);
		}
		janus_telehealth_participant_detach(p);
		janus_mutex_unlock(&room->mutex);

		if (session != NULL) {
			janus_telehealth_push(session, NULL, event);
			janus_telehealth_session_unref(session);
		}

		janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room, p->id, p->role, TH_LEFT_ROOM_CLOSED);
		janus_telehealth_participant_unref(p);
	}

	g_list_free(participants);
	json_decref(event);

	/* Every PeerConnection of the room closes. */
	janus_telehealth_media_room_clear(room);

	/* Redis, and room.closed, behind (janus_telehealth_writes.c). */
	if (update_redis) {
		janus_telehealth_write_close(room, reason);
	}

	JANUS_LOG(LOG_INFO, "[telehealth] room %s closed: %s\n", room->id, reason);
}


/* A chair's lookup: the participant (reference) or NULL. */
janus_telehealth_participant *janus_telehealth_room_participant(
	janus_telehealth_room *room, const char *participant_id) {
	janus_telehealth_participant *participant;

	janus_mutex_lock(&room->mutex);
	participant = g_hash_table_lookup(room->participants, participant_id);
	if (participant != NULL) {
		janus_refcount_increase(&participant->ref);
	}
	janus_mutex_unlock(&room->mutex);

	return participant;
}


void janus_telehealth_participant_release(janus_telehealth_participant *p) {
	janus_telehealth_participant_unref(p);
}


/* Close for everyone, from a chair. */
void janus_telehealth_room_close_now(janus_telehealth_room *room, const char *reason) {
	janus_telehealth_room_close(room, reason, TRUE);
}


/* Configure */

int janus_telehealth_room_configure(
	janus_telehealth_session *session, json_t *audio_muted, json_t *video_paused, const char *transaction) {
	char *member;
	json_t *event;
	janus_telehealth_room *room;
	janus_telehealth_participant *participant;

	participant = janus_telehealth_session_participant(session);

	if (participant == NULL) {
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	room = participant->room;

	janus_mutex_lock(&room->mutex);
	if (audio_muted != NULL) {
		participant->audio_muted = json_is_true(audio_muted);
	}
	if (video_paused != NULL) {
		participant->video_paused = json_is_true(video_paused);
	}
	member = janus_telehealth_member_json(participant);
	janus_mutex_unlock(&room->mutex);

	/*
     * The flags are presentation only: a Redis outage must not undo them,
     * and a slow Redis must not hold up the answer (written behind).
     */
	janus_telehealth_member_update(room->id, participant->id, member);

	event = json_pack("{s:s, s:s, s:b, s:b}", "telehealth", "configured", "room", room->id, "audio_muted",
		participant->audio_muted, "video_paused", participant->video_paused);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);

	janus_telehealth_room_push_participants(room, session);
	janus_telehealth_participant_unref(participant);

	return 0;
}


int janus_telehealth_rooms_init(void) {
	rooms = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)janus_telehealth_room_unref);

	if (janus_telehealth_housekeeping_start() != 0) {
		g_hash_table_destroy(rooms);
		rooms = NULL;
		return -1;
	}

	return 0;
}


void janus_telehealth_rooms_deinit(void) {
	GList *list, *l, *participants, *p;
	janus_telehealth_room *room;

	janus_telehealth_housekeeping_stop();

	if (rooms == NULL) {
		return;
	}

	/*
     * Shutting down: everyone here has hung up, as far as call history
     * goes.  The rooms stay open in Redis: another node takes them over
     * (our heartbeat is gone) when people rejoin there, or nginx's
     * reconciler ends them (empty_timeout, node_grace).
     */
	janus_mutex_lock(&rooms_mutex);
	list = g_hash_table_get_values(rooms);
	for (l = list; l != NULL; l = l->next) {
		room = l->data;

		/* Feeds and subscribers hold the room: let go of them first. */
		janus_telehealth_media_room_clear(room);

		janus_mutex_lock(&room->mutex);
		participants = g_hash_table_get_values(room->participants);
		for (p = participants; p != NULL; p = p->next) {
			janus_telehealth_participant *participant = p->data;

			janus_telehealth_participant_detach(participant);
			(void)janus_telehealth_redis_member_out(janus_telehealth_handler_redis, room->id, room->session_id,
				participant->id, g_strcmp0(room->kind, TH_KIND_VIDEO_CALL) != 0, FALSE);
			janus_telehealth_event_emit(
				TH_EV_PARTICIPANT_LEFT, room, participant->id, participant->role, TH_LEFT_HANGUP);
		}
		g_list_free(participants);
		g_hash_table_remove_all(room->participants);
		janus_mutex_unlock(&room->mutex);
	}
	g_list_free(list);

	g_hash_table_destroy(rooms);
	rooms = NULL;
	janus_mutex_unlock(&rooms_mutex);
}
