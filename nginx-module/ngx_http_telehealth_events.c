/*
 * The event stream consumer, run by the first worker of each nginx.
 *
 * Entries are read in consumer group "nginx" (own pending entries first,
 * so nothing read before a crash is forgotten), applied one by one, each
 * in one PostgreSQL transaction that also records the entry's id in
 * processed_events, and acknowledged only after COMMIT.  An entry applied
 * twice therefore changes nothing, and every statement is written so that
 * the order of a room's events does not matter either.  While PostgreSQL
 * or Redis is down the entries stay pending and are retried.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include "ngx_http_telehealth_events.h"
#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"


#define NGX_HTTP_TELEHEALTH_EVENTS_BATCH "100"
#define NGX_HTTP_TELEHEALTH_EVENTS_POLL  250     /* ms, when idle */
#define NGX_HTTP_TELEHEALTH_EVENTS_RETRY 1000    /* ms, after a failure */
#define NGX_HTTP_TELEHEALTH_EVENTS_CLAIM 30      /* s between claims */
#define NGX_HTTP_TELEHEALTH_EVENTS_IDLE  "60000" /* ms, a dead consumer */


/* the fields of an entry, and the parameters of the statements */
enum {
    NGX_HTTP_TELEHEALTH_EV_ID = 0,
    NGX_HTTP_TELEHEALTH_EV_TYPE,
    NGX_HTTP_TELEHEALTH_EV_SESSION,
    NGX_HTTP_TELEHEALTH_EV_ORG,
    NGX_HTTP_TELEHEALTH_EV_ROOM,
    NGX_HTTP_TELEHEALTH_EV_TS,
    NGX_HTTP_TELEHEALTH_EV_PARTICIPANT,
    NGX_HTTP_TELEHEALTH_EV_ROLE,
    NGX_HTTP_TELEHEALTH_EV_REASON,
    NGX_HTTP_TELEHEALTH_EV_ACTION,
    NGX_HTTP_TELEHEALTH_EV_ACTOR,
    NGX_HTTP_TELEHEALTH_EV_FIELDS
};


typedef struct {
    const char *sql;
    int         nparams;
    int         fields[6];
} ngx_http_telehealth_stmt_t;


typedef struct {
    const char                       *type;
    const ngx_http_telehealth_stmt_t *stmts;
} ngx_http_telehealth_event_kind_t;


typedef struct {
    const ngx_http_telehealth_event_kind_t *kind;
    char *field[NGX_HTTP_TELEHEALTH_EV_FIELDS];
} ngx_http_telehealth_event_t;


typedef enum {
    NGX_HTTP_TELEHEALTH_EV_BEGIN = 0,
    NGX_HTTP_TELEHEALTH_EV_PROCESSED,
    NGX_HTTP_TELEHEALTH_EV_CHECK,
    NGX_HTTP_TELEHEALTH_EV_APPLY,
    NGX_HTTP_TELEHEALTH_EV_COMMIT
} ngx_http_telehealth_phase_e;


typedef struct {
    ngx_log_t  *log;
    ngx_event_t timer;
    char       *key;
    char       *consumer;
    time_t      claimed;

    ngx_pool_t                       *batch; /* the entries being applied */
    ngx_array_t                      *entries;
    ngx_uint_t                        next;
    ngx_http_telehealth_event_t      *entry;
    ngx_http_telehealth_pg_req_t     *pg;
    ngx_http_telehealth_phase_e       phase;
    const ngx_http_telehealth_stmt_t *stmt;
    const char                       *params[6];

    unsigned group : 1;
    unsigned pending : 1;
    unsigned exiting : 1;
} ngx_http_telehealth_events_t;


/*
 * The statements of each kind of entry, in sql/functions/lifecycle.sql
 * and console.sql; "ts" is the entry's time in Unix milliseconds.
 * $1 session, $2 org, $3 room, $4 ts
 */
#define NGX_HTTP_TELEHEALTH_ENSURE_CALL                                 \
    {                                                                   \
        "SELECT th_call_ensure($1, $2, $3, $4)", 4,                     \
        {                                                               \
            NGX_HTTP_TELEHEALTH_EV_SESSION, NGX_HTTP_TELEHEALTH_EV_ORG, \
                NGX_HTTP_TELEHEALTH_EV_ROOM, NGX_HTTP_TELEHEALTH_EV_TS  \
        }                                                               \
    }

