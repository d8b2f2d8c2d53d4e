/*
 * janus.plugin.telehealth: plugin glue.
 *
 * The live room of a telehealth session.  People join with a join
 * credential issued by the nginx module (HS256 JWT, aud
 * "janus.plugin.telehealth"); the room itself is opened by the nginx
 * module as a Redis hash, and this plugin hosts it while people are in
 * it: members, roles, the participants list, closing, and keeping the
 * patient lock alive.  The protocol is documented in docs/plugin.md.
 *
 * This file: the janus_plugin callbacks, sessions, the message queue and
 * its handler thread, request parsing and answers; the configuration is
 * read in janus_telehealth_config.c.
 */

#include <string.h>
#include <strings.h>

#include <apierror.h>
#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_media.h"
#include "janus_telehealth_metrics.h"
#include "janus_telehealth_redis.h"


/* Plugin methods */
janus_plugin *create(void);
static int janus_telehealth_init(janus_callbacks *callback, const char *config_path);
static void janus_telehealth_destroy(void);
static int janus_telehealth_get_api_compatibility(void);
static int janus_telehealth_get_version(void);
static const char *janus_telehealth_get_version_string(void);
static const char *janus_telehealth_get_description(void);
static const char *janus_telehealth_get_name(void);
static const char *janus_telehealth_get_author(void);
static const char *janus_telehealth_get_package(void);
static void janus_telehealth_create_session(janus_plugin_session *handle, int *error);
static struct janus_plugin_result *janus_telehealth_handle_message(
	janus_plugin_session *handle, char *transaction, json_t *message, json_t *jsep);
static void janus_telehealth_destroy_session(janus_plugin_session *handle, int *error);
static json_t *janus_telehealth_query_session(janus_plugin_session *handle);

/*
 * JANUS_PLUGIN_INIT sets every callback to NULL and lets the arguments
 * override them, which -Wextra (override-init) reports.
 */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Woverride-init"
janus_plugin janus_telehealth_plugin =
	JANUS_PLUGIN_INIT(.init = janus_telehealth_init, .destroy = janus_telehealth_destroy,

		.get_api_compatibility = janus_telehealth_get_api_compatibility, .get_version = janus_telehealth_get_version,
		.get_version_string = janus_telehealth_get_version_string, .get_description = janus_telehealth_get_description,
		.get_name = janus_telehealth_get_name, .get_author = janus_telehealth_get_author,
		.get_package = janus_telehealth_get_package,

		.create_session = janus_telehealth_create_session, .handle_message = janus_telehealth_handle_message,
		.setup_media = janus_telehealth_setup_media, .incoming_rtp = janus_telehealth_incoming_rtp,
		.incoming_rtcp = janus_telehealth_incoming_rtcp, .incoming_data = janus_telehealth_incoming_data,
		.data_ready = janus_telehealth_data_ready, .slow_link = janus_telehealth_slow_link,
		.hangup_media = janus_telehealth_hangup_media, .destroy_session = janus_telehealth_destroy_session,
		.query_session = janus_telehealth_query_session, );
#pragma GCC diagnostic pop

janus_plugin *create(void) {
	JANUS_LOG(LOG_VERB, "%s created!\n", JANUS_TELEHEALTH_NAME);
	return &janus_telehealth_plugin;
}


/* Request parameters */
static struct janus_json_parameter request_parameters[] = {{"request", JSON_STRING, JANUS_JSON_PARAM_REQUIRED}};
static struct janus_json_parameter join_parameters[] = {
	{"credential", JSON_STRING, JANUS_JSON_PARAM_REQUIRED | JANUS_JSON_PARAM_NONEMPTY},
	{"audio_only", JANUS_JSON_BOOL, 0}};
static struct janus_json_parameter subscribe_parameters[] = {{"token", JSON_STRING, 0}};
static struct janus_json_parameter publish_parameters[] = {{"descriptions", JSON_ARRAY, 0}};
static struct janus_json_parameter configure_parameters[] = {
	{"audio_muted", JANUS_JSON_BOOL, 0}, {"video_paused", JANUS_JSON_BOOL, 0}};


janus_callbacks *janus_telehealth_gateway = NULL;
volatile gint janus_telehealth_stopping = 0;
static volatile gint janus_telehealth_initialized = 0;

