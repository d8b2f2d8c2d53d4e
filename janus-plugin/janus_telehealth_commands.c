/*
 * Commands from the nginx module to this node.
 *
 * nginx publishes JSON on the channel <prefix>cmd:<node_id> of the node
 * that hosts a room (the "node" field of the room hash).  The command
 * thread only listens and hands each command to the handler thread, which
 * executes it like any other change to a room and answers with a
 * "command.result" entry in the events stream.  Pub/sub delivers at most
 * once: a command sent while this node is disconnected is lost, which is
 * why the answer is what nginx should wait for.
 */

#include <errno.h>
#include <poll.h>
#include <string.h>

#include <debug.h>
#include <utils.h>

#include "janus_telehealth.h"
#include "janus_telehealth_redis.h"


static GThread *commands_thread;
static volatile gint commands_running;


/* Execution, on the handler thread */

typedef const char *(*janus_telehealth_command_fn)(json_t *command, const char *room_id);

/* A reason nginx may give for closing; anything else is "command". */
static const char *janus_telehealth_close_reason(json_t *command) {
	const char *reason;

	reason = json_string_value(json_object_get(command, "reason"));
	if (reason != NULL &&
		(strcmp(reason, TH_CLOSE_CLOSED_BY_CHAIR) == 0 || strcmp(reason, TH_CLOSE_COMMAND) == 0 ||
			strcmp(reason, TH_CLOSE_KEPT_OPEN) == 0)) {
		return reason;
	}

	return TH_CLOSE_COMMAND;
}


/* A command whose result is reported later, off the handler thread. */
static const char janus_telehealth_command_later[] = "later";

static const char *janus_telehealth_command_close(json_t *command, const char *room_id) {
	int rc;

	rc = janus_telehealth_room_close_by_id(
		room_id, janus_telehealth_close_reason(command), json_string_value(json_object_get(command, "id")));
	if (rc == 2) {
		return janus_telehealth_command_later; /* reported when done */
	}

	return rc == 0 ? "ok" : (rc > 0 ? "not_found" : "unavailable");
}


/* Maps a moderation answer to a command result. */
static const char *janus_telehealth_command_outcome(int rc) {
	switch (rc) {
		case 0:
			return "ok";
		case JANUS_TELEHEALTH_ERROR_NO_SUCH_PARTICIPANT:
			return "not_found";
		case JANUS_TELEHEALTH_ERROR_REDIS_UNAVAILABLE:
			return "unavailable";
	}

	return "invalid";
}


/* The hosted room named by a command (reference), or NULL. */
static janus_telehealth_room *janus_telehealth_command_room(const char *room_id) {
	janus_telehealth_room *room;

	room = janus_telehealth_room_find(room_id);
	if (room != NULL && g_atomic_int_get(&room->closed)) {
		janus_telehealth_room_unref(room);
		room = NULL;
	}

	return room;
}


/*
 * The room and the participant a command names: NULL with both set (the
 * room referenced), or the command's outcome when one is missing.
 */
static const char *janus_telehealth_command_target(
	json_t *command, const char *room_id, janus_telehealth_room **room, const char **participant) {
	*participant = json_string_value(json_object_get(command, "participant"));
	if (*participant == NULL) {
		return "invalid";
	}

	*room = janus_telehealth_command_room(room_id);
	if (*room == NULL) {
		return "not_found";
	}

	return NULL;
}


static const char *janus_telehealth_command_remove(json_t *command, const char *room_id) {
	int rc;
	char error[256];
	const char *participant, *outcome;
	janus_telehealth_room *room;

	outcome = janus_telehealth_command_target(command, room_id, &room, &participant);
	if (outcome != NULL) {
		return outcome;
	}

	rc = janus_telehealth_moderate_remove(
		room, JANUS_TELEHEALTH_ACTOR_COMMAND, participant, TH_LEFT_REMOVED, error, sizeof(error));
	janus_telehealth_room_unref(room);

	return janus_telehealth_command_outcome(rc);
}


static const char *janus_telehealth_command_mute(json_t *command, const char *room_id) {
	int rc;
	char error[256];
	const char *participant, *outcome;
	janus_telehealth_room *room;

	outcome = janus_telehealth_command_target(command, room_id, &room, &participant);
	if (outcome != NULL) {
		return outcome;
	}

	rc = janus_telehealth_moderate_mute(room, JANUS_TELEHEALTH_ACTOR_COMMAND, participant,
		json_object_get(command, "audio"), json_object_get(command, "video"), error, sizeof(error));
	janus_telehealth_room_unref(room);

	return janus_telehealth_command_outcome(rc);
}


