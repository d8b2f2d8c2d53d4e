/*
 * Joining and leaving a room of janus.plugin.telehealth (handler thread).
 *
 * The join script in Redis decides who may join and in which state;
 * this file keeps the room in memory in step with its answer.  Leaving
 * (hangup, request, a chair's removal) updates Redis and the people left.
 */

#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"
#include "janus_telehealth_room.h"


/* Join order of participants, for stable lists. */
static guint64 join_seq;


/* Join */

/* The role the join script answered as one of TH_ROLE_*, or fallback. */
static const char *janus_telehealth_role_of(const char *role, const char *fallback) {
	if (role != NULL && strcmp(role, TH_ROLE_CHAIR) == 0) {
		return TH_ROLE_CHAIR;
	}

	if (role != NULL && strcmp(role, TH_ROLE_BROADCASTER) == 0) {
		return TH_ROLE_BROADCASTER;
	}

	if (role != NULL && strcmp(role, TH_ROLE_VIEWER) == 0) {
		return TH_ROLE_VIEWER;
	}

	return fallback;
}


static void janus_telehealth_report_stale_members(janus_telehealth_room *room, json_t *stale) {
	size_t i;
	json_t *member;

	/* Left behind by a node that died: call history needs their end.
     * Whoever of them rejoins (here, now) gets a new participant row. */
	json_array_foreach (stale, i, member) {
		janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room, json_string_value(json_object_get(member, "id")),
			json_string_value(json_object_get(member, "role")), TH_LEFT_NODE_LOST);
	}

	if (json_array_size(stale) > 0) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] room %s taken over from a dead "
			"node, %zu members reported as lost\n",
			room->id, json_array_size(stale));
	}
}


static int janus_telehealth_join_error(janus_telehealth_join_status status, int max, char *error, size_t error_size) {
	switch (status) {
		case JANUS_TELEHEALTH_JOIN_OK:
			return 0;
		case JANUS_TELEHEALTH_JOIN_UNAVAILABLE:
			g_snprintf(error, error_size, "Room service unavailable, try again");
			return JANUS_TELEHEALTH_ERROR_REDIS_UNAVAILABLE;
		case JANUS_TELEHEALTH_JOIN_REVOKED:
			g_snprintf(error, error_size, "Join credential revoked");
			return JANUS_TELEHEALTH_ERROR_CREDENTIAL_REVOKED;
		case JANUS_TELEHEALTH_JOIN_NO_ROOM:
			g_snprintf(error, error_size, "No such room");
			return JANUS_TELEHEALTH_ERROR_NO_SUCH_ROOM;
		case JANUS_TELEHEALTH_JOIN_WRONG_SESSION:
			g_snprintf(error, error_size,
				"The room does not belong to this "
				"session");
			return JANUS_TELEHEALTH_ERROR_NO_SUCH_ROOM;
		case JANUS_TELEHEALTH_JOIN_CLOSED:
			g_snprintf(error, error_size, "The room is closed");
			return JANUS_TELEHEALTH_ERROR_ROOM_CLOSED;
		case JANUS_TELEHEALTH_JOIN_OTHER_NODE:
			g_snprintf(error, error_size,
				"The room is hosted by another media "
				"server");
			return JANUS_TELEHEALTH_ERROR_WRONG_NODE;
		case JANUS_TELEHEALTH_JOIN_DRAINING:
			g_snprintf(error, error_size,
				"This media server takes no new "
				"rooms: ask for a new join credential");
			return JANUS_TELEHEALTH_ERROR_WRONG_NODE;
		case JANUS_TELEHEALTH_JOIN_FULL:
			g_snprintf(error, error_size,
				"The room is full: at most %d "
				"participants can be in this session",
				max);
			return JANUS_TELEHEALTH_ERROR_ROOM_FULL;
		case JANUS_TELEHEALTH_JOIN_ACCESS:
			g_snprintf(error, error_size,
				"This session is no longer open to "
				"guests with a link");
			return JANUS_TELEHEALTH_ERROR_ACCESS_DENIED;
		case JANUS_TELEHEALTH_JOIN_BANNED:
			g_snprintf(error, error_size,
				"A chair removed you from this "
				"session.");
			return JANUS_TELEHEALTH_ERROR_BANNED;
		case JANUS_TELEHEALTH_JOIN_IN_SESSION:
			g_snprintf(error, error_size,
				"The participant is already in a "
				"video session.");
			return JANUS_TELEHEALTH_ERROR_IN_SESSION;
		case JANUS_TELEHEALTH_JOIN_NOT_YET:
			g_snprintf(error, error_size,
				"The session cannot be opened before "
				"the invited person has connected");
			return JANUS_TELEHEALTH_ERROR_NOT_YET;
	}

	g_snprintf(error, error_size, "Unknown error");

	return JANUS_TELEHEALTH_ERROR_UNKNOWN_ERROR;
}