static GHashTable *janus_telehealth_sessions;
static janus_mutex janus_telehealth_sessions_mutex = JANUS_MUTEX_INITIALIZER;

static GThread *janus_telehealth_handler_thread;
static void *janus_telehealth_handler(void *data);

/* A request from a client, or work the plugin's own threads hand over. */
typedef struct janus_telehealth_message {
	int task; /* 0: client request */
	janus_telehealth_session *session; /* reference, or NULL */
	char *transaction;
	json_t *message;
	json_t *jsep;
	char *room_id;
	char *reason;
	janus_telehealth_join_job *job; /* TASK_JOINED */
} janus_telehealth_message;

/* The session's connection is gone: remove it from its room. */
#define JANUS_TELEHEALTH_TASK_HANGUP 100
/* The session's PeerConnection is gone: stop what it published or got. */
#define JANUS_TELEHEALTH_TASK_MEDIA_HANGUP 101

static GAsyncQueue *janus_telehealth_messages;
static janus_telehealth_message janus_telehealth_exit_message;

/* Redis connection of the handler thread. */
janus_telehealth_redis *janus_telehealth_handler_redis;


static void janus_telehealth_message_free(janus_telehealth_message *msg) {
	if (msg == NULL || msg == &janus_telehealth_exit_message) {
		return;
	}

	if (msg->session != NULL) {
		janus_refcount_decrease(&msg->session->ref);
	}

	g_free(msg->transaction);
	g_free(msg->room_id);
	g_free(msg->reason);
	janus_telehealth_join_job_free(msg->job);
	json_decref(msg->message);
	json_decref(msg->jsep);
	g_free(msg);
}


/* Sessions */

static void janus_telehealth_session_free(const janus_refcount *session_ref) {
	janus_telehealth_session *session;

	session = janus_refcount_containerof(session_ref, janus_telehealth_session, ref);

	/* The core gave us a reference to its handle in create_session. */
	janus_refcount_decrease(&session->handle->ref);
	janus_mutex_destroy(&session->mutex);
	g_free(session);
}


static void janus_telehealth_session_destroy(janus_telehealth_session *session) {
	if (session != NULL && g_atomic_int_compare_and_exchange(&session->destroyed, 0, 1)) {
		janus_refcount_decrease(&session->ref);
	}
}


void janus_telehealth_session_unref(janus_telehealth_session *session) {
	janus_refcount_decrease(&session->ref);
}


/* Called with the sessions mutex held. */
static janus_telehealth_session *janus_telehealth_lookup_session(janus_plugin_session *handle) {
	if (g_hash_table_contains(janus_telehealth_sessions, handle)) {
		return handle->plugin_handle;
	}

	return NULL;
}


void janus_telehealth_push(janus_telehealth_session *session, const char *transaction, json_t *event) {
	int rc;

	if (session == NULL || g_atomic_int_get(&session->destroyed) || session->handle == NULL ||
		g_atomic_int_get(&session->handle->stopped)) {
		return;
	}

	rc = janus_telehealth_gateway->push_event(session->handle, &janus_telehealth_plugin, transaction, event, NULL);
	if (rc != 0) {
		JANUS_LOG(LOG_VERB, "[telehealth] push_event failed: %d (%s)\n", rc, janus_get_api_error(rc));
	}
}


void janus_telehealth_push_jsep(
	janus_telehealth_session *session, const char *transaction, json_t *event, json_t *jsep) {
	int rc;

	if (jsep == NULL) {
		janus_telehealth_push(session, transaction, event);
		return;
	}

	if (session == NULL || g_atomic_int_get(&session->destroyed) || session->handle == NULL ||
		g_atomic_int_get(&session->handle->stopped)) {
		return;
	}

	rc = janus_telehealth_gateway->push_event(session->handle, &janus_telehealth_plugin, transaction, event, jsep);
	if (rc != 0) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] push_event with jsep failed: %d "
			"(%s)\n",
			rc, janus_get_api_error(rc));
	}
}


static json_t *janus_telehealth_error_event(int error_code, const char *error) {
	json_t *event;

	event = json_object();
	json_object_set_new(event, "telehealth", json_string("event"));
	json_object_set_new(event, "error_code", json_integer(error_code));
	json_object_set_new(event, "error", json_string(error));

	return event;
}


