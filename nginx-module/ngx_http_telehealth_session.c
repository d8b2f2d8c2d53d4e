/*
 * Sessions: every kind of PRODUCT section 2 with its preset policies
 * (sql/003_sessions.sql computes them, with the caller's overrides, in the
 * same query as the access check) written into the room hash.
 *
 * Starting one takes the patient's one-room lock and creates the room hash
 * in one Redis script, so two staff members racing for the same patient on
 * any number of nginx instances cannot both win; only the winner writes the
 * session to PostgreSQL.  If that write fails the lock and the room are
 * given back (compare-and-delete), so a failed start leaves nothing behind.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_session.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


#define NGX_HTTP_TELEHEALTH_ROOM_BYTES  16
#define NGX_HTTP_TELEHEALTH_ROOM_BUF    25      /* base64 of 16 bytes, NUL */
#define NGX_HTTP_TELEHEALTH_JANUS_PATH  "/janus"
#define NGX_HTTP_TELEHEALTH_OPEN_ARGS   48      /* of the room script */
#define NGX_HTTP_TELEHEALTH_IN_SESSION                                        \
    "The participant is already in a video session."


/* the session object of docs/api.md, built by PostgreSQL */
#define NGX_HTTP_TELEHEALTH_SESSION_JSON  "th_session_json(s)::text"


/* $1 staff, $2 patient (NULL: none), $3 organisation, $4 kind, $5 the
 * body; the last column tells whether the kind needs a patient */
static const char  ngx_http_telehealth_access_sql[] =
    "SELECT s.role, s.active, p.id IS NOT NULL,"
    " EXISTS (SELECT 1 FROM assignments a"
    "  WHERE a.staff_id = s.id AND a.patient_id = p.id"
    "  AND a.ends_at IS NULL),"
    " pl.plan::text, th_session_deferred($4, pl.plan),"
    " COALESCE((SELECT k.patient = 'required' FROM session_kinds k"
    "  WHERE k.kind = $4), false)"
    " FROM staff s"
    " LEFT JOIN patients p ON p.id = $2::uuid AND p.org_id = s.org_id"
    " CROSS JOIN LATERAL (SELECT th_session_plan($4, $5::jsonb, $3::uuid,"
    "  $1::uuid) AS plan) pl"
    " WHERE s.id = $1::uuid AND s.org_id = $3::uuid";

/*
 * Session actions leave an audit row in the statement that does them
 * (docs/api.md, "Audit"); $n is the client address in each query below.
 */
#define NGX_HTTP_TELEHEALTH_AUDIT(n, action, outcome, status)                 \
    " INSERT INTO audit_log (org_id, actor_type, actor_id, action,"           \
    "  target_type, target_id, client_addr, outcome, status)"                 \
    " SELECT $2::uuid, $3, $1::uuid, " action ", 'session', $4::uuid::text,"  \
    " left($" #n ", 64), " outcome ", " status

/*
 * A refused start leaves its audit row too: $1 org, $2 caller, $3 "staff"
 * or "patient", $4 the patient id as the request gave it, $5 client
 * address, $6 the status.
 */
static const char  ngx_http_telehealth_refused_sql[] =
    "SELECT th_audit(jsonb_build_object('addr', $5::text),"
    " ROW($2::uuid, $1::uuid, $3, NULL)::th_caller, 'session_create',"
    " 'patient', $4, $6::integer)";

/* $1 session, $2 org, $3 kind, $4 patient, $5 staff, $6 room (NULL: the
 * session is scheduled, sql/015_scheduled_sessions.sql), $7 time,
 * $8 client address, $9 the plan of th_session_plan(), $10 the delay of
 * the video_call SMS in ms.  That SMS goes into the outbox in the same
 * statement: it exists exactly when the session does. */
