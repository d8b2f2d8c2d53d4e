/*
 * The events stream: what happens in rooms (opened, joined, left, closed)
 * goes to the Redis stream <prefix>events, where the nginx module reads it
 * with a consumer group and writes call history.
 *
 * Emitting never waits for Redis: entries go to a queue drained by the
 * events thread, which keeps their order and retries while Redis is away,
 * so a short outage delays events instead of losing them.  The queue is
 * bounded; beyond it entries are dropped and counted in the log.
 */

#include <stdarg.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"


#define JANUS_TELEHEALTH_EVENTS_BACKLOG_MAX 10000

static GAsyncQueue *janus_telehealth_events_queue;
static GThread *janus_telehealth_events_thread;
static volatile gint janus_telehealth_events_running;
static volatile gint janus_telehealth_events_dropped;


static void janus_telehealth_event_free(gpointer data) {
	g_ptr_array_free(data, TRUE);
}


void janus_telehealth_event_emit_fields(const char *type, ...) {
	char ts[32];
	va_list ap;
	GPtrArray *argv;
	const char *name, *value;

	if (!janus_telehealth_cfg.event_stream || janus_telehealth_events_queue == NULL) {
		return;
	}

	if (g_async_queue_length(janus_telehealth_events_queue) >= JANUS_TELEHEALTH_EVENTS_BACKLOG_MAX) {
		g_atomic_int_inc(&janus_telehealth_events_dropped);
		return;
	}

	argv = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(argv, g_strdup("XADD"));
	g_ptr_array_add(argv, janus_telehealth_redis_key(TH_KEY_EVENTS, ""));

	if (janus_telehealth_cfg.event_stream_maxlen > 0) {
		/* "~" lets Redis trim whole nodes: cheap, approximately maxlen. */
		g_ptr_array_add(argv, g_strdup("MAXLEN"));
		g_ptr_array_add(argv, g_strdup("~"));
		g_ptr_array_add(argv, g_strdup_printf("%d", janus_telehealth_cfg.event_stream_maxlen));
	}

	g_ptr_array_add(argv, g_strdup("*"));
	g_ptr_array_add(argv, g_strdup("type"));
	g_ptr_array_add(argv, g_strdup(type));

	va_start(ap, type);
	while ((name = va_arg(ap, const char *)) != NULL) {
		value = va_arg(ap, const char *);
		if (value == NULL) {
			continue;
		}
		g_ptr_array_add(argv, g_strdup(name));
		g_ptr_array_add(argv, g_strdup(value));
	}
	va_end(ap);

	g_snprintf(ts, sizeof(ts), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);
	g_ptr_array_add(argv, g_strdup("node"));
	g_ptr_array_add(argv, g_strdup(janus_telehealth_cfg.node_id));
	g_ptr_array_add(argv, g_strdup("ts"));
	g_ptr_array_add(argv, g_strdup(ts));

	g_async_queue_push(janus_telehealth_events_queue, argv);
}


void janus_telehealth_event_emit(const char *type, const janus_telehealth_room *room, const char *participant,
	const char *role, const char *reason) {
	janus_telehealth_event_emit_fields(type, "room", room->id, "session", room->session_id, "org", room->org_id, "kind",
		room->kind, "participant", participant, "role", role, "reason", reason, NULL);
}


/*
 * With replicas (Sentinel), an entry written to the primary but not yet
 * copied is lost if the primary is replaced at that moment.  So, with
 * redis_wait_replicas set, each entry is followed by WAIT (holding the
 * events thread, never a room) until that many replicas have it or
 * redis_wait_timeout passes.  An entry not confirmed in time is checked
 * again on a fresh connection (after a failover, the new primary): gone,
 * it is written again; still there but still on no replica (the primary
 * Sentinel names may be the old one, about to be replaced), it is checked
 * again on a fresh connection every second, for up to
 * JANUS_TELEHEALTH_EVENTS_CONFIRM_US, the stream waiting meanwhile.  After
 * that the replicas are taken for gone: entries go on unconfirmed (one log
 * line) until a WAIT succeeds again, so that a dead replica delays the
 * stream once, not every entry.  Only an entry written while no replica
 * confirms, on a primary replaced then, can be lost.
 */