#define NGX_HTTP_TELEHEALTH_STMT_END { NULL, 0, { 0 } }

/*
 * The staff console's event, in the same transaction (th_console_room_event).
 * $1 type, $2 session, $3 participant, $4 role or reason
 */
#define NGX_HTTP_TELEHEALTH_CONSOLE(args, last)                          \
    {                                                                    \
        "SELECT th_console_room_event($1, $2, $3, " args ")", 4,         \
        {                                                                \
            NGX_HTTP_TELEHEALTH_EV_TYPE, NGX_HTTP_TELEHEALTH_EV_SESSION, \
                NGX_HTTP_TELEHEALTH_EV_PARTICIPANT, last                 \
        }                                                                \
    }

#define NGX_HTTP_TELEHEALTH_CONSOLE_ROLE \
    NGX_HTTP_TELEHEALTH_CONSOLE("$4, ''", NGX_HTTP_TELEHEALTH_EV_ROLE)
#define NGX_HTTP_TELEHEALTH_CONSOLE_REASON \
    NGX_HTTP_TELEHEALTH_CONSOLE("'', $4", NGX_HTTP_TELEHEALTH_EV_REASON)


static const ngx_http_telehealth_stmt_t ngx_http_telehealth_room_opened[] = {
    NGX_HTTP_TELEHEALTH_ENSURE_CALL, NGX_HTTP_TELEHEALTH_STMT_END
};


/* the ring on the consoles: nothing else records a wait */
static const ngx_http_telehealth_stmt_t ngx_http_telehealth_waiting[] = {
    NGX_HTTP_TELEHEALTH_CONSOLE_ROLE, NGX_HTTP_TELEHEALTH_STMT_END
};


/*
 * A join that arrives after its leave (see participant.left) completes the
 * row the leave made instead of opening a new one.
 * $1 room, $2 participant, $3 role, $4 ts
 */
static const ngx_http_telehealth_stmt_t ngx_http_telehealth_joined[] = {
    NGX_HTTP_TELEHEALTH_ENSURE_CALL,

    { "SELECT th_call_joined($1, $2, $3, $4)", 4,
        { NGX_HTTP_TELEHEALTH_EV_ROOM, NGX_HTTP_TELEHEALTH_EV_PARTICIPANT,
            NGX_HTTP_TELEHEALTH_EV_ROLE, NGX_HTTP_TELEHEALTH_EV_TS } },

    NGX_HTTP_TELEHEALTH_CONSOLE_ROLE,

    NGX_HTTP_TELEHEALTH_STMT_END
};


/*
 * Closes the open row; a leave without one (its join not yet applied)
 * records a row that joined and left at the same moment, which the join
 * completes later.  $1 room, $2 participant, $3 reason, $4 ts
 */
static const ngx_http_telehealth_stmt_t ngx_http_telehealth_left[] = {
    NGX_HTTP_TELEHEALTH_ENSURE_CALL,

    { "SELECT th_call_left($1, $2, $3, $4)", 4,
        { NGX_HTTP_TELEHEALTH_EV_ROOM, NGX_HTTP_TELEHEALTH_EV_PARTICIPANT,
            NGX_HTTP_TELEHEALTH_EV_REASON, NGX_HTTP_TELEHEALTH_EV_TS } },

    NGX_HTTP_TELEHEALTH_CONSOLE_REASON,

    NGX_HTTP_TELEHEALTH_STMT_END
};


static const ngx_http_telehealth_stmt_t ngx_http_telehealth_room_closed[] = {
    NGX_HTTP_TELEHEALTH_ENSURE_CALL,

    /* the call ends; whoever the plugin did not report as gone left */
    { "SELECT th_call_closed($1, $2, $3, $4)", 4,
        { NGX_HTTP_TELEHEALTH_EV_ROOM, NGX_HTTP_TELEHEALTH_EV_REASON,
            NGX_HTTP_TELEHEALTH_EV_SESSION, NGX_HTTP_TELEHEALTH_EV_TS } },

    /* the session ends once, with the room's reason */
    { "SELECT th_session_ended($1, $2, $3, $4::bigint)", 4,
        { NGX_HTTP_TELEHEALTH_EV_SESSION, NGX_HTTP_TELEHEALTH_EV_ROOM,
            NGX_HTTP_TELEHEALTH_EV_REASON, NGX_HTTP_TELEHEALTH_EV_TS } },

    NGX_HTTP_TELEHEALTH_CONSOLE_REASON,

    NGX_HTTP_TELEHEALTH_STMT_END
};


