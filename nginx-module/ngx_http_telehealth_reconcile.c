/*
 * The reconciler (docs/lifecycle.md): PostgreSQL decides whether a session
 * is open, the Redis room is its live projection.  Every
 * telehealth_reconcile_interval the first worker of each nginx compares
 * the two and repairs what disagrees, logging each repair:
 *
 *   open session, room missing        the room is rebuilt from PostgreSQL
 *   open session, room closed         the session ends with the room's
 *                                     reason (its event was lost)
 *   room without an open session      deleted
 *   room nobody hosts, empty too long closed "expired"
 *   host dead longer than node_grace  closed "node_lost"
 *   patient lock of no room's member  deleted
 *
 * What Redis decides happens in one script, which checks each condition
 * again where it acts: several nginx instances may run it at once.  A room
 * it closes is closed the way the plugin closes one (state, members,
 * patient lock, room.closed on the event stream), so the session and its
 * call record end once, through the event consumer.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_reconcile.h"
#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"
#include "th_lua.h"


/* a room younger than this may not be in PostgreSQL yet; a closed one's
 * room.closed may still be on its way to the event consumer (ms) */
#define NGX_HTTP_TELEHEALTH_RECONCILE_SETTLE "30000"
#define NGX_HTTP_TELEHEALTH_CLOSED_TTL       "60"


typedef struct {
    char   *session;
    char   *room;
    char   *org;
    char   *kind;
    char   *patient; /* "" without one */
    char   *created_by;
    char   *created_at; /* ms */
    json_t *fields;     /* the policy fields of the room hash */
    json_t *bans;
} ngx_http_telehealth_open_session_t;


typedef struct {
    ngx_log_t  *log;
    ngx_event_t timer;
    ngx_msec_t  interval;

    ngx_pool_t                   *round; /* one comparison */
    ngx_http_telehealth_pg_req_t *pg;
    ngx_array_t                  *open;  /* of open_session_t */
    ngx_array_t                  *ended; /* char *[4] to end */
    ngx_uint_t                    next;
    const char                   *params[4];

    unsigned exiting : 1;
} ngx_http_telehealth_reconciler_t;


/* KEYS, ARGV and answer: common/lua/reconcile.lua */
#define ngx_http_telehealth_reconcile_lua th_lua_reconcile

/* KEYS, ARGV and answer: common/lua/rebuild.lua */
#define ngx_http_telehealth_rebuild_lua th_lua_rebuild


static const char ngx_http_telehealth_reconcile_sql[] =
    "SELECT session_id, room, org_id, kind, COALESCE(patient_id, ''),"
    " created_by, created_at, room_fields, bans FROM th_reconcile_open()";

/* $1 session, $2 room, $3 reason, $4 closed at (ms) */
static const char ngx_http_telehealth_reconcile_end_sql[] =
    "SELECT th_session_ended($1, $2, $3, $4::bigint)";


static void ngx_http_telehealth_reconcile_tick(ngx_event_t *ev);
static void ngx_http_telehealth_reconcile_read(
    ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_reconcile_compare(void);
static void ngx_http_telehealth_reconcile_found(void *data, redisReply *reply);
static void ngx_http_telehealth_reconcile_rebuild(const char *room);
static void ngx_http_telehealth_reconcile_end(void);
static void ngx_http_telehealth_reconcile_ended(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_reconcile_done(void);
static char *ngx_http_telehealth_reconcile_dup(ngx_pool_t *pool, const char *s);


static ngx_http_telehealth_reconciler_t *ngx_http_telehealth_reconciler;


ngx_int_t
ngx_http_telehealth_reconcile_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                    *mcf)
{
    ngx_http_telehealth_reconciler_t *rc;

    if (mcf->reconcile_interval == 0) {
        return NGX_OK;
    }

    rc = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_reconciler_t));
    if (rc == NULL) {
        return NGX_ERROR;
    }

    rc->log = cycle->log;
    rc->interval = mcf->reconcile_interval;

    rc->timer.handler = ngx_http_telehealth_reconcile_tick;
    rc->timer.data = rc;
    rc->timer.log = cycle->log;
    rc->timer.cancelable = 1;

    ngx_http_telehealth_reconciler = rc;

    ngx_add_timer(&rc->timer, rc->interval);

    return NGX_OK;
}


