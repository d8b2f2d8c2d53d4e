/*
 * Who receives a room's media (docs/plugin.md, "subscribe").
 *
 * Receiving is bound to a participant's own joined, admitted handle: that
 * handle asks for a one-time subscription token (subscribe_token) and the
 * subscriber handle spends it.  A join credential alone opens nothing, so
 * a replayed credential cannot make a listener: it could only join, which
 * replaces the participant's handle in everyone's participants list.  The
 * credential the participant joined with must still not be revoked, a
 * participant holds at most max_subscriptions subscriptions, and chairs
 * see every subscription (receivers in "list" and the receivers event).
 *
 * Tokens live in memory only, in the participant (room mutex), and are
 * spent on the handler thread, which is the only thread that issues them.
 */

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>

#include <debug.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"
#include "janus_telehealth_redis.h"


#define JANUS_TELEHEALTH_TOKEN_BYTES 32


/* "<room>.<43 characters of base64url>": the room finds the participant. */
static char *janus_telehealth_receivers_new_token(const char *room_id) {
	char *b64, *token, *c;
	unsigned char random[JANUS_TELEHEALTH_TOKEN_BYTES];

	if (RAND_bytes(random, sizeof(random)) != 1) {
		return NULL;
	}

	b64 = g_base64_encode(random, sizeof(random));
	for (c = b64; *c != '\0'; c++) {
		if (*c == '+') {
			*c = '-';

		} else if (*c == '/') {
			*c = '_';

		} else if (*c == '=') {
			*c = '\0';
			break;
		}
	}

	token = g_strdup_printf("%s.%s", room_id, b64);
	OPENSSL_cleanse(random, sizeof(random));
	g_free(b64);

	return token;
}


int janus_telehealth_receivers_token(
	janus_telehealth_session *session, const char *transaction, char *error, size_t error_size) {
	char *token;
	json_t *event;
	gboolean waiting;
	janus_telehealth_room *room;
	janus_telehealth_participant *p;

	p = janus_telehealth_session_participant(session);
	if (p == NULL) {
		g_snprintf(error, error_size, "Not in a room");
		return JANUS_TELEHEALTH_ERROR_NOT_JOINED;
	}

	room = p->room;
	token = janus_telehealth_receivers_new_token(room->id);
	if (token == NULL) {
		janus_telehealth_participant_release(p);
		g_snprintf(error, error_size, "No random bytes for a token");
		return JANUS_TELEHEALTH_ERROR_UNKNOWN_ERROR;
	}

	/* A new token replaces one not spent yet. */
	janus_mutex_lock(&room->mutex);
	waiting = p->waiting;
	if (!waiting) {
		g_free(p->subscribe_token);
		p->subscribe_token = g_strdup(token);
	}
	janus_mutex_unlock(&room->mutex);

	if (waiting) {
		janus_telehealth_participant_release(p);
		g_free(token);
		g_snprintf(error, error_size,
			"Please wait: a chair has not "
			"admitted you yet");
		return JANUS_TELEHEALTH_ERROR_WAITING;
	}

	event = json_pack("{s:s, s:s, s:s}", "telehealth", "subscribe_token", "room", room->id, "token", token);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);

	janus_telehealth_participant_release(p);
	g_free(token);

	return 0;
}


/* The participant whose unspent token this is, with a reference; the
 * token is spent.  Called with room->mutex held. */
static janus_telehealth_participant *janus_telehealth_receivers_spend(janus_telehealth_room *room, const char *token) {
	size_t len;
	GHashTableIter iter;
	janus_telehealth_participant *p;

	len = strlen(token);

	g_hash_table_iter_init(&iter, room->participants);
	while (g_hash_table_iter_next(&iter, NULL, (gpointer *)&p)) {
		if (p->subscribe_token == NULL || strlen(p->subscribe_token) != len ||
			CRYPTO_memcmp(p->subscribe_token, token, len) != 0) {
			continue;
		}

		g_free(p->subscribe_token);
		p->subscribe_token = NULL;
		janus_refcount_increase(&p->ref);

		return p;
	}

	return NULL;
}