/* An error answered later, off the request's turn. */
void janus_telehealth_push_error(
	janus_telehealth_session *session, const char *transaction, int error_code, const char *error) {
	json_t *event;

	event = janus_telehealth_error_event(error_code, error);
	janus_telehealth_push(session, transaction, event);
	json_decref(event);
}


/* Plugin implementation */

static int janus_telehealth_init(janus_callbacks *callback, const char *config_path) {
	GError *error = NULL;

	if (g_atomic_int_get(&janus_telehealth_stopping)) {
		return -1;
	}

	if (callback == NULL || config_path == NULL) {
		return -1;
	}

	if (janus_telehealth_config_load(config_path) != 0) {
		janus_telehealth_config_clear();
		return -1;
	}

	janus_telehealth_gateway = callback;

	janus_telehealth_sessions =
		g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)janus_telehealth_session_destroy);
	janus_telehealth_messages = g_async_queue_new_full((GDestroyNotify)janus_telehealth_message_free);
	janus_telehealth_handler_redis = janus_telehealth_redis_new("handler");

	/* Events first: every other thread may emit. */
	if (janus_telehealth_events_start() != 0) {
		goto failed;
	}

	if (janus_telehealth_rooms_init() != 0) {
		janus_telehealth_events_stop();
		goto failed;
	}

	if (janus_telehealth_joins_init() != 0) {
		janus_telehealth_rooms_deinit();
		janus_telehealth_events_stop();
		goto failed;
	}

	g_atomic_int_set(&janus_telehealth_initialized, 1);

	janus_telehealth_handler_thread = g_thread_try_new("telehealth handler", janus_telehealth_handler, NULL, &error);
	if (error != NULL) {
		JANUS_LOG(LOG_FATAL,
			"[telehealth] cannot start the handler thread: "
			"%s\n",
			error->message);
		g_error_free(error);
		g_atomic_int_set(&janus_telehealth_initialized, 0);
		janus_telehealth_joins_deinit();
		janus_telehealth_rooms_deinit();
		janus_telehealth_events_stop();
		goto failed;
	}

	if (janus_telehealth_commands_start() != 0) {
		/* Rooms still work; only nginx's commands would go unheard. */
		JANUS_LOG(LOG_ERR, "[telehealth] commands from nginx disabled\n");
	}

	JANUS_LOG(LOG_INFO,
		"%s initialized: node %s, Redis %s, prefix \"%s\", "
		"%zu verification keys\n",
		JANUS_TELEHEALTH_NAME, janus_telehealth_cfg.node_id, janus_telehealth_cfg.redis_address,
		janus_telehealth_cfg.redis_prefix, janus_telehealth_cfg.keys.nkeys);

	return 0;

failed:

	janus_telehealth_redis_free(janus_telehealth_handler_redis);
	janus_telehealth_handler_redis = NULL;
	g_async_queue_unref(janus_telehealth_messages);
	janus_telehealth_messages = NULL;
	g_hash_table_destroy(janus_telehealth_sessions);
	janus_telehealth_sessions = NULL;
	janus_telehealth_config_clear();

	return -1;
}


static void janus_telehealth_destroy(void) {
	if (!g_atomic_int_get(&janus_telehealth_initialized)) {
		return;
	}

	g_atomic_int_set(&janus_telehealth_stopping, 1);

	g_async_queue_push(janus_telehealth_messages, &janus_telehealth_exit_message);
	if (janus_telehealth_handler_thread != NULL) {
		g_thread_join(janus_telehealth_handler_thread);
		janus_telehealth_handler_thread = NULL;
	}

	/* joins under way end; their answers wait in the queue, unread */
	janus_telehealth_joins_deinit();
	janus_telehealth_commands_stop();
	janus_telehealth_rooms_deinit();
	/* Last: the other threads' final events still get written. */
	janus_telehealth_events_stop();

	janus_mutex_lock(&janus_telehealth_sessions_mutex);
	g_hash_table_destroy(janus_telehealth_sessions);
	janus_telehealth_sessions = NULL;
	janus_mutex_unlock(&janus_telehealth_sessions_mutex);

	g_async_queue_unref(janus_telehealth_messages);
	janus_telehealth_messages = NULL;

	janus_telehealth_redis_free(janus_telehealth_handler_redis);
	janus_telehealth_handler_redis = NULL;
	janus_telehealth_config_clear();

	g_atomic_int_set(&janus_telehealth_initialized, 0);
	g_atomic_int_set(&janus_telehealth_stopping, 0);
	JANUS_LOG(LOG_INFO, "%s destroyed!\n", JANUS_TELEHEALTH_NAME);
}


