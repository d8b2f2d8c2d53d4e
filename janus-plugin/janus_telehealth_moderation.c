/*
 * Room semantics that a chair (or nginx, through a command) drives:
 * muting someone, removing them, changing their role, closing the room,
 * the waiting room (admit, admit all, turn away) and breakout rooms (in
 * janus_telehealth_breakout.c).
 *
 * Everything here runs on the handler thread, the only thread that
 * changes rooms.  The media side of a mute is a per-stream flag that
 * incoming_rtp reads atomically (janus_telehealth_media_block); a role
 * change to viewer goes through the unpublish path at once.  Each action
 * that takes effect goes to the events stream as chair.action, with who
 * did it (the chair's participant id, or "command" when nginx asked), so
 * that nginx can audit it.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_moderation.h"
#include "janus_telehealth_redis.h"
#include "janus_telehealth_room.h"


static const char *janus_telehealth_role_name(const char *role) {
	if (role == NULL) {
		return NULL;
	}

	if (strcmp(role, TH_ROLE_CHAIR) == 0) {
		return TH_ROLE_CHAIR;
	}

	if (strcmp(role, TH_ROLE_BROADCASTER) == 0) {
		return TH_ROLE_BROADCASTER;
	}

	if (strcmp(role, TH_ROLE_VIEWER) == 0) {
		return TH_ROLE_VIEWER;
	}

	return NULL;
}


void janus_telehealth_chair_action(const char *room_id, const char *session_id, const char *org_id, const char *action,
	const char *actor, const char *participant, const char *role, const char *breakout) {
	janus_telehealth_event_emit_fields(TH_EV_CHAIR_ACTION, "room", room_id, "session", session_id, "org", org_id,
		"action", action, "actor", actor, "participant", participant, "role", role, "breakout", breakout, NULL);
}


void janus_telehealth_room_action(janus_telehealth_room *room, const char *action, const char *actor,
	const char *participant, const char *role, const char *breakout) {
	janus_telehealth_chair_action(room->id, room->session_id, room->org_id, action, actor, participant, role, breakout);
}


/* Writes a participant's member entry after a change; best effort. */
void janus_telehealth_moderation_store(janus_telehealth_room *room, janus_telehealth_participant *p) {
	char *member;

	janus_mutex_lock(&room->mutex);
	member = janus_telehealth_member_json(p);
	janus_mutex_unlock(&room->mutex);

	janus_telehealth_write_member_set(room, p->id, member);
	free(member);
}


/* The participant's join handle (reference) or NULL. */
static janus_telehealth_session *janus_telehealth_moderation_session(
	janus_telehealth_room *room, janus_telehealth_participant *p) {
	janus_telehealth_session *session;

	janus_mutex_lock(&room->mutex);
	session = p->session;
	if (session != NULL) {
		janus_refcount_increase(&session->ref);
	}
	janus_mutex_unlock(&room->mutex);

	return session;
}


/* Pushes event to one participant, if their handle is still there. */
void janus_telehealth_moderation_tell(janus_telehealth_room *room, janus_telehealth_participant *p, json_t *event) {
	janus_telehealth_session *session;

	session = janus_telehealth_moderation_session(room, p);
	if (session != NULL) {
		janus_telehealth_push(session, NULL, event);
		janus_telehealth_session_unref(session);
	}
}


int janus_telehealth_no_participant(const char *participant_id, char *error, size_t error_size) {
	g_snprintf(error, error_size, "%s is not in the room", participant_id != NULL ? participant_id : "(none)");

	return JANUS_TELEHEALTH_ERROR_NO_SUCH_PARTICIPANT;
}


/* Mute */

