/*
 * Operation figures (docs/operations.md, "Monitoring").
 *
 * Counters live in one shared memory zone, so that every worker adds to
 * the same figures and any worker can render them: requests by route and
 * status, their latency, refused logins.  Each worker publishes its own
 * gauges (PostgreSQL pool, Redis, console streams) into its slot of the
 * zone every second.  What only PostgreSQL or Redis knows (the outbox,
 * the events stream, the Janus nodes' heartbeats) is read at each scrape.
 *
 * The Janus plugin has no HTTP server of its own: its figures ride on the
 * heartbeat it writes into Redis every refresh_interval (docs/redis.md,
 * "Nodes and placement"), and this file renders them per node, so one
 * scrape of any nginx sees the whole cluster.
 *
 * The schema version check lives here too: a database whose migrations
 * are not this module's is refused with one 503 for every route, named
 * once in the error log.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_metrics.h"
#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_console.h"
#include "th_lua.h"
#include "th_schema.h"


#define NGX_HTTP_TELEHEALTH_METRICS_ROUTES  128
#define NGX_HTTP_TELEHEALTH_METRICS_WORKERS 64
#define NGX_HTTP_TELEHEALTH_METRICS_PUBLISH 1000 /* ms */
#define NGX_HTTP_TELEHEALTH_SCHEMA_RETRY    2000 /* ms, while wrong */
#define NGX_HTTP_TELEHEALTH_METRICS_BUF     (256 * 1024)


/* KEYS, ARGV and answer: common/lua/nodes.lua */
#define ngx_http_telehealth_nodes_lua th_lua_nodes


/* the status codes counted one by one; others count as "other" */
static const ngx_uint_t ngx_http_telehealth_metrics_codes[] = { 200, 201, 204,
    304, 400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422, 429, 500, 502,
    503, 504 };

#define NGX_HTTP_TELEHEALTH_METRICS_NCODES \
    (sizeof(ngx_http_telehealth_metrics_codes) / sizeof(ngx_uint_t))

/* upper bounds of the latency buckets, ms */
static const ngx_msec_t ngx_http_telehealth_metrics_bounds[] = { 5, 10, 25, 50,
    100, 250, 500, 1000, 2500, 5000, 10000 };

#define NGX_HTTP_TELEHEALTH_METRICS_NBOUNDS \
    (sizeof(ngx_http_telehealth_metrics_bounds) / sizeof(ngx_msec_t))

/* the plugin's join latency buckets (janus_telehealth_metrics.c), ms */
static const ngx_uint_t ngx_http_telehealth_join_bounds[] = { 5, 10, 25, 50,
    100, 250, 500, 1000, 2500, 5000 };


typedef struct {
    ngx_atomic_t pid; /* 0: no worker */
    ngx_atomic_t pg_size;
    ngx_atomic_t pg_connected;
    ngx_atomic_t pg_in_use;
    ngx_atomic_t pg_waiting;
    ngx_atomic_t redis_up;
    ngx_atomic_t sse_open;
} ngx_http_telehealth_metrics_worker_t;


typedef struct {
    /* row 0: no route matched; route i is row i + 1 */
    ngx_atomic_t requests[NGX_HTTP_TELEHEALTH_METRICS_ROUTES + 1]
                         [NGX_HTTP_TELEHEALTH_METRICS_NCODES + 1];
    ngx_atomic_t latency[NGX_HTTP_TELEHEALTH_METRICS_NBOUNDS + 1];
    ngx_atomic_t latency_sum_ms;
    ngx_atomic_t logins_invalid;
    ngx_atomic_t logins_throttled;
    /* the database version whose mismatch was logged, + 1; 0: none */
    ngx_atomic_t schema_logged;
    ngx_http_telehealth_metrics_worker_t
        workers[NGX_HTTP_TELEHEALTH_METRICS_WORKERS];
} ngx_http_telehealth_metrics_shm_t;


/* one scrape: Redis' nodes, the events stream, PostgreSQL's outbox */
typedef struct {
    ngx_http_request_t              *request;
    ngx_http_telehealth_main_conf_t *mcf;
    ngx_buf_t                       *buf;
    ngx_http_telehealth_pg_req_t    *pg;
    ngx_uint_t                       health; /* GET /health, not text */
    json_t                          *nodes;  /* of /health */
} ngx_http_telehealth_scrape_t;


static ngx_int_t ngx_http_telehealth_metrics_init_zone(ngx_shm_zone_t *zone,
    void                                                              *data);
static ngx_int_t ngx_http_telehealth_metrics_log(ngx_http_request_t *r);
static void ngx_http_telehealth_metrics_publish(ngx_event_t *ev);
static void ngx_http_telehealth_scrape_nodes(ngx_http_telehealth_scrape_t *sc);
static void ngx_http_telehealth_scrape_nodes_done(void *data,
    redisReply                                         *reply);
static void ngx_http_telehealth_scrape_stream_done(void *data,
    redisReply                                          *reply);