/* an audit row; a removal bans, a role change is kept (th_chair_action) */
static const ngx_http_telehealth_stmt_t ngx_http_telehealth_chair_action[] = {
    { "SELECT th_chair_action($1, $2, $3, $4, $5, $6::bigint)", 6,
        { NGX_HTTP_TELEHEALTH_EV_SESSION, NGX_HTTP_TELEHEALTH_EV_ACTION,
            NGX_HTTP_TELEHEALTH_EV_ACTOR, NGX_HTTP_TELEHEALTH_EV_PARTICIPANT,
            NGX_HTTP_TELEHEALTH_EV_ROLE, NGX_HTTP_TELEHEALTH_EV_TS } },
    NGX_HTTP_TELEHEALTH_STMT_END
};


static const ngx_http_telehealth_event_kind_t ngx_http_telehealth_kinds[] = {
    { TH_EV_ROOM_OPENED, ngx_http_telehealth_room_opened },
    { TH_EV_PARTICIPANT_WAITING, ngx_http_telehealth_waiting },
    { TH_EV_PARTICIPANT_JOINED, ngx_http_telehealth_joined },
    { TH_EV_PARTICIPANT_LEFT, ngx_http_telehealth_left },
    { TH_EV_ROOM_CLOSED, ngx_http_telehealth_room_closed },
    { TH_EV_CHAIR_ACTION, ngx_http_telehealth_chair_action }, { NULL, NULL }
};


static const char *ngx_http_telehealth_event_fields[] = { NULL, "type",
    "session", "org", "room", "ts", "participant", "role", "reason", "action",
    "actor" };


/* $1 the entry's id: "f" when it was applied before */
static const char ngx_http_telehealth_processed_sql[] =
    "SELECT th_event_processed($1)";

/* $1 session, $2 org: a row when the session exists */
static const char ngx_http_telehealth_session_sql[] =
    "SELECT * FROM th_event_session($1, $2)";


static void ngx_http_telehealth_events_tick(ngx_event_t *ev);
static void ngx_http_telehealth_events_schedule(ngx_msec_t delay);
static void ngx_http_telehealth_events_grouped(void *data, redisReply *reply);
static void ngx_http_telehealth_events_claimed(void *data, redisReply *reply);
static void ngx_http_telehealth_events_read(void);
static void ngx_http_telehealth_events_batch(void *data, redisReply *reply);
static ngx_int_t ngx_http_telehealth_events_parse(redisReply *entry,
    ngx_http_telehealth_event_t                              *ev);
static void ngx_http_telehealth_events_apply(void);
static void ngx_http_telehealth_events_step(ngx_http_telehealth_pg_req_t *pg);
static ngx_int_t ngx_http_telehealth_events_query(const char *sql, int nparams,
    const int *fields);
static void ngx_http_telehealth_events_ack(void);
static void ngx_http_telehealth_events_acked(void *data, redisReply *reply);
static void ngx_http_telehealth_events_retry(void);
static void ngx_http_telehealth_events_done(void);


static ngx_http_telehealth_events_t *ngx_http_telehealth_events;