static const char *janus_telehealth_command_set_role(json_t *command, const char *room_id) {
	int rc;
	char error[256];
	const char *participant, *role, *outcome;
	janus_telehealth_room *room;

	role = json_string_value(json_object_get(command, "role"));
	if (role == NULL) {
		return "invalid";
	}

	outcome = janus_telehealth_command_target(command, room_id, &room, &participant);
	if (outcome != NULL) {
		return outcome;
	}

	rc = janus_telehealth_moderate_set_role(
		room, JANUS_TELEHEALTH_ACTOR_COMMAND, participant, role, error, sizeof(error));
	janus_telehealth_room_unref(room);

	return janus_telehealth_command_outcome(rc);
}


/*
 * The access level changed: nginx lists who no longer qualifies; they are
 * removed (reason "removed").  Listed people who are not in the room are
 * fine: they cannot join any more anyway.
 */
static const char *janus_telehealth_command_access_changed(json_t *command, const char *room_id) {
	size_t i;
	char error[256];
	json_t *participants, *p;
	janus_telehealth_room *room;

	participants = json_object_get(command, "participants");
	if (!json_is_array(participants)) {
		return "invalid";
	}

	json_array_foreach (participants, i, p) {
		if (!json_is_string(p)) {
			return "invalid";
		}
	}

	room = janus_telehealth_command_room(room_id);
	if (room == NULL) {
		return "not_found";
	}

	json_array_foreach (participants, i, p) {
		/* Not a chair's decision: no ban, no chair.action. */
		(void)janus_telehealth_moderate_remove(room, NULL, json_string_value(p), TH_LEFT_REMOVED, error, sizeof(error));
	}
	janus_telehealth_room_unref(room);

	return "ok";
}


/* Breakout rooms: "breakout" names one (nginx chose the name). */
static const char *janus_telehealth_command_breakout(json_t *command, const char *room_id) {
	int rc;
	char error[256];
	const char *name, *breakout, *participant;
	janus_telehealth_room *room;

	name = json_string_value(json_object_get(command, "command"));
	breakout = json_string_value(json_object_get(command, "breakout"));
	participant = json_string_value(json_object_get(command, "participant"));

	if ((breakout == NULL && strcmp(name, TH_CMD_BREAKOUT_MOVE) != 0) ||
		(breakout != NULL && (strlen(breakout) > JANUS_TELEHEALTH_ID_MAX || strchr(breakout, ':') != NULL)) ||
		(participant == NULL && strcmp(name, TH_CMD_BREAKOUT_MOVE) == 0)) {
		return "invalid";
	}

	room = janus_telehealth_command_room(room_id);
	if (room == NULL) {
		return "not_found";
	}

	if (strcmp(name, TH_CMD_BREAKOUT_CREATE) == 0) {
		rc = janus_telehealth_moderate_breakout_create(
			room, JANUS_TELEHEALTH_ACTOR_COMMAND, breakout, error, sizeof(error));

	} else if (strcmp(name, TH_CMD_BREAKOUT_MOVE) == 0) {
		rc = janus_telehealth_moderate_breakout_move(
			room, JANUS_TELEHEALTH_ACTOR_COMMAND, participant, breakout, error, sizeof(error));

	} else {
		rc = janus_telehealth_moderate_breakout_close(
			room, JANUS_TELEHEALTH_ACTOR_COMMAND, breakout, error, sizeof(error));
	}

	janus_telehealth_room_unref(room);

	return janus_telehealth_command_outcome(rc);
}


static const struct {
	const char *name;
	janus_telehealth_command_fn run;
} janus_telehealth_commands[] = {
	{TH_CMD_CLOSE, janus_telehealth_command_close},
	{TH_CMD_REMOVE, janus_telehealth_command_remove},
	{TH_CMD_MUTE, janus_telehealth_command_mute},
	{TH_CMD_SET_ROLE, janus_telehealth_command_set_role},
	{TH_CMD_ACCESS_CHANGED, janus_telehealth_command_access_changed},
	{TH_CMD_BREAKOUT_CREATE, janus_telehealth_command_breakout},
	{TH_CMD_BREAKOUT_MOVE, janus_telehealth_command_breakout},
	{TH_CMD_BREAKOUT_CLOSE, janus_telehealth_command_breakout},
};


void janus_telehealth_command_execute(json_t *command) {
	size_t i;
	const char *name, *room_id, *id, *result;

	name = json_string_value(json_object_get(command, "command"));
	room_id = json_string_value(json_object_get(command, "room"));
	id = json_string_value(json_object_get(command, "id"));
	result = NULL;

	if (name == NULL || room_id == NULL || room_id[0] == '\0' || strlen(room_id) > JANUS_TELEHEALTH_ID_MAX ||
		strchr(room_id, ':')) {
		result = "invalid";

	} else {
		for (i = 0; i < G_N_ELEMENTS(janus_telehealth_commands); i++) {
			if (strcmp(janus_telehealth_commands[i].name, name) == 0) {
				result = janus_telehealth_commands[i].run(command, room_id);
				break;
			}
		}

		if (result == NULL) {
			result = "unknown_command";
		}
	}

	if (result != janus_telehealth_command_later) {
		janus_telehealth_command_result(name, id, room_id, result);
	}
}


