/*
 * Redis access for janus.plugin.telehealth.
 *
 * One synchronous hiredis connection per plugin thread (hiredis contexts
 * are not thread safe).  Connections are made by IP or unix socket only
 * (no DNS), with connect and command timeouts, and are re-made after any
 * error, at most once per second so an outage costs a request a fast
 * failure instead of a connect timeout each time.
 */

#ifndef JANUS_TELEHEALTH_REDIS_H
#define JANUS_TELEHEALTH_REDIS_H

#include <hiredis.h>

#include "janus_telehealth.h"
#include "janus_telehealth_metrics.h"


typedef struct janus_telehealth_redis janus_telehealth_redis;

/* The handler thread's connection (janus_telehealth.c). */
extern janus_telehealth_redis *janus_telehealth_handler_redis;

/* Checks the configured address; 0 or -1 with a reason. */
int janus_telehealth_redis_check_address(const char *address, const char **reason);

/* name is for logs ("handler", "housekeeping" ...); nothing connects yet. */
janus_telehealth_redis *janus_telehealth_redis_new(const char *name);
void janus_telehealth_redis_free(janus_telehealth_redis *redis);

/* Connects if needed; returns the context or NULL (down, or backing off). */
redisContext *janus_telehealth_redis_connect(janus_telehealth_redis *redis);

/* Drops the connection after an error; the next call reconnects. */
void janus_telehealth_redis_drop(janus_telehealth_redis *redis);

/*
 * A command; NULL when Redis is unreachable or the connection broke (it
 * is retried once on a fresh connection).  Error replies are returned
 * as replies.  Free with freeReplyObject().
 */
redisReply *janus_telehealth_redis_command(janus_telehealth_redis *redis, const char *format, ...);
redisReply *janus_telehealth_redis_argv(
	janus_telehealth_redis *redis, int argc, const char **argv, const size_t *argvlen);

/* A key from a TH_KEY_* format: the prefix and one id. */
char *janus_telehealth_redis_key(const char *format, const char *id);


/* Outcome of the join script. */
typedef enum {
	JANUS_TELEHEALTH_JOIN_OK = 0,
	JANUS_TELEHEALTH_JOIN_UNAVAILABLE, /* Redis down or script failed */
	JANUS_TELEHEALTH_JOIN_REVOKED,
	JANUS_TELEHEALTH_JOIN_NO_ROOM,
	JANUS_TELEHEALTH_JOIN_CLOSED,
	JANUS_TELEHEALTH_JOIN_WRONG_SESSION,
	JANUS_TELEHEALTH_JOIN_OTHER_NODE,
	JANUS_TELEHEALTH_JOIN_DRAINING, /* a new room on a draining node */
	JANUS_TELEHEALTH_JOIN_FULL,
	JANUS_TELEHEALTH_JOIN_NOT_YET, /* first_connect role not there */
	JANUS_TELEHEALTH_JOIN_ACCESS, /* a guest, access not invitation */
	JANUS_TELEHEALTH_JOIN_BANNED, /* a chair removed them */
	JANUS_TELEHEALTH_JOIN_IN_SESSION /* the patient is in another room */
} janus_telehealth_join_status;

/* What the join script tells about the room. */
typedef struct janus_telehealth_room_info {
	gboolean first_open; /* nobody had opened the room before */
	char *kind;
	char *org_id;
	char *patient_id; /* NULL when the room names no patient */
	guint32 bitrate; /* video cap (bps) of the room; 0: default */
	gboolean waiting; /* the script's admission: wait for a chair */
	char *leave_policy; /* NULL when the room hash has none */
	gint64 duration_limit;
	gint64 opened_at_ms;
	int max_participants;
	char *role; /* the role to join with: a chair's change
                              * stored for the session, else the
                              * credential's */
	int empty_timeout; /* s, 0: never, -1: the setting's */
	json_t *stale_members; /* [{id, role}] a dead node left behind */
} janus_telehealth_room_info;

void janus_telehealth_room_info_clear(janus_telehealth_room_info *info);