/* Subscriptions of one participant here.  Called with room->mutex held. */
static int janus_telehealth_receivers_count(janus_telehealth_room *room, const char *participant_id) {
	int n;
	GList *l;
	janus_telehealth_subscriber *sub;

	n = 0;
	for (l = room->subscribers; l != NULL; l = l->next) {
		sub = l->data;
		if (strcmp(sub->participant_id, participant_id) == 0) {
			n++;
		}
	}

	return n;
}


/* A subscribe waiting for the revocation check (a join worker's). */
typedef struct janus_telehealth_subscribe_job {
	janus_telehealth_session *session; /* reference */
	janus_telehealth_room *room; /* reference */
	char *participant_id;
	char *jti;
	char *transaction;
	int revoked; /* 1: revoked, 0: not, -1: Redis failed */
} janus_telehealth_subscribe_job;


/* A join worker: is the credential revoked? */
static void janus_telehealth_receivers_revoked(janus_telehealth_redis *redis, void *data) {
	char *key;
	redisReply *reply;
	janus_telehealth_subscribe_job *job = data;

	key = janus_telehealth_redis_key(TH_KEY_REVOKED, job->jti);
	reply = janus_telehealth_redis_command(redis, "EXISTS %s", key);
	g_free(key);

	if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
		job->revoked = -1;

	} else {
		job->revoked = reply->integer > 0 ? 1 : 0;
	}

	if (reply != NULL) {
		freeReplyObject(reply);
	}
}


/* The handler thread: subscribes (the media side checks the state again). */
static void janus_telehealth_receivers_checked(void *data) {
	int rc;
	char error[512];
	janus_telehealth_subscribe_job *job = data;

	error[0] = '\0';
	rc = 0;

	if (job->revoked == 1) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] subscribe of %s in room %s "
			"refused: credential revoked\n",
			job->participant_id, job->room->id);
		g_snprintf(error, sizeof(error), "Join credential revoked");
		rc = JANUS_TELEHEALTH_ERROR_CREDENTIAL_REVOKED;

	} else if (job->revoked < 0) {
		g_snprintf(error, sizeof(error), "Redis unavailable, try again");
		rc = JANUS_TELEHEALTH_ERROR_REDIS_UNAVAILABLE;
	}

	if (!g_atomic_int_get(&job->session->destroyed)) {
		if (rc == 0) {
			rc = janus_telehealth_media_subscribe(
				job->session, job->room, job->participant_id, job->transaction, error, sizeof(error));
		}

		if (rc == 0) {
			janus_telehealth_receivers_changed(job->room);

		} else if (rc != JANUS_TELEHEALTH_ANSWER_LATER) {
			janus_telehealth_push_error(job->session, job->transaction, rc, error);
		}
	}

	janus_refcount_decrease(&job->session->ref);
	janus_telehealth_room_unref(job->room);
	g_free(job->participant_id);
	g_free(job->jti);
	g_free(job->transaction);
	g_free(job);
}