void janus_telehealth_command_result(const char *name, const char *id, const char *room_id, const char *result) {
	JANUS_LOG(LOG_INFO, "[telehealth] command %s for room %s: %s\n", name != NULL ? name : "(none)",
		room_id != NULL ? room_id : "(none)", result);

	janus_telehealth_event_emit_fields(
		JANUS_TELEHEALTH_EV_COMMAND_RESULT, "command", name, "id", id, "room", room_id, "result", result, NULL);
}


/* Listening, on the command thread */

static void janus_telehealth_command_received(redisReply *reply) {
	json_t *command;
	json_error_t error;

	/* ["message", channel, payload]; subscribe confirmations are ignored */
	if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3 || reply->element[0]->type != REDIS_REPLY_STRING ||
		strcmp(reply->element[0]->str, "message") != 0 || reply->element[2]->type != REDIS_REPLY_STRING) {
		return;
	}

	command = json_loadb(reply->element[2]->str, reply->element[2]->len, 0, &error);
	if (!json_is_object(command)) {
		JANUS_LOG(LOG_ERR, "[telehealth] command is not a JSON object\n");
		json_decref(command);
		return;
	}

	janus_telehealth_enqueue_room_task(JANUS_TELEHEALTH_TASK_COMMAND, NULL, NULL, command);
	json_decref(command);
}


static redisContext *janus_telehealth_commands_subscribe(janus_telehealth_redis *redis, const char *channel) {
	redisReply *reply;
	redisContext *ctx;

	ctx = janus_telehealth_redis_connect(redis);
	if (ctx == NULL) {
		return NULL;
	}

	reply = redisCommand(ctx, "SUBSCRIBE %s", channel);
	if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
		if (reply != NULL) {
			JANUS_LOG(LOG_ERR, "[telehealth] SUBSCRIBE refused: %s\n", reply->str);
			freeReplyObject(reply);
		}
		janus_telehealth_redis_drop(redis);
		return NULL;
	}

	freeReplyObject(reply);
	JANUS_LOG(LOG_INFO, "[telehealth] listening for commands on %s\n", channel);

	return ctx;
}


/* Reads what arrived; -1 when the connection must be made again. */
static int janus_telehealth_commands_read(redisContext *ctx) {
	int rc;
	void *reply;
	struct pollfd pfd;

	pfd.fd = ctx->fd;
	pfd.events = POLLIN;
	pfd.revents = 0;

	/* Short waits so that shutdown is noticed quickly. */
	rc = poll(&pfd, 1, 250);
	if (rc < 0) {
		return errno == EINTR ? 0 : -1;
	}

	if (rc == 0) {
		return 0;
	}

	if (redisBufferRead(ctx) != REDIS_OK) {
		return -1;
	}

	for (;;) {
		reply = NULL;
		if (redisGetReplyFromReader(ctx, &reply) != REDIS_OK) {
			return -1;
		}

		if (reply == NULL) {
			return 0;
		}

		janus_telehealth_command_received(reply);
		freeReplyObject(reply);
	}
}


static void *janus_telehealth_commands_loop(void *data) {
	char *channel;
	redisContext *ctx;
	janus_telehealth_redis *redis;

	redis = janus_telehealth_redis_new("commands");
	channel = janus_telehealth_redis_key(TH_KEY_NODE_COMMANDS, janus_telehealth_cfg.node_id);
	ctx = NULL;

	while (g_atomic_int_get(&commands_running)) {
		if (ctx == NULL) {
			ctx = janus_telehealth_commands_subscribe(redis, channel);
			if (ctx == NULL) {
				g_usleep(250000);
				continue;
			}
		}

		if (janus_telehealth_commands_read(ctx) != 0) {
			janus_telehealth_redis_drop(redis);
			ctx = NULL;
		}
	}

	g_free(channel);
	janus_telehealth_redis_free(redis);

	return NULL;
}


int janus_telehealth_commands_start(void) {
	GError *error = NULL;

	g_atomic_int_set(&commands_running, 1);

	commands_thread = g_thread_try_new("telehealth commands", janus_telehealth_commands_loop, NULL, &error);
	if (error != NULL) {
		JANUS_LOG(LOG_ERR,
			"[telehealth] cannot start the command thread: "
			"%s\n",
			error->message);
		g_error_free(error);
		g_atomic_int_set(&commands_running, 0);
		return -1;
	}

	return 0;
}


void janus_telehealth_commands_stop(void) {
	if (commands_thread == NULL) {
		return;
	}

	g_atomic_int_set(&commands_running, 0);
	g_thread_join(commands_thread);
	commands_thread = NULL;
}
