/*
 * Housekeeping of janus.plugin.telehealth.
 *
 * The housekeeping thread renews our lease on what we host (lease_at in
 * each room hash, the node heartbeat; nothing of an open room expires) and
 * notices rooms that stayed empty too long, reach their duration limit or
 * are no longer ours; it hands every change to the handler thread, which
 * runs the tasks below.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"
#include "janus_telehealth_room.h"


static GThread *housekeeping_thread;
static GMutex housekeeping_mutex;
static GCond housekeeping_cond;
static gboolean housekeeping_stop;


/* Tasks from the housekeeping and command threads */

/*
 * Has the room been empty for its empty_timeout (the room hash's, else
 * the setting's; 0: never)?  empty_since is monotonic us, 0 if not empty.
 */
static gboolean janus_telehealth_room_empty_expired(janus_telehealth_room *room, gint64 empty_since) {
	gint64 timeout;

	timeout = g_atomic_int_get(&room->empty_timeout);
	if (timeout < 0) {
		timeout = janus_telehealth_cfg.empty_room_timeout;
	}

	return empty_since != 0 && timeout > 0 && janus_get_monotonic_time() - empty_since >= timeout * G_USEC_PER_SEC;
}


void janus_telehealth_room_expire(const char *room_id) {
	gboolean expired;
	janus_telehealth_room *room;

	room = janus_telehealth_rooms_lookup(room_id);
	if (room == NULL) {
		return;
	}

	/* Someone may have come back since housekeeping looked. */
	janus_mutex_lock(&room->mutex);
	expired =
		g_hash_table_size(room->participants) == 0 && janus_telehealth_room_empty_expired(room, room->empty_since);
	janus_mutex_unlock(&room->mutex);

	if (expired) {
		janus_telehealth_room_close(room, TH_CLOSE_EXPIRED, TRUE);
	}

	janus_telehealth_room_unref(room);
}


void janus_telehealth_room_lost(const char *room_id, const char *reason) {
	janus_telehealth_room *room;

	room = janus_telehealth_rooms_lookup(room_id);
	if (room == NULL) {
		return;
	}

	JANUS_LOG(LOG_WARN,
		"[telehealth] room %s is no longer ours in Redis: "
		"letting its participants go\n",
		room_id);
	janus_telehealth_room_close(room, reason, FALSE);
	janus_telehealth_room_unref(room);
}


/* nginx's close command for a room not hosted here: its Redis part. */
typedef struct janus_telehealth_close_job {
	char *room_id;
	char *reason;
	char *command_id;
	char *session_id;
	janus_telehealth_room_info info;
	int rc;
} janus_telehealth_close_job;


/* A join worker: is the room ours to close, and close it. */
static void janus_telehealth_close_work(janus_telehealth_redis *redis, void *data) {
	int rc;
	janus_telehealth_close_job *job = data;

	rc = janus_telehealth_redis_room_for_close(redis, job->room_id, &job->session_id, &job->info);
	if (rc <= 0) {
		job->rc = rc < 0 ? -1 : 1;
		return;
	}

	rc = janus_telehealth_redis_close(redis, job->room_id, job->info.patient_id, job->reason);
	/* closed by someone else meanwhile: theirs to report */
	job->rc = rc < 0 ? -1 : (rc == 0 ? 1 : 0);
}


/* The handler thread: the events, and the command's result. */
static void janus_telehealth_close_done(void *data) {
	janus_telehealth_room *room;
	janus_telehealth_close_job *job = data;

	if (job->rc == 0) {
		janus_telehealth_chair_action(job->room_id, job->session_id, job->info.org_id, TH_ACT_CLOSE,
			JANUS_TELEHEALTH_ACTOR_COMMAND, NULL, NULL, NULL);
		janus_telehealth_event_emit_fields(TH_EV_ROOM_CLOSED, "room", job->room_id, "session", job->session_id, "org",
			job->info.org_id, "kind", job->info.kind, "reason", job->reason, NULL);
		JANUS_LOG(LOG_INFO, "[telehealth] room %s closed: %s\n", job->room_id, job->reason);

		/* joined here while the close was under way: it is over here too */
		room = janus_telehealth_rooms_lookup(job->room_id);
		if (room != NULL) {
			janus_telehealth_room_close(room, job->reason, FALSE);
			janus_telehealth_room_unref(room);
		}
	}

	janus_telehealth_command_result(
		"close", job->command_id, job->room_id, job->rc == 0 ? "ok" : (job->rc > 0 ? "not_found" : "unavailable"));

	g_free(job->room_id);
	g_free(job->reason);
	g_free(job->command_id);
	g_free(job->session_id);
	janus_telehealth_room_info_clear(&job->info);
	g_free(job);
}