/*
 * Atomically: refuses a revoked credential, a missing, closed or foreign
 * room, a banned participant, a full room, a patient in another room;
 * claims hosting for this node (taking over from a node whose heartbeat is
 * gone, or from our own life before a restart: hosted is whether this
 * node has the room in memory); takes the patient lock; records the
 * member; renews the lease.  Decides admission too (info->waiting): admitted
 * is whether the joiner was admitted already (credential, or earlier here).
 */
janus_telehealth_join_status janus_telehealth_redis_join(janus_telehealth_redis *redis,
	const janus_telehealth_join *join, const char *member_json, gboolean hosted, gboolean admitted,
	janus_telehealth_room_info *info);

/* Rewrites one member of a room's members hash if it is still there
 * (member_update.lua). 0 or -1. */
int janus_telehealth_redis_member_update(
	janus_telehealth_redis *redis, const char *room_id, const char *participant_id, const char *json);

/* Writes one member of a room's members hash. 0 or -1. */
int janus_telehealth_redis_member_set(
	janus_telehealth_redis *redis, const char *room_id, const char *participant_id, const char *json);

/*
 * A participant's place in the room ended: the member goes, the patient
 * lock too (release_lock, if it names this room), a chair's removal bans
 * them from the session (ban), and the last one out marks the room empty.
 * Only while the room is open and hosted here.  0 or -1.
 */
int janus_telehealth_redis_member_out(janus_telehealth_redis *redis, const char *room_id, const char *session_id,
	const char *participant_id, gboolean release_lock, gboolean ban);

/* A chair changed someone's role: it holds for their next joins. */
int janus_telehealth_redis_role_set(
	janus_telehealth_redis *redis, const char *session_id, const char *participant_id, const char *role);

/*
 * Marks the room closed (closed_room_ttl), deletes its members and every
 * patient lock (the room's, its patient members') that still holds this
 * room.  1 when this call closed the room, 0 when it was closed already
 * (or gone), -1 on failure.
 */
int janus_telehealth_redis_close(
	janus_telehealth_redis *redis, const char *room_id, const char *patient_id, const char *reason);

/* <prefix>revoked:<jti> for ttl seconds: the credential cannot rejoin. */
int janus_telehealth_redis_revoke(janus_telehealth_redis *redis, const char *jti, int ttl);

/* Refresh result of one hosted room. */
typedef enum {
	JANUS_TELEHEALTH_REFRESH_OK = 0,
	JANUS_TELEHEALTH_REFRESH_UNAVAILABLE,
	JANUS_TELEHEALTH_REFRESH_GONE, /* room hash deleted */
	JANUS_TELEHEALTH_REFRESH_CLOSED, /* closed by someone else */
	JANUS_TELEHEALTH_REFRESH_MOVED /* another node hosts it now */
} janus_telehealth_refresh_status;

/* Renews our lease (lease_at) on a room we host; *empty_timeout gets the
 * room's field (-1: absent) when the answer is OK, *closed_reason (one of
 * TH_CLOSE_*) why it closed when someone else closed it. */
janus_telehealth_refresh_status janus_telehealth_redis_refresh(
	janus_telehealth_redis *redis, const char *room_id, int *empty_timeout, const char **closed_reason);

/*
 * Node heartbeat hash with a TTL (load, URL, figures), the node in the
 * registry set, and whether a drain mark names it; deleted on shutdown.
 */
int janus_telehealth_redis_heartbeat(
	janus_telehealth_redis *redis, gint64 started_ms, const janus_telehealth_load *load);
void janus_telehealth_redis_heartbeat_delete(janus_telehealth_redis *redis);

/*
 * Reads an open room this node may close although nobody joined it here
 * (hosted by us or by nobody).  Returns 1 with info filled (and
 * *session_id to g_free), 0 when there is no such room, -1 on failure.
 */
int janus_telehealth_redis_room_for_close(
	janus_telehealth_redis *redis, const char *room_id, char **session_id, janus_telehealth_room_info *info);

#endif /* JANUS_TELEHEALTH_REDIS_H */