static const char  ngx_http_telehealth_insert_sql[] =
    "WITH s AS ("
    " INSERT INTO sessions"
    "  (id, org_id, kind, state, patient_id, created_by, room, created_at,"
    "   name, access, scheduled_at, policies, service_code_id,"
    "   appointment_id)"
    " VALUES ($1::uuid, $2::uuid, $3,"
    "  CASE WHEN $6::text IS NULL THEN 'scheduled' ELSE 'open' END,"
    "  $4::uuid, $5::uuid, $6,"
    "  to_timestamp($7::bigint), $9::jsonb ->> 'name',"
    "  $9::jsonb ->> 'access', ($9::jsonb ->> 'scheduled_at')::timestamptz,"
    "  $9::jsonb -> 'policies', ($9::jsonb ->> 'service_code_id')::uuid,"
    "  ($9::jsonb ->> 'appointment_id')::uuid)"
    " RETURNING *"
    "), p AS ("
    " INSERT INTO session_participants"
    "  (session_id, staff_id, patient_id, role)"
    " SELECT $1::uuid, $5::uuid, NULL, 'chair'"
    " UNION ALL SELECT $1::uuid, NULL, $4::uuid, 'broadcaster'"
    "  WHERE $4::uuid IS NOT NULL"
    " UNION ALL SELECT $1::uuid, x.staff_id, NULL, x.role"
    "  FROM jsonb_to_recordset($9::jsonb -> 'participants')"
    "  AS x(staff_id uuid, role text)"
    " RETURNING *"
    "), a AS ("
    " INSERT INTO audit_log (org_id, actor_type, actor_id, action,"
    "  target_type, target_id, client_addr, outcome, status)"
    " VALUES ($2::uuid, 'staff', $5::uuid, 'session_create', 'session',"
    "  $1::uuid::text, left($8, 64), 'success', 201)"
    "), n AS ("
    " INSERT INTO notifications (org_id, channel, recipient, template,"
    "  language, session_id, room, participant, not_before,"
    "  idempotency_key)"
    " SELECT pt.org_id, 'sms', pt.mobile, 'video_call_started', pt.language,"
    "  $1::uuid, $6, 'patient:' || pt.id,"
    "  now() + $10::bigint * interval '1 millisecond',"
    "  'video_call_started:' || $1"
    " FROM patients pt"
    " WHERE $3 = '" TH_KIND_VIDEO_CALL "' AND $6::text IS NOT NULL"
    " AND pt.id = $4::uuid"
    " AND pt.org_id = $2::uuid AND pt.sms_capable"
    " AND COALESCE(pt.mobile, '') <> ''"
    ")"
    " SELECT (th_session_json(ROW(s.*)::sessions)"
    " || jsonb_build_object('participants', (SELECT jsonb_agg("
    "   th_session_participant_json(ROW(p.*)::session_participants)"
    "   ORDER BY th_session_participant_key("
    "   ROW(p.*)::session_participants)) FROM p)))::text"
    " FROM s";

/*
 * $1 caller, $2 org, $3 "staff" or "patient", $4 the session, $5 client
 * address.  Patients only ever see sessions whose room may be open; Redis
 * decides.  Reading a session is audited.
 */
static const char  ngx_http_telehealth_get_sql[] =
    "WITH l AS ("
    "SELECT " NGX_HTTP_TELEHEALTH_SESSION_JSON " AS j"
    " FROM sessions s"
    " WHERE s.org_id = $2::uuid AND s.id = $4::uuid"
    " AND ($3 = 'staff' OR (s.state = 'open' AND s.room IS NOT NULL))"
    " AND EXISTS (SELECT 1 FROM session_participants sp"
    "  WHERE sp.session_id = s.id AND CASE WHEN $3 = 'staff'"
    "  THEN sp.staff_id = $1::uuid ELSE sp.patient_id = $1::uuid END)"
    "), a AS ("
    NGX_HTTP_TELEHEALTH_AUDIT(5, "'session_get'",
        "CASE WHEN EXISTS (SELECT 1 FROM l) THEN 'success'"
        " ELSE 'not_found' END",
        "CASE WHEN EXISTS (SELECT 1 FROM l) THEN 200 ELSE 404 END")
    ")"
    " SELECT j FROM l";

/*
 * $1 caller, $2 org, $3 "staff" or "patient", $4 session, $5 address.
 * Staff of the session's organisation who are not on the list join an
 * internal or invitation session as broadcaster (PRODUCT 7-8); the last
 * column tells the credential so ("unlisted"), for the plugin to refuse
 * it once the level is private; the one after, that a chair removed the
 * caller from the session (docs/lifecycle.md, "Bans").
 */
static const char  ngx_http_telehealth_join_sql[] =
    "WITH j AS ("
    "SELECT s.room, s.kind, s.state, COALESCE(sp.role, 'broadcaster'),"
    " COALESCE(st.display_name, pt.display_name),"
    " COALESCE(st.active, true), s.patient_id, s.created_by,"
    " th_session_opener(s, sp),"
    " CASE WHEN s.state = 'scheduled'"
    "  THEN th_session_room_fields(s)::text END,"
    " sp.session_id IS NULL,"
    " EXISTS (SELECT 1 FROM session_bans b WHERE b.session_id = s.id"
    "  AND b.participant = $3 || ':' || $1)"
    " FROM sessions s"
    " LEFT JOIN session_participants sp ON sp.session_id = s.id"
    "  AND CASE WHEN $3 = 'staff'"
    "  THEN sp.staff_id = $1::uuid ELSE sp.patient_id = $1::uuid END"
    " LEFT JOIN staff st ON st.org_id = s.org_id"
    "  AND st.id = COALESCE(sp.staff_id, CASE WHEN $3 = 'staff'"
    "  AND s.access IN ('internal', 'invitation') THEN $1::uuid END)"
    " LEFT JOIN patients pt ON pt.id = sp.patient_id"
    " WHERE s.id = $4::uuid AND s.org_id = $2::uuid"
    " AND (sp.session_id IS NOT NULL OR st.id IS NOT NULL)"
    "), a AS ("
    NGX_HTTP_TELEHEALTH_AUDIT(5, "'session_join'",
        "CASE WHEN EXISTS (SELECT 1 FROM j) THEN 'success'"
        " ELSE 'not_found' END",
        "CASE WHEN EXISTS (SELECT 1 FROM j) THEN 200 ELSE 404 END")
    ")"
    " SELECT * FROM j";