ngx_int_t
ngx_http_telehealth_events_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                 *mcf)
{
    u_char                       *p;
    size_t                        len;
    ngx_http_telehealth_events_t *evs;

    evs = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_events_t));
    if (evs == NULL) {
        return NGX_ERROR;
    }

    evs->log = cycle->log;

    evs->key = ngx_http_telehealth_redis_key(cycle->pool, TH_KEY_EVENTS, NULL);
    if (evs->key == NULL) {
        return NGX_ERROR;
    }

    /* one consumer per process: "hostname:pid" */
    len = cycle->hostname.len + 1 + NGX_INT64_LEN + 1;

    evs->consumer = ngx_pnalloc(cycle->pool, len);
    if (evs->consumer == NULL) {
        return NGX_ERROR;
    }

    p = ngx_snprintf((u_char *) evs->consumer, len - 1, "%V:%P",
        &cycle->hostname, ngx_pid);
    *p = '\0';

    evs->pending = 1;
    evs->claimed = ngx_time();

    evs->timer.handler = ngx_http_telehealth_events_tick;
    evs->timer.data = evs;
    evs->timer.log = cycle->log;
    evs->timer.cancelable = 1;

    ngx_http_telehealth_events = evs;

    /* give the Redis connection a moment to come up */
    ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_POLL);

    ngx_log_error(NGX_LOG_INFO, cycle->log, 0,
        "telehealth: consuming events from \"%s\" as \"%s\"", evs->key,
        evs->consumer);

    return NGX_OK;
}


void
ngx_http_telehealth_events_exit_process(void)
{
    ngx_http_telehealth_events_t *evs;

    evs = ngx_http_telehealth_events;
    if (evs == NULL) {
        return;
    }

    evs->exiting = 1;

    if (evs->timer.timer_set) {
        ngx_del_timer(&evs->timer);
    }

    if (evs->batch != NULL) {
        /* its pool cleanup rolls back the open transaction */
        ngx_destroy_pool(evs->batch);
        evs->batch = NULL;
    }
}


static void
ngx_http_telehealth_events_schedule(ngx_msec_t delay)
{
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    if (evs->exiting || ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    if (evs->timer.timer_set) {
        ngx_del_timer(&evs->timer);
    }

    ngx_add_timer(&evs->timer, delay);
}


static void
ngx_http_telehealth_events_tick(ngx_event_t *ev)
{
    const char                   *argv[9];
    ngx_uint_t                    i;
    size_t                        argvlen[9];
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    if (evs->batch != NULL) {
        return; /* still applying the last batch */
    }

    if (!evs->group) {
        argv[0] = "XGROUP";
        argv[1] = "CREATE";
        argv[2] = evs->key;
        argv[3] = TH_EVENTS_GROUP;
        /*
         * "0", not "$": when Redis lost the stream, the plugin may append
         * before this runs, and those entries must not be skipped.  An old
         * backlog is harmless: processed_events makes replays no-ops.
         */
        argv[4] = "0";
        argv[5] = "MKSTREAM";

        for (i = 0; i < 6; i++) {
            argvlen[i] = ngx_strlen(argv[i]);
        }

        if (ngx_http_telehealth_redis_command(NULL, evs->log,
                ngx_http_telehealth_events_grouped, evs, 6, argv, argvlen)
            != NGX_OK)
        {
            ngx_http_telehealth_events_schedule(
                NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        }

        return;
    }

    /*
     * Entries a consumer read and never acknowledged (an nginx that was
     * restarted has a new pid, so a new name) are taken over after a while.
     */
    if (ngx_time() - evs->claimed >= NGX_HTTP_TELEHEALTH_EVENTS_CLAIM) {
        evs->claimed = ngx_time();

        argv[0] = "XAUTOCLAIM";
        argv[1] = evs->key;
        argv[2] = TH_EVENTS_GROUP;
        argv[3] = evs->consumer;
        argv[4] = NGX_HTTP_TELEHEALTH_EVENTS_IDLE;
        argv[5] = "0-0";
        argv[6] = "COUNT";
        argv[7] = NGX_HTTP_TELEHEALTH_EVENTS_BATCH;
        argv[8] = "JUSTID";

        for (i = 0; i < 9; i++) {
            argvlen[i] = ngx_strlen(argv[i]);
        }

        if (ngx_http_telehealth_redis_command(NULL, evs->log,
                ngx_http_telehealth_events_claimed, evs, 9, argv, argvlen)
            == NGX_OK)
        {
            return;
        }
    }

    ngx_http_telehealth_events_read();
}


static void
ngx_http_telehealth_events_grouped(void *data, redisReply *reply)
{
    ngx_http_telehealth_events_t *evs = data;

    if (evs->exiting) {
        return;
    }

    if (reply == NULL) {
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "BUSYGROUP", 9) != 0)
    {
        ngx_log_error(NGX_LOG_ERR, evs->log, 0,
            "telehealth: XGROUP CREATE failed: %s", reply->str);
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        return;
    }

    evs->group = 1;
    evs->pending = 1;

    ngx_http_telehealth_events_read();
}


static void
ngx_http_telehealth_events_claimed(void *data, redisReply *reply)
{
    ngx_http_telehealth_events_t *evs = data;

    if (evs->exiting) {
        return;
    }

    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY
        && reply->elements >= 2 && reply->element[1]->type == REDIS_REPLY_ARRAY
        && reply->element[1]->elements > 0)
    {
        ngx_log_error(NGX_LOG_NOTICE, evs->log, 0,
            "telehealth: took over %uz events of a consumer "
            "that stopped",
            reply->element[1]->elements);
        evs->pending = 1;
    }

    ngx_http_telehealth_events_read();
}