#define JANUS_TELEHEALTH_EVENTS_CONFIRM_US (15 * G_USEC_PER_SEC)

/* the events thread's own: the last entry not yet confirmed, since when,
 * and whether replicas are taken for gone */
static char janus_telehealth_events_unconfirmed[64];
static gint64 janus_telehealth_events_unconfirmed_since;
static gboolean janus_telehealth_events_unreplicated;


static int janus_telehealth_event_wait(janus_telehealth_redis *redis) {
	int rc;
	redisReply *reply;

	reply = janus_telehealth_redis_command(
		redis, "WAIT %d %d", janus_telehealth_cfg.redis_wait_replicas, janus_telehealth_cfg.redis_wait_timeout_ms);
	if (reply == NULL) {
		return -1;
	}

	rc = (reply->type == REDIS_REPLY_INTEGER && reply->integer >= janus_telehealth_cfg.redis_wait_replicas) ? 0 : -1;

	freeReplyObject(reply);

	if (rc == 0 && janus_telehealth_events_unreplicated) {
		JANUS_LOG(LOG_INFO, "[telehealth] events stream: replicas confirm entries again\n");
		janus_telehealth_events_unreplicated = FALSE;
	}

	return rc;
}


/*
 * No replica has the unconfirmed entry: 0 to go on without (replicas taken
 * for gone), -1 to check again on a fresh connection in a while.
 */
static int janus_telehealth_event_unreplicated(janus_telehealth_redis *redis) {
	gint64 now;

	if (janus_telehealth_events_unreplicated) {
		return 0;
	}

	now = janus_get_monotonic_time();
	if (janus_telehealth_events_unconfirmed_since == 0) {
		janus_telehealth_events_unconfirmed_since = now;
	}

	if (now - janus_telehealth_events_unconfirmed_since < JANUS_TELEHEALTH_EVENTS_CONFIRM_US) {
		janus_telehealth_redis_drop(redis);
		return -1;
	}

	JANUS_LOG(LOG_WARN,
		"[telehealth] event %s: no replica has it after %d s; "
		"events go on unconfirmed until a replica confirms one\n",
		janus_telehealth_events_unconfirmed, (int)(JANUS_TELEHEALTH_EVENTS_CONFIRM_US / G_USEC_PER_SEC));
	janus_telehealth_events_unreplicated = TRUE;

	return 0;
}


/* the unconfirmed entry is confirmed, or given up on */
static void janus_telehealth_event_confirmed(void) {
	janus_telehealth_events_unconfirmed[0] = '\0';
	janus_telehealth_events_unconfirmed_since = 0;
}


/* 1: the unconfirmed entry is on this primary, 0: it is not, -1: outage */
static int janus_telehealth_event_present(janus_telehealth_redis *redis, const char *key) {
	int rc;
	redisReply *reply;

	reply = janus_telehealth_redis_command(
		redis, "XRANGE %s %s %s", key, janus_telehealth_events_unconfirmed, janus_telehealth_events_unconfirmed);
	if (reply == NULL) {
		return -1;
	}

	rc = (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1) ? 1 : 0;

	if (reply->type == REDIS_REPLY_ERROR) {
		rc = -1;
	}

	freeReplyObject(reply);

	return rc;
}