int janus_telehealth_moderate_mute(janus_telehealth_room *room, const char *actor, const char *participant_id,
	json_t *audio, json_t *video, char *error, size_t error_size) {
	int a, v;
	json_t *event;
	janus_telehealth_session *session;
	janus_telehealth_participant *p;

	if ((audio != NULL && !json_is_boolean(audio)) || (video != NULL && !json_is_boolean(video)) ||
		(audio == NULL && video == NULL)) {
		g_snprintf(error, error_size,
			"mute needs audio and/or video "
			"(true: muted, false: not muted)");
		return JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT;
	}

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	a = audio != NULL ? json_is_true(audio) : -1;
	v = video != NULL ? json_is_true(video) : -1;

	janus_mutex_lock(&room->mutex);
	if (a >= 0) {
		p->audio_blocked = a;
	}
	if (v >= 0) {
		p->video_blocked = v;
	}
	session = p->session;
	if (session != NULL) {
		janus_refcount_increase(&session->ref);
	}
	event = json_pack("{s:s, s:s, s:b, s:b}", "telehealth", "muted", "room", room->id, "audio_muted_by_chair",
		p->audio_blocked, "video_muted_by_chair", p->video_blocked);
	janus_mutex_unlock(&room->mutex);

	/* From the next packet on: incoming_rtp reads the flags. */
	if (session != NULL) {
		janus_telehealth_media_block(session, a, v);
		janus_telehealth_push(session, NULL, event);
		janus_telehealth_session_unref(session);
	}
	json_decref(event);

	JANUS_LOG(LOG_INFO,
		"[telehealth] participant %s in room %s: audio %s, "
		"video %s by a chair\n",
		p->id, room->id, a < 0 ? "unchanged" : (a ? "muted" : "unmuted"),
		v < 0 ? "unchanged" : (v ? "muted" : "unmuted"));

	janus_telehealth_moderation_store(room, p);
	janus_telehealth_room_action(room, TH_ACT_MUTE, actor, p->id, NULL, NULL);
	janus_telehealth_room_push_participants(room, NULL);
	janus_telehealth_participant_release(p);

	return 0;
}


/* Remove */

int janus_telehealth_moderate_remove(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *reason, char *error, size_t error_size) {
	int ttl;
	char *jti;
	gint64 exp;
	gboolean removed;
	janus_telehealth_participant *p;

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	janus_mutex_lock(&room->mutex);
	jti = g_strdup(p->jti);
	exp = p->exp;
	janus_mutex_unlock(&room->mutex);

	/* Revoked for as long as the credential could still be used. */
	ttl = (int)CLAMP(exp - (gint64)time(NULL) + janus_telehealth_cfg.credential_leeway + 60, 60, 86400);
	if (jti != NULL) {
		janus_telehealth_write_revoke(room, participant_id, jti, ttl);
	}
	g_free(jti);

	/*
     * Removed by a chair: banned from the session, so that no fresh
     * credential or invite link gets them back (until a chair lifts it
     * through nginx).  Turned away from the waiting room: not banned.
     */
	removed = strcmp(reason, TH_LEFT_REMOVED) == 0;
	(void)janus_telehealth_room_remove_participant(room, participant_id, reason, actor != NULL && removed);
	if (actor != NULL) {
		janus_telehealth_room_action(
			room, removed ? TH_ACT_REMOVE : TH_ACT_TURN_AWAY, actor, participant_id, NULL, NULL);
	}
	janus_telehealth_participant_release(p);

	return 0;
}


/* Role */

static int janus_telehealth_admit(janus_telehealth_room *room, janus_telehealth_participant *p, const char *actor);

int janus_telehealth_moderate_set_role(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *role, char *error, size_t error_size) {
	json_t *event;
	gboolean stop, admit;
	const char *new_role, *old_role;
	janus_telehealth_session *session;
	janus_telehealth_participant *p;

	new_role = janus_telehealth_role_name(role);
	if (new_role == NULL) {
		g_snprintf(error, error_size,
			"role must be chair, broadcaster or "
			"viewer");
		return JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT;
	}

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	janus_mutex_lock(&room->mutex);
	old_role = p->role;
	p->role = new_role;
	stop = strcmp(new_role, TH_ROLE_VIEWER) == 0;
	admit = p->waiting && strcmp(new_role, TH_ROLE_CHAIR) == 0;
	session = p->session;
	if (session != NULL) {
		janus_refcount_increase(&session->ref);
	}
	janus_mutex_unlock(&room->mutex);

	JANUS_LOG(LOG_INFO,
		"[telehealth] participant %s in room %s: role %s "
		"-> %s\n",
		p->id, room->id, old_role, new_role);

	/* A viewer never publishes: their forwarding stops now. */
	if (stop && session != NULL) {
		janus_telehealth_media_stop_publishing(session, "role_changed");
	}

	if (session != NULL) {
		event = json_pack("{s:s, s:s, s:s}", "telehealth", "role", "room", room->id, "role", new_role);
		janus_telehealth_push(session, NULL, event);
		json_decref(event);
		janus_telehealth_session_unref(session);
	}

	/* Kept for the session: a demoted participant rejoins demoted. */
	janus_telehealth_write_role(room, p->id, new_role);

	janus_telehealth_event_emit(TH_EV_PARTICIPANT_ROLE, room, p->id, new_role, NULL);
	janus_telehealth_room_action(room, TH_ACT_ROLE, actor, p->id, new_role, NULL);

	if (admit) {
		(void)janus_telehealth_admit(room, p, actor);

	} else {
		janus_telehealth_moderation_store(room, p);
		janus_telehealth_room_push_participants(room, NULL);
	}

	janus_telehealth_participant_release(p);

	return 0;
}


