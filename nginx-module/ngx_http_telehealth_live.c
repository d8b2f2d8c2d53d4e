/*
 * The live state of a session's room.  PostgreSQL decides who may ask and
 * what the session's access level is; who is in the room only the members
 * hash in Redis knows (<prefix>room:<room>:members, written by the plugin,
 * fields "staff:<uuid>", "patient:<uuid>", "guest:<id>").
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_live.h"
#include "ngx_http_telehealth_command.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


typedef struct {
    json_t *body;  /* the answer being built */
    json_t *check; /* access_check of th_op_session_update() */
} ngx_http_telehealth_live_t;


/* KEYS, ARGV and answer: common/lua/live_update.lua */
#define ngx_http_telehealth_live_update_lua th_lua_live_update

#define NGX_HTTP_TELEHEALTH_LIVE_FIELDS 32


static void ngx_http_telehealth_live_room_updated(void *data,
    redisReply                                         *reply);
static ngx_int_t ngx_http_telehealth_live_query(ngx_http_request_t *r,
    json_t *body, const char *field, const char *cmd,
    void (*handler)(void *data, redisReply *reply));
static void ngx_http_telehealth_live_access_keys(void *data, redisReply *reply);
static ngx_uint_t ngx_http_telehealth_live_qualifies(json_t *check,
    const char *member, size_t len);
static void ngx_http_telehealth_live_unbanned(void *data, redisReply *reply);
static void ngx_http_telehealth_live_members_all(void *data, redisReply *reply);


/*
 * PATCH /sessions/{id}: a live room gets the new policies ("room_update"),
 * then those no longer allowed in leave ("access_check"); a session
 * without a live room is answered as it is.
 */

void
ngx_http_telehealth_live_updated(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    if (json_object_get(body, "room_update") != NULL) {
        ngx_http_telehealth_live_room_update(r, body);
        return;
    }

    if (json_object_get(body, "access_check") != NULL) {
        ngx_http_telehealth_live_access(r, body);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, status, json_incref(body)));
}


void
ngx_http_telehealth_live_access(ngx_http_request_t *r, json_t *body)
{
    ngx_int_t rc;

    rc = ngx_http_telehealth_live_query(r, body, "access_check", "HKEYS",
        ngx_http_telehealth_live_access_keys);
    if (rc != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


void
ngx_http_telehealth_live_room_update(ngx_http_request_t *r, json_t *body)
{
    char                       *key;
    size_t                      i, n;
    json_t                     *update, *room, *session, *fields, *v;
    const char                 *argv[5 + NGX_HTTP_TELEHEALTH_LIVE_FIELDS];
    size_t                      argvlen[5 + NGX_HTTP_TELEHEALTH_LIVE_FIELDS];
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_live_t *live;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    update = json_object_get(body, "room_update");
    room = json_object_get(update, "room");
    session = json_object_get(update, "session");
    fields = json_object_get(update, "fields");

    if (!json_is_string(room) || !json_is_string(session)
        || !json_is_array(fields)
        || json_array_size(fields) > NGX_HTTP_TELEHEALTH_LIVE_FIELDS)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    live = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_live_t));
    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
        json_string_value(room));

    if (live == NULL || key == NULL
        || ngx_http_telehealth_json_track(r->pool, json_incref(body)) == NULL
        || ngx_http_telehealth_json_track(r->pool, json_incref(update)) == NULL)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    live->body = body;
    ctx->data = live;

    /* the strings stay alive with update, tracked above */
    json_object_del(body, "room_update");

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_live_update_lua;
    argv[2] = "1";
    argv[3] = key;
    argv[4] = json_string_value(session);

    n = 5;

    json_array_foreach (fields, i, v) {
        argv[n++] = json_is_string(v) ? json_string_value(v) : "";
    }

    for (i = 0; i < n; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_live_room_updated, r, n, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_live_room_updated(r, NULL);
    }
}


static void
ngx_http_telehealth_live_room_updated(void *data, redisReply *reply)
{
    json_t                     *body;
    ngx_http_request_t         *r = data;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_live_t *live;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    live = ctx->data;
    body = live->body;

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        /* the change is committed; the room keeps its old values */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
            "telehealth: session settings changed, but the room "
            "hash could not be updated");
    }

    if (json_object_get(body, "access_check") != NULL) {
        ngx_http_telehealth_live_access(r, body);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(body)));
}


void
ngx_http_telehealth_live_members(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    json_t *room;

    room = json_object_get(body, "members_of");

    if (!json_is_string(room)) {
        /* no open room: nobody is in it */
        json_object_del(body, "members_of");
        json_object_set_new(body, "participants", json_array());
        json_object_set_new(body, "waiting", json_array());

        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(body)));
        return;
    }

    if (ngx_http_telehealth_live_query(r, body, "members_of", "HGETALL",
            ngx_http_telehealth_live_members_all)
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
    }
}


/* sends "cmd <members hash of the room named by body's field>" */