void
ngx_http_telehealth_reconcile_exit_process(void)
{
    ngx_http_telehealth_reconciler_t *rc = ngx_http_telehealth_reconciler;

    if (rc == NULL) {
        return;
    }

    rc->exiting = 1;

    if (rc->timer.timer_set) {
        ngx_del_timer(&rc->timer);
    }

    if (rc->round != NULL) {
        ngx_destroy_pool(rc->round);
        rc->round = NULL;
    }
}


/* a round: PostgreSQL's open sessions, then one Redis script */

static void
ngx_http_telehealth_reconcile_tick(ngx_event_t *ev)
{
    ngx_http_telehealth_reconciler_t *rc = ev->data;

    if (rc->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    rc->round = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, rc->log);
    if (rc->round == NULL) {
        ngx_http_telehealth_reconcile_done();
        return;
    }

    rc->pg = ngx_http_telehealth_pg_create(rc->round, rc->log);
    if (rc->pg == NULL) {
        ngx_http_telehealth_reconcile_done();
        return;
    }

    rc->pg->handler = ngx_http_telehealth_reconcile_read;
    rc->pg->data = rc;

    if (ngx_http_telehealth_pg_query(rc->pg, ngx_http_telehealth_reconcile_sql,
            0, NULL)
        != NGX_AGAIN)
    {
        /* PostgreSQL is down: nothing can be compared */
        ngx_http_telehealth_reconcile_done();
    }
}


static void
ngx_http_telehealth_reconcile_read(ngx_http_telehealth_pg_req_t *pg)
{
    int                                 i, n;
    PGresult                           *res;
    ngx_http_telehealth_open_session_t *s;
    ngx_http_telehealth_reconciler_t   *rc = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_WARN, rc->log, 0,
            "telehealth: reconciler cannot read open sessions");
        ngx_http_telehealth_reconcile_done();
        return;
    }

    res = pg->result;
    n = PQntuples(res);

    rc->open = ngx_array_create(rc->round, n ? n : 1,
        sizeof(ngx_http_telehealth_open_session_t));
    if (rc->open == NULL) {
        ngx_http_telehealth_reconcile_done();
        return;
    }

    for (i = 0; i < n; i++) {
        s = ngx_array_push(rc->open);
        if (s == NULL) {
            ngx_http_telehealth_reconcile_done();
            return;
        }

        s->session =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 0));
        s->room =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 1));
        s->org =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 2));
        s->kind =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 3));
        s->patient =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 4));
        s->created_by =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 5));
        s->created_at =
            ngx_http_telehealth_reconcile_dup(rc->round, PQgetvalue(res, i, 6));
        s->fields = ngx_http_telehealth_json_track(rc->round,
            json_loads(PQgetvalue(res, i, 7), 0, NULL));
        s->bans = ngx_http_telehealth_json_track(rc->round,
            json_loads(PQgetvalue(res, i, 8), 0, NULL));

        if (s->session == NULL || s->room == NULL || s->org == NULL
            || s->kind == NULL || s->patient == NULL || s->created_by == NULL
            || s->created_at == NULL || !json_is_array(s->fields)
            || !json_is_array(s->bans))
        {
            ngx_http_telehealth_reconcile_done();
            return;
        }
    }

    if (ngx_http_telehealth_reconcile_compare() != NGX_OK) {
        ngx_http_telehealth_reconcile_done();
    }
}