/*
 * nginx's close command (a chair.action with actor "command").  0, 1 (not
 * found), -1 (Redis failed), or 2: a room not hosted here is closed in
 * Redis off this thread, and the result is reported then.
 */
int janus_telehealth_room_close_by_id(const char *room_id, const char *reason, const char *command_id) {
	janus_telehealth_room *room;
	janus_telehealth_close_job *job;

	room = janus_telehealth_rooms_lookup(room_id);
	if (room != NULL) {
		janus_telehealth_chair_action(
			room->id, room->session_id, room->org_id, TH_ACT_CLOSE, JANUS_TELEHEALTH_ACTOR_COMMAND, NULL, NULL, NULL);
		janus_telehealth_room_close(room, reason, TRUE);
		janus_telehealth_room_unref(room);
		return 0;
	}

	/* Nobody joined it here yet, but it may be ours to close. */
	job = g_malloc0(sizeof(janus_telehealth_close_job));
	job->room_id = g_strdup(room_id);
	job->reason = g_strdup(reason);
	job->command_id = g_strdup(command_id);
	janus_telehealth_room_redis(room_id, janus_telehealth_close_work, janus_telehealth_close_done, job);

	return 2;
}


/* Duration limit */

/* Milliseconds left before the room's duration limit; G_MAXINT64 when it
 * has none.  Called with the room mutex held. */
static gint64 janus_telehealth_room_time_left(janus_telehealth_room *room) {
	if (room->duration_limit <= 0 || room->opened_at_ms <= 0) {
		return G_MAXINT64;
	}

	return room->opened_at_ms + room->duration_limit * 1000 - g_get_real_time() / 1000;
}


void janus_telehealth_room_deadline(const char *room_id) {
	gint64 left;
	json_t *event;
	gboolean warn;
	janus_telehealth_room *room;

	room = janus_telehealth_rooms_lookup(room_id);
	if (room == NULL) {
		return;
	}

	janus_mutex_lock(&room->mutex);
	left = janus_telehealth_room_time_left(room);
	warn = left > 0 && left <= JANUS_TELEHEALTH_DURATION_WARNING * 1000 && !room->warned;
	if (warn) {
		room->warned = TRUE;
	}
	janus_mutex_unlock(&room->mutex);

	if (left <= 0) {
		janus_telehealth_room_close(room, TH_CLOSE_DURATION_LIMIT, TRUE);

	} else if (warn) {
		event = json_pack("{s:s, s:s, s:s, s:I}", "telehealth", "warning", "room", room->id, "reason", "duration_limit",
			"seconds_left", (json_int_t)((left + 999) / 1000));
		janus_telehealth_room_push_chairs(room, event);
		json_decref(event);
	}

	janus_telehealth_room_unref(room);
}


/* Housekeeping */

/* Every second: rooms near or past their duration limit, and rooms empty
 * for longer than their empty_timeout (a timeout of a few seconds is
 * honoured whatever refresh_interval is). */
static void janus_telehealth_housekeeping_deadlines(void) {
	gint64 left;
	GList *snapshot, *l;
	gboolean due, expired;
	janus_telehealth_room *room;

	snapshot = janus_telehealth_rooms_snapshot();

	for (l = snapshot; l != NULL; l = l->next) {
		room = l->data;

		janus_mutex_lock(&room->mutex);
		left = janus_telehealth_room_time_left(room);
		due = left <= 0 || (left <= JANUS_TELEHEALTH_DURATION_WARNING * 1000 && !room->warned);
		expired = janus_telehealth_room_empty_expired(room, room->empty_since);
		janus_mutex_unlock(&room->mutex);

		if (due && !g_atomic_int_get(&room->closed)) {
			janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_DEADLINE, room->id, NULL, NULL);
		}

		if (expired && !g_atomic_int_get(&room->closed)) {
			janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_EXPIRE, room->id, NULL, NULL);
		}

		janus_telehealth_room_unref(room);
	}

	g_list_free(snapshot);
}