static void ngx_http_telehealth_scrape_outbox(ngx_http_telehealth_scrape_t *sc);
static void ngx_http_telehealth_scrape_outbox_done(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_scrape_send(ngx_http_telehealth_scrape_t *sc);
static void ngx_http_telehealth_scrape_counters(
    ngx_http_telehealth_scrape_t *sc);
static void ngx_http_telehealth_health_send(ngx_http_telehealth_scrape_t *sc);
static void ngx_http_telehealth_schema_done(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_schema_retry(ngx_event_t *ev);


static ngx_str_t ngx_http_telehealth_metrics_zone_name =
    ngx_string("telehealth_metrics");

static ngx_http_telehealth_metrics_shm_t *ngx_http_telehealth_metrics_shm;

static ngx_event_t      ngx_http_telehealth_metrics_timer;
static ngx_connection_t ngx_http_telehealth_metrics_dummy;

/* the schema check of this worker */
static ngx_uint_t  ngx_http_telehealth_schema_state; /* 0 unknown, 1 ok,
                                                          2 mismatch */
static ngx_uint_t  ngx_http_telehealth_schema_checking;
static ngx_log_t  *ngx_http_telehealth_schema_log;
static ngx_event_t ngx_http_telehealth_schema_timer;
static char        ngx_http_telehealth_schema_db[16];
static char        ngx_http_telehealth_schema_detail[160];


/* the shared zone */

ngx_int_t
ngx_http_telehealth_metrics_zone(ngx_conf_t *cf,
    ngx_http_telehealth_main_conf_t         *mcf)
{
    size_t          size;
    ngx_shm_zone_t *zone;

    /* the counters, and room for the slab pool that heads every zone */
    size = ngx_align(sizeof(ngx_http_telehealth_metrics_shm_t), ngx_pagesize)
           + 8 * ngx_pagesize;

    zone = ngx_shared_memory_add(cf, &ngx_http_telehealth_metrics_zone_name,
        size, &ngx_http_telehealth_module);
    if (zone == NULL) {
        return NGX_ERROR;
    }

    zone->init = ngx_http_telehealth_metrics_init_zone;

    return NGX_OK;
}


static ngx_int_t
ngx_http_telehealth_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_slab_pool_t                   *shpool;
    ngx_http_telehealth_metrics_shm_t *shm;

    /* a reload keeps the zone, and with it the counters */
    if (data != NULL) {
        zone->data = data;
        ngx_http_telehealth_metrics_shm = data;
        return NGX_OK;
    }

    /*
     * The zone starts with its slab pool, as nginx expects of every zone
     * (the master unlocks the pools' mutexes of a worker that exits).
     */
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    shm = ngx_slab_calloc(shpool, sizeof(ngx_http_telehealth_metrics_shm_t));
    if (shm == NULL) {
        return NGX_ERROR;
    }

    shpool->data = shm;
    zone->data = shm;
    ngx_http_telehealth_metrics_shm = shm;

    return NGX_OK;
}


ngx_int_t
ngx_http_telehealth_metrics_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_handler_pt       *h;
    ngx_http_core_main_conf_t *cmcf;

    cmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module);

    h = ngx_array_push(&cmcf->phases[NGX_HTTP_LOG_PHASE].handlers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_telehealth_metrics_log;

    return NGX_OK;
}


/* an API request ends: its route, status and latency */

static ngx_int_t
ngx_http_telehealth_metrics_log(ngx_http_request_t *r)
{
    ngx_str_t                         *path;
    ngx_uint_t                         row, col, method, status, i;
    ngx_msec_int_t                     ms;
    ngx_time_t                        *tp;
    ngx_http_telehealth_ctx_t         *ctx;
    ngx_http_telehealth_metrics_shm_t *shm;

    shm = ngx_http_telehealth_metrics_shm;
    ctx = ngx_http_get_module_ctx(r, ngx_http_telehealth_module);

    if (shm == NULL || ctx == NULL || r != r->main) {
        return NGX_OK;
    }

    row = ctx->route;
    if (row > NGX_HTTP_TELEHEALTH_METRICS_ROUTES) {
        row = 0;
    }

    status = r->headers_out.status;

    for (col = 0; col < NGX_HTTP_TELEHEALTH_METRICS_NCODES; col++) {
        if (ngx_http_telehealth_metrics_codes[col] == status) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&shm->requests[row][col], 1);

    /* a console stream lasts as long as the console: not a latency */
    if (r->headers_out.content_type.len == sizeof("text/event-stream") - 1
        && ngx_strncmp(r->headers_out.content_type.data, "text/event-stream",
               sizeof("text/event-stream") - 1)
               == 0)
    {
        return NGX_OK;
    }

    tp = ngx_timeofday();
    ms = (ngx_msec_int_t) ((tp->sec - r->start_sec) * 1000
                           + (tp->msec - r->start_msec));
    ms = ngx_max(ms, 0);

    for (i = 0; i < NGX_HTTP_TELEHEALTH_METRICS_NBOUNDS; i++) {
        if ((ngx_msec_t) ms <= ngx_http_telehealth_metrics_bounds[i]) {
            break;
        }
    }

    (void) ngx_atomic_fetch_add(&shm->latency[i], 1);
    (void) ngx_atomic_fetch_add(&shm->latency_sum_ms, ms);

    if (row > 0) {
        ngx_http_telehealth_route_name(row - 1, &method, &path);

        if (method == NGX_HTTP_POST && path->len == sizeof("/auth/login") - 1
            && ngx_strncmp(path->data, "/auth/login", path->len) == 0)
        {
            if (status == NGX_HTTP_UNAUTHORIZED) {
                (void) ngx_atomic_fetch_add(&shm->logins_invalid, 1);

            } else if (status == NGX_HTTP_TOO_MANY_REQUESTS) {
                (void) ngx_atomic_fetch_add(&shm->logins_throttled, 1);
            }
        }
    }

    return NGX_OK;
}


