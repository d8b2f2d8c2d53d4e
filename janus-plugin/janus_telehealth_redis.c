/*
 * Redis access for janus.plugin.telehealth: connections and the Lua
 * scripts that make each multi-key change atomic, so two nodes (or a
 * node and the nginx module) never see a half-made room.
 */

#include <arpa/inet.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth_redis.h"
#include "th_lua.h"


/* Minimum time between two connection attempts of one thread. */
#define JANUS_TELEHEALTH_REDIS_RETRY_US (G_USEC_PER_SEC)

struct janus_telehealth_redis {
	char *name;
	redisContext *ctx;
	gint64 last_failure; /* monotonic us of the last failed connect */
	gboolean logged_down; /* the outage has been logged once */
};

/*
 * The scripts are common/lua/join.lua, member_out.lua, close.lua and
 * refresh.lua (KEYS, ARGV and answers at their top), compiled in as
 * th_lua_<name> (scripts/lua2c.sh).
 */


int janus_telehealth_redis_check_address(const char *address, const char **reason) {
	char host[64];
	const char *colon, *end;
	unsigned char buf[sizeof(struct in6_addr)];
	long port;
	char *tail;
	size_t len;

	if (address == NULL || address[0] == '\0') {
		*reason = "redis address is empty";
		return -1;
	}

	if (address[0] == '/') {
		return 0;
	}

	if (address[0] == '[') {
		end = strchr(address, ']');
		if (end == NULL || end[1] != ':') {
			*reason = "redis address must be IP:port, [IPv6]:port or /path";
			return -1;
		}
		len = end - address - 1;
		colon = end + 1;
		address++;

	} else {
		colon = strrchr(address, ':');
		if (colon == NULL) {
			*reason = "redis address must be IP:port, [IPv6]:port or /path";
			return -1;
		}
		len = colon - address;
	}

	if (len == 0 || len >= sizeof(host)) {
		*reason = "redis host must be an IP address";
		return -1;
	}

	memcpy(host, address, len);
	host[len] = '\0';

	/* Numeric only: hiredis would resolve a name with a blocking lookup. */
	if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1) {
		*reason = "redis host must be an IP address (no DNS names)";
		return -1;
	}

	port = strtol(colon + 1, &tail, 10);
	if (*tail != '\0' || port < 1 || port > 65535) {
		*reason = "redis port must be 1-65535";
		return -1;
	}

	return 0;
}


janus_telehealth_redis *janus_telehealth_redis_new(const char *name) {
	janus_telehealth_redis *redis;

	redis = g_malloc0(sizeof(janus_telehealth_redis));
	redis->name = g_strdup(name);

	return redis;
}


void janus_telehealth_redis_free(janus_telehealth_redis *redis) {
	if (redis == NULL) {
		return;
	}

	if (redis->ctx != NULL) {
		redisFree(redis->ctx);
	}

	g_free(redis->name);
	g_free(redis);
}


static redisContext *janus_telehealth_redis_open(const char *address, struct timeval tv) {
	char host[64];
	const char *colon, *start;
	size_t len;

	if (address[0] == '/') {
		return redisConnectUnixWithTimeout(address, tv);
	}

	start = address;
	if (address[0] == '[') {
		start = address + 1;
		colon = strchr(address, ']') + 1;
		len = colon - start - 1;

	} else {
		colon = strrchr(address, ':');
		len = colon - start;
	}

	memcpy(host, start, len);
	host[len] = '\0';

	return redisConnectWithTimeout(host, atoi(colon + 1), tv);
}


/*
 * Asks the sentinels in turn where the primary is; fills address
 * ("IP:port" or "[IPv6]:port").  0 or -1 with why in error.
 */
