/*
 * Join credentials: POST /sessions/{id}/join.  The caller's place in the
 * session comes from PostgreSQL, the room's state from Redis; the first
 * join of a scheduled or idle session's opener opens its room with the
 * room script of a start (ngx_http_telehealth_session.c).  The answer
 * carries the room, the Janus node to join at (placement: docs/redis.md,
 * "Nodes and placement"), its URL and the signed credential.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_session_shared.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


#define NGX_HTTP_TELEHEALTH_JANUS_PATH "/janus"


/*
 * $1 caller, $2 org, $3 "staff" or "patient", $4 session, $5 address.
 * Staff of the session's organisation who are not on the list join an
 * internal or invitation session as broadcaster (docs/features.md 7-8);
 * the column "unlisted" tells the credential so, "banned" that a chair
 * removed the caller (th_session_join()).
 */
static const char ngx_http_telehealth_join_sql[] =
    "SELECT * FROM th_session_join($1, $2, $3, $4, $5)";

/*
 * The first join of its opener opened a scheduled session's room: $1
 * caller, $2 org, $3 "staff", $4 session, $5 address, $6 the room.  No
 * row when it was cancelled or opened by someone else meanwhile.
 */
static const char ngx_http_telehealth_opened_sql[] =
    "SELECT * FROM th_session_opened($1, $2, $3, $4, $5, $6)";


/* KEYS, ARGV and answer: common/lua/join_check.lua */
#define ngx_http_telehealth_join_check_lua th_lua_join_check


static void ngx_http_telehealth_join_found(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_join_guest_token(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *answer);
static void ngx_http_telehealth_join_room(void *data, redisReply *reply);
static void ngx_http_telehealth_join_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, PGresult *res);
static void ngx_http_telehealth_join_opened(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_join_node(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, redisReply *reply);
static void ngx_http_telehealth_join_again(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);


/* POST /sessions/{id}/join */

void
ngx_http_telehealth_session_join(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    jn = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_join_t));
    if (jn == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = jn;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_join_sql,
        jn->params, 1, ngx_http_telehealth_join_found);
}


static void
ngx_http_telehealth_join_found(ngx_http_telehealth_pg_req_t *pg)
{
    PGresult                   *res;
    ngx_str_t                   refusal;
    ngx_uint_t                  scheduled;
    ngx_http_request_t         *r;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    res = pg->result;

    if (PQntuples(res) != 1) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
            "No such session.");
        return;
    }

    if (*PQgetvalue(res, 0, 5) != 't') {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    if (*PQgetvalue(res, 0, 11) == 't') {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_BANNED, NULL);
        return;
    }

    /* the caregiver of a visit, not clocked in yet */
    if (!PQgetisnull(res, 0, 12)) {
        if (ngx_http_telehealth_pg_value(r->pool, res, 0, 12, &refusal)
            != NGX_OK)
        {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_CLOCK_IN_REQUIRED,
            (char *) refusal.data);
        return;
    }

    /* no room yet, or none since a chair kept the session (idle) */
    scheduled = (ngx_strcmp(PQgetvalue(res, 0, 2), "scheduled") == 0
                 || ngx_strcmp(PQgetvalue(res, 0, 2), "idle") == 0);

    /* a scheduled or idle session opens on its opener's first join */
    if (scheduled && *PQgetvalue(res, 0, 8) != 't') {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN,
            "The session has not started yet.");
        return;
    }

    if (!scheduled
        && (PQgetisnull(res, 0, 0)
            || ngx_strcmp(PQgetvalue(res, 0, 2), "open") != 0))
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN, NULL);
        return;
    }

    if ((!scheduled
            && ngx_http_telehealth_pg_value(r->pool, res, 0, 0, &jn->room))
        || ngx_http_telehealth_pg_value(r->pool, res, 0, 1, &jn->kind)
        || ngx_http_telehealth_pg_value(r->pool, res, 0, 3, &jn->role)
        || ngx_http_telehealth_pg_value(r->pool, res, 0, 4, &jn->name))
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->session = ctx->id;
    jn->org = ctx->caller.org;
    jn->unlisted = (*PQgetvalue(res, 0, 10) == 't');

    jn->sub.data =
        ngx_pnalloc(r->pool, sizeof("patient:") + ctx->caller.id.len);
    if (jn->sub.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->sub.len = ngx_sprintf(jn->sub.data, "%s:%V%Z",
                      ctx->caller.staff ? "staff" : "patient", &ctx->caller.id)
                  - jn->sub.data - 1;

    if (scheduled) {
        ngx_http_telehealth_join_open(r, jn, res);
        return;
    }

    ngx_http_telehealth_join_check_room(r, jn);
}


/* the opener of a scheduled session: its room opens as POST /sessions's */