/* each worker's gauges, published every second */

ngx_int_t
ngx_http_telehealth_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                  *mcf)
{
    ngx_event_t *ev;

    ngx_http_telehealth_schema_log = cycle->log;

    if (ngx_http_telehealth_metrics_shm == NULL
        || ngx_worker >= NGX_HTTP_TELEHEALTH_METRICS_WORKERS)
    {
        return NGX_OK;
    }

    ngx_http_telehealth_metrics_dummy.fd = (ngx_socket_t) -1;

    ev = &ngx_http_telehealth_metrics_timer;
    ev->handler = ngx_http_telehealth_metrics_publish;
    ev->data = &ngx_http_telehealth_metrics_dummy;
    ev->log = cycle->log;
    ev->cancelable = 1;

    ngx_http_telehealth_metrics_publish(ev);

    return NGX_OK;
}


void
ngx_http_telehealth_metrics_exit_process(void)
{
    if (ngx_http_telehealth_metrics_timer.timer_set) {
        ngx_del_timer(&ngx_http_telehealth_metrics_timer);
    }

    if (ngx_http_telehealth_schema_timer.timer_set) {
        ngx_del_timer(&ngx_http_telehealth_schema_timer);
    }

    if (ngx_http_telehealth_metrics_shm != NULL
        && ngx_worker < NGX_HTTP_TELEHEALTH_METRICS_WORKERS)
    {
        ngx_memzero(&ngx_http_telehealth_metrics_shm->workers[ngx_worker],
            sizeof(ngx_http_telehealth_metrics_worker_t));
    }
}


static void
ngx_http_telehealth_metrics_publish(ngx_event_t *ev)
{
    ngx_uint_t                            size, connected, in_use, waiting;
    ngx_http_telehealth_metrics_worker_t *w;

    w = &ngx_http_telehealth_metrics_shm->workers[ngx_worker];

    ngx_http_telehealth_pg_stats(&size, &connected, &in_use, &waiting);

    w->pg_size = size;
    w->pg_connected = connected;
    w->pg_in_use = in_use;
    w->pg_waiting = waiting;
    w->redis_up = ngx_http_telehealth_redis_available();
    w->sse_open = ngx_http_telehealth_console_streams_open();
    w->pid = ngx_pid;

    if (!ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_add_timer(ev, NGX_HTTP_TELEHEALTH_METRICS_PUBLISH);
    }
}


/* the schema version */

void
ngx_http_telehealth_schema_check(ngx_log_t *log)
{
    ngx_pool_t                   *pool;
    ngx_http_telehealth_pg_req_t *pg;

    if (ngx_http_telehealth_schema_checking) {
        return;
    }

    pool = ngx_create_pool(1024, log);
    if (pool == NULL) {
        return;
    }

    pg = ngx_http_telehealth_pg_create(pool, log);
    if (pg == NULL) {
        ngx_destroy_pool(pool);
        return;
    }

    pg->handler = ngx_http_telehealth_schema_done;
    pg->data = pool;

    /* plain SQL: an older database may lack any function of ours */
    if (ngx_http_telehealth_pg_query(pg,
            "SELECT COALESCE(max(left(version, 3)), '')"
            " FROM schema_migrations",
            0, NULL)
        != NGX_AGAIN)
    {
        ngx_destroy_pool(pool);
        return;
    }

    ngx_http_telehealth_schema_checking = 1;
}


static void
ngx_http_telehealth_schema_done(ngx_http_telehealth_pg_req_t *pg)
{
    char                              *db;
    ngx_int_t                          n;
    ngx_log_t                         *log;
    ngx_pool_t                        *pool;
    ngx_atomic_t                       logged;
    ngx_event_t                       *ev;
    ngx_http_telehealth_metrics_shm_t *shm;

    pool = pg->data;
    log = pool->log;
    ngx_http_telehealth_schema_checking = 0;

    if (pg->status == NGX_HTTP_TELEHEALTH_PG_UNAVAILABLE) {
        /* the next connection asks again */
        ngx_destroy_pool(pool);
        return;
    }

    /* a database without schema_migrations has no version at all */
    db = (pg->status == NGX_HTTP_TELEHEALTH_PG_OK && PQntuples(pg->result) == 1)
             ? PQgetvalue(pg->result, 0, 0)
             : "";

    ngx_cpystrn((u_char *) ngx_http_telehealth_schema_db, (u_char *) db,
        sizeof(ngx_http_telehealth_schema_db));

    n = ngx_atoi((u_char *) db, ngx_strlen(db));
    shm = ngx_http_telehealth_metrics_shm;

    if (ngx_strcmp(db, TH_SCHEMA_VERSION) == 0) {
        if (ngx_http_telehealth_schema_state == 2) {
            ngx_log_error(NGX_LOG_NOTICE, log, 0,
                "telehealth: the database schema is version %s "
                "again, as this module needs",
                db);
        }

        ngx_http_telehealth_schema_state = 1;

        if (shm != NULL) {
            shm->schema_logged = 0;
        }

        ngx_destroy_pool(pool);
        return;
    }

    ngx_snprintf((u_char *) ngx_http_telehealth_schema_detail,
        sizeof(ngx_http_telehealth_schema_detail) - 1,
        "The database schema is version %s; this server needs "
        "version %s.%Z",
        *db ? db : "none", TH_SCHEMA_VERSION);

    /* one line for all workers, per database version */
    logged = (ngx_atomic_t) (n == NGX_ERROR ? 0 : n) + 1;

    if (shm == NULL
        || (shm->schema_logged != logged
            && ngx_atomic_cmp_set(&shm->schema_logged, shm->schema_logged,
                logged)))
    {
        ngx_log_error(NGX_LOG_ALERT, log, 0,
            "telehealth: the database schema is version %s but "
            "this module needs %s: every API request answers 503 "
            "until they match (telehealth-admin migrate)",
            *db ? db : "none", TH_SCHEMA_VERSION);
    }

    ngx_http_telehealth_schema_state = 2;
    ngx_destroy_pool(pool);

    /* a migration while we run ends the refusal without a reconnect */
    ev = &ngx_http_telehealth_schema_timer;

    if (!ev->timer_set && !ngx_exiting && !ngx_quit && !ngx_terminate) {
        ngx_http_telehealth_metrics_dummy.fd = (ngx_socket_t) -1;
        ev->handler = ngx_http_telehealth_schema_retry;
        ev->data = &ngx_http_telehealth_metrics_dummy;
        ev->log = ngx_http_telehealth_schema_log;
        ev->cancelable = 1;
        ngx_add_timer(ev, NGX_HTTP_TELEHEALTH_SCHEMA_RETRY);
    }
}