static void
ngx_http_telehealth_events_read(void)
{
    const char                   *argv[10];
    ngx_uint_t                    i;
    size_t                        argvlen[10];
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    argv[0] = "XREADGROUP";
    argv[1] = "GROUP";
    argv[2] = TH_EVENTS_GROUP;
    argv[3] = evs->consumer;
    argv[4] = "COUNT";
    argv[5] = NGX_HTTP_TELEHEALTH_EVENTS_BATCH;
    argv[6] = "STREAMS";
    argv[7] = evs->key;
    argv[8] = evs->pending ? "0" : ">";

    for (i = 0; i < 9; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    /* no BLOCK: the connection is shared with the API's commands */
    if (ngx_http_telehealth_redis_command(NULL, evs->log,
            ngx_http_telehealth_events_batch, evs, 9, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
    }
}


static void
ngx_http_telehealth_events_batch(void *data, redisReply *reply)
{
    size_t                        i;
    redisReply                   *list;
    ngx_http_telehealth_event_t  *ev;
    ngx_http_telehealth_events_t *evs = data;

    if (evs->exiting) {
        return;
    }

    if (reply == NULL) {
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        return;
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* NOGROUP: the stream was deleted; make it and the group again */
        ngx_log_error(NGX_LOG_WARN, evs->log, 0,
            "telehealth: XREADGROUP failed: %s", reply->str);
        evs->group = 0;
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        return;
    }

    list = NULL;

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 1
        && reply->element[0]->type == REDIS_REPLY_ARRAY
        && reply->element[0]->elements == 2
        && reply->element[0]->element[1]->type == REDIS_REPLY_ARRAY)
    {
        list = reply->element[0]->element[1];
    }

    if (list == NULL || list->elements == 0) {
        if (evs->pending) {
            /* own backlog done: now new entries */
            evs->pending = 0;
            ngx_http_telehealth_events_read();
            return;
        }

        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_POLL);
        return;
    }

    evs->batch = ngx_create_pool(4096, evs->log);
    if (evs->batch == NULL) {
        ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
        return;
    }

    evs->entries = ngx_array_create(evs->batch, list->elements,
        sizeof(ngx_http_telehealth_event_t));
    if (evs->entries == NULL) {
        ngx_http_telehealth_events_retry();
        return;
    }

    for (i = 0; i < list->elements; i++) {
        ev = ngx_array_push(evs->entries);
        if (ev == NULL
            || ngx_http_telehealth_events_parse(list->element[i], ev)
                   == NGX_ERROR)
        {
            ngx_http_telehealth_events_retry();
            return;
        }
    }

    evs->next = 0;

    ngx_http_telehealth_events_apply();
}


static char *
ngx_http_telehealth_events_dup(redisReply *r)
{
    char                         *s;
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    s = ngx_pnalloc(evs->batch, r->len + 1);
    if (s == NULL) {
        return NULL;
    }

    ngx_memcpy(s, r->str, r->len);
    s[r->len] = '\0';

    return s;
}


/* NGX_OK, NGX_DECLINED for an entry that can only be acknowledged */