/*
 * Takes the participant's place from an older handle of the same person
 * (a rejoin after a dropped connection, or a second tab).  The old handle
 * is told and stays attached, out of the room.
 */
static void janus_telehealth_room_replace(janus_telehealth_room *room, janus_telehealth_participant *participant) {
	const char *participant_id = participant->id;
	gboolean replaced;
	janus_telehealth_session *old_session;
	janus_telehealth_participant *old;

	old_session = NULL;

	janus_mutex_lock(&room->mutex);
	old = g_hash_table_lookup(room->participants, participant_id);
	replaced = old != NULL;
	if (old != NULL) {
		/* A chair's mute and a breakout move survive a rejoin. */
		participant->audio_blocked = old->audio_blocked;
		participant->video_blocked = old->video_blocked;
		participant->breakout = g_strdup(old->breakout);
		if (old->session != NULL) {
			old_session = old->session;
			janus_refcount_increase(&old_session->ref);
		}
		janus_telehealth_participant_detach(old);
		g_hash_table_remove(room->participants, participant_id);
	}
	janus_mutex_unlock(&room->mutex);

	if (old_session != NULL) {
		JANUS_LOG(LOG_INFO,
			"[telehealth] participant %s rejoined room %s "
			"from a new handle\n",
			participant_id, room->id);
		janus_telehealth_push_simple(old_session, NULL, "left", room->id, "replaced");
	}

	if (replaced) {
		janus_telehealth_media_participant_out(room, old_session, participant_id, "replaced");
	}

	if (old_session != NULL) {
		janus_telehealth_session_unref(old_session);
	}
}


/*
 * A join runs in three steps (docs/plugin.md, "Threads and failures"):
 * the handler thread checks the handle and reads what this node knows of
 * the room; a worker of the join pool runs the join script in Redis, so a
 * slow Redis holds up this join only; the handler thread then applies the
 * script's answer to the room in memory and answers.  Joins of one room
 * take turns (what the handler read of the room stays true while the
 * script runs); joins of other rooms and every other request go on.
 * The room's other Redis work (janus_telehealth_room_redis: writes behind
 * a leave or a chair's action, a close, a revocation check) takes its
 * turn in the same queue, so it keeps its order with the room's joins.
 */

#define JANUS_TELEHEALTH_JOIN_WORKERS 4

typedef enum {
	JANUS_TELEHEALTH_JOB_JOIN = 0,
	JANUS_TELEHEALTH_JOB_MEMBER, /* a member's flags, write-behind */
	JANUS_TELEHEALTH_JOB_ROOM /* janus_telehealth_room_redis() */
} janus_telehealth_job_kind;

struct janus_telehealth_join_job {
	janus_telehealth_job_kind kind;
	janus_telehealth_session *session; /* reference */
	janus_telehealth_participant *participant; /* reference */
	char *transaction;
	janus_telehealth_join join; /* strings: copies */
	char *member; /* its JSON */
	gboolean hosted;
	gboolean admitted;
	janus_telehealth_join_status status;
	janus_telehealth_room_info info;
	janus_telehealth_room_work work; /* JOB_ROOM */
	janus_telehealth_room_done done;
	void *data;
};

static GThreadPool *join_pool;
/* room id -> GQueue of jobs waiting for the join under way (handler) */
static GHashTable *join_busy;
static GPrivate join_worker_redis = G_PRIVATE_INIT((GDestroyNotify)janus_telehealth_redis_free);