static int janus_telehealth_redis_ask_sentinels(
	char *address, size_t size, struct timeval tv, char *error, size_t error_size) {
	int i;
	redisReply *reply;
	redisContext *ctx;
	const char *sentinel;

	g_strlcpy(error, "no sentinel answered", error_size);

	for (i = 0; janus_telehealth_cfg.redis_sentinels[i] != NULL; i++) {
		sentinel = janus_telehealth_cfg.redis_sentinels[i];

		ctx = janus_telehealth_redis_open(sentinel, tv);
		if (ctx == NULL || ctx->err || redisSetTimeout(ctx, tv) != REDIS_OK) {
			g_snprintf(error, error_size, "sentinel %s: %s", sentinel, ctx != NULL ? ctx->errstr : "out of memory");
			if (ctx != NULL) {
				redisFree(ctx);
			}
			continue;
		}

		reply = redisCommand(ctx, "SENTINEL get-master-addr-by-name %s", janus_telehealth_cfg.redis_master);

		if (reply != NULL && reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
			reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
			g_snprintf(address, size, strchr(reply->element[0]->str, ':') != NULL ? "[%s]:%s" : "%s:%s",
				reply->element[0]->str, reply->element[1]->str);
			freeReplyObject(reply);
			redisFree(ctx);
			return 0;
		}

		g_snprintf(
			error, error_size, "sentinel %s knows no primary \"%s\"", sentinel, janus_telehealth_cfg.redis_master);

		if (reply != NULL) {
			freeReplyObject(reply);
		}
		redisFree(ctx);
	}

	return -1;
}


/*
 * AUTH when configured, and with Sentinel a check that the server is the
 * primary (right after a failover a sentinel may still name the old one).
 * 0 or -1 with why in error.
 */
static int janus_telehealth_redis_handshake(redisContext *ctx, char *error, size_t error_size) {
	int rc;
	redisReply *reply;

	if (janus_telehealth_cfg.redis_password != NULL) {
		reply = redisCommand(ctx, "AUTH %s %s", janus_telehealth_cfg.redis_user, janus_telehealth_cfg.redis_password);
		if (reply == NULL) {
			g_strlcpy(error, ctx->errstr, error_size);
			return -1;
		}

		if (reply->type == REDIS_REPLY_ERROR) {
			g_snprintf(error, error_size, "AUTH as \"%s\" refused: %s", janus_telehealth_cfg.redis_user, reply->str);
			freeReplyObject(reply);
			return -1;
		}

		freeReplyObject(reply);
	}

	if (janus_telehealth_cfg.redis_master == NULL) {
		return 0;
	}

	reply = redisCommand(ctx, "ROLE");
	if (reply == NULL) {
		g_strlcpy(error, ctx->errstr, error_size);
		return -1;
	}

	rc = (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0 && reply->element[0]->type == REDIS_REPLY_STRING &&
			 strcmp(reply->element[0]->str, "master") == 0)
		? 0
		: -1;

	if (rc != 0) {
		g_strlcpy(error, "not a primary (a failover is under way)", error_size);
	}

	freeReplyObject(reply);

	return rc;
}


redisContext *janus_telehealth_redis_connect(janus_telehealth_redis *redis) {
	gint64 now;
	char primary[128], error[256];
	const char *address;
	redisContext *ctx;
	struct timeval connect_tv, command_tv;

	if (redis->ctx != NULL) {
		return redis->ctx;
	}

	now = janus_get_monotonic_time();
	if (redis->last_failure != 0 && now - redis->last_failure < JANUS_TELEHEALTH_REDIS_RETRY_US) {
		return NULL;
	}

	connect_tv.tv_sec = janus_telehealth_cfg.redis_connect_timeout_ms / 1000;
	connect_tv.tv_usec = (janus_telehealth_cfg.redis_connect_timeout_ms % 1000) * 1000;
	command_tv.tv_sec = janus_telehealth_cfg.redis_command_timeout_ms / 1000;
	command_tv.tv_usec = (janus_telehealth_cfg.redis_command_timeout_ms % 1000) * 1000;

	ctx = NULL;
	address = janus_telehealth_cfg.redis_address;

	if (janus_telehealth_cfg.redis_master != NULL) {
		address = primary;

		if (janus_telehealth_redis_ask_sentinels(primary, sizeof(primary), connect_tv, error, sizeof(error))) {
			address = janus_telehealth_cfg.redis_master;
			goto failed;
		}
	}

	ctx = janus_telehealth_redis_open(address, connect_tv);

	if (ctx == NULL || ctx->err || redisSetTimeout(ctx, command_tv) != REDIS_OK) {
		g_strlcpy(error, ctx != NULL ? ctx->errstr : "out of memory", sizeof(error));
		goto failed;
	}

	if (janus_telehealth_redis_handshake(ctx, error, sizeof(error)) != 0) {
		goto failed;
	}

	if (ctx->connection_type == REDIS_CONN_TCP) {
		/* Notices a peer that vanished without closing the connection. */
		(void)redisEnableKeepAlive(ctx);
	}

	if (redis->logged_down) {
		JANUS_LOG(LOG_INFO,
			"[telehealth] %s: connected to Redis at %s "
			"again\n",
			redis->name, address);
	}

	redis->logged_down = FALSE;
	redis->last_failure = 0;
	redis->ctx = ctx;

	return ctx;

failed:

	if (!redis->logged_down) {
		JANUS_LOG(LOG_ERR,
			"[telehealth] %s: cannot connect to Redis at "
			"%s: %s\n",
			redis->name, address, error);
		redis->logged_down = TRUE;
	}

	if (ctx != NULL) {
		redisFree(ctx);
	}

	redis->last_failure = janus_get_monotonic_time();
	return NULL;
}