/*
 * The first join of its opener opened a scheduled session's room: $1
 * caller, $2 org, $3 "staff", $4 session, $5 address, $6 the room.  No
 * row when it was cancelled or opened by someone else meanwhile.
 */
static const char  ngx_http_telehealth_opened_sql[] =
    "WITH s AS ("
    " UPDATE sessions SET state = 'open', room = $6,"
    "  version = version + 1, updated_at = now()"
    " WHERE id = $4::uuid AND org_id = $2::uuid AND state = 'scheduled'"
    " RETURNING id"
    "), a AS ("
    NGX_HTTP_TELEHEALTH_AUDIT(5, "'session_open'",
        "CASE WHEN EXISTS (SELECT 1 FROM s) THEN 'success'"
        " ELSE 'conflict' END",
        "CASE WHEN EXISTS (SELECT 1 FROM s) THEN 200 ELSE 409 END")
    ")"
    " SELECT id FROM s";


/* KEYS, ARGV and answer: common/lua/open.lua */
#define ngx_http_telehealth_open_lua  th_lua_open

/* KEYS, ARGV and answer: common/lua/release.lua */
#define ngx_http_telehealth_release_lua  th_lua_release

/* KEYS, ARGV and answer: common/lua/join_check.lua */
#define ngx_http_telehealth_join_check_lua  th_lua_join_check

/* KEYS, ARGV and answer: common/lua/open_rooms.lua */
#define ngx_http_telehealth_open_rooms_lua  th_lua_open_rooms


typedef struct {
    ngx_str_t    session;
    ngx_str_t    org;           /* the caller's, unless opened by a link */
    ngx_str_t    patient;
    ngx_str_t    kind;
    ngx_str_t    body;          /* the request body, for the plan */
    ngx_str_t    plan;          /* of th_session_plan() */
    ngx_str_t    room;
    ngx_log_t   *log;
    unsigned     locking:1;     /* the room script is under way */
    char        *lock_key;
    char        *room_key;
    u_char       created_at[NGX_TIME_T_LEN + 1];
    u_char       now_ms[NGX_INT64_LEN + 1];
    json_t      *answer;        /* the new session, while invites go out */
    u_char       sms_delay[NGX_INT_T_LEN + 1];
    const char  *params[10];
} ngx_http_telehealth_start_t;


/* a refused start: the answer once its audit row is written */
typedef struct {
    ngx_http_telehealth_problem_e    problem;
    const char                      *detail;
    u_char                           status[NGX_INT_T_LEN + 1];
    const char                      *params[6];
} ngx_http_telehealth_refusal_t;


typedef struct {
    json_t      *answer;        /* a session, or a page of them */
    json_t      *items;         /* the sessions in it */
    ngx_uint_t   single;
    const char  *params[5];
} ngx_http_telehealth_list_t;


typedef struct {
    ngx_str_t                     room;
    ngx_str_t                     kind;
    ngx_str_t                     role;
    ngx_str_t                     name;
    ngx_str_t                     session;  /* NUL-terminated, as the rest */
    ngx_str_t                     org;
    ngx_str_t                     sub;
    char                          hash[65]; /* of an invite link's token */
    const char                   *params[6];
    ngx_uint_t                    retried;  /* read the session again once */
    ngx_uint_t                    racing;   /* the room holding the lock */
    ngx_uint_t                    unlisted; /* staff not on the list */
    ngx_uint_t                    redeem;   /* by an invite link */
    ngx_uint_t                    preadmitted; /* a group's registrant */
    ngx_http_telehealth_start_t  *open;     /* opening a scheduled room */
} ngx_http_telehealth_join_t;


/*
 * A session created from an appointment invites the patient and the
 * appointment's guests in the same step: $1 session, $2 caller, $3
 * telehealth_public_url.
 */
static const char  ngx_http_telehealth_appointment_invite_sql[] =
    "SELECT th_appointment_invite($1::uuid, $2::uuid, $3)::text";