/* Waiting room */

/* Admits one waiting participant.  0, or 1 when they were not waiting. */
static int janus_telehealth_admit(janus_telehealth_room *room, janus_telehealth_participant *p, const char *actor) {
	json_t *event;
	gboolean chair;

	janus_mutex_lock(&room->mutex);
	if (!p->waiting || p->session == NULL) {
		janus_mutex_unlock(&room->mutex);
		return 1;
	}
	p->waiting = FALSE;
	g_hash_table_add(room->admitted, g_strdup(p->id));
	chair = strcmp(p->role, TH_ROLE_CHAIR) == 0;
	janus_mutex_unlock(&room->mutex);

	janus_telehealth_moderation_store(room, p);
	janus_telehealth_event_emit(TH_EV_PARTICIPANT_JOINED, room, p->id, p->role, NULL);
	janus_telehealth_room_action(room, TH_ACT_ADMIT, actor, p->id, NULL, NULL);

	JANUS_LOG(LOG_INFO, "[telehealth] participant %s admitted to room %s\n", p->id, room->id);

	event = json_pack("{s:s, s:s, s:o}", "telehealth", "admitted", "room", room->id, "participants",
		janus_telehealth_room_participants(room, chair));
	janus_telehealth_moderation_tell(room, p, event);
	json_decref(event);

	return 0;
}


static int janus_telehealth_moderate_admit(
	janus_telehealth_room *room, const char *actor, const char *participant_id, char *error, size_t error_size) {
	int rc;
	janus_telehealth_participant *p;

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	rc = janus_telehealth_admit(room, p, actor);
	janus_telehealth_participant_release(p);

	if (rc != 0) {
		g_snprintf(error, error_size, "%s is not waiting", participant_id);
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	janus_telehealth_room_push_participants(room, NULL);

	return 0;
}


static gint janus_telehealth_seq_order(gconstpointer a, gconstpointer b) {
	const janus_telehealth_participant *pa = a, *pb = b;

	return pa->seq < pb->seq ? -1 : (pa->seq > pb->seq ? 1 : 0);
}


/* Admits everyone waiting, in order of arrival; returns their ids. */
static json_t *janus_telehealth_moderate_admit_all(janus_telehealth_room *room, const char *actor) {
	GList *waiting, *l;
	json_t *ids;
	GHashTableIter iter;
	janus_telehealth_participant *p;

	waiting = NULL;
	ids = json_array();

	janus_mutex_lock(&room->mutex);
	g_hash_table_iter_init(&iter, room->participants);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&p)) {
		if (p->waiting) {
			janus_refcount_increase(&p->ref);
			waiting = g_list_prepend(waiting, p);
		}
	}
	janus_mutex_unlock(&room->mutex);

	waiting = g_list_sort(waiting, janus_telehealth_seq_order);
	for (l = waiting; l != NULL; l = l->next) {
		p = l->data;
		if (janus_telehealth_admit(room, p, actor) == 0) {
			json_array_append_new(ids, json_string(p->id));
		}
		janus_telehealth_participant_release(p);
	}
	g_list_free(waiting);

	if (json_array_size(ids) > 0) {
		janus_telehealth_room_push_participants(room, NULL);
	}

	return ids;
}