/*
 * A primary demoted by a failover answers writes with READONLY: that is
 * Redis being away for this connection, which is made again.
 */
static gboolean janus_telehealth_redis_readonly(janus_telehealth_redis *redis, redisReply *reply) {
	if (reply->type != REDIS_REPLY_ERROR || strncmp(reply->str, "READONLY", 8) != 0) {
		return FALSE;
	}

	JANUS_LOG(LOG_WARN, "[telehealth] %s: Redis is no longer the primary\n", redis->name);
	freeReplyObject(reply);
	redisFree(redis->ctx);
	redis->ctx = NULL;
	redis->last_failure = 0;

	return TRUE;
}


void janus_telehealth_redis_drop(janus_telehealth_redis *redis) {
	if (redis->ctx == NULL) {
		return;
	}

	if (!redis->logged_down) {
		JANUS_LOG(LOG_WARN, "[telehealth] %s: Redis connection lost: %s\n", redis->name,
			redis->ctx->errstr[0] != '\0' ? redis->ctx->errstr : "unknown error");
		redis->logged_down = TRUE;
	}

	redisFree(redis->ctx);
	redis->ctx = NULL;
}


redisReply *janus_telehealth_redis_argv(
	janus_telehealth_redis *redis, int argc, const char **argv, const size_t *argvlen) {
	int attempt;
	redisReply *reply;
	redisContext *ctx;

	/*
     * A connection idle since before a Redis restart fails on first use;
     * one retry on a fresh connection hides that.  A command may then run
     * twice if only its reply was lost: every command here is idempotent
     * except XADD, and event consumers tolerate a duplicate.
     */
	for (attempt = 0; attempt < 2; attempt++) {
		ctx = janus_telehealth_redis_connect(redis);
		if (ctx == NULL) {
			return NULL;
		}

		reply = redisCommandArgv(ctx, argc, argv, argvlen);
		if (reply != NULL) {
			if (janus_telehealth_redis_readonly(redis, reply)) {
				continue;
			}
			return reply;
		}

		janus_telehealth_redis_drop(redis);
		/* Reconnect at once for the retry. */
		redis->last_failure = 0;
	}

	return NULL;
}


redisReply *janus_telehealth_redis_command(janus_telehealth_redis *redis, const char *format, ...) {
	int attempt;
	va_list ap;
	redisReply *reply;
	redisContext *ctx;

	for (attempt = 0; attempt < 2; attempt++) {
		ctx = janus_telehealth_redis_connect(redis);
		if (ctx == NULL) {
			return NULL;
		}

		va_start(ap, format);
		reply = redisvCommand(ctx, format, ap);
		va_end(ap);

		if (reply != NULL) {
			if (janus_telehealth_redis_readonly(redis, reply)) {
				continue;
			}
			return reply;
		}

		janus_telehealth_redis_drop(redis);
		redis->last_failure = 0;
	}

	return NULL;
}


char *janus_telehealth_redis_key(const char *format, const char *id) {
	return g_strdup_printf(format, janus_telehealth_cfg.redis_prefix, id);
}


/*
 * A key format split around its id, for scripts that make keys of ids
 * they find (patient locks of members): *head id *tail.  g_free both.
 */
static void janus_telehealth_redis_key_parts(const char *format, char **head, char **tail) {
	char *key, *mark;

	key = janus_telehealth_redis_key(format, "\x01");
	mark = strchr(key, '\x01');
	*tail = g_strdup(mark + 1);
	*mark = '\0';
	*head = key;
}


static gboolean janus_telehealth_reply_ok(janus_telehealth_redis *redis, redisReply *reply, const char *what) {
	if (reply == NULL) {
		janus_telehealth_metrics_redis_error();
		return FALSE;
	}

	if (reply->type == REDIS_REPLY_ERROR) {
		JANUS_LOG(LOG_ERR, "[telehealth] %s: Redis refused %s: %s\n", redis->name, what, reply->str);
		janus_telehealth_metrics_redis_error();
		return FALSE;
	}

	return TRUE;
}