/*
 * $1 the SHA-256 (hex) of an invite link's token, $2 client address, $3
 * the guest's name (a group's registration is the link and the name)
 */
static const char  ngx_http_telehealth_redeem_sql[] =
    "SELECT status, body::text FROM th_invite_redeem_named($1, $2, $3)";

#define NGX_HTTP_TELEHEALTH_GUEST_NAME_MAX  100
#define NGX_HTTP_TELEHEALTH_INVITE_TOKEN_MAX  128


static void ngx_http_telehealth_session_start(ngx_http_request_t *r);
static void ngx_http_telehealth_start_refuse(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);
static void ngx_http_telehealth_start_refused(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_access(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_room_open(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, const char *created_by, json_t *fields,
    void (*handler)(void *data, redisReply *reply));
static void ngx_http_telehealth_start_locked(void *data, redisReply *reply);
static ngx_int_t ngx_http_telehealth_room_taken(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, redisReply *reply);
static void ngx_http_telehealth_start_save(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st);
static void ngx_http_telehealth_start_saved(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_invited(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_start_answer(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st);
static void ngx_http_telehealth_start_release(
    ngx_http_telehealth_start_t *st);
static void ngx_http_telehealth_start_cleanup(void *data);
static void ngx_http_telehealth_get_found(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_list_check_open(ngx_http_request_t *r);
static void ngx_http_telehealth_list_filtered(void *data, redisReply *reply);
static void ngx_http_telehealth_join_found(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_join_room(void *data, redisReply *reply);
static void ngx_http_telehealth_join_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, PGresult *res);
static void ngx_http_telehealth_join_locked(void *data, redisReply *reply);
static void ngx_http_telehealth_join_opened(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_join_again(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);
static void ngx_http_telehealth_join_check_room(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn);
static void ngx_http_telehealth_redeem_query(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn);
static void ngx_http_telehealth_redeem_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *open);
static void ngx_http_telehealth_redeem_done(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_guest_name(json_t *name);
static void ngx_http_telehealth_session_query(ngx_http_request_t *r,
    const char *sql, const char **params, ngx_uint_t with_id,
    ngx_http_telehealth_pg_handler_pt handler);


/* POST /sessions */

void
ngx_http_telehealth_session_create(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t  *ctx;

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
    json_t *body)
{
    json_t                     *request;
    ngx_http_telehealth_ctx_t  *ctx;

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
    char                         *text;
    json_t                       *kind, *patient;
    const char                  **params;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_start_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ctx->caller.staff) {
        ngx_http_telehealth_start_refuse(r, NGX_HTTP_TELEHEALTH_FORBIDDEN,
                                         "Only staff can start a session.");
        return;
    }

    if (ctx->body == NULL) {
        ngx_http_telehealth_start_refuse(r,
                                         NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
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

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_access_sql,
                                     5, params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_access(ngx_http_telehealth_pg_req_t *pg)
{
    char                           *role;
    json_t                         *plan, *error, *fields;
    ngx_http_request_t             *r;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_start_t    *st;
    ngx_http_telehealth_problem_e   problem;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    st = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    if (PQntuples(pg->result) != 1
        || *PQgetvalue(pg->result, 0, 1) != 't')
    {
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

        ngx_http_telehealth_start_refuse(r, problem,
                                         json_string_value(error));
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

static void
ngx_http_telehealth_room_open(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, const char *created_by, json_t *fields,
    void (*handler)(void *data, redisReply *reply))
{
    json_t                     *v;
    ngx_int_t                   rc;
    const char                 *argv[NGX_HTTP_TELEHEALTH_OPEN_ARGS];
    ngx_pool_cleanup_t         *cln;
    size_t                      argvlen[NGX_HTTP_TELEHEALTH_OPEN_ARGS];
    ngx_uint_t                  i, n;
    ngx_http_telehealth_ctx_t  *ctx;
    char                        room[NGX_HTTP_TELEHEALTH_ROOM_BUF];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!json_is_array(fields)
        || 13 + json_array_size(fields) > NGX_HTTP_TELEHEALTH_OPEN_ARGS
        || th_random_b64url(room, sizeof(room),
                            NGX_HTTP_TELEHEALTH_ROOM_BYTES)
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
                                                     TH_KEY_PATIENT_LOCK,
                                                     (char *) st->patient.data);
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

    json_array_foreach(fields, i, v) {
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

    rc = ngx_http_telehealth_redis_command(r->pool, r->connection->log,
                                           handler, r, n, argv, argvlen);
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
    json_t                         *patient;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_refusal_t  *rf;

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

    patient = (ctx->body != NULL) ? json_object_get(ctx->body, "patient_id")
                                  : NULL;

    rf->params[0] = (char *) ctx->caller.org.data;
    rf->params[1] = (char *) ctx->caller.id.data;
    rf->params[2] = ctx->caller.staff ? "staff" : "patient";
    rf->params[3] = json_is_string(patient) ? json_string_value(patient)
                                            : NULL;
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
    ngx_http_request_t             *r;
    ngx_http_telehealth_ctx_t      *ctx;
    ngx_http_telehealth_refusal_t  *rf;

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
    ngx_http_telehealth_start_t  *st = data;

    if (st->locking) {
        st->locking = 0;
        ngx_http_telehealth_start_release(st);
    }
}


static void
ngx_http_telehealth_start_locked(void *data, redisReply *reply)
{
    ngx_http_request_t           *r = data;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_start_t  *st;

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

static ngx_int_t
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
                          reply->type == REDIS_REPLY_ERROR ? reply->str
                                                           : "bad reply");
        }

        /* a timeout leaves it open whether the lock was taken: give back */
        if (reply == NULL) {
            ngx_http_telehealth_start_release(st);
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return NGX_ERROR;
    }

    return (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1)
           ? NGX_OK : NGX_DECLINED;
}


/* writes the session: open in st->room, or scheduled without one */

static void
ngx_http_telehealth_start_save(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st)
{
    const char                 **params;
    ngx_http_telehealth_ctx_t   *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    params = st->params;
    params[0] = (char *) st->session.data;
    params[1] = (char *) ctx->caller.org.data;
    params[2] = (char *) st->kind.data;
    params[3] = (char *) st->patient.data;
    params[4] = (char *) ctx->caller.id.data;
    params[5] = (char *) st->room.data;     /* NULL: scheduled */

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
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_start_t  *st;

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
                      "telehealth: session %s started in room %s",
                      st->session.data, st->room.data);
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
                                     ngx_http_telehealth_appointment_invite_sql,
                                     3, st->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_start_invited(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                       *invites;
    ngx_http_request_t           *r;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_start_t  *st;

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
    ngx_http_telehealth_start_t *st)
{
    u_char                     *location, *p;
    size_t                      len;
    ngx_http_telehealth_ctx_t  *ctx;

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

    ngx_http_telehealth_finalize(r, ngx_http_telehealth_send_json(r,
                                NGX_HTTP_CREATED, json_incref(st->answer)));
}


/*
 * Gives the lock and the room back if they are still ours.  Not tied to
 * the request: it must happen even if the client has gone.
 */

static void
ngx_http_telehealth_start_release(ngx_http_telehealth_start_t *st)
{
    const char  *argv[7];
    size_t       argvlen[7];
    ngx_uint_t   i;

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
                      "reconciler will", st->room.data);
    }
}


/*
 * GET /sessions is th_api('session_list'); a patient's page carries
 * "open_only": of its sessions only those whose room is open are shown.
 */

void
ngx_http_telehealth_session_list_open(ngx_http_request_t *r, json_t *body)
{
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_list_t  *ls;

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
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_list_t  *ls;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ngx_http_telehealth_is_uuid((char *) ctx->id.data, ctx->id.len)) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
                                 "No such session.");
        return;
    }

    ngx_strlow(ctx->id.data, ctx->id.data, ctx->id.len);

    ls = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_list_t));
    if (ls == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ls->single = 1;
    ctx->data = ls;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_get_sql,
                                      ls->params, 1,
                                      ngx_http_telehealth_get_found);
}


/*
 * runs sql with the caller's id, org and type, and the {id} if with_id;
 * answers 503 itself when the query cannot be sent
 */

static void
ngx_http_telehealth_session_query(ngx_http_request_t *r, const char *sql,
    const char **params, ngx_uint_t with_id,
    ngx_http_telehealth_pg_handler_pt handler)
{
    ngx_http_telehealth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

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
    json_t                      *session;
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_list_t  *ls;

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
        ngx_http_telehealth_finalize(r,
                    ngx_http_telehealth_send_json(r, NGX_HTTP_OK,
                                                  json_incref(session)));
        return;
    }

    ngx_http_telehealth_list_check_open(r);
}