static int janus_telehealth_moderate_turn_away(
	janus_telehealth_room *room, const char *actor, const char *participant_id, char *error, size_t error_size) {
	gboolean waiting;
	janus_telehealth_participant *p;

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	janus_mutex_lock(&room->mutex);
	waiting = p->waiting;
	janus_mutex_unlock(&room->mutex);
	janus_telehealth_participant_release(p);

	if (!waiting) {
		g_snprintf(error, error_size,
			"%s is not waiting: remove them "
			"instead",
			participant_id);
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	return janus_telehealth_moderate_remove(room, actor, participant_id, TH_LEFT_TURNED_AWAY, error, error_size);
}


/* Chair requests */

/*
 * One chair request: its parameters, checked with Janus' validation as
 * the other requests are, and what it does.  extra is merged into the
 * "ok" answer; after runs once the answer is out (a close, so that the
 * chair hears "ok" before "closed").  The validation walks the whole
 * array: unused slots have a NULL name, which json_object_get answers
 * with NULL, and no flags, so they are skipped as absent optional members.
 */
typedef struct janus_telehealth_chair_request {
	const char *name;
	struct janus_json_parameter parameters[3];
	int (*handle)(
		janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size);
	void (*after)(janus_telehealth_room *room, const char *actor);
} janus_telehealth_chair_request;


#define JANUS_TELEHEALTH_PARTICIPANT_PARAM \
	{"participant", JSON_STRING, JANUS_JSON_PARAM_REQUIRED | JANUS_JSON_PARAM_NONEMPTY}


static const char *janus_telehealth_param(json_t *root, const char *name) {
	return json_string_value(json_object_get(root, name));
}


static int janus_telehealth_request_mute(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_moderate_mute(room, actor, janus_telehealth_param(root, "participant"),
		json_object_get(root, "audio"), json_object_get(root, "video"), error, error_size);
}


static int janus_telehealth_request_remove(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_moderate_remove(
		room, actor, janus_telehealth_param(root, "participant"), TH_LEFT_REMOVED, error, error_size);
}


static int janus_telehealth_request_set_role(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_moderate_set_role(room, actor, janus_telehealth_param(root, "participant"),
		janus_telehealth_param(root, "role"), error, error_size);
}


static int janus_telehealth_request_close(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return 0;
}


static void janus_telehealth_request_close_after(janus_telehealth_room *room, const char *actor) {
	JANUS_LOG(LOG_INFO, "[telehealth] room %s closed by a chair\n", room->id);
	janus_telehealth_room_action(room, TH_ACT_CLOSE, actor, NULL, NULL, NULL);
	janus_telehealth_room_close_now(room, TH_CLOSE_CLOSED_BY_CHAIR);
}


static int janus_telehealth_request_admit(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_moderate_admit(room, actor, janus_telehealth_param(root, "participant"), error, error_size);
}


static int janus_telehealth_request_admit_all(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	*extra = json_pack("{s:o}", "admitted", janus_telehealth_moderate_admit_all(room, actor));
	return 0;
}


static int janus_telehealth_request_turn_away(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_moderate_turn_away(
		room, actor, janus_telehealth_param(root, "participant"), error, error_size);
}


static int janus_telehealth_request_breakout_create(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	int rc;

	*extra = janus_telehealth_breakout_create(room, actor, NULL, error, error_size, &rc);
	return rc;
}


static int janus_telehealth_request_breakout_move(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	/* No breakout (or null): back to the main room. */
	return janus_telehealth_breakout_move(room, actor, janus_telehealth_param(root, "participant"),
		janus_telehealth_param(root, "breakout"), error, error_size);
}


static int janus_telehealth_request_breakout_close(
	janus_telehealth_room *room, const char *actor, json_t *root, json_t **extra, char *error, size_t error_size) {
	return janus_telehealth_breakout_close(room, actor, janus_telehealth_param(root, "breakout"), error, error_size);
}


/* The one list of chair requests (docs/plugin.md, Chair requests). */
static const janus_telehealth_chair_request janus_telehealth_moderation_requests[] = {
	{"mute", {JANUS_TELEHEALTH_PARTICIPANT_PARAM, {"audio", JANUS_JSON_BOOL, 0}, {"video", JANUS_JSON_BOOL, 0}},
		janus_telehealth_request_mute, NULL},
	{"remove", {JANUS_TELEHEALTH_PARTICIPANT_PARAM}, janus_telehealth_request_remove, NULL},
	{"set_role",
		{JANUS_TELEHEALTH_PARTICIPANT_PARAM,
			{"role", JSON_STRING, JANUS_JSON_PARAM_REQUIRED | JANUS_JSON_PARAM_NONEMPTY}},
		janus_telehealth_request_set_role, NULL},
	{"close", {{NULL, 0, 0}}, janus_telehealth_request_close, janus_telehealth_request_close_after},
	{"admit", {JANUS_TELEHEALTH_PARTICIPANT_PARAM}, janus_telehealth_request_admit, NULL},
	{"admit_all", {{NULL, 0, 0}}, janus_telehealth_request_admit_all, NULL},
	{"turn_away", {JANUS_TELEHEALTH_PARTICIPANT_PARAM}, janus_telehealth_request_turn_away, NULL},
	{"breakout_create", {{NULL, 0, 0}}, janus_telehealth_request_breakout_create, NULL},
	{"breakout_move", {JANUS_TELEHEALTH_PARTICIPANT_PARAM, {"breakout", JSON_STRING, JANUS_JSON_PARAM_NONEMPTY}},
		janus_telehealth_request_breakout_move, NULL},
	{"breakout_close", {{"breakout", JSON_STRING, JANUS_JSON_PARAM_REQUIRED | JANUS_JSON_PARAM_NONEMPTY}},
		janus_telehealth_request_breakout_close, NULL}};


static const janus_telehealth_chair_request *janus_telehealth_moderation_find(const char *request) {
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(janus_telehealth_moderation_requests); i++) {
		if (strcmp(janus_telehealth_moderation_requests[i].name, request) == 0) {
			return &janus_telehealth_moderation_requests[i];
		}
	}

	return NULL;
}