/* A command whose answer only says whether it worked: 0 or -1, the reply freed. */
static int janus_telehealth_reply_done(janus_telehealth_redis *redis, redisReply *reply, const char *what) {
	int rc;

	rc = janus_telehealth_reply_ok(redis, reply, what) ? 0 : -1;
	if (reply != NULL) {
		freeReplyObject(reply);
	}

	return rc;
}


void janus_telehealth_room_info_clear(janus_telehealth_room_info *info) {
	g_free(info->kind);
	g_free(info->org_id);
	g_free(info->patient_id);
	g_free(info->leave_policy);
	g_free(info->role);
	json_decref(info->stale_members);
	memset(info, 0, sizeof(*info));
}


static char *janus_telehealth_reply_strdup(redisReply *reply) {
	if (reply->type != REDIS_REPLY_STRING || reply->len == 0) {
		return NULL;
	}

	return g_strndup(reply->str, reply->len);
}


/* The room's "bitrate" field: bps, 0 (the configured default) if absent
 * or not a plain number. */
/* A room hash field in seconds: the value, or -1 when absent or not a
 * plain number (the setting's default applies). */
static int janus_telehealth_reply_seconds(redisReply *reply) {
	char *end;
	guint64 n;

	if (reply->type != REDIS_REPLY_STRING || reply->len == 0) {
		return -1;
	}

	n = g_ascii_strtoull(reply->str, &end, 10);
	if (*end != '\0' || n > G_MAXINT) {
		return -1;
	}

	return (int)n;
}


static guint32 janus_telehealth_reply_bitrate(redisReply *reply) {
	char *end;
	guint64 n;

	if (reply->type != REDIS_REPLY_STRING || reply->len == 0) {
		return 0;
	}

	n = g_ascii_strtoull(reply->str, &end, 10);
	if (*end != '\0' || n > 100000000) {
		return 0;
	}

	return (guint32)n;
}