void janus_telehealth_join_job_free(janus_telehealth_join_job *job) {
	if (job == NULL) {
		return;
	}

	if (job->session != NULL) {
		janus_refcount_decrease(&job->session->ref);
	}
	if (job->participant != NULL) {
		janus_telehealth_participant_unref(job->participant);
	}

	g_free(job->transaction);
	g_free((char *)job->join.room_id);
	g_free((char *)job->join.session_id);
	g_free((char *)job->join.org_id);
	g_free((char *)job->join.kind);
	g_free((char *)job->join.participant_id);
	g_free((char *)job->join.display);
	g_free((char *)job->join.jti);
	free(job->member);
	janus_telehealth_room_info_clear(&job->info);
	g_free(job);
}


/* This thread's connection of the pool's. */
static janus_telehealth_redis *janus_telehealth_worker_redis(void) {
	janus_telehealth_redis *redis;

	redis = g_private_get(&join_worker_redis);
	if (redis == NULL) {
		redis = janus_telehealth_redis_new("join worker");
		g_private_set(&join_worker_redis, redis);
	}

	return redis;
}


/* A worker of the pool: the Redis part of a job. */
static void janus_telehealth_join_work(gpointer data, gpointer user_data) {
	janus_telehealth_redis *redis;
	janus_telehealth_join_job *job = data;

	redis = janus_telehealth_worker_redis();

	if (job->kind == JANUS_TELEHEALTH_JOB_MEMBER) {
		if (janus_telehealth_redis_member_update(redis, job->join.room_id, job->join.participant_id, job->member) !=
			0) {
			JANUS_LOG(LOG_WARN,
				"[telehealth] member %s of room %s not "
				"updated in Redis (unavailable)\n",
				job->join.participant_id, job->join.room_id);
		}
		janus_telehealth_join_job_free(job);
		return;
	}

	if (job->kind == JANUS_TELEHEALTH_JOB_ROOM) {
		if (job->work != NULL) {
			job->work(redis, job->data);
		}
		janus_telehealth_enqueue_joined(job);
		return;
	}

	job->status = janus_telehealth_redis_join(redis, &job->join, job->member, job->hosted, job->admitted, &job->info);

	/* back to the handler thread, which owns the rooms in memory */
	janus_telehealth_enqueue_joined(job);
}


int janus_telehealth_joins_init(void) {
	GError *error = NULL;

	join_busy = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
	join_pool = g_thread_pool_new(janus_telehealth_join_work, NULL, JANUS_TELEHEALTH_JOIN_WORKERS, FALSE, &error);
	if (error != NULL) {
		JANUS_LOG(LOG_FATAL, "[telehealth] cannot start the join pool: %s\n", error->message);
		g_error_free(error);
		g_hash_table_destroy(join_busy);
		join_busy = NULL;
		return -1;
	}

	return 0;
}


/* After the handler thread stopped: the jobs under way finish. */
void janus_telehealth_joins_deinit(void) {
	GQueue *queue;
	GHashTableIter iter;

	if (join_pool != NULL) {
		g_thread_pool_free(join_pool, FALSE, TRUE);
		join_pool = NULL;
	}

	if (join_busy != NULL) {
		g_hash_table_iter_init(&iter, join_busy);
		while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&queue)) {
			g_queue_free_full(queue, (GDestroyNotify)janus_telehealth_join_job_free);
		}
		g_hash_table_destroy(join_busy);
		join_busy = NULL;
	}
}


/* A member's presentation flags, written behind (they may lag a little;
 * the script writes only a member still there). */
void janus_telehealth_member_update(const char *room_id, const char *participant_id, char *member) {
	janus_telehealth_join_job *job;

	job = g_malloc0(sizeof(janus_telehealth_join_job));
	job->kind = JANUS_TELEHEALTH_JOB_MEMBER;
	job->join.room_id = g_strdup(room_id);
	job->join.participant_id = g_strdup(participant_id);
	job->member = member;

	if (join_pool == NULL || !g_thread_pool_push(join_pool, job, NULL)) {
		janus_telehealth_join_work(job, NULL);
	}
}


