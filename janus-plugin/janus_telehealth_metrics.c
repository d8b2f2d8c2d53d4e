/*
 * Figures of janus.plugin.telehealth (janus_telehealth_metrics.h).
 *
 * The plugin has no HTTP listener of its own and Janus' admin API speaks
 * its own JSON, so its figures ride on the heartbeat it already writes to
 * Redis every refresh_interval; nginx renders them per node on /metrics
 * (docs/operations.md, "Monitoring").  Counters only ever grow while the
 * process lives; Prometheus sees a restart by started_at.
 */

#include <string.h>
#include <sys/resource.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"
#include "janus_telehealth_metrics.h"
#include "janus_telehealth_room.h"


static const int janus_telehealth_join_bounds[JANUS_TELEHEALTH_JOIN_BUCKETS] = {
	5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000};

static guint64 forwarded_packets;
static guint64 forwarded_bytes;
static guint64 redis_errors;
static guint64 join_count;
static guint64 join_sum_us;
/* Not cumulative: bucket i counts joins in (bound[i - 1], bound[i]];
 * the last one those above every bound. */
static guint64 join_buckets[JANUS_TELEHEALTH_JOIN_BUCKETS + 1];

static volatile gint drain_marked;

static gint64 cpu_last_wall;
static gint64 cpu_last_used;


void janus_telehealth_metrics_forwarded(guint64 bytes) {
	__atomic_add_fetch(&forwarded_packets, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&forwarded_bytes, bytes, __ATOMIC_RELAXED);
}


void janus_telehealth_metrics_join(gint64 elapsed_us) {
	int i;

	for (i = 0; i < JANUS_TELEHEALTH_JOIN_BUCKETS; i++) {
		if (elapsed_us <= (gint64)janus_telehealth_join_bounds[i] * 1000) {
			break;
		}
	}

	__atomic_add_fetch(&join_buckets[i], 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&join_count, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&join_sum_us, (guint64)MAX(elapsed_us, 0), __ATOMIC_RELAXED);
}


void janus_telehealth_metrics_redis_error(void) {
	__atomic_add_fetch(&redis_errors, 1, __ATOMIC_RELAXED);
}


gboolean janus_telehealth_draining(void) {
	return janus_telehealth_cfg.draining || g_atomic_int_get(&drain_marked);
}


void janus_telehealth_draining_set(gboolean marked) {
	g_atomic_int_set(&drain_marked, marked ? 1 : 0);
}


/* This process's share of the machine's CPU since the last call. */
static int janus_telehealth_metrics_cpu(void) {
	int cpu;
	gint64 wall, used;
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) != 0) {
		return 0;
	}

	used = (gint64)ru.ru_utime.tv_sec * G_USEC_PER_SEC + ru.ru_utime.tv_usec +
		(gint64)ru.ru_stime.tv_sec * G_USEC_PER_SEC + ru.ru_stime.tv_usec;
	wall = g_get_monotonic_time();

	cpu = 0;
	if (cpu_last_wall != 0 && wall > cpu_last_wall) {
		cpu = (int)((used - cpu_last_used) * 100 / ((wall - cpu_last_wall) * g_get_num_processors()));
	}

	cpu_last_wall = wall;
	cpu_last_used = used;

	return CLAMP(cpu, 0, 100);
}


/* Streams forwarded to one subscriber (its own mutex only). */
static int janus_telehealth_metrics_sub_streams(janus_telehealth_subscriber *sub) {
	int n;
	guint i;
	janus_telehealth_sub_stream *ss;

	n = 0;

	janus_mutex_lock(&sub->mutex);
	for (i = 0; sub->streams != NULL && i < sub->streams->len; i++) {
		ss = g_ptr_array_index(sub->streams, i);
		if (ss != NULL && ss->feed != NULL) {
			n++;
		}
	}
	janus_mutex_unlock(&sub->mutex);

	return n;
}