static ngx_int_t
ngx_http_telehealth_reconcile_compare(void)
{
    u_char                             *now;
    size_t                             *argvlen;
    ngx_uint_t                          i, argc;
    const char                        **argv;
    ngx_http_telehealth_open_session_t *s;
    ngx_http_telehealth_reconciler_t   *rc = ngx_http_telehealth_reconciler;

    argc = 7 + 2 * rc->open->nelts;

    argv = ngx_palloc(rc->round, argc * sizeof(char *));
    argvlen = ngx_palloc(rc->round, argc * sizeof(size_t));
    now = ngx_pnalloc(rc->round, NGX_INT64_LEN + 1);
    if (argv == NULL || argvlen == NULL || now == NULL) {
        return NGX_ERROR;
    }

    ngx_sprintf(now, "%M%Z", (ngx_msec_t) ngx_time() * 1000);

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_reconcile_lua;
    argv[2] = "0";
    argv[3] = ngx_http_telehealth_redis_key(rc->round, "%s", NULL);
    argv[4] = (char *) now;
    argv[5] = NGX_HTTP_TELEHEALTH_CLOSED_TTL;
    argv[6] = NGX_HTTP_TELEHEALTH_RECONCILE_SETTLE;

    if (argv[3] == NULL) {
        return NGX_ERROR;
    }

    s = rc->open->elts;

    for (i = 0; i < rc->open->nelts; i++) {
        argv[7 + 2 * i] = s[i].room;
        argv[8 + 2 * i] = s[i].session;
    }

    for (i = 0; i < argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    return ngx_http_telehealth_redis_command(rc->round, rc->log,
        ngx_http_telehealth_reconcile_found, rc, argc, argv, argvlen);
}


static void
ngx_http_telehealth_reconcile_found(void *data, redisReply *reply)
{
    char                            **end;
    ngx_uint_t                        i, j;
    redisReply                       *f;
    const char                       *v[5];
    ngx_http_telehealth_reconciler_t *rc = data;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
            ngx_log_error(NGX_LOG_ERR, rc->log, 0,
                "telehealth: reconciler script failed: %s", reply->str);
        }

        ngx_http_telehealth_reconcile_done();
        return;
    }

    rc->ended = ngx_array_create(rc->round, 4, 4 * sizeof(char *));
    if (rc->ended == NULL) {
        ngx_http_telehealth_reconcile_done();
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        f = reply->element[i];

        if (f->type != REDIS_REPLY_ARRAY || f->elements != 5) {
            continue;
        }

        for (j = 0; j < 5; j++) {
            v[j] = f->element[j]->type == REDIS_REPLY_STRING
                       ? f->element[j]->str
                       : "";
        }

        if (ngx_strcmp(v[0], "missing") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: room %s of open session "
                "%s was missing in Redis: rebuilt",
                v[1], v[2]);
            ngx_http_telehealth_reconcile_rebuild(v[1]);

        } else if (ngx_strcmp(v[0], "closed") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: room %s closed (%s) but "
                "session %s open: ending it",
                v[1], v[3], v[2]);

            end = ngx_array_push(rc->ended);
            if (end == NULL) {
                break;
            }

            /* session, room, reason, closed at */
            end[0] = ngx_http_telehealth_reconcile_dup(rc->round, v[2]);
            end[1] = ngx_http_telehealth_reconcile_dup(rc->round, v[1]);
            end[2] = ngx_http_telehealth_reconcile_dup(rc->round, v[3]);
            end[3] = ngx_http_telehealth_reconcile_dup(rc->round, v[4]);

            if (end[0] == NULL || end[1] == NULL || end[2] == NULL
                || end[3] == NULL)
            {
                ngx_http_telehealth_reconcile_done();
                return;
            }

        } else if (ngx_strcmp(v[0], "orphan") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: room %s named no open "
                "session (%s): deleted",
                v[1], v[2]);

        } else if (ngx_strcmp(v[0], "node_lost") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: room %s of session %s "
                "closed: its node %s is gone and nobody came "
                "back",
                v[1], v[2], v[3]);

        } else if (ngx_strcmp(v[0], "expired") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: room %s of session %s "
                "closed: empty past its empty_timeout",
                v[1], v[2]);

        } else if (ngx_strcmp(v[0], "lock") == 0) {
            ngx_log_error(NGX_LOG_NOTICE, rc->log, 0,
                "telehealth: reconciler: patient lock of %s on "
                "room %s held by nobody in it: deleted",
                v[2], v[1]);
        }
    }

    rc->next = 0;
    ngx_http_telehealth_reconcile_end();
}


/* the room of an open session, from what PostgreSQL holds */

