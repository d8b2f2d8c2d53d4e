/*
 * What janus_telehealth_moderation.c (chairs' requests) and
 * janus_telehealth_breakout.c (breakout rooms) share.  Private to those
 * two files; janus_telehealth.h declares what the rest of the plugin calls.
 */

#ifndef JANUS_TELEHEALTH_MODERATION_H
#define JANUS_TELEHEALTH_MODERATION_H

#include "janus_telehealth.h"


/* janus_telehealth_moderation.c */
void janus_telehealth_room_action(janus_telehealth_room *room, const char *action, const char *actor,
	const char *participant, const char *role, const char *breakout);
void janus_telehealth_moderation_store(janus_telehealth_room *room, janus_telehealth_participant *p);
void janus_telehealth_moderation_tell(janus_telehealth_room *room, janus_telehealth_participant *p, json_t *event);
int janus_telehealth_no_participant(const char *participant_id, char *error, size_t error_size);

/* janus_telehealth_breakout.c */
json_t *janus_telehealth_breakout_create(
	janus_telehealth_room *room, const char *actor, const char *id_wanted, char *error, size_t error_size, int *rc);
int janus_telehealth_breakout_move(janus_telehealth_room *room, const char *actor, const char *participant_id,
	const char *breakout, char *error, size_t error_size);
int janus_telehealth_breakout_close(
	janus_telehealth_room *room, const char *actor, const char *breakout, char *error, size_t error_size);

#endif /* JANUS_TELEHEALTH_MODERATION_H */
