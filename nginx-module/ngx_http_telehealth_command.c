/*
 * Publishes a chair's room command to the Janus node that hosts the room
 * and answers 202 Accepted with the command's id.  The plugin reports the
 * outcome as a command.result entry of the event stream with that id
 * (docs/plugin.md, "Commands"); the API does not wait for it.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_command.h"
#include "ngx_http_telehealth_redis.h"


typedef struct {
    json_t   *command;
    json_t   *reply; /* answered with 200 instead of 202, or NULL */
    ngx_str_t room;
    ngx_str_t node;
    char     *text;
    char      id[TH_TOKEN_ID_LEN + 1];
} ngx_http_telehealth_command_t;


static void ngx_http_telehealth_command_room(void *data, redisReply *reply);
static void ngx_http_telehealth_command_sent(void *data, redisReply *reply);
static void ngx_http_telehealth_command_fail(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);


void
ngx_http_telehealth_command_then(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    if (json_object_get(body, "command") == NULL) {
        /* nothing for a room to do (a scheduled session closed) */
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, status, json_incref(body)));
        return;
    }

    ngx_http_telehealth_command_publish(r, body);
}


void
ngx_http_telehealth_command_publish(ngx_http_request_t *r, json_t *answer)
{
    char                          *key;
    json_t                        *room;
    const char                    *argv[5];
    size_t                         argvlen[5];
    ngx_uint_t                     i;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_command_t *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    cmd = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_command_t));
    if (cmd == NULL
        || ngx_http_telehealth_json_track(r->pool, json_incref(answer)) == NULL)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    room = json_object_get(answer, "room");
    cmd->command = json_object_get(answer, "command");
    cmd->reply = json_object_get(answer, "reply");

    if (!json_is_string(room) || !json_is_object(cmd->command)
        || th_token_new_id(cmd->id, sizeof(cmd->id)) != 0
        || json_object_set_new(cmd->command, "id", json_string(cmd->id)) != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    cmd->room.data = (u_char *) json_string_value(room);
    cmd->room.len = json_string_length(room);
    ctx->data = cmd;

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
        (char *) cmd->room.data);
    if (key == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "HMGET";
    argv[1] = key;
    argv[2] = "state";
    argv[3] = "session";
    argv[4] = "node";

    for (i = 0; i < 5; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_command_room, r, 5, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_command_room(void *data, redisReply *reply)
{
    char                          *channel, *text;
    size_t                         len, argvlen[3];
    const char                    *argv[3];
    ngx_uint_t                     i;
    redisReply                    *state, *session, *node;
    ngx_http_request_t            *r = data;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_command_t *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    cmd = ctx->data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
    {
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            NULL);
        return;
    }

    state = reply->element[0];
    session = reply->element[1];
    node = reply->element[2];

    if (state->type != REDIS_REPLY_STRING
        || ngx_strcmp(state->str, TH_ROOM_OPEN) != 0
        || session->type != REDIS_REPLY_STRING
        || ngx_strcmp(session->str, ctx->id.data) != 0)
    {
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN,
            NULL);
        return;
    }

    if (node->type != REDIS_REPLY_STRING || node->len == 0) {
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN,
            "Nobody has joined the video room yet.");
        return;
    }

    cmd->node.len = node->len;
    cmd->node.data = ngx_pnalloc(r->pool, node->len + 1);
    if (cmd->node.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(cmd->node.data, node->str, node->len + 1);

    channel = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE_COMMANDS,
        (char *) cmd->node.data);
    text = json_dumps(cmd->command, JSON_COMPACT);

    if (channel == NULL || text == NULL) {
        free(text);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    len = ngx_strlen(text);
    cmd->text = ngx_pnalloc(r->pool, len + 1);
    if (cmd->text == NULL) {
        free(text);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(cmd->text, text, len + 1);
    free(text);

    argv[0] = "PUBLISH";
    argv[1] = channel;
    argv[2] = cmd->text;

    for (i = 0; i < 3; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_command_sent, r, 3, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            NULL);
    }
}


static void
ngx_http_telehealth_command_sent(void *data, redisReply *reply)
{
    json_t                        *answer;
    ngx_http_request_t            *r = data;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_command_t *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    cmd = ctx->data;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            NULL);
        return;
    }

    /* nobody listens on the channel: the hosting node is gone */
    if (reply->integer == 0) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
            "telehealth: no node listens for commands of room %s",
            cmd->room.data);
        ngx_http_telehealth_command_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE,
            "The video server of this room is not "
            "reachable.");
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
        "telehealth: command %s for room %s sent to node %s", cmd->id,
        cmd->room.data, cmd->node.data);

    if (cmd->reply != NULL) {
        json_object_set_new(cmd->reply, "command_id", json_string(cmd->id));
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
                json_incref(cmd->reply)));
        return;
    }

    answer = json_pack("{s:s, s:s, s:O, s:s}", "command_id", cmd->id, "room",
        (char *) cmd->room.data, "command", cmd->command, "node",
        (char *) cmd->node.data);

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_ACCEPTED, answer));
}


/*
 * The command could not be given.  A change that was committed before
 * (the access level of PATCH /sessions/{id}) is still answered with 200;
 * "command_id": null says that nothing was sent.
 */

static void
ngx_http_telehealth_command_fail(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail)
{
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_command_t *cmd;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    cmd = ctx->data;

    if (cmd->reply == NULL) {
        ngx_http_telehealth_fail(r, problem, detail);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
        "telehealth: room %s: command not sent after a committed "
        "change",
        cmd->room.data);

    json_object_set_new(cmd->reply, "command_id", json_null());

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(cmd->reply)));
}