/* The handler thread: what this node knows of the room, then the pool. */
static void janus_telehealth_join_submit(janus_telehealth_join_job *job) {
	janus_telehealth_room *room;

	if (job->kind == JANUS_TELEHEALTH_JOB_ROOM) {
		if (join_pool == NULL || !g_thread_pool_push(join_pool, job, NULL)) {
			janus_telehealth_join_work(job, NULL);
		}
		return;
	}

	/*
     * Only this thread adds rooms and admits, and no other join of this
     * room is under way: what it sees stays true until the answer is
     * applied.  Admitted once, admitted for this room's life: a dropped
     * connection does not send anyone back to the waiting room.
     */
	job->admitted = job->join.admitted;
	room = janus_telehealth_rooms_lookup(job->join.room_id);
	job->hosted = room != NULL;
	if (room != NULL) {
		janus_mutex_lock(&room->mutex);
		job->admitted = job->admitted || g_hash_table_contains(room->admitted, job->participant->id);
		janus_mutex_unlock(&room->mutex);
		janus_telehealth_room_unref(room);
	}

	/* The join script decides who may join and who waits for a chair. */
	job->member = janus_telehealth_member_json(job->participant);

	if (join_pool == NULL || !g_thread_pool_push(join_pool, job, NULL)) {
		janus_telehealth_join_work(job, NULL);
	}
}


/* The room's jobs run one at a time: the next waits for this one's end. */
static void janus_telehealth_room_queue(janus_telehealth_join_job *job) {
	GQueue *queue;

	if (g_hash_table_lookup_extended(join_busy, job->join.room_id, NULL, (gpointer *)&queue)) {
		g_queue_push_tail(queue, job);
		return;
	}

	g_hash_table_insert(join_busy, g_strdup(job->join.room_id), g_queue_new());
	janus_telehealth_join_submit(job);
}


int janus_telehealth_room_join(janus_telehealth_session *session, const janus_telehealth_join *join,
	const char *transaction, char *error, size_t error_size) {
	int rc;
	janus_telehealth_join_job *job;
	janus_telehealth_participant *participant;

	janus_mutex_lock(&session->mutex);
	rc = session->participant != NULL || session->joining;
	if (!rc) {
		session->joining = TRUE;
	}
	janus_mutex_unlock(&session->mutex);

	if (rc) {
		g_snprintf(error, error_size, "Already in a room");
		return JANUS_TELEHEALTH_ERROR_ALREADY_JOINED;
	}

	participant = g_malloc0(sizeof(janus_telehealth_participant));
	participant->id = g_strdup(join->participant_id);
	participant->display = g_strdup(join->display);
	participant->role = join->role;
	participant->jti = g_strdup(join->jti);
	participant->exp = join->exp;
	participant->audio_only = join->audio_only;
	janus_refcount_init(&participant->ref, janus_telehealth_participant_free);

	job = g_malloc0(sizeof(janus_telehealth_join_job));
	job->kind = JANUS_TELEHEALTH_JOB_JOIN;
	janus_refcount_increase(&session->ref);
	job->session = session;
	job->participant = participant;
	job->transaction = g_strdup(transaction);
	job->join = *join;
	job->join.room_id = g_strdup(join->room_id);
	job->join.session_id = g_strdup(join->session_id);
	job->join.org_id = g_strdup(join->org_id);
	job->join.kind = g_strdup(join->kind);
	job->join.participant_id = g_strdup(join->participant_id);
	job->join.display = g_strdup(join->display);
	job->join.jti = g_strdup(join->jti);

	janus_telehealth_room_queue(job);

	return JANUS_TELEHEALTH_ANSWER_LATER;
}


/*
 * Runs work (on a join worker, with its Redis connection), then done (on
 * the handler thread), for the room: after the room's joins and jobs
 * queued before, and before those queued after.  The handler thread only.
 */
void janus_telehealth_room_redis(
	const char *room_id, janus_telehealth_room_work work, janus_telehealth_room_done done, void *data) {
	janus_telehealth_join_job *job;

	job = g_malloc0(sizeof(janus_telehealth_join_job));
	job->kind = JANUS_TELEHEALTH_JOB_ROOM;
	job->join.room_id = g_strdup(room_id);
	job->work = work;
	job->done = done;
	job->data = data;

	if (join_busy == NULL) {
		/* not started, or stopping: here and now */
		if (work != NULL) {
			work(janus_telehealth_worker_redis(), data);
		}
		if (done != NULL) {
			done(data);
		}
		janus_telehealth_join_job_free(job);
		return;
	}

	janus_telehealth_room_queue(job);
}