static ngx_int_t
ngx_http_telehealth_live_query(ngx_http_request_t *r, json_t *body,
    const char *field, const char *cmd,
    void (*handler)(void *data, redisReply *reply))
{
    char                       *key;
    json_t                     *value, *room;
    size_t                      argvlen[2];
    const char                 *argv[2];
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_live_t *live;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    live = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_live_t));
    if (live == NULL
        || ngx_http_telehealth_json_track(r->pool, json_incref(body)) == NULL)
    {
        return NGX_ERROR;
    }

    value = json_object_get(body, field);
    room = json_is_object(value) ? json_object_get(value, "room") : value;

    if (!json_is_string(room)) {
        return NGX_ERROR;
    }

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM_MEMBERS,
        json_string_value(room));
    if (key == NULL) {
        return NGX_ERROR;
    }

    live->body = body;

    if (json_is_object(value)) {
        live->check =
            ngx_http_telehealth_json_track(r->pool, json_incref(value));
        json_object_del(body, field);

    } else {
        json_object_del(body, field);
    }

    ctx->data = live;

    argv[0] = cmd;
    argvlen[0] = ngx_strlen(cmd);
    argv[1] = key;
    argvlen[1] = ngx_strlen(key);

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log, handler,
            r, 2, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_live_access_keys(void *data, redisReply *reply)
{
    size_t                      i;
    json_t                     *removed, *room, *publish;
    redisReply                 *m;
    ngx_http_request_t         *r = data;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_live_t *live;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    live = ctx->data;

    removed = json_array();
    if (removed == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_object_set_new(live->body, "removed", removed);

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        /* the change is committed; the room is left as it is */
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
            "telehealth: access changed, but the room's members "
            "could not be read");
        json_object_set_new(live->body, "command_id", json_null());

        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
                json_incref(live->body)));
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        m = reply->element[i];

        if (m->type != REDIS_REPLY_STRING) {
            continue;
        }

        if (!ngx_http_telehealth_live_qualifies(live->check, m->str, m->len)) {
            json_array_append_new(removed, json_stringn(m->str, m->len));
        }
    }

    if (json_array_size(removed) == 0) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
                json_incref(live->body)));
        return;
    }

    room = json_object_get(live->check, "room");

    publish = json_pack("{s:O, s:{s:s, s:O, s:O}, s:O}", "room", room,
        "command", "command", "access_changed", "room", room, "participants",
        removed, "reply", live->body);
    if (publish == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_command_publish(r, publish);
    json_decref(publish);
}


/*
 * private: only the people on the participant list ("participants": their
 * participant ids, listed staff and patients, and the invite links of
 * listed patients, a redeemed link's ".n" suffix included); internal: also
 * any staff of the organisation (only they can have joined as staff);
 * invitation: anyone.
 */

static ngx_uint_t
ngx_http_telehealth_live_qualifies(json_t *check, const char *member,
    size_t len)
{
    size_t      i, n;
    json_t     *access, *listed, *id;
    const char *level;

    access = json_object_get(check, "access");
    level = json_is_string(access) ? json_string_value(access) : "";

    if (ngx_strcmp(level, "invitation") == 0) {
        return 1;
    }

    if (ngx_strcmp(level, "internal") == 0 && len > sizeof("staff:") - 1
        && ngx_strncmp(member, "staff:", sizeof("staff:") - 1) == 0)
    {
        return 1;
    }

    listed = json_object_get(check, "participants");

    json_array_foreach (listed, i, id) {
        if (!json_is_string(id)) {
            continue;
        }

        n = json_string_length(id);

        if (n <= len && ngx_strncmp(json_string_value(id), member, n) == 0
            && (n == len || member[n] == '.'))
        {
            return 1;
        }
    }

    return 0;
}


static void
ngx_http_telehealth_live_members_all(void *data, redisReply *reply)
{
    size_t                      i;
    json_t                     *in, *waiting, *entry, *state;
    redisReply                 *field, *value;
    ngx_http_request_t         *r = data;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_live_t *live;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    live = ctx->data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    in = json_array();
    waiting = json_array();

    if (in == NULL || waiting == NULL) {
        json_decref(in);
        json_decref(waiting);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_object_set_new(live->body, "participants", in);
    json_object_set_new(live->body, "waiting", waiting);

    for (i = 0; i + 1 < reply->elements; i += 2) {
        field = reply->element[i];
        value = reply->element[i + 1];

        if (field->type != REDIS_REPLY_STRING
            || value->type != REDIS_REPLY_STRING)
        {
            continue;
        }

        entry = json_loadb(value->str, value->len, 0, NULL);
        if (!json_is_object(entry)) {
            json_decref(entry);
            continue;
        }

        json_object_set_new(entry, "participant",
            json_stringn(field->str, field->len));

        state = json_object_get(entry, "state");

        if (json_is_string(state)
            && ngx_strcmp(json_string_value(state), "waiting") == 0)
        {
            json_array_append_new(waiting, entry);

        } else {
            json_array_append_new(in, entry);
        }
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(live->body)));
}


/* DELETE /sessions/{id}/bans/{participant}, after PostgreSQL lifted it */

void
ngx_http_telehealth_live_ban_lifted(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    char                      *key;
    const char                *argv[3];
    size_t                     argvlen[3];
    ngx_uint_t                 i;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_SESSION_BANNED,
        json_string_value(json_object_get(body, "session_id")));

    argv[0] = "SREM";
    argv[1] = key;
    argv[2] = json_string_value(json_object_get(body, "participant"));

    if (key == NULL || argv[2] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the answer, once Redis has it too */
    ctx->data = json_incref(body);
    if (ngx_http_telehealth_json_track(r->pool, ctx->data) == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    for (i = 0; i < 3; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_live_unbanned, r, 3, argv, argvlen)
        != NGX_OK)
    {
        /* lifted in PostgreSQL: the reconciler rebuilds the set from it */
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_live_unbanned(void *data, redisReply *reply)
{
    ngx_http_request_t        *r = data;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, json_incref(ctx->data)));
}