janus_telehealth_join_status janus_telehealth_redis_join(janus_telehealth_redis *redis,
	const janus_telehealth_join *join, const char *member_json, gboolean hosted, gboolean admitted,
	janus_telehealth_room_info *info) {
	char *revoked_key, *room_key, *members_key;
	char *banned_key, *roles_key, *lock_head;
	char *lock_tail;
	char *node_prefix, now_ms[32], max[16];
	char iat[32];
	char *end;
	size_t i;
	redisReply *reply, *status, *stale;
	janus_telehealth_join_status rc;

	memset(info, 0, sizeof(*info));

	revoked_key = janus_telehealth_redis_key(TH_KEY_REVOKED, join->jti);
	room_key = janus_telehealth_redis_key(TH_KEY_ROOM, join->room_id);
	members_key = janus_telehealth_redis_key(TH_KEY_ROOM_MEMBERS, join->room_id);
	banned_key = janus_telehealth_redis_key(TH_KEY_SESSION_BANNED, join->session_id);
	roles_key = janus_telehealth_redis_key(TH_KEY_SESSION_ROLES, join->session_id);
	node_prefix = janus_telehealth_redis_key(TH_KEY_NODE, "");
	janus_telehealth_redis_key_parts(TH_KEY_PATIENT_LOCK, &lock_head, &lock_tail);
	g_snprintf(now_ms, sizeof(now_ms), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);
	g_snprintf(max, sizeof(max), "%d", janus_telehealth_cfg.max_participants);

	g_snprintf(iat, sizeof(iat), "%" G_GINT64_FORMAT, join->iat);

	reply = janus_telehealth_redis_command(redis,
		"EVAL %s 5 %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %s %b %s %s %s"
		" %s %s",
		th_lua_join, revoked_key, room_key, members_key, banned_key, roles_key, janus_telehealth_cfg.node_id,
		node_prefix, now_ms, join->session_id, join->participant_id, member_json, lock_head, max, join->role, iat,
		join->unlisted ? "1" : "0", join->kind != NULL ? join->kind : "",
		join->kind != NULL ? strlen(join->kind) : (size_t)0, join->room_id, lock_tail, hosted ? "1" : "0",
		admitted ? "1" : "0", janus_telehealth_draining() ? "1" : "0");

	g_free(revoked_key);
	g_free(room_key);
	g_free(members_key);
	g_free(banned_key);
	g_free(roles_key);
	g_free(node_prefix);
	g_free(lock_head);
	g_free(lock_tail);

	if (!janus_telehealth_reply_ok(redis, reply, "join") || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
		reply->element[0]->type != REDIS_REPLY_STRING) {
		if (reply != NULL) {
			freeReplyObject(reply);
		}
		return JANUS_TELEHEALTH_JOIN_UNAVAILABLE;
	}

	status = reply->element[0];

	if (strcmp(status->str, "ok") == 0 && reply->elements == 14) {
		info->first_open = reply->element[1]->type == REDIS_REPLY_STRING && strcmp(reply->element[1]->str, "1") == 0;
		info->kind = janus_telehealth_reply_strdup(reply->element[2]);
		info->org_id = janus_telehealth_reply_strdup(reply->element[3]);
		info->patient_id = janus_telehealth_reply_strdup(reply->element[4]);
		info->bitrate = janus_telehealth_reply_bitrate(reply->element[6]);
		info->waiting = reply->element[7]->type == REDIS_REPLY_STRING && strcmp(reply->element[7]->str, "1") == 0;
		info->leave_policy = janus_telehealth_reply_strdup(reply->element[8]);
		if (reply->element[9]->type == REDIS_REPLY_STRING) {
			info->duration_limit = g_ascii_strtoll(reply->element[9]->str, &end, 10);
			if (*end != '\0' || info->duration_limit < 0) {
				info->duration_limit = 0;
			}
		}
		if (reply->element[10]->type == REDIS_REPLY_STRING) {
			info->opened_at_ms = g_ascii_strtoll(reply->element[10]->str, NULL, 10);
		}
		if (reply->element[11]->type == REDIS_REPLY_STRING) {
			info->max_participants = atoi(reply->element[11]->str);
		}
		info->role = janus_telehealth_reply_strdup(reply->element[12]);
		info->empty_timeout = janus_telehealth_reply_seconds(reply->element[13]);
		info->stale_members = json_array();

		stale = reply->element[5];
		for (i = 0; stale->type == REDIS_REPLY_ARRAY && i + 1 < stale->elements; i += 2) {
			json_t *member, *entry;

			member = json_loads(stale->element[i + 1]->str, 0, NULL);
			entry = json_object();
			json_object_set_new(entry, "id", json_string(stale->element[i]->str));
			if (json_is_string(json_object_get(member, "role"))) {
				json_object_set(entry, "role", json_object_get(member, "role"));
			}
			json_array_append_new(info->stale_members, entry);
			json_decref(member);
		}

		rc = JANUS_TELEHEALTH_JOIN_OK;

	} else if (strcmp(status->str, "revoked") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_REVOKED;

	} else if (strcmp(status->str, "no_room") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_NO_ROOM;

	} else if (strcmp(status->str, "closed") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_CLOSED;

	} else if (strcmp(status->str, "wrong_session") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_WRONG_SESSION;

	} else if (strcmp(status->str, "other_node") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_OTHER_NODE;

	} else if (strcmp(status->str, "draining") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_DRAINING;

	} else if (strcmp(status->str, "full") == 0) {
		if (reply->elements > 1 && reply->element[1]->type == REDIS_REPLY_STRING) {
			info->max_participants = atoi(reply->element[1]->str);
		}
		rc = JANUS_TELEHEALTH_JOIN_FULL;

	} else if (strcmp(status->str, "not_yet") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_NOT_YET;

	} else if (strcmp(status->str, "access") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_ACCESS;

	} else if (strcmp(status->str, "banned") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_BANNED;

	} else if (strcmp(status->str, "in_session") == 0) {
		rc = JANUS_TELEHEALTH_JOIN_IN_SESSION;

	} else {
		JANUS_LOG(LOG_ERR, "[telehealth] unexpected join script answer\n");
		rc = JANUS_TELEHEALTH_JOIN_UNAVAILABLE;
	}

	freeReplyObject(reply);

	return rc;
}


/* HSET of one field in the hash whose key is format with id; 0, or -1. */
static int janus_telehealth_redis_hset(janus_telehealth_redis *redis, const char *format, const char *id,
	const char *field, const char *value, const char *what) {
	char *key;
	redisReply *reply;

	key = janus_telehealth_redis_key(format, id);
	reply = janus_telehealth_redis_command(redis, "HSET %s %s %s", key, field, value);
	g_free(key);

	return janus_telehealth_reply_done(redis, reply, what);
}