/* The handler thread: a room job's work is done.  FALSE for a join. */
gboolean janus_telehealth_room_redis_finish(janus_telehealth_join_job *job) {
	char *room_id;

	if (job->kind != JANUS_TELEHEALTH_JOB_ROOM) {
		return FALSE;
	}

	if (job->done != NULL) {
		job->done(job->data);
	}

	room_id = g_strdup(job->join.room_id);
	janus_telehealth_join_job_free(job);
	janus_telehealth_room_join_next(room_id);
	g_free(room_id);

	return TRUE;
}


/* The handler thread, after a join of the room was answered. */
void janus_telehealth_room_join_next(const char *room_id) {
	GQueue *queue;
	janus_telehealth_join_job *job;

	queue = g_hash_table_lookup(join_busy, room_id);
	if (queue == NULL) {
		return;
	}

	job = g_queue_pop_head(queue);
	if (job == NULL) {
		g_queue_free(queue);
		g_hash_table_remove(join_busy, room_id);
		return;
	}

	janus_telehealth_join_submit(job);
}


/* The handler thread: whether a join is under way or waiting. */
gboolean janus_telehealth_joins_busy(void) {
	return join_busy != NULL && g_hash_table_size(join_busy) > 0;
}


const char *janus_telehealth_join_job_room(const janus_telehealth_join_job *job) {
	return job->join.room_id;
}


const char *janus_telehealth_join_job_transaction(const janus_telehealth_join_job *job) {
	return job->transaction;
}


janus_telehealth_session *janus_telehealth_join_job_session(const janus_telehealth_join_job *job) {
	return job->session;
}


gint64 janus_telehealth_join_job_started(const janus_telehealth_join_job *job) {
	return job->join.started;
}


/*
 * The handler thread: the join script answered; the room in memory
 * follows.  0, or an error code with its text.
 */
int janus_telehealth_room_join_finish(janus_telehealth_join_job *job, char *error, size_t error_size) {
	int rc;
	char *member;
	json_t *event;
	janus_telehealth_room *room;
	janus_telehealth_session *session;
	janus_telehealth_participant *participant;
	janus_telehealth_room_info *infop;
	const janus_telehealth_join *join;

	session = job->session;
	participant = job->participant;
	join = &job->join;
	infop = &job->info;

	janus_mutex_lock(&session->mutex);
	session->joining = FALSE;
	janus_mutex_unlock(&session->mutex);

	if (job->status != JANUS_TELEHEALTH_JOIN_OK) {
		rc = janus_telehealth_join_error(job->status, infop->max_participants, error, error_size);

		if (job->status == JANUS_TELEHEALTH_JOIN_ACCESS && join->unlisted) {
			g_snprintf(error, error_size,
				"This session is now open only "
				"to its participants");
		}

		JANUS_LOG(LOG_WARN,
			"[telehealth] participant %s cannot join room "
			"%s: %d %s\n",
			join->participant_id, join->room_id, rc, error);
		return rc;
	}

	/* the job's reference to the participant goes to the session */
	job->participant = NULL;

	/* A chair's change of role holds for the rest of the session. */
	participant->role = janus_telehealth_role_of(infop->role, participant->role);

	room = janus_telehealth_room_host(join, infop);

	janus_telehealth_report_stale_members(room, infop->stale_members);
	janus_telehealth_room_replace(room, participant);

	/* The participant's references: its room, its session, and back. */
	janus_refcount_increase(&room->ref);
	participant->room = room;
	janus_refcount_increase(&session->ref);
	participant->session = session;

	janus_mutex_lock(&room->mutex);
	janus_telehealth_room_apply_policy(room, infop);
	g_atomic_int_set(&room->empty_timeout, infop->empty_timeout);
	participant->waiting = infop->waiting;
	if (!participant->waiting) {
		g_hash_table_add(room->admitted, g_strdup(participant->id));
	}
	participant->seq = ++join_seq;
	janus_refcount_increase(&participant->ref);
	g_hash_table_insert(room->participants, participant->id, participant);
	room->empty_since = 0;

	janus_mutex_lock(&session->mutex);
	session->participant = participant; /* takes our reference */
	janus_mutex_unlock(&session->mutex);
	member = participant->waiting || participant->audio_blocked || participant->video_blocked ||
			participant->breakout != NULL
		? janus_telehealth_member_json(participant)
		: NULL;
	janus_mutex_unlock(&room->mutex);

	if (member != NULL) {
		janus_telehealth_member_update(room->id, participant->id, member);
	}

	if (infop->first_open) {
		janus_telehealth_event_emit(TH_EV_ROOM_OPENED, room, participant->id, participant->role, NULL);
	}
	janus_telehealth_event_emit(participant->waiting ? TH_EV_PARTICIPANT_WAITING : TH_EV_PARTICIPANT_JOINED, room,
		participant->id, participant->role, NULL);

	JANUS_LOG(LOG_INFO, "[telehealth] participant %s joined room %s as %s%s\n", participant->id, room->id,
		participant->role, participant->waiting ? ", waiting" : "");

	event = json_object();
	json_object_set_new(event, "telehealth", json_string("joined"));
	json_object_set_new(event, "room", json_string(room->id));
	json_object_set_new(event, "id", json_string(participant->id));
	json_object_set_new(event, "role", json_string(participant->role));
	json_object_set_new(event, "state", json_string(participant->waiting ? "waiting" : "in"));
	json_object_set_new(event, "participants",
		participant->waiting ? json_array()
							 : janus_telehealth_room_participants(room, strcmp(participant->role, TH_ROLE_CHAIR) == 0));
	janus_telehealth_push(session, job->transaction, event);
	json_decref(event);

	if (participant->waiting) {
		/* The chairs' console rings. */
		janus_mutex_lock(&room->mutex);
		event = json_pack("{s:s, s:s, s:o}", "telehealth", "waiting", "room", room->id, "participant",
			janus_telehealth_participant_json(participant));
		janus_mutex_unlock(&room->mutex);
		janus_telehealth_room_push_chairs(room, event);
		json_decref(event);
	}

	janus_telehealth_room_push_participants(room, session);

	janus_telehealth_room_unref(room);

	/* The handle went away while the script ran: it leaves again. */
	if (g_atomic_int_get(&session->destroyed)) {
		(void)janus_telehealth_room_leave(session, TH_LEFT_HANGUP, NULL);
	}

	return 0;
}