int janus_telehealth_receivers_subscribe(
	janus_telehealth_session *session, json_t *root, const char *transaction, char *error, size_t error_size) {
	int rc, count;
	char *room_id;
	gboolean busy, joined, waiting;
	const char *token, *dot;
	janus_telehealth_room *room;
	janus_telehealth_subscribe_job *job;
	janus_telehealth_participant *p;

	token = json_string_value(json_object_get(root, "token"));
	if (token == NULL || token[0] == '\0') {
		/* A join credential (however valid) does not open a subscription:
         * only the joined handle's token does. */
		g_snprintf(error, error_size,
			"Subscribing needs the token of your "
			"joined handle (request subscribe_token)");
		return JANUS_TELEHEALTH_ERROR_SUBSCRIPTION_REFUSED;
	}

	janus_mutex_lock(&session->mutex);
	busy = session->participant != NULL || session->feed != NULL || session->subscriber != NULL;
	janus_mutex_unlock(&session->mutex);

	if (busy) {
		g_snprintf(error, error_size,
			"This handle is already in a room or "
			"subscribed: subscribe from a handle of its own");
		return JANUS_TELEHEALTH_ERROR_WRONG_STATE;
	}

	dot = strrchr(token, '.');
	room_id = dot != NULL ? g_strndup(token, dot - token) : NULL;
	room = janus_telehealth_id_valid(room_id, FALSE) ? janus_telehealth_room_find(room_id) : NULL;
	g_free(room_id);

	p = NULL;
	count = 0;
	joined = FALSE;
	waiting = FALSE;

	if (room != NULL) {
		janus_mutex_lock(&room->mutex);
		p = janus_telehealth_receivers_spend(room, token);
		if (p != NULL) {
			joined = p->session != NULL && p->session != session && !g_atomic_int_get(&room->closed);
			waiting = p->waiting;
			count = janus_telehealth_receivers_count(room, p->id);
		}
		janus_mutex_unlock(&room->mutex);
	}

	if (p == NULL || !joined) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] subscribe refused: unknown or "
			"spent subscription token\n");
		if (p != NULL) {
			janus_telehealth_participant_release(p);
		}
		if (room != NULL) {
			janus_telehealth_room_unref(room);
		}
		g_snprintf(error, error_size,
			"Subscription token refused: unknown, "
			"spent or replaced");
		return JANUS_TELEHEALTH_ERROR_SUBSCRIPTION_REFUSED;
	}

	rc = 0;

	if (waiting) {
		g_snprintf(error, error_size,
			"Please wait: a chair has not "
			"admitted you yet");
		rc = JANUS_TELEHEALTH_ERROR_WAITING;

	} else if (count >= janus_telehealth_cfg.max_subscriptions) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] subscribe of %s in room %s "
			"refused: %d subscriptions already\n",
			p->id, room->id, count);
		g_snprintf(error, error_size,
			"At most %d subscriptions per "
			"participant",
			janus_telehealth_cfg.max_subscriptions);
		rc = JANUS_TELEHEALTH_ERROR_SUBSCRIPTION_LIMIT;

	} else if (p->jti != NULL) {
		/* Revoked?  Asked off this thread, in the room's order. */
		job = g_malloc0(sizeof(janus_telehealth_subscribe_job));
		janus_refcount_increase(&session->ref);
		job->session = session;
		janus_refcount_increase(&room->ref);
		job->room = room;
		job->participant_id = g_strdup(p->id);
		job->jti = g_strdup(p->jti);
		job->transaction = g_strdup(transaction);
		janus_telehealth_room_redis(
			room->id, janus_telehealth_receivers_revoked, janus_telehealth_receivers_checked, job);
		rc = JANUS_TELEHEALTH_ANSWER_LATER;
	}

	if (rc == 0) {
		rc = janus_telehealth_media_subscribe(session, room, p->id, transaction, error, error_size);
	}

	if (rc == 0) {
		janus_telehealth_receivers_changed(room);
	}

	janus_telehealth_participant_release(p);
	janus_telehealth_room_unref(room);

	return rc;
}


json_t *janus_telehealth_receivers_json(janus_telehealth_room *room) {
	GList *l;
	json_t *receivers;
	janus_telehealth_subscriber *sub;

	receivers = json_array();

	janus_mutex_lock(&room->mutex);
	for (l = room->subscribers; l != NULL; l = l->next) {
		sub = l->data;
		json_array_append_new(receivers, json_pack("{s:s}", "participant", sub->participant_id));
	}
	janus_mutex_unlock(&room->mutex);

	return receivers;
}


void janus_telehealth_receivers_changed(janus_telehealth_room *room) {
	json_t *event;

	if (g_atomic_int_get(&room->closed) || g_atomic_int_get(&janus_telehealth_stopping)) {
		return;
	}

	event = json_pack("{s:s, s:s, s:o}", "telehealth", "receivers", "room", room->id, "receivers",
		janus_telehealth_receivers_json(room));
	janus_telehealth_room_push_chairs(room, event);
	json_decref(event);
}