gboolean janus_telehealth_moderation_is_request(const char *request) {
	return janus_telehealth_moderation_find(request) != NULL;
}


/* Does the request name a participant (echoed in its answer)? */
static gboolean janus_telehealth_moderation_names_participant(const janus_telehealth_chair_request *r) {
	size_t i;

	for (i = 0; i < G_N_ELEMENTS(r->parameters); i++) {
		if (g_strcmp0(r->parameters[i].name, "participant") == 0) {
			return TRUE;
		}
	}

	return FALSE;
}


/* The room of a chair who is in it (reference), or an error. */
static int janus_telehealth_moderation_chair(
	janus_telehealth_session *session, janus_telehealth_room **room, char **actor, char *error, size_t error_size) {
	gboolean chair;
	janus_telehealth_participant *p;

	*room = NULL;
	*actor = NULL;

	janus_mutex_lock(&session->mutex);
	p = session->participant;
	if (p != NULL) {
		janus_refcount_increase(&p->ref);
		*room = p->room;
		janus_refcount_increase(&(*room)->ref);
	}
	janus_mutex_unlock(&session->mutex);

	if (p == NULL) {
		g_snprintf(error, error_size, "Not in a room");
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	janus_mutex_lock(&(*room)->mutex);
	chair = strcmp(p->role, TH_ROLE_CHAIR) == 0 && !p->waiting;
	janus_mutex_unlock(&(*room)->mutex);
	if (chair) {
		*actor = g_strdup(p->id);
	}
	janus_telehealth_participant_release(p);

	if (!chair) {
		janus_telehealth_room_unref(*room);
		*room = NULL;
		g_snprintf(error, error_size, "Only a chair can do this");
		return JANUS_TELEHEALTH_ERROR_NOT_CHAIR;
	}

	return 0;
}


int janus_telehealth_moderation_request(janus_telehealth_session *session, const char *request, json_t *root,
	const char *transaction, char *error, size_t error_size) {
	int rc;
	char *actor, error_cause[512];
	json_t *answer, *extra, *value;
	void *iter;
	const char *key, *participant;
	janus_telehealth_room *room;
	const janus_telehealth_chair_request *r;

	r = janus_telehealth_moderation_find(request);
	if (r == NULL) {
		g_snprintf(error, error_size, "Unknown request '%s'", request);
		return JANUS_TELEHEALTH_ERROR_INVALID_REQUEST;
	}

	/* Who may ask comes first: only a chair learns what is malformed. */
	rc = janus_telehealth_moderation_chair(session, &room, &actor, error, error_size);
	if (rc != 0) {
		return rc;
	}

	/* A null member is an absent one: the main room is breakout null. */
	json_object_foreach_safe(root, iter, key, value) {
		if (json_is_null(value)) {
			json_object_del(root, key);
		}
	}

	extra = NULL;
	JANUS_VALIDATE_JSON_OBJECT(root, r->parameters, rc, error_cause, TRUE, JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT,
		JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
	if (rc != 0) {
		g_strlcpy(error, error_cause, error_size);
	} else {
		rc = r->handle(room, actor, root, &extra, error, error_size);
	}

	if (rc == 0) {
		answer = json_pack("{s:s, s:s, s:s}", "telehealth", "ok", "request", r->name, "room", room->id);
		participant = janus_telehealth_param(root, "participant");
		if (participant != NULL && janus_telehealth_moderation_names_participant(r)) {
			json_object_set_new(answer, "participant", json_string(participant));
		}
		if (extra != NULL) {
			json_object_update(answer, extra);
		}
		janus_telehealth_push(session, transaction, answer);
		json_decref(answer);

		if (r->after != NULL) {
			r->after(room, actor);
		}
	}

	json_decref(extra);
	g_free(actor);
	janus_telehealth_room_unref(room);

	return rc;
}