static int janus_telehealth_get_api_compatibility(void) {
	return JANUS_PLUGIN_API_VERSION;
}


static int janus_telehealth_get_version(void) {
	return JANUS_TELEHEALTH_VERSION;
}


static const char *janus_telehealth_get_version_string(void) {
	return JANUS_TELEHEALTH_VERSION_STRING;
}


static const char *janus_telehealth_get_description(void) {
	return JANUS_TELEHEALTH_DESCRIPTION;
}


static const char *janus_telehealth_get_name(void) {
	return JANUS_TELEHEALTH_NAME;
}


static const char *janus_telehealth_get_author(void) {
	return JANUS_TELEHEALTH_AUTHOR;
}


static const char *janus_telehealth_get_package(void) {
	return JANUS_TELEHEALTH_PACKAGE;
}


static gboolean janus_telehealth_running(void) {
	return g_atomic_int_get(&janus_telehealth_initialized) && !g_atomic_int_get(&janus_telehealth_stopping);
}


static void janus_telehealth_create_session(janus_plugin_session *handle, int *error) {
	janus_telehealth_session *session;

	if (!janus_telehealth_running()) {
		*error = -1;
		return;
	}

	session = g_malloc0(sizeof(janus_telehealth_session));
	session->handle = handle;
	janus_mutex_init(&session->mutex);
	g_atomic_int_set(&session->hangingup, 0);
	g_atomic_int_set(&session->destroyed, 0);
	janus_refcount_init(&session->ref, janus_telehealth_session_free);
	handle->plugin_handle = session;

	janus_mutex_lock(&janus_telehealth_sessions_mutex);
	g_hash_table_insert(janus_telehealth_sessions, handle, session);
	janus_mutex_unlock(&janus_telehealth_sessions_mutex);
}


static void janus_telehealth_enqueue(janus_telehealth_message *msg) {
	if (janus_telehealth_messages == NULL) {
		janus_telehealth_message_free(msg);
		return;
	}

	g_async_queue_push(janus_telehealth_messages, msg);
}


/* Hands a task about one session to the handler thread. */
static void janus_telehealth_enqueue_session_task(janus_telehealth_session *session, int task) {
	janus_telehealth_message *msg;

	if (!janus_telehealth_running()) {
		return;
	}

	msg = g_malloc0(sizeof(janus_telehealth_message));
	msg->task = task;
	janus_refcount_increase(&session->ref);
	msg->session = session;

	janus_telehealth_enqueue(msg);
}


void janus_telehealth_session_hangup(janus_telehealth_session *session) {
	janus_telehealth_enqueue_session_task(session, JANUS_TELEHEALTH_TASK_HANGUP);
}


void janus_telehealth_session_media_hangup(janus_telehealth_session *session) {
	janus_telehealth_enqueue_session_task(session, JANUS_TELEHEALTH_TASK_MEDIA_HANGUP);
}


void janus_telehealth_enqueue_room_task(int task, const char *room_id, const char *reason, json_t *command) {
	janus_telehealth_message *msg;

	if (!janus_telehealth_running()) {
		return;
	}

	msg = g_malloc0(sizeof(janus_telehealth_message));
	msg->task = task;
	msg->room_id = g_strdup(room_id);
	msg->reason = g_strdup(reason);
	msg->message = command != NULL ? json_incref(command) : NULL;

	janus_telehealth_enqueue(msg);
}


void janus_telehealth_enqueue_joined(janus_telehealth_join_job *job) {
	janus_telehealth_message *msg;

	msg = g_malloc0(sizeof(janus_telehealth_message));
	msg->task = JANUS_TELEHEALTH_TASK_JOINED;
	msg->job = job;

	janus_telehealth_enqueue(msg);
}