static void
ngx_http_telehealth_join_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, PGresult *res)
{
    json_t                      *fields;
    ngx_str_t                    created_by;
    ngx_http_telehealth_start_t *st;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_start_t));
    if (st == NULL || PQgetisnull(res, 0, 9)
        || (!PQgetisnull(res, 0, 6)
            && ngx_http_telehealth_pg_value(r->pool, res, 0, 6, &st->patient))
        || ngx_http_telehealth_pg_value(r->pool, res, 0, 7, &created_by))
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    fields = ngx_http_telehealth_json_track(r->pool,
        json_loads(PQgetvalue(res, 0, 9), 0, NULL));
    if (fields == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->session = jn->session;
    st->kind = jn->kind;
    jn->open = st;

    ngx_http_telehealth_room_open(r, st, (char *) created_by.data, fields,
        ngx_http_telehealth_join_locked);
}


void
ngx_http_telehealth_join_locked(void *data, redisReply *reply)
{
    ngx_http_request_t          *r = data;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;
    ngx_http_telehealth_start_t *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;
    st = jn->open;

    switch (ngx_http_telehealth_room_taken(r, st, reply)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        if (reply->type != REDIS_REPLY_STRING) {
            ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
                NGX_HTTP_TELEHEALTH_IN_SESSION);
            return;
        }

        /*
         * the room that holds the patient's lock: this session's if
         * another opener was first, which join_room tells by its hash
         */
        jn->room.len = reply->len;
        jn->room.data = ngx_pnalloc(r->pool, reply->len + 1);
        if (jn->room.data == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_memcpy(jn->room.data, reply->str, reply->len);
        jn->room.data[jn->room.len] = '\0';
        jn->racing = 1;

        ngx_http_telehealth_join_check_room(r, jn);
        return;
    default:
        return;
    }

    jn->params[5] = (char *) st->room.data;

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_join_opened;
    ctx->pg->data = r;

    /* params 0-4 are still those of the join query */
    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_opened_sql, 6,
            jn->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_join_opened(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t         *r;
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_start_release(jn->open);
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1) {
        /* cancelled, or opened by someone else, meanwhile */
        ngx_http_telehealth_start_release(jn->open);

        if (jn->redeem) {
            ngx_http_telehealth_redeem_query(r, jn);
            return;
        }

        ngx_http_telehealth_join_again(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN,
            NULL);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
        "telehealth: scheduled session %s opened in room %s", jn->session.data,
        jn->open->room.data);

    if (jn->redeem) {
        /* the link is spent now, into the open session */
        ngx_http_telehealth_redeem_query(r, jn);
        return;
    }

    jn->room = jn->open->room;

    ngx_http_telehealth_join_check_room(r, jn);
}


/*
 * A scheduled session cancelled, or opened by another, between reading it
 * and recording its room: the join starts over once, and joins that room
 * if it is open now.
 */

static void
ngx_http_telehealth_join_again(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail)
{
    ngx_http_telehealth_ctx_t  *ctx;
    ngx_http_telehealth_join_t *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (jn->retried) {
        ngx_http_telehealth_fail(r, problem, detail);
        return;
    }

    jn->retried = 1;
    jn->open = NULL;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_join_sql,
        jn->params, 1, ngx_http_telehealth_join_found);
}


/*
 * Whether the room is open in Redis and, for a patient, which room holds
 * their lock; where the caller joins (the host, or the node the room is
 * placed on now); then the credential (join_room).
 */

