/*
 * Breakout rooms of a group session (janus.plugin.telehealth): a chair
 * creates them, moves people between them and the main room, and closes
 * them.  A breakout room is a label on participants of the one room: the
 * subscribers of each see only the feeds of their own (breakout) room.
 * Handler thread only, like the rest of moderation.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_moderation.h"
#include "janus_telehealth_redis.h"


#define JANUS_TELEHEALTH_BREAKOUTS_MAX 32


/* Breakout rooms */

/* Called with the room mutex held. */
static json_t *janus_telehealth_breakouts_json(janus_telehealth_room *room) {
	GList *l;
	json_t *list;

	list = json_array();
	for (l = room->breakouts; l != NULL; l = l->next) {
		json_array_append_new(list, json_string(l->data));
	}

	return list;
}


static int janus_telehealth_breakout_allowed(janus_telehealth_room *room, char *error, size_t error_size) {
	if (room->kind == NULL || strcmp(room->kind, TH_KIND_GROUP) != 0) {
		g_snprintf(error, error_size,
			"Breakout rooms are for group "
			"sessions only");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	return 0;
}


/* id: the breakout's name when nginx chose it (a command), else NULL */
json_t *janus_telehealth_breakout_create(
	janus_telehealth_room *room, const char *actor, const char *id_wanted, char *error, size_t error_size, int *rc) {
	char *id;
	json_t *answer;

	*rc = janus_telehealth_breakout_allowed(room, error, error_size);
	if (*rc != 0) {
		return NULL;
	}

	janus_mutex_lock(&room->mutex);
	if (g_list_length(room->breakouts) >= JANUS_TELEHEALTH_BREAKOUTS_MAX) {
		janus_mutex_unlock(&room->mutex);
		g_snprintf(error, error_size, "At most %d breakout rooms", JANUS_TELEHEALTH_BREAKOUTS_MAX);
		*rc = JANUS_TELEHEALTH_ERROR_WRONG_STATE;
		return NULL;
	}
	if (id_wanted != NULL && g_list_find_custom(room->breakouts, id_wanted, (GCompareFunc)strcmp) != NULL) {
		janus_mutex_unlock(&room->mutex);
		g_snprintf(error, error_size, "This breakout room exists");
		*rc = JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT;
		return NULL;
	}
	id = id_wanted != NULL ? g_strdup(id_wanted) : g_strdup_printf("breakout-%u", ++room->breakout_seq);
	room->breakouts = g_list_append(room->breakouts, id);
	answer = json_pack("{s:s, s:o}", "breakout", id, "breakouts", janus_telehealth_breakouts_json(room));
	janus_mutex_unlock(&room->mutex);

	JANUS_LOG(LOG_INFO, "[telehealth] room %s: %s created\n", room->id, id);
	janus_telehealth_room_action(
		room, TH_ACT_BREAKOUT_CREATE, actor, NULL, NULL, json_string_value(json_object_get(answer, "breakout")));

	return answer;
}


/* Tells a participant which (breakout) room they are in now. */
static void janus_telehealth_breakout_tell(
	janus_telehealth_room *room, janus_telehealth_participant *p, const char *breakout) {
	json_t *event;

	event = json_pack("{s:s, s:s, s:o}", "telehealth", "moved", "room", room->id, "breakout",
		breakout != NULL ? json_string(breakout) : json_null());
	janus_telehealth_moderation_tell(room, p, event);
	json_decref(event);
}


int janus_telehealth_breakout_move(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *breakout, char *error, size_t error_size) {
	int rc;
	janus_telehealth_participant *p;

	rc = janus_telehealth_breakout_allowed(room, error, error_size);
	if (rc != 0) {
		return rc;
	}

	p = janus_telehealth_room_participant(room, participant_id);
	if (p == NULL) {
		return janus_telehealth_no_participant(participant_id, error, error_size);
	}

	janus_mutex_lock(&room->mutex);
	if (breakout != NULL && g_list_find_custom(room->breakouts, breakout, (GCompareFunc)strcmp) == NULL) {
		janus_mutex_unlock(&room->mutex);
		janus_telehealth_participant_release(p);
		g_snprintf(error, error_size, "No such breakout room");
		return JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT;
	}
	g_free(p->breakout);
	p->breakout = g_strdup(breakout);
	janus_mutex_unlock(&room->mutex);

	JANUS_LOG(LOG_INFO, "[telehealth] room %s: %s moved to %s\n", room->id, p->id,
		breakout != NULL ? breakout : "the main room");

	janus_telehealth_moderation_store(room, p);
	janus_telehealth_room_action(room, TH_ACT_BREAKOUT_MOVE, actor, p->id, NULL, breakout);
	/* Everyone's subscription follows: only their own room's feeds. */
	janus_telehealth_media_renegotiate(room);
	janus_telehealth_breakout_tell(room, p, breakout);
	janus_telehealth_room_push_participants(room, NULL);
	janus_telehealth_participant_release(p);

	return 0;
}


int janus_telehealth_breakout_close(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size) {
	int rc;
	GList *link, *moved, *l;
	GHashTableIter iter;
	janus_telehealth_participant *p;

	rc = janus_telehealth_breakout_allowed(room, error, error_size);
	if (rc != 0) {
		return rc;
	}

	moved = NULL;

	janus_mutex_lock(&room->mutex);
	link = g_list_find_custom(room->breakouts, breakout, (GCompareFunc)strcmp);
	if (link == NULL) {
		janus_mutex_unlock(&room->mutex);
		g_snprintf(error, error_size, "No such breakout room");
		return JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT;
	}
	g_free(link->data);
	room->breakouts = g_list_delete_link(room->breakouts, link);

	g_hash_table_iter_init(&iter, room->participants);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&p)) {
		if (g_strcmp0(p->breakout, breakout) == 0) {
			g_free(p->breakout);
			p->breakout = NULL;
			janus_refcount_increase(&p->ref);
			moved = g_list_prepend(moved, p);
		}
	}
	janus_mutex_unlock(&room->mutex);

	JANUS_LOG(LOG_INFO,
		"[telehealth] room %s: breakout closed, %u back in "
		"the main room\n",
		room->id, g_list_length(moved));
	janus_telehealth_room_action(room, TH_ACT_BREAKOUT_CLOSE, actor, NULL, NULL, breakout);

	janus_telehealth_media_renegotiate(room);

	for (l = moved; l != NULL; l = l->next) {
		janus_telehealth_moderation_store(room, l->data);
		janus_telehealth_breakout_tell(room, l->data, NULL);
		janus_telehealth_participant_release(l->data);
	}
	g_list_free(moved);

	janus_telehealth_room_push_participants(room, NULL);

	return 0;
}


/* nginx commands (REST, a chair of the session) */

int janus_telehealth_moderate_breakout_create(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size) {
	int rc;
	json_t *answer;

	answer = janus_telehealth_breakout_create(room, actor, breakout, error, error_size, &rc);
	if (answer != NULL) {
		janus_telehealth_room_push_participants(room, NULL);
		json_decref(answer);
	}

	return rc;
}


int janus_telehealth_moderate_breakout_move(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *breakout, char *error, size_t error_size) {
	return janus_telehealth_breakout_move(room, actor, participant_id, breakout, error, error_size);
}


int janus_telehealth_moderate_breakout_close(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size) {
	return janus_telehealth_breakout_close(room, actor, breakout, error, error_size);
}