static void janus_telehealth_destroy_session(janus_plugin_session *handle, int *error) {
	janus_telehealth_session *session;

	if (!janus_telehealth_running()) {
		*error = -1;
		return;
	}

	janus_mutex_lock(&janus_telehealth_sessions_mutex);

	session = janus_telehealth_lookup_session(handle);
	if (session == NULL) {
		janus_mutex_unlock(&janus_telehealth_sessions_mutex);
		JANUS_LOG(LOG_ERR, "[telehealth] no session for this handle\n");
		*error = -2;
		return;
	}

	/*
     * A closed browser or a dropped connection: the person leaves the room
     * ("hangup") but the room stays, so they can rejoin.  The handler
     * thread does it, as it needs Redis.
     */
	janus_telehealth_session_hangup(session);

	g_hash_table_remove(janus_telehealth_sessions, handle);
	janus_mutex_unlock(&janus_telehealth_sessions_mutex);
}


static json_t *janus_telehealth_query_session(janus_plugin_session *handle) {
	json_t *info;
	janus_telehealth_session *session;
	janus_telehealth_participant *participant;

	if (!janus_telehealth_running()) {
		return NULL;
	}

	janus_mutex_lock(&janus_telehealth_sessions_mutex);
	session = janus_telehealth_lookup_session(handle);
	if (session == NULL) {
		janus_mutex_unlock(&janus_telehealth_sessions_mutex);
		return NULL;
	}
	janus_refcount_increase(&session->ref);
	janus_mutex_unlock(&janus_telehealth_sessions_mutex);

	/* Ids and roles only: the Admin API output ends up in logs. */
	info = json_object();

	janus_mutex_lock(&session->mutex);
	participant = session->participant;
	if (participant != NULL) {
		json_object_set_new(info, "room", json_string(participant->room->id));
		json_object_set_new(info, "participant", json_string(participant->id));
		json_object_set_new(info, "role", json_string(participant->role));
	}
	if (session->subscriber != NULL) {
		json_object_set_new(info, "subscriber_of", json_string(session->subscriber->participant_id));
	}
	janus_mutex_unlock(&session->mutex);

	json_object_set_new(info, "destroyed", json_integer(g_atomic_int_get(&session->destroyed)));
	janus_refcount_decrease(&session->ref);

	return info;
}


/* "list" answers at once from memory: no Redis on a core thread. */
static struct janus_plugin_result *janus_telehealth_list(janus_telehealth_session *session) {
	json_t *response;
	gboolean chair, waiting;
	janus_telehealth_room *room;
	janus_telehealth_participant *participant;

	room = NULL;
	janus_mutex_lock(&session->mutex);
	participant = session->participant;
	if (participant != NULL) {
		janus_refcount_increase(&participant->ref);
		room = participant->room;
		janus_refcount_increase(&room->ref);
	}
	janus_mutex_unlock(&session->mutex);

	chair = FALSE;
	waiting = FALSE;
	if (participant != NULL) {
		janus_mutex_lock(&room->mutex);
		chair = strcmp(participant->role, TH_ROLE_CHAIR) == 0;
		waiting = participant->waiting;
		janus_mutex_unlock(&room->mutex);
		janus_telehealth_participant_release(participant);
	}

	if (room == NULL) {
		response = janus_telehealth_error_event(JANUS_TELEHEALTH_ERROR_NOT_JOINED, "Not in a room");
		return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, response);
	}

	response = json_object();
	json_object_set_new(response, "telehealth", json_string("participants"));
	json_object_set_new(response, "room", json_string(room->id));
	json_object_set_new(
		response, "participants", waiting ? json_array() : janus_telehealth_room_participants(room, chair));
	if (chair) {
		json_object_set_new(response, "receivers", janus_telehealth_receivers_json(room));
	}
	janus_telehealth_room_unref(room);

	return janus_plugin_result_new(JANUS_PLUGIN_OK, NULL, response);
}