/* a patient sees a session only while its room is open: asks Redis */

static void
ngx_http_telehealth_list_check_open(ngx_http_request_t *r)
{
    size_t                       i, n;
    char                       **argv;
    size_t                      *argvlen;
    json_t                      *session, *room, *id;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_list_t  *ls;

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

    json_array_foreach(ls->items, i, session) {
        room = json_object_get(session, "room");
        id = json_object_get(session, "id");

        argv[3 + i] = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
                                json_is_string(room)
                                ? json_string_value(room) : "");
        argv[3 + n + i] = json_is_string(id) ? (char *) json_string_value(id)
                                             : "";

        if (argv[3 + i] == NULL) {
            ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
            return;
        }
    }

    for (i = 0; i < 3 + 2 * n; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
                                          ngx_http_telehealth_list_filtered,
                                          r, 3 + 2 * n, (const char **) argv,
                                          argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/* open: 1 or 0 per session, whether its room is open; NULL: none asked */

static void
ngx_http_telehealth_list_filtered(void *data, redisReply *open)
{
    size_t                       i, n;
    ngx_http_request_t          *r = data;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_list_t  *ls;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    ls = ctx->data;

    n = json_array_size(ls->items);

    if (n && (open == NULL || open->type != REDIS_REPLY_ARRAY)) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
        return;
    }

    /* from the end: removing an item shifts those after it */
    for (i = n; i-- > 0; /* void */) {
        if (i >= open->elements
            || open->element[i]->type != REDIS_REPLY_INTEGER
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


/* POST /sessions/{id}/join */

void
ngx_http_telehealth_session_join(ngx_http_request_t *r)
{
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (!ngx_http_telehealth_is_uuid((char *) ctx->id.data, ctx->id.len)) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_NOT_FOUND,
                                 "No such session.");
        return;
    }

    ngx_strlow(ctx->id.data, ctx->id.data, ctx->id.len);

    jn = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_join_t));
    if (jn == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = jn;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_join_sql,
                                      jn->params, 1,
                                      ngx_http_telehealth_join_found);
}