static ngx_int_t
ngx_http_telehealth_events_parse(redisReply *entry,
    ngx_http_telehealth_event_t             *ev)
{
    size_t                                  i, f;
    redisReply                             *fields, *k, *v;
    ngx_http_telehealth_events_t           *evs = ngx_http_telehealth_events;
    const ngx_http_telehealth_event_kind_t *kind;

    ngx_memzero(ev, sizeof(ngx_http_telehealth_event_t));

    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2
        || entry->element[0]->type != REDIS_REPLY_STRING)
    {
        return NGX_ERROR;
    }

    ev->field[NGX_HTTP_TELEHEALTH_EV_ID] =
        ngx_http_telehealth_events_dup(entry->element[0]);
    if (ev->field[NGX_HTTP_TELEHEALTH_EV_ID] == NULL) {
        return NGX_ERROR;
    }

    fields = entry->element[1];

    /* a pending entry that was trimmed away has no fields left */
    if (fields->type != REDIS_REPLY_ARRAY) {
        return NGX_DECLINED;
    }

    for (i = 0; i + 1 < fields->elements; i += 2) {
        k = fields->element[i];
        v = fields->element[i + 1];

        if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING) {
            continue;
        }

        for (f = 1; f < NGX_HTTP_TELEHEALTH_EV_FIELDS; f++) {
            if (ngx_strcmp(k->str, ngx_http_telehealth_event_fields[f]) == 0) {
                ev->field[f] = ngx_http_telehealth_events_dup(v);
                if (ev->field[f] == NULL) {
                    return NGX_ERROR;
                }

                break;
            }
        }
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_TYPE] == NULL) {
        return NGX_DECLINED;
    }

    for (kind = ngx_http_telehealth_kinds; kind->type; kind++) {
        if (ngx_strcmp(kind->type, ev->field[NGX_HTTP_TELEHEALTH_EV_TYPE]) == 0)
        {
            ev->kind = kind;
            break;
        }
    }

    /* fill what a statement needs but an entry may lack */

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_TS] == NULL
        || ngx_atoof((u_char *) ev->field[NGX_HTTP_TELEHEALTH_EV_TS],
               ngx_strlen(ev->field[NGX_HTTP_TELEHEALTH_EV_TS]))
               == NGX_ERROR)
    {
        ev->field[NGX_HTTP_TELEHEALTH_EV_TS] =
            ngx_pnalloc(evs->batch, NGX_INT64_LEN + 1);
        if (ev->field[NGX_HTTP_TELEHEALTH_EV_TS] == NULL) {
            return NGX_ERROR;
        }

        ngx_sprintf((u_char *) ev->field[NGX_HTTP_TELEHEALTH_EV_TS], "%M%Z",
            (ngx_msec_t) ngx_time() * 1000);
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_ROLE] == NULL) {
        ev->field[NGX_HTTP_TELEHEALTH_EV_ROLE] = "unknown";
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_REASON] == NULL) {
        ev->field[NGX_HTTP_TELEHEALTH_EV_REASON] = "";
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_ACTION] == NULL) {
        ev->field[NGX_HTTP_TELEHEALTH_EV_ACTION] = "";
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_ACTOR] == NULL) {
        ev->field[NGX_HTTP_TELEHEALTH_EV_ACTOR] = "";
    }

    if (ev->field[NGX_HTTP_TELEHEALTH_EV_PARTICIPANT] == NULL
        && ev->kind != NULL
        && ev->kind->stmts == ngx_http_telehealth_chair_action)
    {
        /* an action on the whole room (close, breakout) has no target */
        ev->field[NGX_HTTP_TELEHEALTH_EV_PARTICIPANT] = "";
    }

    return NGX_OK;
}


/* the next entry of the batch, or the next batch */