static void
ngx_http_telehealth_schema_retry(ngx_event_t *ev)
{
    if (ngx_http_telehealth_schema_state == 2) {
        ngx_http_telehealth_schema_check(ev->log);
    }
}


const char *
ngx_http_telehealth_schema_mismatch(void)
{
    return ngx_http_telehealth_schema_state == 2
               ? ngx_http_telehealth_schema_detail
               : NULL;
}


const char *
ngx_http_telehealth_schema_database(void)
{
    return ngx_http_telehealth_schema_db;
}


/* GET /metrics (the location with telehealth_metrics) and GET /health */

static ngx_http_telehealth_scrape_t *
ngx_http_telehealth_scrape_create(ngx_http_request_t *r, ngx_uint_t health)
{
    ngx_http_telehealth_scrape_t *sc;

    sc = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_scrape_t));
    if (sc == NULL) {
        return NULL;
    }

    sc->request = r;
    sc->health = health;
    sc->mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);

    if (!health) {
        sc->buf = ngx_create_temp_buf(r->pool, NGX_HTTP_TELEHEALTH_METRICS_BUF);
        if (sc->buf == NULL) {
            return NULL;
        }
    }

    return sc;
}


ngx_int_t
ngx_http_telehealth_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_http_telehealth_scrape_t *sc;

    if (!(r->method & (NGX_HTTP_GET | NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    sc = ngx_http_telehealth_scrape_create(r, 0);
    if (sc == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_telehealth_scrape_counters(sc);

    r->main->count++;
    ngx_http_telehealth_scrape_nodes(sc);

    return NGX_DONE;
}


void
ngx_http_telehealth_health(ngx_http_request_t *r)
{
    ngx_http_telehealth_scrape_t *sc;

    sc = ngx_http_telehealth_scrape_create(r, 1);
    if (sc == NULL) {
        ngx_http_telehealth_finalize(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_telehealth_scrape_nodes(sc);
}


static void
ngx_http_telehealth_scrape_nodes(ngx_http_telehealth_scrape_t *sc)
{
    char               *nodes, *node_prefix, *drain_prefix;
    const char         *argv[6];
    size_t              argvlen[6];
    ngx_uint_t          i;
    ngx_http_request_t *r;

    r = sc->request;

    nodes = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODES, "");
    node_prefix = ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE, "");
    drain_prefix =
        ngx_http_telehealth_redis_key(r->pool, TH_KEY_NODE_DRAIN, "");

    if (nodes == NULL || node_prefix == NULL || drain_prefix == NULL
        || !ngx_http_telehealth_redis_available())
    {
        ngx_http_telehealth_scrape_nodes_done(sc, NULL);
        return;
    }

    argv[0] = "EVAL";
    argv[1] = ngx_http_telehealth_nodes_lua;
    argv[2] = "1";
    argv[3] = nodes;
    argv[4] = node_prefix;
    argv[5] = drain_prefix;

    for (i = 0; i < 6; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    if (ngx_http_telehealth_redis_command(r->pool, r->connection->log,
            ngx_http_telehealth_scrape_nodes_done, sc, 6, argv, argvlen)
        != NGX_OK)
    {
        ngx_http_telehealth_scrape_nodes_done(sc, NULL);
    }
}


/* a field of a node's heartbeat, "" when it has none */
static const char *
ngx_http_telehealth_node_field(redisReply *fields, const char *name)
{
    size_t i;

    for (i = 0; i + 1 < fields->elements; i += 2) {
        if (fields->element[i]->type == REDIS_REPLY_STRING
            && fields->element[i + 1]->type == REDIS_REPLY_STRING
            && ngx_strcmp(fields->element[i]->str, name) == 0)
        {
            return fields->element[i + 1]->str;
        }
    }

    return "";
}


static double
ngx_http_telehealth_node_number(redisReply *fields, const char *name)
{
    return strtod(ngx_http_telehealth_node_field(fields, name), NULL);
}


static void
ngx_http_telehealth_metrics_print(ngx_http_telehealth_scrape_t *sc,
    const char                                                 *fmt, ...)
{
    va_list    args;
    ngx_buf_t *b;

    b = sc->buf;

    va_start(args, fmt);
    b->last = ngx_vslprintf(b->last, b->end, fmt, args);
    va_end(args);
}


/* the plugin's figures, per live node */
static void
ngx_http_telehealth_scrape_janus(ngx_http_telehealth_scrape_t *sc,
    redisReply                                                *reply)
{
    size_t      i, j;
    const char *id;
    redisReply *node, *fields;
    ngx_uint_t  k;
    double      now;

    static const struct {
        const char *field;
        const char *name;
        const char *help;
        ngx_uint_t  counter;
    } figures[] = { { "rooms", "telehealth_janus_rooms",
                        "Rooms the node hosts.", 0 },
        { "participants", "telehealth_janus_participants",
            "Participants in the node's rooms, waiting ones too.", 0 },
        { "publishers", "telehealth_janus_publishers",
            "Feeds published on the node.", 0 },
        { "subscribers", "telehealth_janus_subscribers",
            "Subscriber handles on the node.", 0 },
        { "streams", "telehealth_janus_forwarded_streams",
            "Media streams forwarded to a subscriber.", 0 },
        { "draining", "telehealth_janus_draining",
            "1 while the node takes no new rooms (as of its heartbeat).", 0 },
        { "forwarded_packets", "telehealth_janus_forwarded_packets_total",
            "RTP packets forwarded to subscribers.", 1 },
        { "forwarded_bytes", "telehealth_janus_forwarded_bytes_total",
            "RTP bytes forwarded to subscribers.", 1 },
        { "redis_errors", "telehealth_janus_redis_errors_total",
            "Redis commands of the plugin that failed.", 1 } };

    now = (double) ngx_time();

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_janus_up A live Janus node (its heartbeat in "
        "Redis).\n# TYPE telehealth_janus_up gauge\n");

    for (i = 0; reply != NULL && i < reply->elements; i++) {
        node = reply->element[i];
        id = node->element[0]->str;
        ngx_http_telehealth_metrics_print(sc,
            "telehealth_janus_up{node=\"%s\"} 1\n", id);
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_janus_drain_mark 1 while a drain mark in Redis "
        "names the node.\n# TYPE telehealth_janus_drain_mark gauge\n");

    for (i = 0; reply != NULL && i < reply->elements; i++) {
        node = reply->element[i];
        ngx_http_telehealth_metrics_print(sc,
            "telehealth_janus_drain_mark{node=\"%s\"} %s\n",
            node->element[0]->str, node->element[1]->str);
    }

    for (k = 0; k < sizeof(figures) / sizeof(figures[0]); k++) {
        ngx_http_telehealth_metrics_print(sc, "# HELP %s %s\n# TYPE %s %s\n",
            figures[k].name, figures[k].help, figures[k].name,
            figures[k].counter ? "counter" : "gauge");

        for (i = 0; reply != NULL && i < reply->elements; i++) {
            node = reply->element[i];
            fields = node->element[2];
            ngx_http_telehealth_metrics_print(sc, "%s{node=\"%s\"} %.0f\n",
                figures[k].name, node->element[0]->str,
                ngx_http_telehealth_node_number(fields, figures[k].field));
        }
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_janus_cpu_ratio The node process' share of its "
        "machine's CPU.\n# TYPE telehealth_janus_cpu_ratio gauge\n");

    for (i = 0; reply != NULL && i < reply->elements; i++) {
        node = reply->element[i];
        ngx_http_telehealth_metrics_print(sc,
            "telehealth_janus_cpu_ratio{node=\"%s\"} %.2f\n",
            node->element[0]->str,
            ngx_http_telehealth_node_number(node->element[2], "cpu") / 100);
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_janus_heartbeat_age_seconds Since the node's "
        "last heartbeat.\n"
        "# TYPE telehealth_janus_heartbeat_age_seconds gauge\n");

    for (i = 0; reply != NULL && i < reply->elements; i++) {
        node = reply->element[i];
        ngx_http_telehealth_metrics_print(sc,
            "telehealth_janus_heartbeat_age_seconds{node=\"%s\"} %.3f\n",
            node->element[0]->str,
            ngx_max(now
                        - ngx_http_telehealth_node_number(node->element[2],
                              "heartbeat_at")
                              / 1000,
                0));
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_janus_join_duration_seconds Joins answered by the "
        "node, from the request to the answer.\n"
        "# TYPE telehealth_janus_join_duration_seconds histogram\n");

    for (i = 0; reply != NULL && i < reply->elements; i++) {
        node = reply->element[i];
        id = node->element[0]->str;
        fields = node->element[2];

        for (j = 0;
            j < sizeof(ngx_http_telehealth_join_bounds) / sizeof(ngx_uint_t);
            j++)
        {
            char name[32];

            ngx_sprintf((u_char *) name, "join_le_%ui%Z",
                ngx_http_telehealth_join_bounds[j]);
            ngx_http_telehealth_metrics_print(sc,
                "telehealth_janus_join_duration_seconds_bucket"
                "{node=\"%s\",le=\"%.3f\"} %.0f\n",
                id, (double) ngx_http_telehealth_join_bounds[j] / 1000,
                ngx_http_telehealth_node_number(fields, name));
        }

        ngx_http_telehealth_metrics_print(sc,
            "telehealth_janus_join_duration_seconds_bucket"
            "{node=\"%s\",le=\"+Inf\"} %.0f\n"
            "telehealth_janus_join_duration_seconds_sum{node=\"%s\"} %.6f\n"
            "telehealth_janus_join_duration_seconds_count{node=\"%s\"} "
            "%.0f\n",
            id, ngx_http_telehealth_node_number(fields, "join_count"), id,
            ngx_http_telehealth_node_number(fields, "join_sum_us") / 1e6, id,
            ngx_http_telehealth_node_number(fields, "join_count"));
    }
}


static ngx_uint_t
ngx_http_telehealth_nodes_valid(redisReply *reply)
{
    size_t      i;
    redisReply *node;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        return 0;
    }

    for (i = 0; i < reply->elements; i++) {
        node = reply->element[i];

        if (node->type != REDIS_REPLY_ARRAY || node->elements != 3
            || node->element[0]->type != REDIS_REPLY_STRING
            || node->element[1]->type != REDIS_REPLY_STRING
            || node->element[2]->type != REDIS_REPLY_ARRAY)
        {
            return 0;
        }
    }

    return 1;
}


static void
ngx_http_telehealth_scrape_nodes_done(void *data, redisReply *reply)
{
    size_t                        i;
    json_t                       *nodes, *node;
    redisReply                   *n;
    ngx_http_telehealth_scrape_t *sc = data;

    if (!ngx_http_telehealth_nodes_valid(reply)) {
        reply = NULL;
    }

    if (sc->health) {
        /* null: Redis could not be asked */
        nodes = (reply != NULL) ? json_array() : NULL;

        for (i = 0; nodes != NULL && reply != NULL && i < reply->elements; i++)
        {
            n = reply->element[i];

            node = json_pack("{s:s, s:s, s:b, s:I, s:I, s:f}", "node",
                n->element[0]->str, "url",
                ngx_http_telehealth_node_field(n->element[2], "url"),
                "draining",
                (int) (ngx_strcmp(n->element[1]->str, "1") == 0
                       || ngx_strcmp(ngx_http_telehealth_node_field(n->element
                                                                        [2],
                                         "draining"),
                              "1")
                              == 0),
                "rooms",
                (json_int_t) ngx_http_telehealth_node_number(n->element[2],
                    "rooms"),
                "participants",
                (json_int_t) ngx_http_telehealth_node_number(n->element[2],
                    "participants"),
                "heartbeat_age",
                ngx_max((double) ngx_time()
                            - ngx_http_telehealth_node_number(n->element[2],
                                  "heartbeat_at")
                                  / 1000,
                    0.0));

            if (node == NULL || json_array_append_new(nodes, node) != 0) {
                json_decref(nodes);
                nodes = NULL;
            }
        }

        sc->nodes = ngx_http_telehealth_json_track(sc->request->pool, nodes);
        ngx_http_telehealth_health_send(sc);
        return;
    }

    ngx_http_telehealth_scrape_janus(sc, reply);

    /* then the events stream: what nginx has not read or acknowledged */
    if (reply != NULL) {
        char       *key;
        const char *argv[3];
        size_t      argvlen[3];

        key =
            ngx_http_telehealth_redis_key(sc->request->pool, TH_KEY_EVENTS, "");
        if (key != NULL) {
            argv[0] = "XINFO";
            argv[1] = "GROUPS";
            argv[2] = key;
            argvlen[0] = 5;
            argvlen[1] = 6;
            argvlen[2] = ngx_strlen(key);

            if (ngx_http_telehealth_redis_command(sc->request->pool,
                    sc->request->connection->log,
                    ngx_http_telehealth_scrape_stream_done, sc, 3, argv,
                    argvlen)
                == NGX_OK)
            {
                return;
            }
        }
    }

    ngx_http_telehealth_scrape_stream_done(sc, NULL);
}


static void
ngx_http_telehealth_scrape_stream_done(void *data, redisReply *reply)
{
    size_t                        i, j;
    redisReply                   *g, *name, *value;
    long long                     pending, lag;
    ngx_http_telehealth_scrape_t *sc = data;

    pending = -1;
    lag = -1;

    for (i = 0; reply != NULL && reply->type == REDIS_REPLY_ARRAY
                && i < reply->elements;
        i++)
    {
        g = reply->element[i];
        if (g->type != REDIS_REPLY_ARRAY
            || ngx_strcmp(ngx_http_telehealth_node_field(g, "name"),
                   TH_EVENTS_GROUP)
                   != 0)
        {
            continue;
        }

        for (j = 0; j + 1 < g->elements; j += 2) {
            name = g->element[j];
            value = g->element[j + 1];

            if (name->type != REDIS_REPLY_STRING
                || value->type != REDIS_REPLY_INTEGER)
            {
                continue;
            }

            if (ngx_strcmp(name->str, "pending") == 0) {
                pending = value->integer;

            } else if (ngx_strcmp(name->str, "lag") == 0) {
                lag = value->integer;
            }
        }
    }

    if (lag >= 0) {
        ngx_http_telehealth_metrics_print(sc,
            "# HELP telehealth_events_lag Entries of the events stream not "
            "yet read by nginx's consumer group.\n"
            "# TYPE telehealth_events_lag gauge\n"
            "telehealth_events_lag %L\n",
            (int64_t) lag);
    }

    if (pending >= 0) {
        ngx_http_telehealth_metrics_print(sc,
            "# HELP telehealth_events_pending Entries read but not applied "
            "to PostgreSQL yet.\n"
            "# TYPE telehealth_events_pending gauge\n"
            "telehealth_events_pending %L\n",
            (int64_t) pending);
    }

    ngx_http_telehealth_scrape_outbox(sc);
}


/* $1: none.  Rows: pending, failed, age of the oldest pending (s) */
static const char ngx_http_telehealth_outbox_sql[] =
    "SELECT * FROM th_outbox_figures()";


static void
ngx_http_telehealth_scrape_outbox(ngx_http_telehealth_scrape_t *sc)
{
    ngx_http_request_t *r;

    r = sc->request;

    if (!ngx_http_telehealth_pg_available()
        || ngx_http_telehealth_schema_mismatch() != NULL)
    {
        ngx_http_telehealth_scrape_send(sc);
        return;
    }

    sc->pg = ngx_http_telehealth_pg_create(r->pool, r->connection->log);
    if (sc->pg == NULL) {
        ngx_http_telehealth_scrape_send(sc);
        return;
    }

    sc->pg->handler = ngx_http_telehealth_scrape_outbox_done;
    sc->pg->data = sc;

    if (ngx_http_telehealth_pg_query(sc->pg, ngx_http_telehealth_outbox_sql, 0,
            NULL)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_scrape_send(sc);
    }
}


static void
ngx_http_telehealth_scrape_outbox_done(ngx_http_telehealth_pg_req_t *pg)
{
    PGresult                     *res;
    ngx_http_telehealth_scrape_t *sc = pg->data;

    if (ngx_http_telehealth_pg_ok(pg) && PQntuples(pg->result) == 1
        && PQnfields(pg->result) == 3)
    {
        res = pg->result;

        ngx_http_telehealth_metrics_print(sc,
            "# HELP telehealth_outbox_pending Notifications waiting to be "
            "sent.\n# TYPE telehealth_outbox_pending gauge\n"
            "telehealth_outbox_pending %s\n"
            "# HELP telehealth_outbox_failed Notifications given up after "
            "telehealth_notify_attempts.\n"
            "# TYPE telehealth_outbox_failed gauge\n"
            "telehealth_outbox_failed %s\n"
            "# HELP telehealth_outbox_oldest_pending_seconds Age of the "
            "oldest pending notification that is due.\n"
            "# TYPE telehealth_outbox_oldest_pending_seconds gauge\n"
            "telehealth_outbox_oldest_pending_seconds %s\n",
            PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1),
            PQgetvalue(res, 0, 2));
    }

    ngx_http_telehealth_scrape_send(sc);
}


/* what the shared zone holds: requests, latency, logins, workers */
static void
ngx_http_telehealth_scrape_counters(ngx_http_telehealth_scrape_t *sc)
{
    ngx_str_t                            *path;
    ngx_uint_t                            row, col, i, n, method, sum[6];
    ngx_uint_t                            workers, redis_up;
    const char                           *m;
    ngx_atomic_uint_t                     v, cumulative;
    ngx_http_telehealth_metrics_shm_t    *shm;
    ngx_http_telehealth_metrics_worker_t *w;
    u_char                                code[NGX_INT_T_LEN + 1];

    shm = ngx_http_telehealth_metrics_shm;

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_schema_ok 1 while the database schema is the "
        "version this module needs.\n# TYPE telehealth_schema_ok gauge\n"
        "telehealth_schema_ok %d\n"
        "# HELP telehealth_schema_info The schema versions of the module "
        "and of the database (as last read).\n"
        "# TYPE telehealth_schema_info gauge\n"
        "telehealth_schema_info{module=\"%s\",database=\"%s\"} 1\n",
        ngx_http_telehealth_schema_mismatch() == NULL ? 1 : 0,
        TH_SCHEMA_VERSION, ngx_http_telehealth_schema_db);

    if (shm == NULL) {
        return;
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_http_requests_total API requests by route and "
        "status.\n# TYPE telehealth_http_requests_total counter\n");

    n = ngx_min(ngx_http_telehealth_routes_count(),
        NGX_HTTP_TELEHEALTH_METRICS_ROUTES);

    for (row = 0; row <= n; row++) {
        for (col = 0; col <= NGX_HTTP_TELEHEALTH_METRICS_NCODES; col++) {
            v = shm->requests[row][col];
            if (v == 0) {
                continue;
            }

            if (col < NGX_HTTP_TELEHEALTH_METRICS_NCODES) {
                ngx_sprintf(code, "%ui%Z",
                    ngx_http_telehealth_metrics_codes[col]);
            } else {
                ngx_sprintf(code, "other%Z");
            }

            if (row == 0) {
                ngx_http_telehealth_metrics_print(sc,
                    "telehealth_http_requests_total{method=\"\","
                    "route=\"unmatched\",code=\"%s\"} %uA\n",
                    code, v);
                continue;
            }

            ngx_http_telehealth_route_name(row - 1, &method, &path);

            m = (method == NGX_HTTP_GET)      ? "GET"
                : (method == NGX_HTTP_POST)   ? "POST"
                : (method == NGX_HTTP_PATCH)  ? "PATCH"
                : (method == NGX_HTTP_DELETE) ? "DELETE"
                                              : "";

            ngx_http_telehealth_metrics_print(sc,
                "telehealth_http_requests_total{method=\"%s\",route=\"%V\","
                "code=\"%s\"} %uA\n",
                m, path, code, v);
        }
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_http_request_duration_seconds API requests, from "
        "the request line to the last byte (console streams left out).\n"
        "# TYPE telehealth_http_request_duration_seconds histogram\n");

    cumulative = 0;

    for (i = 0; i < NGX_HTTP_TELEHEALTH_METRICS_NBOUNDS; i++) {
        cumulative += shm->latency[i];
        ngx_http_telehealth_metrics_print(sc,
            "telehealth_http_request_duration_seconds_bucket{le=\"%.3f\"} "
            "%uA\n",
            (double) ngx_http_telehealth_metrics_bounds[i] / 1000, cumulative);
    }

    cumulative += shm->latency[i];

    ngx_http_telehealth_metrics_print(sc,
        "telehealth_http_request_duration_seconds_bucket{le=\"+Inf\"} %uA\n"
        "telehealth_http_request_duration_seconds_sum %.3f\n"
        "telehealth_http_request_duration_seconds_count %uA\n",
        cumulative, (double) shm->latency_sum_ms / 1000, cumulative);

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_logins_refused_total Password logins refused.\n"
        "# TYPE telehealth_logins_refused_total counter\n"
        "telehealth_logins_refused_total{reason=\"invalid_credentials\"} "
        "%uA\n"
        "telehealth_logins_refused_total{reason=\"throttled\"} %uA\n",
        shm->logins_invalid, shm->logins_throttled);

    ngx_memzero(sum, sizeof(sum));
    workers = 0;
    redis_up = 0;

    for (i = 0; i < NGX_HTTP_TELEHEALTH_METRICS_WORKERS; i++) {
        w = &shm->workers[i];
        if (w->pid == 0) {
            continue;
        }

        workers++;
        sum[0] += w->pg_size;
        sum[1] += w->pg_connected;
        sum[2] += w->pg_in_use;
        sum[3] += w->pg_waiting;
        sum[4] += w->sse_open;
        redis_up += w->redis_up ? 1 : 0;
    }

    ngx_http_telehealth_metrics_print(sc,
        "# HELP telehealth_workers nginx workers publishing figures.\n"
        "# TYPE telehealth_workers gauge\ntelehealth_workers %ui\n"
        "# HELP telehealth_postgres_pool_size PostgreSQL connections the "
        "workers' pools may hold.\n"
        "# TYPE telehealth_postgres_pool_size gauge\n"
        "telehealth_postgres_pool_size %ui\n"
        "# HELP telehealth_postgres_pool_connected PostgreSQL connections "
        "open.\n# TYPE telehealth_postgres_pool_connected gauge\n"
        "telehealth_postgres_pool_connected %ui\n"
        "# HELP telehealth_postgres_pool_in_use PostgreSQL connections "
        "running a query or held by a request.\n"
        "# TYPE telehealth_postgres_pool_in_use gauge\n"
        "telehealth_postgres_pool_in_use %ui\n"
        "# HELP telehealth_postgres_pool_waiting Requests waiting for a "
        "PostgreSQL connection.\n"
        "# TYPE telehealth_postgres_pool_waiting gauge\n"
        "telehealth_postgres_pool_waiting %ui\n"
        "# HELP telehealth_redis_up Workers connected to Redis.\n"
        "# TYPE telehealth_redis_up gauge\ntelehealth_redis_up %ui\n"
        "# HELP telehealth_console_streams_open Console event streams "
        "(SSE) open.\n# TYPE telehealth_console_streams_open gauge\n"
        "telehealth_console_streams_open %ui\n",
        workers, sum[0], sum[1], sum[2], sum[3], redis_up, sum[4]);
}