int janus_telehealth_redis_member_set(
	janus_telehealth_redis *redis, const char *room_id, const char *participant_id, const char *json) {
	return janus_telehealth_redis_hset(redis, TH_KEY_ROOM_MEMBERS, room_id, participant_id, json, "HSET member");
}


int janus_telehealth_redis_member_update(
	janus_telehealth_redis *redis, const char *room_id, const char *participant_id, const char *json) {
	char *key;
	redisReply *reply;

	key = janus_telehealth_redis_key(TH_KEY_ROOM_MEMBERS, room_id);
	reply =
		janus_telehealth_redis_command(redis, "EVAL %s 1 %s %s %s", th_lua_member_update, key, participant_id, json);
	g_free(key);

	return janus_telehealth_reply_done(redis, reply, "member update");
}


int janus_telehealth_redis_member_out(janus_telehealth_redis *redis, const char *room_id, const char *session_id,
	const char *participant_id, gboolean release_lock, gboolean ban) {
	char *room_key, *members_key, *lock_key, *banned_key;
	char now_ms[32];
	redisReply *reply;

	room_key = janus_telehealth_redis_key(TH_KEY_ROOM, room_id);
	members_key = janus_telehealth_redis_key(TH_KEY_ROOM_MEMBERS, room_id);
	lock_key = release_lock && g_str_has_prefix(participant_id, "patient:")
		? janus_telehealth_redis_key(TH_KEY_PATIENT_LOCK, participant_id + 8)
		: g_strdup("");
	banned_key = ban ? janus_telehealth_redis_key(TH_KEY_SESSION_BANNED, session_id) : g_strdup("");
	g_snprintf(now_ms, sizeof(now_ms), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);

	reply = janus_telehealth_redis_command(redis, "EVAL %s 4 %s %s %b %b %s %s %s %s", th_lua_member_out, room_key,
		members_key, lock_key, strlen(lock_key), banned_key, strlen(banned_key), participant_id, room_id, now_ms,
		janus_telehealth_cfg.node_id);

	g_free(room_key);
	g_free(members_key);
	g_free(lock_key);
	g_free(banned_key);

	return janus_telehealth_reply_done(redis, reply, "member out");
}


int janus_telehealth_redis_role_set(
	janus_telehealth_redis *redis, const char *session_id, const char *participant_id, const char *role) {
	return janus_telehealth_redis_hset(redis, TH_KEY_SESSION_ROLES, session_id, participant_id, role, "HSET role");
}


int janus_telehealth_redis_close(
	janus_telehealth_redis *redis, const char *room_id, const char *patient_id, const char *reason) {
	int rc;
	char *room_key, *members_key, *lock_key, *lock_head, *lock_tail;
	char ttl[16], now_ms[32];
	redisReply *reply;

	room_key = janus_telehealth_redis_key(TH_KEY_ROOM, room_id);
	members_key = janus_telehealth_redis_key(TH_KEY_ROOM_MEMBERS, room_id);
	lock_key = patient_id != NULL ? janus_telehealth_redis_key(TH_KEY_PATIENT_LOCK, patient_id) : g_strdup("");
	janus_telehealth_redis_key_parts(TH_KEY_PATIENT_LOCK, &lock_head, &lock_tail);
	g_snprintf(ttl, sizeof(ttl), "%d", janus_telehealth_cfg.closed_room_ttl);
	g_snprintf(now_ms, sizeof(now_ms), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);

	reply = janus_telehealth_redis_command(redis, "EVAL %s 3 %s %s %b %s %s %s %s %s %s", th_lua_close, room_key,
		members_key, lock_key, strlen(lock_key), room_id, ttl, now_ms, reason, lock_head, lock_tail);

	g_free(room_key);
	g_free(members_key);
	g_free(lock_key);
	g_free(lock_head);
	g_free(lock_tail);

	if (!janus_telehealth_reply_ok(redis, reply, "close") || reply->type != REDIS_REPLY_INTEGER) {
		if (reply != NULL) {
			freeReplyObject(reply);
		}
		return -1;
	}

	rc = reply->integer == 1 ? 1 : 0;
	freeReplyObject(reply);

	return rc;
}