/* Leave */

/*
 * What a deliberate leave does by the room's leave_policy: returns the
 * close reason, or NULL; *hung_up when staff must hear that the client
 * hung up.  A lost connection (hangup) never ends a room.
 */
static const char *janus_telehealth_leave_effect(
	janus_telehealth_room *room, janus_telehealth_participant *participant, const char *reason, gboolean *hung_up) {
	gboolean staff;
	const char *policy;

	*hung_up = FALSE;

	if (strcmp(reason, TH_LEFT_LEAVE) != 0 || participant->waiting) {
		return NULL;
	}

	policy = room->leave_policy != NULL ? room->leave_policy : TH_POLICY_STAY;
	staff = janus_telehealth_is_staff_chair(participant);

	if (strcmp(policy, TH_POLICY_CLOSE_ON_STAFF_LEAVE) == 0 && staff) {
		return TH_CLOSE_CHAIR_LEFT;
	}

	if (strcmp(policy, TH_POLICY_CAREGIVER_HANGUP_ENDS) == 0) {
		if (staff) {
			return TH_CLOSE_CAREGIVER_HUNG_UP;
		}
		*hung_up = !g_str_has_prefix(participant->id, "staff:");
	}

	return NULL;
}


static gboolean janus_telehealth_is_staff(const janus_telehealth_participant *p) {
	return g_str_has_prefix(p->id, "staff:");
}


/*
 * The caregiver hung up on a visit: its video is over for good, and
 * their page says so (docs/plugin.md, "left").
 */
static void janus_telehealth_push_left_over(
	janus_telehealth_session *session, const char *transaction, const char *room_id, const char *reason) {
	json_t *event;

	event = json_pack("{s:s, s:s, s:s, s:b, s:s}", "telehealth", "left", "room", room_id, "reason", reason, "over",
		TRUE, "message", TH_MSG_CAREGIVER_HUNG_UP);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);
}


