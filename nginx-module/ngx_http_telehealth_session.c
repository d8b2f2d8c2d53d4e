/*
 * Starting sessions: POST /sessions and POST /appointments/{id}/session,
 * every kind of docs/features.md 2 with its preset policies
 * (th_session_plan() computes them, with the caller's overrides, in the
 * same query as the access check) written into the room hash.
 *
 * Starting one takes the patient's one-room lock and creates the room hash
 * in one Redis script, so two staff members racing for the same patient on
 * any number of nginx instances cannot both win; only the winner writes the
 * session to PostgreSQL.  If that write fails the lock and the room are
 * given back (compare-and-delete), so a failed start leaves nothing behind.
 * The same room script opens a scheduled session on its opener's first
 * join (ngx_http_telehealth_join.c).
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_session_shared.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


#define NGX_HTTP_TELEHEALTH_ROOM_BYTES 16
#define NGX_HTTP_TELEHEALTH_ROOM_BUF   25 /* base64 of 16 bytes, NUL */
#define NGX_HTTP_TELEHEALTH_OPEN_ARGS  48 /* of the room script */


/* $1 staff, $2 patient (NULL: none), $3 organisation, $4 kind, $5 the
 * body (sql/functions/sessions.sql) */
static const char ngx_http_telehealth_access_sql[] =
    "SELECT * FROM th_session_start_check($1, $2, $3, $4, $5)";

/*
 * A refused start leaves its audit row too: $1 org, $2 caller, $3 "staff"
 * or "patient", $4 the patient id as the request gave it, $5 client
 * address, $6 the status.
 */
static const char ngx_http_telehealth_refused_sql[] =
    "SELECT th_audit(jsonb_build_object('addr', $5::text),"
    " ROW($2::uuid, $1::uuid, $3, NULL)::th_caller, 'session_create',"
    " 'patient', $4, $6::integer)";

/* $1 session, $2 org, $3 kind, $4 patient, $5 staff, $6 room (NULL: the
 * session is scheduled), $7 time, $8 client address, $9 the plan of
 * th_session_plan(), $10 the delay of the video_call SMS in ms, which
 * goes into the outbox in the same statement */
static const char ngx_http_telehealth_insert_sql[] =
    "SELECT th_session_insert($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)";

/*
 * A session created from an appointment invites the patient and the
 * appointment's guests in the same step: $1 session, $2 caller, $3
 * telehealth_public_url.
 */
static const char ngx_http_telehealth_appointment_invite_sql[] =
    "SELECT th_appointment_invite($1::uuid, $2::uuid, $3)::text";


/* KEYS, ARGV and answer: common/lua/open.lua */
#define ngx_http_telehealth_open_lua th_lua_open

/* KEYS, ARGV and answer: common/lua/release.lua */
#define ngx_http_telehealth_release_lua th_lua_release


/* a refused start: the answer once its audit row is written */
typedef struct {
    ngx_http_telehealth_problem_e problem;
    const char                   *detail;
    u_char                        status[NGX_INT_T_LEN + 1];
    const char                   *params[6];
} ngx_http_telehealth_refusal_t;


