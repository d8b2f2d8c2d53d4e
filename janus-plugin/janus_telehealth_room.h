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
/* janus_telehealth_writes.c: Redis writes behind, in the room's order */
void janus_telehealth_write_member_out(
	janus_telehealth_room *room, const char *participant_id, gboolean release_lock, gboolean ban);
void janus_telehealth_write_member_set(janus_telehealth_room *room, const char *participant_id, const char *member);
void janus_telehealth_write_role(janus_telehealth_room *room, const char *participant_id, const char *role);
void janus_telehealth_write_revoke(janus_telehealth_room *room, const char *participant_id, const char *jti, int ttl);
void janus_telehealth_write_close(janus_telehealth_room *room, const char *reason);

int janus_telehealth_housekeeping_start(void);
void janus_telehealth_housekeeping_stop(void);

#endif /* JANUS_TELEHEALTH_ROOM_H */