static void
ngx_http_telehealth_join_found(ngx_http_telehealth_pg_req_t *pg)
{
    PGresult                    *res;
    ngx_uint_t                   scheduled;
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

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

    scheduled = (ngx_strcmp(PQgetvalue(res, 0, 2), "scheduled") == 0);

    /* a scheduled session opens on its opener's first join */
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

    jn->sub.data = ngx_pnalloc(r->pool,
                               sizeof("patient:") + ctx->caller.id.len);
    if (jn->sub.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->sub.len = ngx_sprintf(jn->sub.data, "%s:%V%Z",
                              ctx->caller.staff ? "staff" : "patient",
                              &ctx->caller.id)
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
    json_t                       *fields;
    ngx_str_t                     created_by;
    ngx_http_telehealth_start_t  *st;

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


static void
ngx_http_telehealth_join_locked(void *data, redisReply *reply)
{
    ngx_http_request_t           *r = data;
    ngx_http_telehealth_ctx_t    *ctx;
    ngx_http_telehealth_join_t   *jn;
    ngx_http_telehealth_start_t  *st;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;
    st = jn->open;

    switch (ngx_http_telehealth_room_taken(r, st, reply)) {
    case NGX_OK:
        break;
    case NGX_DECLINED:
        if (reply->type != REDIS_REPLY_STRING) {
            ngx_http_telehealth_fail(r,
                                     NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
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
    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_opened_sql,
                                     6, jn->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_start_release(st);
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_join_opened(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

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
                  "telehealth: scheduled session %s opened in room %s",
                  jn->session.data, jn->open->room.data);

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
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (jn->retried) {
        ngx_http_telehealth_fail(r, problem, detail);
        return;
    }

    jn->retried = 1;
    jn->open = NULL;

    ngx_http_telehealth_session_query(r, ngx_http_telehealth_join_sql,
                                      jn->params, 1,
                                      ngx_http_telehealth_join_found);
}


/*
 * Whether the room is open in Redis and, for a patient, which room holds
 * their lock; then the credential (join_room).
 */

static void
ngx_http_telehealth_join_check_room(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn)
{
    char        *key, *lock;
    const char  *argv[5];
    size_t       argvlen[5];
    ngx_uint_t   i;

    key = ngx_http_telehealth_redis_key(r->pool, TH_KEY_ROOM,
                                        (char *) jn->room.data);

    if (ngx_strncmp(jn->sub.data, "patient:", sizeof("patient:") - 1) == 0) {
        lock = ngx_http_telehealth_redis_key(r->pool, TH_KEY_PATIENT_LOCK,
                        (char *) jn->sub.data + sizeof("patient:") - 1);
    } else {
        lock = "";
    }

    if (key == NULL || lock == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_join_check_lua;
    argv[2] = "2";
    argv[3] = key;
    argv[4] = lock;

    for (i = 0; i < 5; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
                                          ngx_http_telehealth_join_room, r,
                                          5, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


static void
ngx_http_telehealth_join_room(void *data, redisReply *reply)
{
    char                             *credential;
    json_t                           *claims, *answer;
    time_t                            now;
    ngx_http_request_t               *r = data;
    ngx_http_telehealth_ctx_t        *ctx;
    ngx_http_telehealth_join_t       *jn;
    ngx_http_telehealth_main_conf_t  *mcf;
    char                              jti[TH_TOKEN_ID_LEN + 1];

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;
    mcf = ctx->mcf;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || reply->elements != 3)
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
            ngx_http_telehealth_fail(r,
                                     NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
                                     NGX_HTTP_TELEHEALTH_IN_SESSION);
            return;
        }

        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN, NULL);
        return;
    }

    if (th_token_new_id(jti, sizeof(jti)) != 0) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    now = ngx_time();

    claims = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s,"
                       " s:I, s:I}",
                       "iss", TH_ISSUER,
                       "aud", TH_AUD_JOIN,
                       "sub", jn->sub.data,
                       "room", jn->room.data,
                       "session", jn->session.data,
                       "org", jn->org.data,
                       "kind", jn->kind.data,
                       "role", jn->role.data,
                       "name", jn->name.data,
                       "jti", jti,
                       "iat", (json_int_t) now,
                       "exp", (json_int_t) (now + mcf->join_token_ttl));

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

    answer = json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}",
                       "credential", credential,
                       "expires_in", (json_int_t) mcf->join_token_ttl,
                       "room", jn->room.data,
                       "role", jn->role.data,
                       "plugin", TH_PLUGIN_PACKAGE,
                       "janus_path", NGX_HTTP_TELEHEALTH_JANUS_PATH);
    free(credential);

    ngx_http_telehealth_finalize(r,
                    ngx_http_telehealth_send_json(r, NGX_HTTP_OK, answer));
}


/* POST /invites/redeem {token, display_name}: no access token */

void
ngx_http_telehealth_invite_redeem(ngx_http_request_t *r)
{
    json_t                      *token, *name;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (ctx->body == NULL) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_INVALID_REQUEST,
                                 "A JSON body is required.");
        return;
    }

    token = json_object_get(ctx->body, "token");
    name = json_object_get(ctx->body, "display_name");

    if (!json_is_string(token) || json_string_length(token) == 0
        || json_string_length(token) > NGX_HTTP_TELEHEALTH_INVITE_TOKEN_MAX)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
                                 "\"token\" is required.");
        return;
    }

    if (ngx_http_telehealth_guest_name(name) != NGX_OK) {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_VALIDATION,
                                 "Please enter your name (at most 100 "
                                 "characters).");
        return;
    }

    jn = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_join_t));
    if (jn == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->data = jn;

    jn->name.data = (u_char *) json_string_value(name);
    jn->name.len = json_string_length(name);

    th_sha256_hex(json_string_value(token), json_string_length(token),
                  jn->hash);

    jn->redeem = 1;

    ngx_http_telehealth_redeem_query(r, jn);
}


