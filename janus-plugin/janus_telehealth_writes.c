/*
 * The handler thread's Redis writes, behind its answers: each goes to
 * the room's queue of Redis work (janus_telehealth_room_redis), so a slow
 * Redis holds up that room's Redis work only, and the writes of a room
 * keep their order with its joins.  The room in memory changes at once;
 * Redis follows a moment later.
 */

#include <debug.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"
#include "janus_telehealth_room.h"

typedef enum {
	JANUS_TELEHEALTH_WRITE_MEMBER_OUT = 0,
	JANUS_TELEHEALTH_WRITE_MEMBER_SET,
	JANUS_TELEHEALTH_WRITE_ROLE,
	JANUS_TELEHEALTH_WRITE_REVOKE,
	JANUS_TELEHEALTH_WRITE_CLOSE
} janus_telehealth_write_kind;

typedef struct janus_telehealth_write {
	janus_telehealth_write_kind kind;
	janus_telehealth_room *room; /* reference: CLOSE */
	char *room_id;
	char *session_id;
	char *participant_id;
	char *value; /* member JSON, role, jti, patient id */
	char *reason;
	gboolean release_lock;
	gboolean ban;
	int ttl;
	int rc;
} janus_telehealth_write;


static janus_telehealth_write *janus_telehealth_write_new(
	janus_telehealth_write_kind kind, janus_telehealth_room *room, const char *participant_id, const char *value) {
	janus_telehealth_write *write;

	write = g_malloc0(sizeof(janus_telehealth_write));
	write->kind = kind;
	write->room_id = g_strdup(room->id);
	write->session_id = g_strdup(room->session_id);
	write->participant_id = g_strdup(participant_id);
	write->value = g_strdup(value);

	return write;
}


static void janus_telehealth_write_free(janus_telehealth_write *write) {
	if (write->room != NULL) {
		janus_telehealth_room_unref(write->room);
	}
	g_free(write->room_id);
	g_free(write->session_id);
	g_free(write->participant_id);
	g_free(write->value);
	g_free(write->reason);
	g_free(write);
}


/* A join worker. */
static void janus_telehealth_write_work(janus_telehealth_redis *redis, void *data) {
	janus_telehealth_write *write = data;

	switch (write->kind) {
		case JANUS_TELEHEALTH_WRITE_MEMBER_OUT:
			write->rc = janus_telehealth_redis_member_out(
				redis, write->room_id, write->session_id, write->participant_id, write->release_lock, write->ban);
			if (write->rc != 0) {
				JANUS_LOG(LOG_ERR,
					"[telehealth] member %s of room %s not removed "
					"from Redis (unavailable)\n",
					write->participant_id, write->room_id);
			}
			break;

		case JANUS_TELEHEALTH_WRITE_MEMBER_SET:
			write->rc = janus_telehealth_redis_member_set(redis, write->room_id, write->participant_id, write->value);
			if (write->rc != 0) {
				JANUS_LOG(LOG_WARN,
					"[telehealth] member %s of room %s not updated "
					"in Redis (unavailable)\n",
					write->participant_id, write->room_id);
			}
			break;

		case JANUS_TELEHEALTH_WRITE_ROLE:
			write->rc = janus_telehealth_redis_role_set(redis, write->session_id, write->participant_id, write->value);
			if (write->rc != 0) {
				JANUS_LOG(LOG_ERR,
					"[telehealth] role of %s in session %s not "
					"stored (Redis unavailable): a rejoin gets the "
					"credential's\n",
					write->participant_id, write->session_id);
			}
			break;

		case JANUS_TELEHEALTH_WRITE_REVOKE:
			write->rc = janus_telehealth_redis_revoke(redis, write->value, write->ttl);
			if (write->rc != 0) {
				JANUS_LOG(LOG_ERR,
					"[telehealth] credential of %s not revoked "
					"(Redis unavailable)\n",
					write->participant_id);
			}
			break;

		case JANUS_TELEHEALTH_WRITE_CLOSE:
			write->rc = janus_telehealth_redis_close(redis, write->room_id, write->value, write->reason);
			if (write->rc < 0) {
				/*
                 * The lease lapses with no refresh: nginx's reconciler
                 * finds the room nobody hosts, and our room.closed
                 * (queued until Redis is back) ends the session.
                 */
				JANUS_LOG(LOG_ERR,
					"[telehealth] room %s closed here but not in "
					"Redis (unavailable)\n",
					write->room_id);
			}
			break;
	}
}


/* The handler thread, after the write. */
static void janus_telehealth_write_done(void *data) {
	janus_telehealth_write *write = data;

	/* Every end exactly once: someone else closed it first. */
	if (write->kind == JANUS_TELEHEALTH_WRITE_CLOSE && write->rc != 0) {
		janus_telehealth_event_emit(TH_EV_ROOM_CLOSED, write->room, NULL, NULL, write->reason);
	}

	janus_telehealth_write_free(write);
}


static void janus_telehealth_write_submit(janus_telehealth_write *write) {
	janus_telehealth_room_redis(write->room_id, janus_telehealth_write_work, janus_telehealth_write_done, write);
}


void janus_telehealth_write_member_out(
	janus_telehealth_room *room, const char *participant_id, gboolean release_lock, gboolean ban) {
	janus_telehealth_write *write;

	write = janus_telehealth_write_new(JANUS_TELEHEALTH_WRITE_MEMBER_OUT, room, participant_id, NULL);
	write->release_lock = release_lock;
	write->ban = ban;
	janus_telehealth_write_submit(write);
}


void janus_telehealth_write_member_set(janus_telehealth_room *room, const char *participant_id, const char *member) {
	janus_telehealth_write_submit(
		janus_telehealth_write_new(JANUS_TELEHEALTH_WRITE_MEMBER_SET, room, participant_id, member));
}


void janus_telehealth_write_role(janus_telehealth_room *room, const char *participant_id, const char *role) {
	janus_telehealth_write_submit(janus_telehealth_write_new(JANUS_TELEHEALTH_WRITE_ROLE, room, participant_id, role));
}


void janus_telehealth_write_revoke(janus_telehealth_room *room, const char *participant_id, const char *jti, int ttl) {
	janus_telehealth_write *write;

	write = janus_telehealth_write_new(JANUS_TELEHEALTH_WRITE_REVOKE, room, participant_id, jti);
	write->ttl = ttl;
	janus_telehealth_write_submit(write);
}


/* The room closed here: in Redis too, and room.closed when this closed it. */
void janus_telehealth_write_close(janus_telehealth_room *room, const char *reason) {
	janus_telehealth_write *write;

	write = janus_telehealth_write_new(JANUS_TELEHEALTH_WRITE_CLOSE, room, NULL, room->patient_id);
	janus_refcount_increase(&room->ref);
	write->room = room;
	write->reason = g_strdup(reason);
	janus_telehealth_write_submit(write);
}