static void ngx_http_telehealth_session_start(ngx_http_request_t *r);
static void ngx_http_telehealth_start_refuse(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);
static void ngx_http_telehealth_start_refused(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_access(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_locked(void *data, redisReply *reply);
static void ngx_http_telehealth_start_save(ngx_http_request_t *r,
    ngx_http_telehealth_start_t                               *st);
static void ngx_http_telehealth_start_saved(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_invited(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_answer(ngx_http_request_t *r,
    ngx_http_telehealth_start_t                                 *st);
static void ngx_http_telehealth_start_cleanup(void *data);


/* POST /sessions */

void
ngx_http_telehealth_session_create(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    /* only POST /appointments/{id}/session links a session to one */
    if (ctx->body != NULL) {
        json_object_del(ctx->body, "appointment_id");
    }

    ngx_http_telehealth_session_start(r);
}


/*
 * POST /appointments/{id}/session: th_api('appointment_session') checked
 * the appointment and answered the body of POST /sessions that starts it.
 */

void
ngx_http_telehealth_session_from_appointment(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body)
{
    json_t                    *request;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    request = json_object_get(body, "session_request");

    if (!json_is_object(request)
        || ngx_http_telehealth_json_track(r->pool, json_incref(request))
               == NULL)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->body = request;

    ngx_http_telehealth_session_start(r);
}


static void
ngx_http_telehealth_session_start(ngx_http_request_t *r)
{
    char                        *text;
    json_t                      *kind, *patient;
    const char                 **params;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_start_t *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ctx->caller.staff) {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_FORBIDDEN,
            "Only staff can start a session.");
        return;
    }

    if (ctx->body == NULL) {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
            "A JSON body is required.");
        return;
    }

    kind = json_object_get(ctx->body, "kind");
    patient = json_object_get(ctx->body, "patient_id");

    if (!json_is_string(kind)) {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "\"kind\" is required.");
        return;
    }

    /* whether the kind needs a patient, PostgreSQL tells (start_access) */
    if (json_is_null(patient)) {
        patient = NULL;
    }

    if (json_string_length(kind) == 0 || json_string_length(kind) > 32) {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "This kind of session is not supported.");
        return;
    }

    if (patient != NULL
        && (!json_is_string(patient)
            || !ngx_http_telehealth_is_uuid(json_string_value(patient),
                json_string_length(patient))))
    {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "\"patient_id\" is not a valid id.");
        return;
    }

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_start_t));
    if (st == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (patient != NULL) {
        /* lower case, as PostgreSQL prints it and the plugin compares it */
        st->patient.len = NGX_HTTP_TELEHEALTH_UUID_LEN;
        st->patient.data = ngx_pnalloc(r->pool, st->patient.len + 1);
        if (st->patient.data == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }

        ngx_strlow(st->patient.data, (u_char *) json_string_value(patient),
            st->patient.len);
        st->patient.data[st->patient.len] = '\0';
    }

    ctx->data = st;

    st->kind.data = (u_char *) json_string_value(kind);
    st->kind.len = json_string_length(kind);

    text = json_dumps(ctx->body, JSON_COMPACT);
    if (text == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->body.len = ngx_strlen(text);
    st->body.data = ngx_pnalloc(r->pool, st->body.len + 1);
    if (st->body.data == NULL) {
        free(text);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(st->body.data, text, st->body.len + 1);
    free(text);

    params = st->params;
    params[0] = (char *) ctx->caller.id.data;
    params[1] = (char *) st->patient.data;
    params[2] = (char *) ctx->caller.org.data;
    params[3] = (char *) st->kind.data;
    params[4] = (char *) st->body.data;

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_start_access;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_access_sql, 5,
            params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_access(ngx_http_telehealth_pg_req_t *pg)
{
    char                         *role;
    json_t                       *plan, *error, *fields;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_start_t  *st;
    ngx_http_telehealth_problem_e problem;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1 || *PQgetvalue(pg->result, 0, 1) != 't') {
        /* the caller's account is gone or deactivated */
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAUTHORIZED, NULL);
        return;
    }

    if (st->patient.data == NULL && *PQgetvalue(pg->result, 0, 6) == 't') {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_VALIDATION,
            "This kind of session needs a \"patient_id\".");
        return;
    }

    /* the kind's policies with the caller's overrides, or why not */
    if (ngx_http_telehealth_pg_value(r->pool, pg->result, 0, 4, &st->plan)
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    plan = ngx_http_telehealth_json_track(r->pool,
        json_loads((char *) st->plan.data, 0, NULL));
    if (plan == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    error = json_object_get(plan, "error");

    if (json_is_string(error)
        && json_is_string(json_object_get(plan, "problem")))
    {
        /* a refusal of its own type (no-video-consent) */
        problem = ngx_http_telehealth_problem_named(
            json_string_value(json_object_get(plan, "problem")));
        ngx_http_telehealth_start_refuse(r, problem, json_string_value(error));
        return;
    }

    if (json_is_string(error)) {
        switch (json_integer_value(json_object_get(plan, "status"))) {
        case NGX_HTTP_NOT_FOUND:
            problem = NGX_HTTP_TELEHEALTH_NOT_FOUND;
            break;
        case NGX_HTTP_CONFLICT:
            problem = NGX_HTTP_TELEHEALTH_CONFLICT;
            break;
        case NGX_HTTP_FORBIDDEN:
            problem = NGX_HTTP_TELEHEALTH_FORBIDDEN;
            break;
        default:
            problem = NGX_HTTP_TELEHEALTH_VALIDATION;
        }

        ngx_http_telehealth_start_refuse(r, problem, json_string_value(error));
        return;
    }

    fields = json_object_get(plan, "room_fields");

    if (st->patient.data != NULL && *PQgetvalue(pg->result, 0, 2) != 't') {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
            "No such patient.");
        return;
    }

    role = PQgetvalue(pg->result, 0, 0);

    /* a clinician reaches only the patients assigned to them */
    if (st->patient.data != NULL && ngx_strcmp(role, "clinician") == 0
        && *PQgetvalue(pg->result, 0, 3) != 't')
    {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_FORBIDDEN,
            "This patient is not assigned to you.");
        return;
    }

    if (ngx_http_telehealth_new_uuid(r->pool, &st->session) != NGX_OK) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* a planned session for later: stored without a room or a lock */
    if (*PQgetvalue(pg->result, 0, 5) == 't') {
        ngx_http_telehealth_start_save(r, st);
        return;
    }

    ngx_http_telehealth_room_open(r, st, (char *) ctx->caller.id.data, fields,
        ngx_http_telehealth_start_locked);
}