static void
ngx_http_telehealth_redeem_query(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn)
{
    ngx_http_telehealth_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    jn->params[0] = jn->hash;
    jn->params[1] = ngx_http_telehealth_client_addr(r);
    jn->params[2] = (char *) jn->name.data;

    if (jn->params[1] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (ctx->pg == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ctx->pg->handler = ngx_http_telehealth_redeem_done;
    ctx->pg->data = r;

    if (ngx_http_telehealth_pg_query(ctx->pg, ngx_http_telehealth_redeem_sql,
                                     3, jn->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_fail(r, NGX_HTTP_TELEHEALTH_UNAVAILABLE, NULL);
    }
}


/*
 * The invitee's link to a scheduled session that its invitee opens
 * (docs/lifecycle.md): the room opens as on the opener's first join, then
 * the link is redeemed again, into the open session.
 */

static void
ngx_http_telehealth_redeem_open(ngx_http_request_t *r,
    ngx_http_telehealth_join_t *jn, json_t *open)
{
    json_t                       *fields, *v;
    const char                   *created_by;
    ngx_http_telehealth_start_t  *st;

    st = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_start_t));
    if (st == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

#define ngx_http_telehealth_open_str(field, dst)                              \
    v = json_object_get(open, field);                                         \
    if (!json_is_string(v)) {                                                 \
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);      \
        return;                                                               \
    }                                                                         \
    (dst).data = (u_char *) json_string_value(v);                             \
    (dst).len = json_string_length(v)

    ngx_http_telehealth_open_str("session_id", jn->session);
    ngx_http_telehealth_open_str("org_id", jn->org);
    ngx_http_telehealth_open_str("kind", jn->kind);
    ngx_http_telehealth_open_str("invite_id", jn->sub);

#undef ngx_http_telehealth_open_str

    v = json_object_get(open, "patient_id");
    if (json_is_string(v)) {
        st->patient.data = (u_char *) json_string_value(v);
        st->patient.len = json_string_length(v);
    }

    created_by = json_string_value(json_object_get(open, "created_by"));
    fields = json_object_get(open, "room_fields");

    if (created_by == NULL || !json_is_array(fields)) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    /* the parameters of ngx_http_telehealth_opened_sql: a guest opens */
    jn->params[0] = (char *) jn->sub.data;
    jn->params[1] = (char *) jn->org.data;
    jn->params[2] = "guest";
    jn->params[3] = (char *) jn->session.data;
    jn->params[4] = ngx_http_telehealth_client_addr(r);

    if (jn->params[4] == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    st->session = jn->session;
    st->org = jn->org;
    st->kind = jn->kind;
    jn->open = st;
    jn->retried = 1;

    ngx_http_telehealth_room_open(r, st, created_by, fields,
                                  ngx_http_telehealth_join_locked);
}


/* 1 to 100 characters (UTF-8), not only spaces, no control characters */

static ngx_int_t
ngx_http_telehealth_guest_name(json_t *name)
{
    size_t       i, len, chars;
    ngx_uint_t   visible;
    const char  *s;

    if (!json_is_string(name)) {
        return NGX_DECLINED;
    }

    s = json_string_value(name);
    len = json_string_length(name);
    chars = 0;
    visible = 0;

    for (i = 0; i < len; i++) {
        if ((u_char) s[i] < 0x20 || s[i] == 0x7f) {
            return NGX_DECLINED;
        }

        if (((u_char) s[i] & 0xc0) != 0x80) {
            chars++;
        }

        if (s[i] != ' ') {
            visible = 1;
        }
    }

    if (!visible || chars > NGX_HTTP_TELEHEALTH_GUEST_NAME_MAX) {
        return NGX_DECLINED;
    }

    return NGX_OK;
}


static void
ngx_http_telehealth_redeem_done(ngx_http_telehealth_pg_req_t *pg)
{
    json_t                      *body, *v;
    ngx_str_t                    id;
    ngx_int_t                    status;
    PGresult                    *res;
    ngx_http_request_t          *r;
    ngx_http_telehealth_ctx_t   *ctx;
    ngx_http_telehealth_join_t  *jn;

    r = pg->data;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);
    jn = ctx->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_fail_pg(r, pg);
        return;
    }

    res = pg->result;

    if (PQntuples(res) != 1 || PQnfields(res) != 2 || PQgetisnull(res, 0, 0)
        || PQgetisnull(res, 0, 1))
    {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    status = ngx_atoi((u_char *) PQgetvalue(res, 0, 0),
                      PQgetlength(res, 0, 0));

    body = ngx_http_telehealth_json_track(r->pool,
                            json_loads(PQgetvalue(res, 0, 1), 0, NULL));

    if (body == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    v = json_object_get(body, "open");

    if (status == NGX_HTTP_CONFLICT && json_is_object(v) && !jn->retried) {
        ngx_http_telehealth_redeem_open(r, jn, v);
        return;
    }

    /* registered for a group that has not started: no credential yet */
    if (status == NGX_HTTP_ACCEPTED) {
        ngx_http_telehealth_finalize(r,
                ngx_http_telehealth_send_json(r, status, json_incref(body)));
        return;
    }

    if (status != NGX_HTTP_OK) {
        v = json_object_get(body, "detail");

        ngx_http_telehealth_fail(r,
                ngx_http_telehealth_problem_named(
                    json_string_value(json_object_get(body, "problem"))
                    ? json_string_value(json_object_get(body, "problem"))
                    : "internal"),
                json_is_string(v) ? json_string_value(v) : NULL);
        return;
    }

#define ngx_http_telehealth_redeem_str(field, dst)                            \
    v = json_object_get(body, field);                                         \
    if (!json_is_string(v)) {                                                 \
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);      \
        return;                                                               \
    }                                                                         \
    (dst).data = (u_char *) json_string_value(v);                             \
    (dst).len = json_string_length(v)

    ngx_http_telehealth_redeem_str("room", jn->room);
    ngx_http_telehealth_redeem_str("kind", jn->kind);
    ngx_http_telehealth_redeem_str("role", jn->role);
    ngx_http_telehealth_redeem_str("session_id", jn->session);
    ngx_http_telehealth_redeem_str("org_id", jn->org);
    ngx_http_telehealth_redeem_str("invite_id", jn->sub);

#undef ngx_http_telehealth_redeem_str

    jn->preadmitted = json_is_true(json_object_get(body, "preadmitted"));

    /* a guest: "guest:<invite id>" */
    id = jn->sub;

    jn->sub.data = ngx_pnalloc(r->pool, sizeof("guest:") + jn->sub.len);
    if (jn->sub.data == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    jn->sub.len = ngx_sprintf(jn->sub.data, "guest:%V%Z", &id)
                  - jn->sub.data - 1;

    ngx_http_telehealth_join_check_room(r, jn);
}