static void
ngx_http_telehealth_events_apply(void)
{
    char                         *session, *org, *room, *who;
    ngx_http_telehealth_event_t  *ev;
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    if (evs->next == evs->entries->nelts) {
        ngx_http_telehealth_events_done();
        return;
    }

    ev = (ngx_http_telehealth_event_t *) evs->entries->elts + evs->next;
    evs->entry = ev;

    session = ev->field[NGX_HTTP_TELEHEALTH_EV_SESSION];
    org = ev->field[NGX_HTTP_TELEHEALTH_EV_ORG];
    room = ev->field[NGX_HTTP_TELEHEALTH_EV_ROOM];
    who = ev->field[NGX_HTTP_TELEHEALTH_EV_PARTICIPANT];

    /* what can never be applied is acknowledged, not retried forever */
    if (ev->kind == NULL
        || !ngx_http_telehealth_is_uuid(session, session ? strlen(session) : 0)
        || !ngx_http_telehealth_is_uuid(org, org ? strlen(org) : 0)
        || room == NULL || room[0] == '\0'
        || (ev->kind->stmts != ngx_http_telehealth_room_opened
            && ev->kind->stmts != ngx_http_telehealth_room_closed
            && ev->kind->stmts != ngx_http_telehealth_chair_action
            && (who == NULL || who[0] == '\0')))
    {
        ngx_log_error(NGX_LOG_WARN, evs->log, 0,
            "telehealth: event %s skipped: unknown type or "
            "missing fields",
            ev->field[NGX_HTTP_TELEHEALTH_EV_ID]);
        ngx_http_telehealth_events_ack();
        return;
    }

    evs->pg = ngx_http_telehealth_pg_create(evs->batch, evs->log);
    if (evs->pg == NULL) {
        ngx_http_telehealth_events_retry();
        return;
    }

    evs->pg->keep = 1;
    evs->pg->handler = ngx_http_telehealth_events_step;
    evs->pg->data = evs;
    evs->phase = NGX_HTTP_TELEHEALTH_EV_BEGIN;
    evs->stmt = NULL;

    /*
     * BEGIN and COMMIT stay here, not in a function: the transaction spans
     * the entry's statements, one query each, on the kept connection
     */

    if (ngx_http_telehealth_pg_query(evs->pg, "BEGIN", 0, NULL) != NGX_AGAIN) {
        ngx_http_telehealth_events_retry();
    }
}


/* BEGIN, processed_events, session check, the statements, COMMIT, XACK */

static void
ngx_http_telehealth_events_step(ngx_http_telehealth_pg_req_t *pg)
{
    static const int id_field[] = { NGX_HTTP_TELEHEALTH_EV_ID };
    static const int session_fields[] = { NGX_HTTP_TELEHEALTH_EV_SESSION,
        NGX_HTTP_TELEHEALTH_EV_ORG };

    const char                   *state;
    ngx_int_t                     rc;
    ngx_http_telehealth_event_t  *ev;
    ngx_http_telehealth_events_t *evs = pg->data;

    ev = evs->entry;

    if (pg->status == NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE) {
        ngx_http_telehealth_events_retry();
        return;
    }

    if (pg->status == NGX_HTTP_TELEHEALTH_PG_FAILED) {
        state = ngx_http_telehealth_pg_sqlstate(pg);

        /* serialization failures and deadlocks go away on a retry */
        if (ngx_strncmp(state, "40", 2) == 0) {
            ngx_http_telehealth_events_retry();
            return;
        }

        ngx_log_error(NGX_LOG_ERR, evs->log, 0,
            "telehealth: event %s (%s) cannot be applied, "
            "skipped: SQLSTATE %s",
            ev->field[NGX_HTTP_TELEHEALTH_EV_ID],
            ev->field[NGX_HTTP_TELEHEALTH_EV_TYPE], state);

        ngx_http_telehealth_pg_release(pg);
        ngx_http_telehealth_events_ack();
        return;
    }

    switch (evs->phase) {

    case NGX_HTTP_TELEHEALTH_EV_BEGIN:
        evs->phase = NGX_HTTP_TELEHEALTH_EV_PROCESSED;
        rc = ngx_http_telehealth_events_query(ngx_http_telehealth_processed_sql,
            1, id_field);
        break;

    case NGX_HTTP_TELEHEALTH_EV_PROCESSED:

        if (PQntuples(pg->result) != 1
            || ngx_strcmp(PQgetvalue(pg->result, 0, 0), "t") != 0)
        {
            /* applied before; the acknowledgement was lost */
            evs->phase = NGX_HTTP_TELEHEALTH_EV_COMMIT;
            rc = ngx_http_telehealth_events_query("COMMIT", 0, NULL);
            break;
        }

        evs->phase = NGX_HTTP_TELEHEALTH_EV_CHECK;
        rc = ngx_http_telehealth_events_query(ngx_http_telehealth_session_sql,
            2, session_fields);
        break;

    case NGX_HTTP_TELEHEALTH_EV_CHECK:

        if (PQntuples(pg->result) == 0) {
            ngx_log_error(NGX_LOG_WARN, evs->log, 0,
                "telehealth: event %s (%s) names an unknown "
                "session %s, skipped",
                ev->field[NGX_HTTP_TELEHEALTH_EV_ID],
                ev->field[NGX_HTTP_TELEHEALTH_EV_TYPE],
                ev->field[NGX_HTTP_TELEHEALTH_EV_SESSION]);

            /* committed with its processed_events row: never again */
            evs->phase = NGX_HTTP_TELEHEALTH_EV_COMMIT;
            rc = ngx_http_telehealth_events_query("COMMIT", 0, NULL);
            break;
        }

        evs->phase = NGX_HTTP_TELEHEALTH_EV_APPLY;
        evs->stmt = ev->kind->stmts;
        rc = ngx_http_telehealth_events_query(evs->stmt->sql,
            evs->stmt->nparams, evs->stmt->fields);
        break;

    case NGX_HTTP_TELEHEALTH_EV_APPLY:
        evs->stmt++;

        if (evs->stmt->sql == NULL) {
            evs->phase = NGX_HTTP_TELEHEALTH_EV_COMMIT;
            rc = ngx_http_telehealth_events_query("COMMIT", 0, NULL);
            break;
        }

        rc = ngx_http_telehealth_events_query(evs->stmt->sql,
            evs->stmt->nparams, evs->stmt->fields);
        break;

    default: /* NGX_HTTP_TELEHEALTH_EV_COMMIT */
        ngx_http_telehealth_pg_release(pg);
        ngx_http_telehealth_events_ack();
        return;
    }

    if (rc != NGX_AGAIN) {
        ngx_http_telehealth_events_retry();
    }
}