static void
ngx_http_telehealth_reconcile_rebuild(const char *room)
{
    char                               *room_key, *lock_key, *bans_key;
    json_t                             *v;
    size_t                             *argvlen;
    ngx_uint_t                          i, n, argc;
    const char                        **argv;
    ngx_http_telehealth_open_session_t *s, *found;
    ngx_http_telehealth_reconciler_t   *rc = ngx_http_telehealth_reconciler;

    found = NULL;
    s = rc->open->elts;

    for (i = 0; i < rc->open->nelts; i++) {
        if (ngx_strcmp(s[i].room, room) == 0) {
            found = &s[i];
            break;
        }
    }

    if (found == NULL) {
        return;
    }

    s = found;

    room_key = ngx_http_telehealth_redis_key(rc->round, TH_KEY_ROOM, s->room);
    bans_key = ngx_http_telehealth_redis_key(rc->round, TH_KEY_SESSION_BANNED,
        s->session);

    if (s->patient[0] != '\0' && ngx_strcmp(s->kind, TH_KIND_VIDEO_CALL) == 0) {
        lock_key = ngx_http_telehealth_redis_key(rc->round, TH_KEY_PATIENT_LOCK,
            s->patient);
    } else {
        lock_key = "";
    }

    n = json_array_size(s->bans);
    argc = 15 + n + json_array_size(s->fields);

    argv = ngx_palloc(rc->round, argc * sizeof(char *));
    argvlen = ngx_palloc(rc->round, argc * sizeof(size_t));

    if (room_key == NULL || bans_key == NULL || lock_key == NULL || argv == NULL
        || argvlen == NULL)
    {
        return;
    }

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_rebuild_lua;
    argv[2] = "3";
    argv[3] = room_key;
    argv[4] = lock_key;
    argv[5] = bans_key;
    argv[6] = s->room;
    argv[7] = s->created_at; /* empty since then, for all we know */
    argv[8] = s->session;
    argv[9] = s->org;
    argv[10] = s->kind;
    argv[11] = s->patient;
    argv[12] = s->created_by;

    /* created_at of the room hash is in seconds */
    argv[13] = ngx_pnalloc(rc->round, NGX_INT64_LEN + 1);
    if (argv[13] == NULL) {
        return;
    }

    ngx_sprintf((u_char *) argv[13], "%L%Z",
        (int64_t) (ngx_atoof((u_char *) s->created_at,
                       ngx_strlen(s->created_at))
                   / 1000));

    argc = 14;

    argv[argc] = ngx_pnalloc(rc->round, NGX_INT_T_LEN + 1);
    if (argv[argc] == NULL) {
        return;
    }

    ngx_sprintf((u_char *) argv[argc++], "%ui%Z", n);

    json_array_foreach (s->bans, i, v) {
        argv[argc++] = json_is_string(v) ? json_string_value(v) : "";
    }

    json_array_foreach (s->fields, i, v) {
        argv[argc++] = json_is_string(v) ? json_string_value(v) : "";
    }

    for (i = 0; i < argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    (void) ngx_http_telehealth_redis_command(NULL, rc->log, NULL, NULL, argc,
        argv, argvlen);
}


/* sessions whose room closed without PostgreSQL hearing it, one by one */

static void
ngx_http_telehealth_reconcile_end(void)
{
    char                            **end;
    ngx_http_telehealth_reconciler_t *rc = ngx_http_telehealth_reconciler;

    if (rc->next >= rc->ended->nelts) {
        ngx_http_telehealth_reconcile_done();
        return;
    }

    end = (char **) rc->ended->elts + 4 * rc->next++;

    rc->params[0] = end[0];
    rc->params[1] = end[1];
    rc->params[2] = end[2];
    rc->params[3] = end[3][0] != '\0' ? end[3] : "0";

    rc->pg->handler = ngx_http_telehealth_reconcile_ended;

    if (ngx_http_telehealth_pg_query(rc->pg,
            ngx_http_telehealth_reconcile_end_sql, 4, rc->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_reconcile_done();
    }
}


static void
ngx_http_telehealth_reconcile_ended(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_telehealth_reconciler_t *rc = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_WARN, rc->log, 0,
            "telehealth: reconciler cannot end session %s", rc->params[0]);
    }

    ngx_http_telehealth_reconcile_end();
}


static void
ngx_http_telehealth_reconcile_done(void)
{
    ngx_http_telehealth_reconciler_t *rc = ngx_http_telehealth_reconciler;

    if (rc->round != NULL) {
        ngx_destroy_pool(rc->round);
        rc->round = NULL;
    }

    if (rc->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(&rc->timer, rc->interval);
}


static char *
ngx_http_telehealth_reconcile_dup(ngx_pool_t *pool, const char *s)
{
    size_t  len;
    u_char *p;

    len = ngx_strlen(s);

    p = ngx_pnalloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }

    ngx_memcpy(p, s, len + 1);

    return (char *) p;
}