/* Tells the staff in the room that the client hung up. */
static void janus_telehealth_room_push_hung_up(
	janus_telehealth_room *room, const janus_telehealth_participant *participant) {
	json_t *event;

	event = json_pack("{s:s, s:s, s:s, s:s}", "telehealth", "hung_up", "room", room->id, "participant", participant->id,
		"message", TH_MSG_CLIENT_HUNG_UP);
	janus_telehealth_room_push_to(room, event, janus_telehealth_is_staff);
	json_decref(event);
}


/*
 * Takes a participant out of the room (leave, hangup, removed, turned
 * away): Redis, the events stream, their media, the others' lists, and
 * the room itself when the leave policy says so.
 */
static void janus_telehealth_room_out(janus_telehealth_room *room, janus_telehealth_participant *participant,
	const char *reason, gboolean ban, const char *transaction) {
	gboolean empty, hung_up, waiting, release_lock;
	const char *closes;
	janus_telehealth_session *session;

	janus_mutex_lock(&room->mutex);
	session = participant->session;
	if (session != NULL) {
		janus_refcount_increase(&session->ref);
	}
	janus_telehealth_participant_detach(participant);
	if (g_hash_table_lookup(room->participants, participant->id) == participant) {
		g_hash_table_remove(room->participants, participant->id);
	}
	empty = g_hash_table_size(room->participants) == 0;
	if (empty) {
		room->empty_since = janus_get_monotonic_time();
	}
	waiting = participant->waiting;
	closes = janus_telehealth_leave_effect(room, participant, reason, &hung_up);
	janus_mutex_unlock(&room->mutex);

	/* A video_call's lock is nginx's, for the whole session. */
	release_lock = g_strcmp0(room->kind, TH_KIND_VIDEO_CALL) != 0;
	janus_telehealth_write_member_out(room, participant->id, release_lock, ban);

	janus_telehealth_event_emit(TH_EV_PARTICIPANT_LEFT, room, participant->id, participant->role, reason);

	JANUS_LOG(LOG_INFO, "[telehealth] participant %s left room %s: %s%s\n", participant->id, room->id, reason,
		waiting ? " (was waiting)" : "");

	/*
     * What they published stops and their subscriber handles are let go;
     * closing does it for everyone at once, without renegotiating first.
     */
	if (closes == NULL) {
		janus_telehealth_media_participant_out(room, session, participant->id, reason);
	}

	/* Still pushed for a hangup: the handle may be alive. */
	if (session != NULL && g_strcmp0(closes, TH_CLOSE_CAREGIVER_HUNG_UP) == 0) {
		janus_telehealth_push_left_over(session, transaction, room->id, reason);

	} else if (session != NULL) {
		janus_telehealth_push_simple(session, transaction, "left", room->id, reason);
	}

	if (closes != NULL) {
		janus_telehealth_room_close(room, closes, TRUE);

	} else {
		if (hung_up) {
			janus_telehealth_room_push_hung_up(room, participant);
		}
		if (!empty) {
			janus_telehealth_room_push_participants(room, NULL);
		}
	}

	if (session != NULL) {
		janus_telehealth_session_unref(session);
	}
}


int janus_telehealth_room_leave(janus_telehealth_session *session, const char *reason, const char *transaction) {
	janus_telehealth_room *room;
	janus_telehealth_participant *participant;

	participant = janus_telehealth_session_participant(session);

	if (participant == NULL) {
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	room = participant->room;
	janus_refcount_increase(&room->ref);

	janus_telehealth_room_out(room, participant, reason, FALSE, transaction);

	janus_telehealth_participant_unref(participant);
	janus_telehealth_room_unref(room);

	return 0;
}


/*
 * A chair or nginx takes someone out (removed, turned_away); with ban they
 * cannot come back to this session (docs/lifecycle.md).  Returns 0, or 1
 * when they are not in the room.
 */
int janus_telehealth_room_remove_participant(
	janus_telehealth_room *room, const char *participant_id, const char *reason, gboolean ban) {
	janus_telehealth_participant *participant;

	participant = janus_telehealth_room_participant(room, participant_id);
	if (participant == NULL) {
		return 1;
	}

	janus_telehealth_room_out(room, participant, reason, ban, NULL);
	janus_telehealth_participant_unref(participant);

	return 0;
}