/*
 * Takes the patient's lock and creates the room hash of st->session in one
 * script (a new room name in st->room); handler gets the script's reply:
 * 1 when taken, 0 when the patient is already in a room.
 */

void
ngx_http_telehealth_room_open(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, const char *created_by, json_t *fields,
    void (*handler)(void *data, redisReply *reply))
{
    json_t                    *v;
    ngx_int_t                  rc;
    const char                *argv[NGX_HTTP_TELEHEALTH_OPEN_ARGS];
    ngx_pool_cleanup_t        *cln;
    size_t                     argvlen[NGX_HTTP_TELEHEALTH_OPEN_ARGS];
    ngx_uint_t                 i, n;
    ngx_http_telehealth_ctx_t *ctx;
    char                       room[NGX_HTTP_TELEHEALTH_ROOM_BUF];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!json_is_array(fields)
        || 13 + json_array_size(fields) > NGX_HTTP_TELEHEALTH_OPEN_ARGS
        || th_random_b64url(room, sizeof(room), NGX_HTTP_TELEHEALTH_ROOM_BYTES)
               != 0)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->room.len = ngx_strlen(room);
    st->room.data = ngx_pnalloc(r->pool, st->room.len + 1);
    if (st->room.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_memcpy(st->room.data, room, st->room.len + 1);

    /*
     * A video call is about its patient from the start: it holds the lock
     * for the whole session.  Other kinds lock the patient when they join
     * (the plugin's join script, docs/lifecycle.md).
     */
    if (st->patient.data != NULL
        && ngx_strcmp(st->kind.data, TH_KIND_VIDEO_CALL) == 0)
    {
        st->lock_key = ngx_http_telehealth_redis_key(r->pool,
            TH_KEY_PATIENT_LOCK, (char *) st->patient.data);
    } else {
        st->lock_key = "";
    }

    st->room_key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
        (char *) st->room.data);
    if (st->lock_key == NULL || st->room_key == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_sprintf(st->created_at, "%T%Z", ngx_time());
    ngx_sprintf(st->now_ms, "%M%Z", (ngx_msec_t) ngx_time() * 1000);

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_open_lua;
    argv[2] = "2";
    argv[3] = st->lock_key;
    argv[4] = st->room_key;
    argv[5] = (char *) st->room.data;
    argv[6] = (char *) st->now_ms;
    argv[7] = (char *) st->session.data;
    argv[8] = st->org.data != NULL ? (char *) st->org.data
                                   : (char *) ctx->caller.org.data;
    argv[9] = (char *) st->kind.data;
    argv[10] = st->patient.data != NULL ? (char *) st->patient.data : "";
    argv[11] = created_by;
    argv[12] = (char *) st->created_at;

    n = 13;

    json_array_foreach (fields, i, v) {
        argv[n++] = json_is_string(v) ? json_string_value(v) : "";
    }

    for (i = 0; i < n; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rc = ngx_http_telehealth_redis_command(r->pool, r->connection->log, handler,
        r, n, argv, argvlen);
    if (rc != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    st->log = ngx_cycle->log;
    st->locking = 1;
    cln->handler = ngx_http_telehealth_start_cleanup;
    cln->data = st;
}


static void
ngx_http_telehealth_start_refuse(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail)
{
    json_t                        *patient;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_refusal_t *rf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    rf = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_refusal_t));
    if (rf == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    rf->problem = problem;
    rf->detail = detail;
    ngx_sprintf(rf->status, "%ui%Z",
        ngx_http_telehealth_problem_status(problem));

    patient =
        (ctx->body != NULL) ? json_object_get(ctx->body, "patient_id") : NULL;

    rf->params[0] = (char *) ctx->caller.org.data;
    rf->params[1] = (char *) ctx->caller.id.data;
    rf->params[2] = ctx->caller.staff ? "staff" : "patient";
    rf->params[3] = json_is_string(patient) ? json_string_value(patient) : NULL;
    rf->params[4] = ngx_http_telehealth_client_addr(r);
    rf->params[5] = (char *) rf->status;

    if (rf->params[4] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (ctx->pg == NULL) {
        ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
        if (ctx->pg == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    ctx->data = rf;
    ctx->pg->handler = ngx_http_telehealth_start_refused;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_refused_sql,
            6, rf->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_refused(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t            *r;
    ngx_http_telehealth_ctx_t     *ctx;
    ngx_http_telehealth_refusal_t *rf;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    rf = ctx->data;

    /* a refusal that cannot be audited is not answered as one */
    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    ngx_http_telehealth_fail(r, rf->problem, rf->detail);
}


/*
 * The client went away while the room script ran: whether it took the
 * lock is unknown, and nobody would write the session.  The release runs
 * after the script on the same connection and only removes what is ours.
 */

static void
ngx_http_telehealth_start_cleanup(void *data)
{
    ngx_http_telehealth_start_t *st = data;

    if (st->locking) {
        st->locking = 0;
        ngx_http_telehealth_start_release(st);
    }
}


static void
ngx_http_telehealth_start_locked(void *data, redisReply *reply)
{
    ngx_http_request_t          *r = data;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_start_t *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    switch (ngx_http_telehealth_room_taken(r, st, reply)) {
    case NGX_OK:
        ngx_http_telehealth_start_save(r, st);
        return;
    case NGX_DECLINED:
        ngx_http_telehealth_start_refuse(r,
            NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
            NGX_HTTP_TELEHEALTH_IN_SESSION);
        return;
    default:
        return;
    }
}


/*
 * The room script's reply: NGX_OK when the lock and the room are ours,
 * NGX_DECLINED when the patient is in another room, NGX_ERROR when the
 * request has been answered (503).
 */

ngx_int_t
ngx_http_telehealth_room_taken(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, redisReply *reply)
{
    st->locking = 0;

    if (reply == NULL
        || (reply->type != REDIS_REPLY_INTEGER
            && reply->type != REDIS_REPLY_STRING))
    {
        if (reply != NULL) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                "telehealth: room script failed: %s",
                reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        }

        /* a timeout leaves it open whether the lock was taken: give back */
        if (reply == NULL) {
            ngx_http_telehealth_start_release(st);
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return NGX_ERROR;
    }

    return (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
               ? NGX_OK
               : NGX_DECLINED;
}


/* writes the session: open in st->room, or scheduled without one */

static void
ngx_http_telehealth_start_save(ngx_http_request_t *r,
    ngx_http_telehealth_start_t                   *st)
{
    const char               **params;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    params = st->params;
    params[0] = (char *) st->session.data;
    params[1] = (char *) ctx->caller.org.data;
    params[2] = (char *) st->kind.data;
    params[3] = (char *) st->patient.data;
    params[4] = (char *) ctx->caller.id.data;
    params[5] = (char *) st->room.data; /* NULL: scheduled */

    if (st->room.data == NULL) {
        ngx_sprintf(st->created_at, "%T%Z", ngx_time());
    }

    params[6] = (char *) st->created_at;
    params[7] = ngx_http_telehealth_client_addr(r);
    params[8] = (char *) st->plan.data;

    ngx_sprintf(st->sms_delay, "%M%Z", ctx->mcf->video_call_sms_delay);
    params[9] = (char *) st->sms_delay;

    if (params[7] == NULL) {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_start_saved;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_insert_sql,
            10, params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_saved(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_start_t *st;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg) || PQntuples(pg->result) != 1) {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    st->answer = ngx_http_telehealth_json_track(r->pool,
        json_loads(PQgetvalue(pg->result, 0, 0), 0, NULL));
    if (st->answer == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    if (st->room.data != NULL) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
            "telehealth: session %s started in room %s", st->session.data,
            st->room.data);
    }

    if (!json_is_string(json_object_get(st->answer, "appointment_id"))) {
        ngx_http_telehealth_start_answer(r, st);
        return;
    }

    /* the session is committed: its invites go out after it */
    st->params[0] = (char *) st->session.data;
    st->params[1] = (char *) ctx->caller.id.data;
    st->params[2] = ngx_pnalloc(r->pool, ctx->mcf->public_url.len + 1);

    if (st->params[2] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_cpystrn((u_char *) st->params[2], ctx->mcf->public_url.data,
        ctx->mcf->public_url.len + 1);

    ctx->pg->handler = ngx_http_telehealth_start_invited;

    if (ngx_http_telehealth_pg_query(ctx->pg,
            ngx_http_telehealth_appointment_invite_sql, 3, st->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_invited(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                      *invites;
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_start_t *st;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    /* the session exists either way: say so, and what became of them */
    invites = NULL;

    if (ngx_http_telehealth_pg_ok(pg) && PQntuples(pg->result) == 1) {
        invites = json_loads(PQgetvalue(pg->result, 0, 0), 0, NULL);
    }

    if (invites == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: the invites of session %s were not sent",
            st->session.data);
        invites = json_null();
    }

    if (json_object_set_new(st->answer, "invites", invites) != 0) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_start_answer(r, st);
}


/* 201 with the session and where it lives */

static void
ngx_http_telehealth_start_answer(ngx_http_request_t *r,
    ngx_http_telehealth_start_t                     *st)
{
    u_char                    *location, *p;
    size_t                     len;
    ngx_http_telehealth_ctx_t *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    len = ctx->mcf->public_url.len + ctx->base.len + sizeof("/sessions/") - 1
          + st->session.len;

    location = ngx_pnalloc(r->pool, len);
    if (location == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    p = location;

    if (ctx->mcf->public_url.len) {
        p = ngx_cpymem(p, ctx->mcf->public_url.data, ctx->mcf->public_url.len);

        if (p[-1] == '/') {
            p--;
        }
    }

    p = ngx_cpymem(p, ctx->base.data, ctx->base.len);
    p = ngx_cpymem(p, "/sessions/", sizeof("/sessions/") - 1);
    p = ngx_cpymem(p, st->session.data, st->session.len);

    if (ngx_http_telehealth_add_header(r, "Location", location, p - location)
        != NGX_OK)
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, NGX_HTTP_CREATED,
            json_incref(st->answer)));
}


/*
 * Gives the lock and the room back if they are still ours.  Not tied to
 * the request: it must happen even if the client has gone.
 */

void
ngx_http_telehealth_start_release(ngx_http_telehealth_start_t *st)
{
    const char *argv[7];
    size_t      argvlen[7];
    ngx_uint_t  i;

    if (st->lock_key == NULL) {
        /* a scheduled session: nothing taken */
        return;
    }

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_release_lua;
    argv[2] = "2";
    argv[3] = st->lock_key;
    argv[4] = st->room_key;
    argv[5] = (char *) st->room.data;
    argv[6] = (char *) st->session.data;

    for (i = 0; i < 7; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(NULL, st->log, NULL, NULL, 7, argv,
            argvlen)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, st->log, 0,
            "telehealth: cannot give back room %s, the "
            "reconciler will",
            st->room.data);
    }
}