static struct janus_plugin_result *janus_telehealth_handle_message(
	janus_plugin_session *handle, char *transaction, json_t *message, json_t *jsep) {
	const char *request;
	janus_telehealth_message *msg;
	janus_telehealth_session *session;
	struct janus_plugin_result *result;

	if (!janus_telehealth_running()) {
		json_decref(message);
		json_decref(jsep);
		g_free(transaction);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR,
			g_atomic_int_get(&janus_telehealth_stopping) ? "Shutting down" : "Plugin not initialized", NULL);
	}

	janus_mutex_lock(&janus_telehealth_sessions_mutex);
	session = janus_telehealth_lookup_session(handle);
	if (session == NULL) {
		janus_mutex_unlock(&janus_telehealth_sessions_mutex);
		json_decref(message);
		json_decref(jsep);
		g_free(transaction);
		return janus_plugin_result_new(JANUS_PLUGIN_ERROR, "No session associated with this handle", NULL);
	}
	/* This reference goes with the message, or is dropped below. */
	janus_refcount_increase(&session->ref);
	janus_mutex_unlock(&janus_telehealth_sessions_mutex);

	request = json_string_value(json_object_get(message, "request"));
	if (request != NULL && strcasecmp(request, "list") == 0) {
		result = janus_telehealth_list(session);
		janus_refcount_decrease(&session->ref);
		json_decref(message);
		json_decref(jsep);
		g_free(transaction);
		return result;
	}

	msg = g_malloc0(sizeof(janus_telehealth_message));
	msg->session = session;
	msg->transaction = transaction;
	msg->message = message;
	msg->jsep = jsep;
	janus_telehealth_enqueue(msg);

	return janus_plugin_result_new(JANUS_PLUGIN_OK_WAIT, NULL, NULL);
}


/* Requests on the handler thread */

static int janus_telehealth_credential_error(th_token_status_t status) {
	switch (status) {
		case TH_TOKEN_OK:
			return 0;
		case TH_TOKEN_EXPIRED:
			return JANUS_TELEHEALTH_ERROR_CREDENTIAL_EXPIRED;
		case TH_TOKEN_WRONG_AUDIENCE:
			return JANUS_TELEHEALTH_ERROR_WRONG_AUDIENCE;
		case TH_TOKEN_UNKNOWN_KEY:
			return JANUS_TELEHEALTH_ERROR_UNKNOWN_KEY;
		case TH_TOKEN_MALFORMED:
		case TH_TOKEN_BAD_ALG:
		case TH_TOKEN_BAD_SIGNATURE:
		case TH_TOKEN_NOT_YET_VALID:
		case TH_TOKEN_WRONG_ISSUER:
			break;
	}

	return JANUS_TELEHEALTH_ERROR_INVALID_CREDENTIAL;
}


static const char *janus_telehealth_claim(json_t *claims, const char *name) {
	return json_string_value(json_object_get(claims, name));
}


/* Verifies a join credential; returns 0 and its claims, or an error. */
static int janus_telehealth_verify_credential(json_t *root, json_t **claims, char *error, size_t error_size) {
	const char *credential;
	th_token_status_t status;

	credential = json_string_value(json_object_get(root, "credential"));

	status = th_token_verify(&janus_telehealth_cfg.keys, credential, TH_AUD_JOIN, time(NULL),
		janus_telehealth_cfg.credential_leeway, claims);
	if (status != TH_TOKEN_OK) {
		JANUS_LOG(LOG_WARN, "[telehealth] credential refused: %s\n", th_token_status_text(status));
		g_snprintf(error, error_size, "Join credential refused: %s", th_token_status_text(status));
		return janus_telehealth_credential_error(status);
	}

	return 0;
}


static int janus_telehealth_handle_join(
	janus_telehealth_session *session, json_t *root, const char *transaction, char *error, size_t error_size) {
	int rc;
	gint64 started;
	json_t *claims;
	const char *role;
	janus_telehealth_join join;

	started = janus_get_monotonic_time();

	rc = janus_telehealth_verify_credential(root, &claims, error, error_size);
	if (rc != 0) {
		return rc;
	}

	memset(&join, 0, sizeof(join));
	join.room_id = janus_telehealth_claim(claims, "room");
	join.session_id = janus_telehealth_claim(claims, "session");
	join.org_id = janus_telehealth_claim(claims, "org");
	join.kind = janus_telehealth_claim(claims, "kind");
	join.participant_id = janus_telehealth_claim(claims, "sub");
	join.display = janus_telehealth_claim(claims, "name");
	join.jti = janus_telehealth_claim(claims, "jti");
	join.exp = json_integer_value(json_object_get(claims, "exp"));
	join.iat = json_integer_value(json_object_get(claims, "iat"));
	join.unlisted = json_is_true(json_object_get(claims, "unlisted"));
	join.admitted = json_is_true(json_object_get(claims, "admitted"));
	join.audio_only = json_is_true(json_object_get(root, "audio_only"));
	role = janus_telehealth_claim(claims, "role");

	if (role != NULL && strcmp(role, TH_ROLE_CHAIR) == 0) {
		join.role = TH_ROLE_CHAIR;

	} else if (role != NULL && strcmp(role, TH_ROLE_BROADCASTER) == 0) {
		join.role = TH_ROLE_BROADCASTER;

	} else if (role != NULL && strcmp(role, TH_ROLE_VIEWER) == 0) {
		join.role = TH_ROLE_VIEWER;
	}

	if (!janus_telehealth_id_valid(join.room_id, FALSE) || !janus_telehealth_id_valid(join.participant_id, TRUE) ||
		!janus_telehealth_id_valid(join.jti, FALSE) || join.session_id == NULL || join.session_id[0] == '\0' ||
		join.role == NULL) {
		JANUS_LOG(LOG_WARN,
			"[telehealth] join refused: credential lacks "
			"room, sub, session, role or jti\n");
		g_snprintf(error, error_size,
			"Join credential refused: incomplete "
			"credential");
		json_decref(claims);
		return JANUS_TELEHEALTH_ERROR_INVALID_CREDENTIAL;
	}

	if (join.display == NULL) {
		join.display = "";
	}

	join.started = started;

	/* answered later, when the join script has run (the join pool) */
	rc = janus_telehealth_room_join(session, &join, transaction, error, error_size);
	json_decref(claims);

	return rc;
}