static void
ngx_http_telehealth_scrape_send(ngx_http_telehealth_scrape_t *sc)
{
    ngx_int_t           rc;
    ngx_buf_t          *b;
    ngx_chain_t         out;
    ngx_http_request_t *r;

    r = sc->request;
    b = sc->buf;

    if (b->last == b->end) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
            "telehealth: the metrics do not fit in %uz bytes",
            (size_t) NGX_HTTP_TELEHEALTH_METRICS_BUF);
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_length_n = b->last - b->pos;
    ngx_str_set(&r->headers_out.content_type,
        "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        ngx_http_finalize_request(r, rc);
        ngx_http_run_posted_requests(r->connection);
        return;
    }

    out.buf = b;
    out.next = NULL;

    ngx_http_finalize_request(r, ngx_http_output_filter(r, &out));
    ngx_http_run_posted_requests(r->connection);
}


/* GET /health: whether this nginx can serve, and the live Janus nodes */
static void
ngx_http_telehealth_health_send(ngx_http_telehealth_scrape_t *sc)
{
    json_t             *json, *schema;
    ngx_uint_t          pg, redis, ok, status;
    const char         *mismatch;
    ngx_http_request_t *r;

    r = sc->request;

    pg = ngx_http_telehealth_pg_available();
    redis = ngx_http_telehealth_redis_available();
    mismatch = ngx_http_telehealth_schema_mismatch();
    ok = pg && redis && mismatch == NULL;

    schema =
        json_pack("{s:s, s:s, s:b}", "module", TH_SCHEMA_VERSION, "database",
            ngx_http_telehealth_schema_db, "ok", (int) (mismatch == NULL));

    json = json_pack("{s:s, s:b, s:b, s:o, s:O}", "status",
        ok ? "ok" : "degraded", "postgres", (int) pg, "redis", (int) redis,
        "schema", schema, "nodes", sc->nodes != NULL ? sc->nodes : json_null());

    status = ok ? NGX_HTTP_OK : NGX_HTTP_SERVICE_UNAVAILABLE;

    ngx_http_telehealth_finalize(r,
        ngx_http_telehealth_send_json(r, status, json));
}