static void janus_telehealth_housekeeping_round(janus_telehealth_redis *redis, gint64 started_ms) {
	int empty_timeout;
	GList *snapshot, *l;
	const char *lost, *closed;
	janus_telehealth_room *room;
	janus_telehealth_load load;
	janus_telehealth_refresh_status status;

	snapshot = janus_telehealth_rooms_snapshot();

	for (l = snapshot; l != NULL; l = l->next) {
		room = l->data;

		status = janus_telehealth_redis_refresh(redis, room->id, &empty_timeout, &closed);
		lost = NULL;

		switch (status) {
			case JANUS_TELEHEALTH_REFRESH_OK:
				g_atomic_int_set(&room->empty_timeout, empty_timeout);
				break;
			case JANUS_TELEHEALTH_REFRESH_UNAVAILABLE:
				break;
			case JANUS_TELEHEALTH_REFRESH_CLOSED:
				/* nginx's close, its reconciler's, a chair's on another path */
				lost = closed;
				break;
			case JANUS_TELEHEALTH_REFRESH_GONE:
			case JANUS_TELEHEALTH_REFRESH_MOVED:
				lost = TH_CLOSE_EXPIRED;
				break;
		}

		if (lost != NULL) {
			janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_LOST, room->id, lost, NULL);
		}

		janus_telehealth_room_unref(room);
	}

	g_list_free(snapshot);

	janus_telehealth_metrics_load(&load);
	(void)janus_telehealth_redis_heartbeat(redis, started_ms, &load);
}


static void *janus_telehealth_housekeeping(void *data) {
	gint64 started_ms, deadline, next_round;
	janus_telehealth_redis *redis;

	redis = janus_telehealth_redis_new("housekeeping");
	started_ms = g_get_real_time() / 1000;

	next_round = 0;

	g_mutex_lock(&housekeeping_mutex);

	while (!housekeeping_stop) {
		g_mutex_unlock(&housekeeping_mutex);
		if (g_get_monotonic_time() >= next_round) {
			janus_telehealth_housekeeping_round(redis, started_ms);
			next_round = g_get_monotonic_time() + (gint64)janus_telehealth_cfg.refresh_interval * G_TIME_SPAN_SECOND;
		}
		janus_telehealth_housekeeping_deadlines();
		g_mutex_lock(&housekeeping_mutex);

		/* Duration limits are checked every second, Redis less often. */
		deadline = g_get_monotonic_time() + G_TIME_SPAN_SECOND;
		while (!housekeeping_stop && g_cond_wait_until(&housekeeping_cond, &housekeeping_mutex, deadline)) {
			/* woken early: only stop matters */
		}
	}

	g_mutex_unlock(&housekeeping_mutex);

	/* Without our heartbeat other nodes may take our rooms at once. */
	janus_telehealth_redis_heartbeat_delete(redis);
	janus_telehealth_redis_free(redis);

	return NULL;
}


int janus_telehealth_housekeeping_start(void) {
	GError *error = NULL;

	housekeeping_stop = FALSE;
	housekeeping_thread = g_thread_try_new("telehealth housekeeping", janus_telehealth_housekeeping, NULL, &error);
	if (error != NULL) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] cannot start the housekeeping "
			"thread: %s\n",
			error->message);
		g_error_free(error);
		return -1;
	}

	return 0;
}


void janus_telehealth_housekeeping_stop(void) {
	if (housekeeping_thread != NULL) {
		g_mutex_lock(&housekeeping_mutex);
		housekeeping_stop = TRUE;
		g_cond_signal(&housekeeping_cond);
		g_mutex_unlock(&housekeeping_mutex);
		g_thread_join(housekeeping_thread);
		housekeeping_thread = NULL;
	}
}