/* Why a room closed, as one of TH_CLOSE_*; "command" when unknown. */
static const char *janus_telehealth_close_reason_of(redisReply *reply) {
	size_t i;
	static const char *known[] = {TH_CLOSE_CHAIR_LEFT, TH_CLOSE_CLOSED_BY_CHAIR, TH_CLOSE_COMMAND, TH_CLOSE_EXPIRED,
		TH_CLOSE_CAREGIVER_HUNG_UP, TH_CLOSE_DURATION_LIMIT, TH_CLOSE_NODE_LOST};

	for (i = 0; reply->type == REDIS_REPLY_STRING && i < G_N_ELEMENTS(known); i++) {
		if (strcmp(reply->str, known[i]) == 0) {
			return known[i];
		}
	}

	return TH_CLOSE_COMMAND;
}


janus_telehealth_refresh_status janus_telehealth_redis_refresh(
	janus_telehealth_redis *redis, const char *room_id, int *empty_timeout, const char **closed_reason) {
	char *room_key, now_ms[32];
	const char *status;
	redisReply *reply;
	janus_telehealth_refresh_status rc;

	room_key = janus_telehealth_redis_key(TH_KEY_ROOM, room_id);
	g_snprintf(now_ms, sizeof(now_ms), "%" G_GINT64_FORMAT, g_get_real_time() / 1000);

	reply = janus_telehealth_redis_command(
		redis, "EVAL %s 1 %s %s %s", th_lua_refresh, room_key, janus_telehealth_cfg.node_id, now_ms);

	g_free(room_key);

	if (!janus_telehealth_reply_ok(redis, reply, "refresh") || reply->type != REDIS_REPLY_ARRAY ||
		reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING) {
		if (reply != NULL) {
			freeReplyObject(reply);
		}
		return JANUS_TELEHEALTH_REFRESH_UNAVAILABLE;
	}

	status = reply->element[0]->str;

	if (strcmp(status, "ok") == 0 && reply->elements == 2) {
		*empty_timeout = janus_telehealth_reply_seconds(reply->element[1]);
		rc = JANUS_TELEHEALTH_REFRESH_OK;

	} else if (strcmp(status, "gone") == 0) {
		rc = JANUS_TELEHEALTH_REFRESH_GONE;

	} else if (strcmp(status, "closed") == 0) {
		*closed_reason = reply->elements == 2 ? janus_telehealth_close_reason_of(reply->element[1]) : TH_CLOSE_COMMAND;
		rc = JANUS_TELEHEALTH_REFRESH_CLOSED;

	} else if (strcmp(status, "moved") == 0) {
		rc = JANUS_TELEHEALTH_REFRESH_MOVED;

	} else {
		rc = JANUS_TELEHEALTH_REFRESH_UNAVAILABLE;
	}

	freeReplyObject(reply);

	return rc;
}


