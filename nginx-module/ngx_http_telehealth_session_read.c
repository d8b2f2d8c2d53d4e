/*
 * Reading sessions: GET /sessions/{id}, and the filter of a patient's
 * GET /sessions that keeps only the sessions whose room is open (Redis
 * decides, docs/redis.md).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_session_shared.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


/*
 * $1 caller, $2 org, $3 "staff" or "patient", $4 the session, $5 client
 * address.  Patients only ever see sessions whose room may be open; Redis
 * decides.  Reading a session is audited (th_session_get()).
 */
static const char ngx_http_telehealth_get_sql[] =
    "SELECT * FROM th_session_get($1, $2, $3, $4, $5)";


/* KEYS, ARGV and answer: common/lua/open_rooms.lua */
#define ngx_http_telehealth_open_rooms_lua th_lua_open_rooms


typedef struct {
    json_t     *answer; /* a session, or a page of them */
    json_t     *items;  /* the sessions in it */
    ngx_uint_t  single;
    const char *params[5];
} ngx_http_telehealth_list_t;


static void ngx_http_telehealth_get_found(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_list_check_open(ngx_http_request_t *r);
static void ngx_http_telehealth_list_filtered(void *data, redisReply *reply);


/*
 * GET /sessions is th_api('session_list'); a patient's page carries
 * "open_only": of its sessions only those whose room is open are shown.
 * Staff see the page as it is.
 */

void
ngx_http_telehealth_session_list_open(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body)
{
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_list_t *ls;

    if (json_object_get(body, "open_only") == NULL) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, status, json_incref(body)));
        return;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    ls = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_list_t));
    if (ls == NULL
        || ngx_http_telehealth_json_track(r->pool, json_incref(body)) == NULL)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    json_object_del(body, "open_only");

    ls->answer = body;
    ls->items = json_object_get(body, "items");
    ctx->data = ls;

    if (!json_is_array(ls->items)) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_list_check_open(r);
}


/* GET /sessions/{id} */

void
ngx_http_telehealth_session_get(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_list_t *ls;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    ls = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_list_t));
    if (ls == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ls->single = 1;
    ctx->data = ls;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_get_sql,
        ls->params, 1, ngx_http_telehealth_get_found);
}


/*
 * runs sql with the caller's id, org and type, and the {id} if with_id;
 * answers 404 itself when the {id} is no session id, 503 when the query
 * cannot be sent
 */

void
ngx_http_telehealth_session_query(ngx_http_request_t *r, const char *sql,
    const char **params, ngx_uint_t with_id,
    ngx_http_telehealth_pg_handler_pt handler)
{
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (with_id) {
        if (!ngx_http_telehealth_is_uuid((char *) ctx->id.data, ctx->id.len)) {
            ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
                "No such session.");
            return;
        }

        ngx_strlow(ctx->id.data, ctx->id.data, ctx->id.len);
    }

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        goto failed;
    }

    ctx->pg->handler = handler;
    ctx->pg->data = r;

    params[0] = (char *) ctx->caller.id.data;
    params[1] = (char *) ctx->caller.org.data;
    params[2] = ctx->caller.staff ? "staff" : "patient";
    params[3] = with_id ? (char *) ctx->id.data : NULL;
    params[4] = ngx_http_telehealth_client_addr(r);

    if (params[4] != NULL
        && ngx_http_telehealth_pg_query(ctx->pg, sql, 5, params) == NGX_AGAIN)
    {
        return;
    }

failed:

    ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
}


static void
ngx_http_telehealth_get_found(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                     *session;
    ngx_http_request_t         *r;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_list_t *ls;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ls = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
            "No such session.");
        return;
    }

    session = json_loads(PQgetvalue(pg->result, 0, 0), 0, NULL);
    ls->items = ngx_http_telehealth_json_track(r->pool, json_array());

    if (session == NULL || ls->items == NULL
        || json_array_append_new(ls->items, session) != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->caller.staff) {
        ngx_http_telehealth_finalize(r, ngx_http_telehealth_send_json(r,
                                            NGX_HTTP_OK, json_incref(session)));
        return;
    }

    ngx_http_telehealth_list_check_open(r);
}


/* a patient sees a session only while its room is open: asks Redis */

static void
ngx_http_telehealth_list_check_open(ngx_http_request_t *r)
{
    size_t                      i, n;
    char                      **argv;
    size_t                     *argvlen;
    json_t                     *session, *room, *id;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_list_t *ls;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ls = ctx->data;

    n = json_array_size(ls->items);

    if (n == 0) {
        ngx_http_telehealth_list_filtered(r, NULL);
        return;
    }

    argv = ngx_palloc(r->pool, (3 + 2 * n) * sizeof(char *));
    argvlen = ngx_palloc(r->pool, (3 + 2 * n) * sizeof(size_t));

    if (argv == NULL || argvlen == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "EVAL";
    argv[1] = (char *) ngx_http_telehealth_open_rooms_lua;
    argv[2] = (char *) ngx_pnalloc(r->pool, NGX_INT_T_LEN + 1);

    if (argv[2] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf((u_char *) argv[2], "%uz%Z", n);

    json_array_foreach (ls->items, i, session) {
        room = json_object_get(session, "room");
        id = json_object_get(session, "id");

        argv[3 + i] = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
            json_is_string(room) ? json_string_value(room) : "");
        argv[3 + n + i] =
            json_is_string(id) ? (char *) json_string_value(id) : "";

        if (argv[3 + i] == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    for (i = 0; i < 3 + 2 * n; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_list_filtered, r, 3 + 2 * n,
            (const char **) argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/* open: 1 or 0 per session, whether its room is open; NULL: none asked */

static void
ngx_http_telehealth_list_filtered(void *data, redisReply *open)
{
    size_t                      i, n;
    ngx_http_request_t         *r = data;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_list_t *ls;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ls = ctx->data;

    n = json_array_size(ls->items);

    if (n && (open == NULL || open->type != REDIS_REPLY_ARRAY)) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    /* from the end: removing an item shifts those after it */
    for (i = n; i-- > 0; /* void */) {
        if (i >= open->elements || open->element[i]->type != REDIS_REPLY_INTEGER
            || open->element[i]->integer != 1)
        {
            json_array_remove(ls->items, i);
        }
    }

    if (!ls->single) {
        ngx_http_telehealth_finalize(r,
            ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
                json_incref(ls->answer)));
        return;
    }

    if (json_array_size(ls->items) == 0) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
            "No such session.");
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
            json_incref(json_array_get(ls->items, 0))));
}