void janus_telehealth_metrics_load(janus_telehealth_load *load) {
	GList *snapshot, *l, *subs, *s;
	janus_telehealth_room *room;
	janus_telehealth_subscriber *sub;

	memset(load, 0, sizeof(*load));

	snapshot = janus_telehealth_rooms_snapshot();

	for (l = snapshot; l != NULL; l = l->next) {
		room = l->data;
		subs = NULL;

		janus_mutex_lock(&room->mutex);
		load->participants += g_hash_table_size(room->participants);
		load->publishers += g_list_length(room->feeds);
		for (s = room->subscribers; s != NULL; s = s->next) {
			sub = s->data;
			janus_refcount_increase(&sub->ref);
			subs = g_list_prepend(subs, sub);
		}
		janus_mutex_unlock(&room->mutex);

		/* Never the room's and a subscriber's mutex at once. */
		for (s = subs; s != NULL; s = s->next) {
			sub = s->data;
			load->subscribers++;
			load->streams += janus_telehealth_metrics_sub_streams(sub);
			janus_telehealth_subscriber_unref(sub);
		}
		g_list_free(subs);

		load->rooms++;
		janus_telehealth_room_unref(room);
	}

	g_list_free(snapshot);

	load->cpu = janus_telehealth_metrics_cpu();
}


static void janus_telehealth_metrics_pair(GPtrArray *argv, const char *name, guint64 value) {
	g_ptr_array_add(argv, g_strdup(name));
	g_ptr_array_add(argv, g_strdup_printf("%" G_GUINT64_FORMAT, value));
}


void janus_telehealth_metrics_fields(const janus_telehealth_load *load, gboolean draining, GPtrArray *argv) {
	int i;
	guint64 cumulative;
	char name[32];

	janus_telehealth_metrics_pair(argv, "rooms", load->rooms);
	janus_telehealth_metrics_pair(argv, "participants", load->participants);
	janus_telehealth_metrics_pair(argv, "publishers", load->publishers);
	janus_telehealth_metrics_pair(argv, "subscribers", load->subscribers);
	janus_telehealth_metrics_pair(argv, "streams", load->streams);
	janus_telehealth_metrics_pair(argv, "cpu", load->cpu);
	janus_telehealth_metrics_pair(argv, "draining", draining ? 1 : 0);
	/* Rooms nginx placed here since the last heartbeat (docs/redis.md). */
	janus_telehealth_metrics_pair(argv, "pending", 0);

	g_ptr_array_add(argv, g_strdup("url"));
	g_ptr_array_add(argv, g_strdup(janus_telehealth_cfg.public_url != NULL ? janus_telehealth_cfg.public_url : ""));

	janus_telehealth_metrics_pair(argv, "forwarded_packets", __atomic_load_n(&forwarded_packets, __ATOMIC_RELAXED));
	janus_telehealth_metrics_pair(argv, "forwarded_bytes", __atomic_load_n(&forwarded_bytes, __ATOMIC_RELAXED));
	janus_telehealth_metrics_pair(argv, "redis_errors", __atomic_load_n(&redis_errors, __ATOMIC_RELAXED));
	janus_telehealth_metrics_pair(argv, "join_count", __atomic_load_n(&join_count, __ATOMIC_RELAXED));
	janus_telehealth_metrics_pair(argv, "join_sum_us", __atomic_load_n(&join_sum_us, __ATOMIC_RELAXED));

	/* Cumulative, as Prometheus wants its buckets. */
	cumulative = 0;
	for (i = 0; i < JANUS_TELEHEALTH_JOIN_BUCKETS; i++) {
		cumulative += __atomic_load_n(&join_buckets[i], __ATOMIC_RELAXED);
		g_snprintf(name, sizeof(name), "join_le_%d", janus_telehealth_join_bounds[i]);
		janus_telehealth_metrics_pair(argv, name, cumulative);
	}
}
