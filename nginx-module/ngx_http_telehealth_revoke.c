/*
 * Cutting a person off at once (deactivation, a new password).
 *
 * 1. PostgreSQL lists the open rooms of the person's organisation
 *    (th_person_open_rooms(), sql/functions/lifecycle.sql).
 * 2. One Redis script sets <prefix>person:<id>:nbf to now, for as long as
 *    an access token lives, adds it to the revocations every nginx keeps
 *    (ngx_http_telehealth_revocations.c), and publishes "remove" to the
 *    node hosting each of those rooms the person is a member of.  nginx
 *    refuses every token of the person issued at or before that second.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_revoke.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_revocations.h"
#include "th_lua.h"


#define NGX_HTTP_TELEHEALTH_REVOKE_ROOMS_MAX 256


static const char ngx_http_telehealth_revoke_rooms_sql[] =
    "SELECT room FROM th_person_open_rooms($1::uuid) LIMIT 256";

/* KEYS, ARGV and answer: common/lua/revoke.lua */
#define ngx_http_telehealth_revoke_lua th_lua_revoke


typedef struct {
    ngx_http_request_t            *request;
    ngx_http_telehealth_handler_pt next;
    const char                    *type;
    const char                    *id;
    time_t                         now; /* "not before" */
    ngx_http_telehealth_pg_req_t  *pg;
} ngx_http_telehealth_revoke_t;


static void ngx_http_telehealth_revoke_rooms(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_revoke_done(void *data, redisReply *reply);


void
ngx_http_telehealth_revoke_person(ngx_http_request_t *r, const char *type,
    const char *id, ngx_http_telehealth_handler_pt next)
{
    const char                  **params;
    ngx_http_telehealth_revoke_t *rv;

    rv = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_revoke_t));
    params = ngx_palloc(r->pool, sizeof(char *));

    if (rv == NULL || params == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rv->request = r;
    rv->next = next;
    rv->type = type;
    rv->id = id;

    rv->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (rv->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    params[0] = id;
    rv->pg->handler = ngx_http_telehealth_revoke_rooms;
    rv->pg->data = rv;

    if (ngx_http_telehealth_pg_query(rv->pg,
            ngx_http_telehealth_revoke_rooms_sql, 1, params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_revoke_rooms(ngx_http_telehealth_pg_req_t *pg)
{
    int                        n, argc, i, k;
    char                      *key, *participant, *channel, *set, *revocations;
    u_char                    *p;
    size_t                    *argvlen;
    const char               **argv;
    ngx_http_request_t        *r;
    ngx_http_telehealth_ctx_t *ctx;
    ngx_http_telehealth_revoke_t *rv;
    char                          cmd_id[TH_TOKEN_ID_LEN + 1];

    rv = pg->data;
    r = rv->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    n = PQntuples(pg->result);
    if (n > NGX_HTTP_TELEHEALTH_REVOKE_ROOMS_MAX) {
        n = NGX_HTTP_TELEHEALTH_REVOKE_ROOMS_MAX;
    }

    argc = 4 + 1 + 8 + 3 * n;
    argv = ngx_palloc(r->pool, argc * sizeof(char *));
    argvlen = ngx_palloc(r->pool, argc * sizeof(size_t));
    p = ngx_pnalloc(r->pool, 3 * (NGX_TIME_T_LEN + 1));
    participant =
        ngx_pnalloc(r->pool, ngx_strlen(rv->type) + 1 + ngx_strlen(rv->id) + 1);
    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_PERSON_NBF, rv->id);
    channel = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE_COMMANDS, "");
    set = ngx_http_telehealth_redis_key(r->pool, TH_KEY_REVOCATIONS, "");
    revocations = set;

    if (argv == NULL || argvlen == NULL || p == NULL || participant == NULL
        || key == NULL || channel == NULL || set == NULL
        || th_token_new_id(cmd_id, sizeof(cmd_id)) != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    (void) ngx_sprintf((u_char *) participant, "%s:%s%Z", rv->type, rv->id);

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_revoke_lua;
    argv[2] = (char *) p;
    p = ngx_sprintf(p, "%d%Z", 2 + 2 * n);
    argv[3] = key;

    k = 4;

    for (i = 0; i < n; i++) {
        argv[k] = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
            PQgetvalue(pg->result, i, 0));
        argv[k + 1] = ngx_http_telehealth_redis_key(r->pool,
            TH_KEY_ROOM_MEMBERS, PQgetvalue(pg->result, i, 0));
        if (argv[k] == NULL || argv[k + 1] == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        k += 2;
    }

    argv[k++] = set;
    argv[k++] = (char *) p;
    rv->now = ngx_time();
    p = ngx_sprintf(p, "%T%Z", rv->now);
    argv[k++] = (char *) p;
    p = ngx_sprintf(p, "%T%Z", ctx->mcf->access_token_ttl + 60);
    argv[k++] = channel;
    argv[k++] = participant;
    argv[k++] = TH_CMD_REMOVE;

    argv[k] = ngx_pnalloc(r->pool, sizeof(cmd_id));
    if (argv[k] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy((char *) argv[k], cmd_id, sizeof(cmd_id));
    k++;
    argv[k++] = revocations;
    argv[k++] = rv->id;

    for (i = 0; i < n; i++) {
        argv[k++] = PQgetvalue(pg->result, i, 0);
    }

    for (i = 0; i < k; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    /* the rooms' ids are copied into the command by hiredis */
    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_revoke_done, rv, k, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    ngx_http_telehealth_pg_release(pg);
}


static void
ngx_http_telehealth_revoke_done(void *data, redisReply *reply)
{
    ngx_str_t                     id;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_revoke_t *rv = data;

    r = rv->request;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: revoking %s:%s failed: %s", rv->type, rv->id,
            reply && reply->type == REDIS_REPLY_ERROR ? reply->str
                                                      : "Redis unavailable");
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    /* at once on this node; the others from the revocations channel */
    id.data = (u_char *) rv->id;
    id.len = ngx_strlen(rv->id);
    ngx_http_telehealth_revocations_person(&id, rv->now,
        rv->now + ctx->mcf->access_token_ttl + 60);

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
        "telehealth: tokens of %s:%s revoked, removed from %i "
        "room(s)",
        rv->type, rv->id, (ngx_int_t) reply->integer);

    rv->next(r);
}
