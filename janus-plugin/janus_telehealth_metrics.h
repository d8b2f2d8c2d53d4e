/*
 * Figures of janus.plugin.telehealth: counters kept with atomics (the
 * media threads count forwarded packets) and the node's load, published
 * with each heartbeat into the node hash (docs/redis.md, "Nodes and
 * placement"), where nginx reads them for placement and /metrics.
 */

#ifndef JANUS_TELEHEALTH_METRICS_H
#define JANUS_TELEHEALTH_METRICS_H

#include <glib.h>

/* Upper bounds (ms) of the join latency histogram's buckets. */
#define JANUS_TELEHEALTH_JOIN_BUCKETS 10

/* What this node carries now (the housekeeping thread counts it). */
typedef struct janus_telehealth_load {
	int rooms;
	int participants;
	int publishers;
	int subscribers;
	int streams; /* media streams forwarded to a subscriber */
	int cpu; /* percent of the machine, this process */
} janus_telehealth_load;

void janus_telehealth_metrics_forwarded(guint64 bytes);
void janus_telehealth_metrics_join(gint64 elapsed_us);
void janus_telehealth_metrics_redis_error(void);

/* Counts the load of the rooms this node hosts. */
void janus_telehealth_metrics_load(janus_telehealth_load *load);

/*
 * Appends the heartbeat's field/value pairs (load, draining, URL and the
 * counters) to argv as newly allocated strings.
 */
void janus_telehealth_metrics_fields(const janus_telehealth_load *load, gboolean draining, GPtrArray *argv);

/* Whether this node takes no new rooms: its setting or a drain mark. */
gboolean janus_telehealth_draining(void);
void janus_telehealth_draining_set(gboolean marked);

#endif /* JANUS_TELEHEALTH_METRICS_H */