void
ngx_http_telehealth_join_check_room(ngx_http_request_t *r,
    ngx_http_telehealth_join_t                         *jn)
{
    char       *key, *lock, *nodes, *node_prefix, *drain_prefix;
    const char *argv[9];
    size_t      argvlen[9];
    ngx_uint_t  i;

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
        (char *) jn->room.data);

    if (ngx_strncmp(jn->sub.data, "patient:", sizeof("patient:") - 1) == 0) {
        lock = ngx_http_telehealth_redis_key(r->pool, TH_KEY_PATIENT_LOCK,
            (char *) jn->sub.data + sizeof("patient:") - 1);
    } else {
        lock = "";
    }

    nodes = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODES, "");
    node_prefix = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE, "");
    drain_prefix =
        ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE_DRAIN, "");

    if (key == NULL || lock == NULL || nodes == NULL || node_prefix == NULL
        || drain_prefix == NULL)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_join_check_lua;
    argv[2] = "3";
    argv[3] = key;
    argv[4] = lock;
    argv[5] = nodes;
    argv[6] = (char *) jn->session.data;
    argv[7] = node_prefix;
    argv[8] = drain_prefix;

    for (i = 0; i < 9; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_join_room, r, 9, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_join_room(void *data, redisReply *reply)
{
    char                            *credential;
    json_t                          *claims, *answer;
    time_t                           now;
    ngx_http_request_t              *r = data;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_join_t      *jn;
    ngx_http_telehealth_main_conf_t *mcf;
    char                             jti[TH_TOKEN_ID_LEN + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;
    mcf = ctx->mcf;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 5)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    /* a patient in another room (the plugin enforces it at the join) */
    if (reply->element[2]->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->element[2]->str, jn->room.data) != 0)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
            NGX_HTTP_TELEHEALTH_IN_SESSION);
        return;
    }

    /* the room may have closed, or lapsed, since PostgreSQL last heard */
    if (reply->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[0]->str, TH_ROOM_OPEN) != 0
        || reply->element[1]->type != REDIS_REPLY_STRING
        || ngx_strcmp(reply->element[1]->str, jn->session.data) != 0)
    {
        if (jn->racing) {
            /* the patient's lock is another session's room */
            ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
                NGX_HTTP_TELEHEALTH_IN_SESSION);
            return;
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN, NULL);
        return;
    }

    if (ngx_http_telehealth_join_node(r, jn, reply) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (th_token_new_id(jti, sizeof(jti)) != 0) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    now = ngx_time();

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
                       " s:I, s:I}",
        "iss", TH_ISSUER, "aud", TH_AUD_JOIN, "sub", jn->sub.data, "room",
        jn->room.data, "session", jn->session.data, "org", jn->org.data, "kind",
        jn->kind.data, "role", jn->role.data, "name", jn->name.data, "jti", jti,
        "iat", (json_int_t) now, "exp",
        (json_int_t) (now + mcf->join_token_ttl));

    if (claims == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if ((jn->unlisted
            && json_object_set_new(claims, "unlisted", json_true()) != 0)
        || (jn->preadmitted
            && json_object_set_new(claims, "admitted", json_true()) != 0))
    {
        json_decref(claims);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    credential = th_token_sign(mcf->join_keyset, claims);
    json_decref(claims);

    if (credential == NULL) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
            "telehealth: cannot sign a join credential");
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    answer = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "credential",
        credential, "expires_in", (json_int_t) mcf->join_token_ttl, "room",
        jn->room.data, "role", jn->role.data, "plugin", TH_PLUGIN_PACKAGE,
        "janus_path", NGX_HTTP_TELEHEALTH_JANUS_PATH);
    free(credential);

    if (answer != NULL && jn->node.len > 0
        && (json_object_set_new(answer, "node",
                json_string((char *) jn->node.data))
                != 0
            || (jn->url.len > 0
                && json_object_set_new(answer, "janus_url",
                       json_string((char *) jn->url.data))
                       != 0)))
    {
        json_decref(answer);
        answer = NULL;
    }

    /* a link's holder also gets the session's chat (docs/api.md, "Chat") */
    if (answer != NULL && jn->redeem
        && ngx_http_telehealth_join_guest_token(r, jn, answer) != NGX_OK)
    {
        json_decref(answer);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_OK, answer));
}


/*
 * An access token of type "guest" for the invite (its id the subject): it
 * reaches the session's chat and the event stream only
 * (ngx_http_telehealth_authenticate()), and th_api() refuses it once the
 * link is revoked.
 */

static ngx_int_t
ngx_http_telehealth_join_guest_token(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *answer)
{
    char                            *token;
    json_t                          *claims;
    time_t                           now;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_main_conf_t *mcf;
    char                             jti[TH_TOKEN_ID_LEN + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    mcf = ctx->mcf;

    if (jn->sub.len <= sizeof("guest:") - 1
        || th_token_new_id(jti, sizeof(jti)) != 0)
    {
        return NGX_ERROR;
    }

    now = ngx_time();

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:I}", "iss",
        TH_ISSUER, "aud", TH_AUD_API, "sub",
        jn->sub.data + sizeof("guest:") - 1, "typ", "guest", "org",
        jn->org.data, "name", jn->name.data, "jti", jti, "iat",
        (json_int_t) now, "exp", (json_int_t) (now + mcf->access_token_ttl));
    if (claims == NULL) {
        return NGX_ERROR;
    }

    token = th_token_sign(mcf->keyset, claims);
    json_decref(claims);

    if (token == NULL) {
        return NGX_ERROR;
    }

    if (json_object_set_new(answer, "access_token", json_string(token)) != 0
        || json_object_set_new(answer, "access_token_expires_in",
               json_integer(mcf->access_token_ttl))
               != 0
        || json_object_set_new(answer, "session_id",
               json_string((char *) jn->session.data))
               != 0)
    {
        free(token);
        return NGX_ERROR;
    }

    free(token);

    return NGX_OK;
}


/* The node join_check.lua placed the caller on, and its public URL. */

static ngx_int_t
ngx_http_telehealth_join_node(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, redisReply *reply)
{
    ngx_uint_t  i;
    ngx_str_t  *to[2];
    redisReply *e;

    to[0] = &jn->node;
    to[1] = &jn->url;

    for (i = 0; i < 2; i++) {
        e = reply->element[3 + i];
        ngx_str_null(to[i]);

        if (e->type != REDIS_REPLY_STRING || e->len == 0) {
            continue;
        }

        to[i]->data = ngx_pnalloc(r->pool, e->len + 1);
        if (to[i]->data == NULL) {
            return NGX_ERROR;
        }

        ngx_memcpy(to[i]->data, e->str, e->len);
        to[i]->data[e->len] = '\0';
        to[i]->len = e->len;
    }

    if (jn->node.len > 0) {
        ngx_log_debug2(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
            "telehealth: room %s joins at node %s", jn->room.data,
            jn->node.data);
    }

    return NGX_OK;
}
