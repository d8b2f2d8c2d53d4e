/*
 * Rooms of janus.plugin.telehealth: what janus_telehealth_room.c (the
 * registry), janus_telehealth_join.c and janus_telehealth_housekeeping.c
 * share.  Private to those three files; janus_telehealth.h declares what
 * the rest of the plugin calls.
 */

#ifndef JANUS_TELEHEALTH_ROOM_H
#define JANUS_TELEHEALTH_ROOM_H

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"


/* janus_telehealth_room.c: the registry (lock order: rooms_mutex, then
 * room->mutex, then session->mutex) */
janus_telehealth_room *janus_telehealth_rooms_lookup(const char *room_id);
janus_telehealth_room *janus_telehealth_room_host(
	const janus_telehealth_join *join, const janus_telehealth_room_info *info);
GList *janus_telehealth_rooms_snapshot(void);
void janus_telehealth_room_close(janus_telehealth_room *room, const char *reason, gboolean update_redis);
void janus_telehealth_room_apply_policy(janus_telehealth_room *room, const janus_telehealth_room_info *info);

void janus_telehealth_participant_free(const janus_refcount *participant_ref);
void janus_telehealth_participant_unref(janus_telehealth_participant *participant);
void janus_telehealth_participant_detach(janus_telehealth_participant *participant);
gboolean janus_telehealth_is_staff_chair(const janus_telehealth_participant *p);
json_t *janus_telehealth_participant_json(const janus_telehealth_participant *p);
void janus_telehealth_room_push_to(
	janus_telehealth_room *room, json_t *event, gboolean (*to)(const janus_telehealth_participant *p));
void janus_telehealth_push_simple(janus_telehealth_session *session, const char *transaction, const char *what,
	const char *room_id, const char *reason);

/* janus_telehealth_housekeeping.c */
int janus_telehealth_housekeeping_start(void);
void janus_telehealth_housekeeping_stop(void);

#endif /* JANUS_TELEHEALTH_ROOM_H */