static int janus_telehealth_event_write(janus_telehealth_redis *redis, GPtrArray *argv) {
	int rc;
	redisReply *reply;

	if (janus_telehealth_events_unconfirmed[0] != '\0') {
		rc = janus_telehealth_event_present(redis, argv->pdata[1]);
		if (rc < 0) {
			return -1;
		}

		if (rc == 1) {
			if (janus_telehealth_event_wait(redis) != 0 && janus_telehealth_event_unreplicated(redis) != 0) {
				return -1;
			}

			janus_telehealth_event_confirmed();
			return 0;
		}

		JANUS_LOG(LOG_WARN,
			"[telehealth] event %s was lost with the old "
			"primary: written again\n",
			janus_telehealth_events_unconfirmed);
		janus_telehealth_event_confirmed();
	}

	reply = janus_telehealth_redis_argv(redis, (int)argv->len, (const char **)argv->pdata, NULL);
	if (reply == NULL) {
		return -1;
	}

	rc = 0;
	if (reply->type == REDIS_REPLY_ERROR) {
		/* Not an outage: retrying would block the queue forever. */
		JANUS_LOG(LOG_ERR, "[telehealth] Redis refused an event: %s\n", reply->str);
		rc = 1;

	} else if (janus_telehealth_cfg.redis_wait_replicas > 0 && reply->type == REDIS_REPLY_STRING) {
		g_strlcpy(janus_telehealth_events_unconfirmed, reply->str, sizeof(janus_telehealth_events_unconfirmed));
	}

	freeReplyObject(reply);

	if (janus_telehealth_events_unconfirmed[0] != '\0') {
		if (janus_telehealth_event_wait(redis) != 0 && janus_telehealth_event_unreplicated(redis) != 0) {
			/* checked again on a fresh connection */
			return -1;
		}

		janus_telehealth_event_confirmed();
	}

	return rc;
}


static void janus_telehealth_events_report_dropped(void) {
	gint dropped;

	dropped = g_atomic_int_and(&janus_telehealth_events_dropped, 0);
	if (dropped > 0) {
		JANUS_LOG(LOG_ERR,
			"[telehealth] events backlog full: %d events "
			"dropped\n",
			dropped);
	}
}


static void *janus_telehealth_events_loop(void *data) {
	int i;
	GPtrArray *entry;
	janus_telehealth_redis *redis;

	redis = janus_telehealth_redis_new("events");
	entry = NULL;

	while (g_atomic_int_get(&janus_telehealth_events_running)) {
		if (entry == NULL) {
			entry = g_async_queue_timeout_pop(janus_telehealth_events_queue, 200000);
			janus_telehealth_events_report_dropped();
			if (entry == NULL) {
				continue;
			}
		}

		if (janus_telehealth_event_write(redis, entry) >= 0) {
			janus_telehealth_event_free(entry);
			entry = NULL;
			continue;
		}

		/* Redis is away: keep the entry, try again in a while. */
		for (i = 0; i < 5 && g_atomic_int_get(&janus_telehealth_events_running); i++) {
			g_usleep(200000);
		}
	}

	/* Shutting down: one attempt for what is still queued. */
	while (entry != NULL || (entry = g_async_queue_try_pop(janus_telehealth_events_queue)) != NULL) {
		if (janus_telehealth_event_write(redis, entry) < 0) {
			JANUS_LOG(LOG_WARN,
				"[telehealth] %d events not written at "
				"shutdown (Redis unavailable)\n",
				g_async_queue_length(janus_telehealth_events_queue) + 1);
			janus_telehealth_event_free(entry);
			break;
		}
		janus_telehealth_event_free(entry);
		entry = NULL;
	}

	janus_telehealth_redis_free(redis);

	return NULL;
}


int janus_telehealth_events_start(void) {
	GError *error = NULL;

	if (!janus_telehealth_cfg.event_stream) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] events stream disabled: nginx will "
			"not see joins, leaves or closed rooms\n");
		return 0;
	}

	janus_telehealth_events_queue = g_async_queue_new_full(janus_telehealth_event_free);
	g_atomic_int_set(&janus_telehealth_events_running, 1);

	janus_telehealth_events_thread = g_thread_try_new("telehealth events", janus_telehealth_events_loop, NULL, &error);
	if (error != NULL) {
		JANUS_LOG(LOG_ERR,
			"[telehealth] cannot start the events thread: "
			"%s\n",
			error->message);
		g_error_free(error);
		g_async_queue_unref(janus_telehealth_events_queue);
		janus_telehealth_events_queue = NULL;
		return -1;
	}

	return 0;
}


void janus_telehealth_events_stop(void) {
	if (janus_telehealth_events_thread == NULL) {
		return;
	}

	g_atomic_int_set(&janus_telehealth_events_running, 0);
	g_thread_join(janus_telehealth_events_thread);
	janus_telehealth_events_thread = NULL;

	g_async_queue_unref(janus_telehealth_events_queue);
	janus_telehealth_events_queue = NULL;
}