static ngx_int_t
ngx_http_telehealth_events_query(const char *sql, int nparams,
    const int *fields)
{
    int                           i;
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    for (i = 0; i < nparams; i++) {
        evs->params[i] = evs->entry->field[fields[i]];
    }

    return ngx_http_telehealth_pg_query(evs->pg, sql, nparams, evs->params);
}


static void
ngx_http_telehealth_events_ack(void)
{
    const char                   *argv[4];
    ngx_uint_t                    i;
    size_t                        argvlen[4];
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    argv[0] = "XACK";
    argv[1] = evs->key;
    argv[2] = TH_EVENTS_GROUP;
    argv[3] = evs->entry->field[NGX_HTTP_TELEHEALTH_EV_ID];

    for (i = 0; i < 4; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(NULL, evs->log,
            ngx_http_telehealth_events_acked, evs, 4, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_events_retry();
    }
}


static void
ngx_http_telehealth_events_acked(void *data, redisReply *reply)
{
    ngx_http_telehealth_events_t *evs = data;

    if (evs->exiting) {
        return;
    }

    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* still pending: processed_events makes the next try a no-op */
        ngx_http_telehealth_events_retry();
        return;
    }

    ngx_log_debug1(NGX_LOG_DEBUG_HTTP, evs->log, 0,
        "telehealth: event %s applied",
        evs->entry->field[NGX_HTTP_TELEHEALTH_EV_ID]);

    evs->next++;

    ngx_http_telehealth_events_apply();
}


/* leaves the rest of the batch pending and reads it again later */

static void
ngx_http_telehealth_events_retry(void)
{
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    if (evs->batch != NULL) {
        ngx_destroy_pool(evs->batch);
        evs->batch = NULL;
    }

    evs->pg = NULL;
    evs->entry = NULL;
    evs->pending = 1;

    ngx_http_telehealth_events_schedule(NGX_HTTP_TELEHEALTH_EVENTS_RETRY);
}


static void
ngx_http_telehealth_events_done(void)
{
    ngx_http_telehealth_events_t *evs = ngx_http_telehealth_events;

    ngx_destroy_pool(evs->batch);
    evs->batch = NULL;
    evs->pg = NULL;
    evs->entry = NULL;

    ngx_http_telehealth_events_read();
}