/* Handles one client request; returns 0 or an error code (in error). */
static int janus_telehealth_handle_request(janus_telehealth_session *session, json_t *root, json_t *jsep,
	const char *transaction, char *error, size_t error_size) {
	int error_code;
	char error_cause[512];
	const char *request;

	if (root == NULL) {
		g_snprintf(error, error_size, "No message");
		return JANUS_TELEHEALTH_ERROR_NO_MESSAGE;
	}

	if (!json_is_object(root)) {
		g_snprintf(error, error_size, "JSON error: not an object");
		return JANUS_TELEHEALTH_ERROR_INVALID_JSON;
	}

	JANUS_VALIDATE_JSON_OBJECT(root, request_parameters, error_code, error_cause, TRUE,
		JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT, JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
	if (error_code != 0) {
		g_strlcpy(error, error_cause, error_size);
		return error_code;
	}

	request = json_string_value(json_object_get(root, "request"));

	if (strcasecmp(request, "join") == 0) {
		JANUS_VALIDATE_JSON_OBJECT(root, join_parameters, error_code, error_cause, TRUE,
			JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT, JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
		if (error_code != 0) {
			g_strlcpy(error, error_cause, error_size);
			return error_code;
		}

		return janus_telehealth_handle_join(session, root, transaction, error, error_size);
	}

	if (strcasecmp(request, "leave") == 0) {
		error_code = janus_telehealth_room_leave(session, TH_LEFT_LEAVE, transaction);
		if (error_code != 0) {
			g_snprintf(error, error_size, "Not in a room");
		}
		return error_code;
	}

	if (strcasecmp(request, "configure") == 0) {
		JANUS_VALIDATE_JSON_OBJECT(root, configure_parameters, error_code, error_cause, TRUE,
			JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT, JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
		if (error_code != 0) {
			g_strlcpy(error, error_cause, error_size);
			return error_code;
		}

		error_code = janus_telehealth_room_configure(
			session, json_object_get(root, "audio_muted"), json_object_get(root, "video_paused"), transaction);
		if (error_code != 0) {
			g_snprintf(error, error_size, "Not in a room");
		}
		return error_code;
	}

	if (strcasecmp(request, "publish") == 0) {
		JANUS_VALIDATE_JSON_OBJECT(root, publish_parameters, error_code, error_cause, TRUE,
			JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT, JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
		if (error_code != 0) {
			g_strlcpy(error, error_cause, error_size);
			return error_code;
		}

		return janus_telehealth_media_publish(session, root, jsep, transaction, error, error_size);
	}

	if (strcasecmp(request, "unpublish") == 0) {
		return janus_telehealth_media_unpublish(session, transaction, error, error_size);
	}

	if (strcasecmp(request, "subscribe_token") == 0) {
		return janus_telehealth_receivers_token(session, transaction, error, error_size);
	}

	if (strcasecmp(request, "subscribe") == 0) {
		JANUS_VALIDATE_JSON_OBJECT(root, subscribe_parameters, error_code, error_cause, TRUE,
			JANUS_TELEHEALTH_ERROR_MISSING_ELEMENT, JANUS_TELEHEALTH_ERROR_INVALID_ELEMENT);
		if (error_code != 0) {
			g_strlcpy(error, error_cause, error_size);
			return error_code;
		}

		return janus_telehealth_receivers_subscribe(session, root, transaction, error, error_size);
	}

	if (strcasecmp(request, "start") == 0) {
		return janus_telehealth_media_start(session, jsep, transaction, error, error_size);
	}

	if (janus_telehealth_moderation_is_request(request)) {
		return janus_telehealth_moderation_request(session, request, root, transaction, error, error_size);
	}

	g_snprintf(error, error_size, "Unknown request '%s'", request);

	return JANUS_TELEHEALTH_ERROR_INVALID_REQUEST;
}


/* The join script answered (janus_telehealth_join.c): apply, answer. */
static void janus_telehealth_handle_joined(janus_telehealth_join_job *job) {
	int rc;
	char error[512];
	json_t *event;
	janus_telehealth_session *session;

	session = janus_telehealth_join_job_session(job);

	error[0] = '\0';
	rc = janus_telehealth_room_join_finish(job, error, sizeof(error));

	if (rc != 0) {
		event = janus_telehealth_error_event(rc, error);
		janus_telehealth_push(session, janus_telehealth_join_job_transaction(job), event);
		json_decref(event);

	} else {
		janus_telehealth_metrics_join(janus_get_monotonic_time() - janus_telehealth_join_job_started(job));
	}

	/* the next join of this room, if one waits */
	janus_telehealth_room_join_next(janus_telehealth_join_job_room(job));
}


static void janus_telehealth_handle_task(janus_telehealth_message *msg) {
	switch (msg->task) {
		case JANUS_TELEHEALTH_TASK_HANGUP:
			(void)janus_telehealth_room_leave(msg->session, TH_LEFT_HANGUP, NULL);
			janus_telehealth_media_session_gone(msg->session, FALSE);
			break;

		case JANUS_TELEHEALTH_TASK_MEDIA_HANGUP:
			janus_telehealth_media_session_gone(msg->session, TRUE);
			break;

		case JANUS_TELEHEALTH_TASK_EXPIRE:
			janus_telehealth_room_expire(msg->room_id);
			break;

		case JANUS_TELEHEALTH_TASK_LOST:
			janus_telehealth_room_lost(msg->room_id, msg->reason);
			break;

		case JANUS_TELEHEALTH_TASK_COMMAND:
			janus_telehealth_command_execute(msg->message);
			break;

		case JANUS_TELEHEALTH_TASK_DEADLINE:
			janus_telehealth_room_deadline(msg->room_id);
			break;

		case JANUS_TELEHEALTH_TASK_JOINED:
			if (janus_telehealth_room_redis_finish(msg->job)) {
				msg->job = NULL; /* freed */
				break;
			}
			janus_telehealth_handle_joined(msg->job);
			break;
	}
}


static void *janus_telehealth_handler(void *data) {
	int error_code;
	char error[512];
	json_t *event;
	janus_telehealth_message *msg;

	JANUS_LOG(LOG_VERB, "[telehealth] handler thread started\n");

	while (janus_telehealth_running()) {
		msg = g_async_queue_pop(janus_telehealth_messages);
		if (msg == &janus_telehealth_exit_message) {
			break;
		}

		if (msg->task != 0) {
			janus_telehealth_handle_task(msg);
			janus_telehealth_message_free(msg);
			continue;
		}

		if (msg->session == NULL || g_atomic_int_get(&msg->session->destroyed)) {
			janus_telehealth_message_free(msg);
			continue;
		}

		error[0] = '\0';
		error_code = janus_telehealth_handle_request(
			msg->session, msg->message, msg->jsep, msg->transaction, error, sizeof(error));

		if (error_code != 0 && error_code != JANUS_TELEHEALTH_ANSWER_LATER) {
			event = janus_telehealth_error_event(error_code, error);
			janus_telehealth_push(msg->session, msg->transaction, event);
			json_decref(event);
		}

		janus_telehealth_message_free(msg);
	}

	JANUS_LOG(LOG_VERB, "[telehealth] handler thread stopped\n");

	return NULL;
}