int janus_telehealth_redis_heartbeat(
	janus_telehealth_redis *redis, gint64 started_ms, const janus_telehealth_load *load) {
	int rc;
	char *key, *nodes_key, *drain_key;
	guint i;
	size_t *argvlen;
	GPtrArray *argv;
	redisReply *reply;

	key = janus_telehealth_redis_key(TH_KEY_NODE, janus_telehealth_cfg.node_id);

	argv = g_ptr_array_new_with_free_func(g_free);
	g_ptr_array_add(argv, g_strdup("HSET"));
	g_ptr_array_add(argv, g_strdup(key));
	g_ptr_array_add(argv, g_strdup("started_at"));
	g_ptr_array_add(argv, g_strdup_printf("%" G_GINT64_FORMAT, started_ms));
	g_ptr_array_add(argv, g_strdup("heartbeat_at"));
	g_ptr_array_add(argv, g_strdup_printf("%" G_GINT64_FORMAT, g_get_real_time() / 1000));
	g_ptr_array_add(argv, g_strdup("version"));
	g_ptr_array_add(argv, g_strdup(JANUS_TELEHEALTH_VERSION_STRING));
	janus_telehealth_metrics_fields(load, janus_telehealth_draining(), argv);

	argvlen = g_new(size_t, argv->len);
	for (i = 0; i < argv->len; i++) {
		argvlen[i] = strlen(g_ptr_array_index(argv, i));
	}

	reply = janus_telehealth_redis_argv(redis, (int)argv->len, (const char **)argv->pdata, argvlen);
	g_free(argvlen);
	g_ptr_array_free(argv, TRUE);

	rc = janus_telehealth_reply_ok(redis, reply, "heartbeat") ? 0 : -1;
	if (reply != NULL) {
		freeReplyObject(reply);
	}

	if (rc == 0) {
		/* Three missed heartbeats and the node counts as dead. */
		reply = janus_telehealth_redis_command(redis, "EXPIRE %s %d", key, 3 * janus_telehealth_cfg.refresh_interval);
		rc = janus_telehealth_reply_ok(redis, reply, "EXPIRE node") ? 0 : -1;
		if (reply != NULL) {
			freeReplyObject(reply);
		}
	}

	g_free(key);

	if (rc != 0) {
		return rc;
	}

	/* The registry nginx places rooms from, and our drain mark. */
	nodes_key = janus_telehealth_redis_key(TH_KEY_NODES, "");
	reply = janus_telehealth_redis_command(redis, "SADD %s %s", nodes_key, janus_telehealth_cfg.node_id);
	g_free(nodes_key);
	if (!janus_telehealth_reply_ok(redis, reply, "SADD nodes")) {
		rc = -1;
	}
	if (reply != NULL) {
		freeReplyObject(reply);
	}

	drain_key = janus_telehealth_redis_key(TH_KEY_NODE_DRAIN, janus_telehealth_cfg.node_id);
	reply = janus_telehealth_redis_command(redis, "EXISTS %s", drain_key);
	g_free(drain_key);
	if (janus_telehealth_reply_ok(redis, reply, "EXISTS drain") && reply->type == REDIS_REPLY_INTEGER) {
		if ((reply->integer == 1) != janus_telehealth_draining() && !janus_telehealth_cfg.draining) {
			JANUS_LOG(LOG_INFO, "[telehealth] node %s %s\n", janus_telehealth_cfg.node_id,
				reply->integer == 1 ? "drains: no new rooms" : "takes new rooms again");
		}
		janus_telehealth_draining_set(reply->integer == 1);
	}
	if (reply != NULL) {
		freeReplyObject(reply);
	}

	return rc;
}


void janus_telehealth_redis_heartbeat_delete(janus_telehealth_redis *redis) {
	char *key;
	redisReply *reply;

	key = janus_telehealth_redis_key(TH_KEY_NODE, janus_telehealth_cfg.node_id);
	reply = janus_telehealth_redis_command(redis, "DEL %s", key);
	g_free(key);

	if (reply != NULL) {
		freeReplyObject(reply);
	}
}


int janus_telehealth_redis_room_for_close(
	janus_telehealth_redis *redis, const char *room_id, char **session_id, janus_telehealth_room_info *info) {
	int rc;
	char *key;
	redisReply *reply;

	memset(info, 0, sizeof(*info));
	*session_id = NULL;

	key = janus_telehealth_redis_key(TH_KEY_ROOM, room_id);
	reply = janus_telehealth_redis_command(redis, "HMGET %s state node session kind org patient", key);
	g_free(key);

	if (!janus_telehealth_reply_ok(redis, reply, "HMGET room") || reply->type != REDIS_REPLY_ARRAY ||
		reply->elements != 6) {
		if (reply != NULL) {
			freeReplyObject(reply);
		}
		return -1;
	}

	rc = 0;

	if (reply->element[0]->type == REDIS_REPLY_STRING && strcmp(reply->element[0]->str, TH_ROOM_OPEN) == 0 &&
		(reply->element[1]->type != REDIS_REPLY_STRING || reply->element[1]->len == 0 ||
			strcmp(reply->element[1]->str, janus_telehealth_cfg.node_id) == 0)) {
		*session_id = janus_telehealth_reply_strdup(reply->element[2]);
		info->kind = janus_telehealth_reply_strdup(reply->element[3]);
		info->org_id = janus_telehealth_reply_strdup(reply->element[4]);
		info->patient_id = janus_telehealth_reply_strdup(reply->element[5]);
		rc = 1;
	}

	freeReplyObject(reply);

	return rc;
}


int janus_telehealth_redis_revoke(janus_telehealth_redis *redis, const char *jti, int ttl) {
	char *key;
	redisReply *reply;

	key = janus_telehealth_redis_key(TH_KEY_REVOKED, jti);
	reply = janus_telehealth_redis_command(redis, "SET %s 1 EX %d", key, ttl > 0 ? ttl : 60);
	g_free(key);

	return janus_telehealth_reply_done(redis, reply, "SET revoked");
}
