/*
 * The purge (docs/lifecycle.md, "The purge"): telehealth_purge_after a
 * session ended, its content is deleted for good.  Every
 * telehealth_purge_interval the first worker of each nginx runs a round:
 *
 *   th_purge_run()       up to a batch of due sessions, each purged by
 *                        th_session_purge() (sql/functions/purge.sql) in
 *                        one transaction; their files are queued in
 *                        purge_files in the same transaction
 *   Redis                the sessions' ban and role keys are deleted
 *   th_purge_files()     the queued files, unlinked on the thread pool
 *   th_purge_unlinked()  and taken off the queue
 *
 * A full batch starts the next round at once; a round that would wait for
 * a lock gives up instead (lock_timeout), so the job never holds one of
 * the worker's connections for long.  A round that stops halfway
 * (PostgreSQL down, the worker gone) leaves nothing half-done: a session
 * is purged in one transaction, a file stays queued until unlinked, and
 * SKIP LOCKED lets several nginx instances run rounds at once.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_purge.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"


/* sessions of one transaction, files of one thread task */
#define NGX_HTTP_TELEHEALTH_PURGE_BATCH    "50"
#define NGX_HTTP_TELEHEALTH_PURGE_FILES    "100"
#define NGX_HTTP_TELEHEALTH_PURGE_SESSIONS 50
#define NGX_HTTP_TELEHEALTH_PURGE_NFILES   100


typedef struct {
    ngx_log_t         *log;
    ngx_event_t        timer;
    ngx_msec_t         interval;
    ngx_str_t          files_dir; /* names relative to it */
    ngx_thread_pool_t *thread_pool;

    char                          after[NGX_TIME_T_LEN + 1];
    ngx_pool_t                   *round;
    ngx_http_telehealth_pg_req_t *pg;
    ngx_uint_t                    again;    /* a full batch or list */
    ngx_uint_t                    threaded; /* a task holds the round */
    const char                   *params[2];

    unsigned exiting : 1;
} ngx_http_telehealth_purger_t;


/* the files of one thread task; lives in the round's pool */
typedef struct {
    ngx_http_telehealth_purger_t *purger;
    ngx_uint_t                    n;
    char                        **paths; /* NULL: not to unlink */
    char                        **ids;
    ngx_uint_t                    failed;
} ngx_http_telehealth_purge_task_t;


static const char ngx_http_telehealth_purge_run_sql[] =
    "SELECT th_purge_run($1::integer, " NGX_HTTP_TELEHEALTH_PURGE_BATCH ")";

static const char ngx_http_telehealth_purge_files_sql[] =
    "SELECT id, path FROM th_purge_files(" NGX_HTTP_TELEHEALTH_PURGE_FILES ")";

/* $1 the ids unlinked, "{1,2}" */
static const char ngx_http_telehealth_purge_unlinked_sql[] =
    "SELECT th_purge_unlinked($1)";


static void ngx_http_telehealth_purge_tick(ngx_event_t *ev);
static void ngx_http_telehealth_purge_ran(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_purge_keys(ngx_http_telehealth_purger_t *pu,
    PGresult                                                            *res);
static void ngx_http_telehealth_purge_listed(ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_purge_thread(void *data, ngx_log_t *log);
static void ngx_http_telehealth_purge_unlinked(ngx_event_t *ev);
static void ngx_http_telehealth_purge_reported(
    ngx_http_telehealth_pg_req_t *pg);
static void ngx_http_telehealth_purge_done(void);


static ngx_http_telehealth_purger_t *ngx_http_telehealth_purger;


ngx_int_t
ngx_http_telehealth_purge_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t *mcf, ngx_str_t *files_dir)
{
    ngx_http_telehealth_purger_t *pu;

    pu = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_purger_t));
    if (pu == NULL) {
        return NGX_ERROR;
    }

    pu->log = cycle->log;
    pu->interval = mcf->purge.interval;
    pu->thread_pool = mcf->thread_pool;

    if (files_dir != NULL) {
        pu->files_dir = *files_dir;
    }

    ngx_sprintf((u_char *) pu->after, "%T%Z", mcf->purge.after);

    pu->timer.handler = ngx_http_telehealth_purge_tick;
    pu->timer.data = pu;
    pu->timer.log = cycle->log;
    pu->timer.cancelable = 1;

    ngx_http_telehealth_purger = pu;

    ngx_add_timer(&pu->timer, pu->interval);

    return NGX_OK;
}


void
ngx_http_telehealth_purge_exit_process(void)
{
    ngx_http_telehealth_purger_t *pu = ngx_http_telehealth_purger;

    if (pu == NULL) {
        return;
    }

    pu->exiting = 1;

    if (pu->timer.timer_set) {
        ngx_del_timer(&pu->timer);
    }

    /* a thread task still running keeps its round's pool */
    if (pu->round != NULL && !pu->threaded) {
        ngx_destroy_pool(pu->round);
        pu->round = NULL;
    }
}


static void
ngx_http_telehealth_purge_tick(ngx_event_t *ev)
{
    ngx_http_telehealth_purger_t *pu = ev->data;

    if (pu->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    pu->again = 0;

    pu->round = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, pu->log);
    if (pu->round == NULL) {
        ngx_http_telehealth_purge_done();
        return;
    }

    pu->pg = ngx_http_telehealth_pg_create(pu->round, pu->log);
    if (pu->pg == NULL) {
        ngx_http_telehealth_purge_done();
        return;
    }

    pu->pg->handler = ngx_http_telehealth_purge_ran;
    pu->pg->data = pu;
    pu->params[0] = pu->after;

    if (ngx_http_telehealth_pg_query(pu->pg, ngx_http_telehealth_purge_run_sql,
            1, pu->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_purge_done();
    }
}


static void
ngx_http_telehealth_purge_ran(ngx_http_telehealth_pg_req_t *pg)
{
    int                           n;
    ngx_uint_t                    level;
    ngx_http_telehealth_purger_t *pu = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        /* 55P03: a lock it would have waited for; the next round retries */
        level = ngx_strcmp(ngx_http_telehealth_pg_sqlstate(pg), "55P03") == 0
                    ? NGX_LOG_INFO
                    : NGX_LOG_WARN;
        ngx_log_error(level, pu->log, 0,
            "telehealth: purge: sessions not purged this round");
        ngx_http_telehealth_purge_done();
        return;
    }

    n = PQntuples(pg->result);

    if (n > 0) {
        ngx_log_error(NGX_LOG_NOTICE, pu->log, 0,
            "telehealth: purge: content of %d ended session(s) "
            "deleted",
            n);
        ngx_http_telehealth_purge_keys(pu, pg->result);
    }

    if (n >= NGX_HTTP_TELEHEALTH_PURGE_SESSIONS) {
        pu->again = 1;
    }

    pg->handler = ngx_http_telehealth_purge_listed;

    if (ngx_http_telehealth_pg_query(pg, ngx_http_telehealth_purge_files_sql, 0,
            NULL)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_purge_done();
    }
}


/* the sessions' Redis keys: participant ids a chair banned or demoted */

static void
ngx_http_telehealth_purge_keys(ngx_http_telehealth_purger_t *pu, PGresult *res)
{
    int        i, n;
    char     **argv;
    size_t    *argvlen;
    ngx_uint_t argc;

    n = PQntuples(res);
    argc = 1 + 2 * n;

    argv = ngx_palloc(pu->round, argc * sizeof(char *));
    argvlen = ngx_palloc(pu->round, argc * sizeof(size_t));
    if (argv == NULL || argvlen == NULL) {
        return;
    }

    argv[0] = "DEL";

    for (i = 0; i < n; i++) {
        argv[1 + 2 * i] = ngx_http_telehealth_redis_key(pu->round,
            TH_KEY_SESSION_BANNED, PQgetvalue(res, i, 0));
        argv[2 + 2 * i] = ngx_http_telehealth_redis_key(pu->round,
            TH_KEY_SESSION_ROLES, PQgetvalue(res, i, 0));
        if (argv[1 + 2 * i] == NULL || argv[2 + 2 * i] == NULL) {
            return;
        }
    }

    for (i = 0; i < (int) argc; i++) {
        argvlen[i] = ngx_strlen(argv[i]);
    }

    /* what Redis misses now it is never asked again: ids only, no expiry */
    (void) ngx_http_telehealth_redis_command(NULL, pu->log, NULL, NULL, argc,
        (const char **) argv, argvlen);
}


static void
ngx_http_telehealth_purge_listed(ngx_http_telehealth_pg_req_t *pg)
{
    int                               n, i;
    char                             *path, *p;
    size_t                            len;
    ngx_str_t                         id;
    ngx_thread_task_t                *task;
    ngx_http_telehealth_purger_t     *pu = pg->data;
    ngx_http_telehealth_purge_task_t *t;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_http_telehealth_purge_done();
        return;
    }

    n = PQntuples(pg->result);
    if (n == 0) {
        ngx_http_telehealth_purge_done();
        return;
    }

    if (n >= NGX_HTTP_TELEHEALTH_PURGE_NFILES) {
        pu->again = 1;
    }

    task = ngx_thread_task_alloc(pu->round,
        sizeof(ngx_http_telehealth_purge_task_t));
    if (task == NULL) {
        ngx_http_telehealth_purge_done();
        return;
    }

    t = task->ctx;
    t->purger = pu;
    t->n = n;
    t->paths = ngx_pcalloc(pu->round, n * sizeof(char *));
    t->ids = ngx_pcalloc(pu->round, n * sizeof(char *));
    if (t->paths == NULL || t->ids == NULL) {
        ngx_http_telehealth_purge_done();
        return;
    }

    for (i = 0; i < n; i++) {
        path = PQgetvalue(pg->result, i, 1);
        len = ngx_strlen(path);

        id.data = (u_char *) PQgetvalue(pg->result, i, 0);
        id.len = ngx_strlen(id.data) + 1;

        t->ids[i] = (char *) ngx_pstrdup(pu->round, &id);
        if (t->ids[i] == NULL) {
            ngx_http_telehealth_purge_done();
            return;
        }

        /* a name from the files table never climbs out of its directory */
        if (ngx_strstr(path, "..") != NULL
            || (path[0] != '/' && pu->files_dir.len == 0))
        {
            ngx_log_error(NGX_LOG_WARN, pu->log, 0,
                "telehealth: purge: file \"%s\" not unlinked: "
                "not a path of the files directory",
                path);
            continue;
        }

        p = ngx_pnalloc(pu->round, pu->files_dir.len + len + 2);
        if (p == NULL) {
            ngx_http_telehealth_purge_done();
            return;
        }

        if (path[0] == '/') {
            ngx_memcpy(p, path, len + 1);

        } else {
            ngx_sprintf((u_char *) p, "%V/%s%Z", &pu->files_dir, path);
        }

        t->paths[i] = p;
    }

    task->handler = ngx_http_telehealth_purge_thread;
    task->event.handler = ngx_http_telehealth_purge_unlinked;
    task->event.data = t;
    task->event.log = pu->log;

    if (pu->thread_pool == NULL
        || ngx_thread_task_post(pu->thread_pool, task) != NGX_OK)
    {
        ngx_http_telehealth_purge_done();
        return;
    }

    pu->threaded = 1;
}


/* on a thread: unlink(2) may wait for the disk; the event loop must not */

static void
ngx_http_telehealth_purge_thread(void *data, ngx_log_t *log)
{
    ngx_uint_t                        i;
    ngx_http_telehealth_purge_task_t *t = data;

    for (i = 0; i < t->n; i++) {
        if (t->paths[i] == NULL) {
            continue;
        }

        if (unlink(t->paths[i]) == -1 && ngx_errno != NGX_ENOENT) {
            /* kept on the queue, tried again next round */
            t->ids[i] = NULL;
            t->failed++;
        }
    }
}


static void
ngx_http_telehealth_purge_unlinked(ngx_event_t *ev)
{
    u_char                           *p;
    size_t                            len;
    ngx_uint_t                        i;
    ngx_http_telehealth_purge_task_t *t = ev->data;
    ngx_http_telehealth_purger_t     *pu = t->purger;

    pu->threaded = 0;

    if (pu->exiting) {
        return;
    }

    if (t->failed) {
        ngx_log_error(NGX_LOG_WARN, pu->log, 0,
            "telehealth: purge: %ui file(s) could not be "
            "unlinked, kept for the next round",
            t->failed);
        pu->again = 0;
    }

    len = 3;
    for (i = 0; i < t->n; i++) {
        len += t->ids[i] != NULL ? ngx_strlen(t->ids[i]) + 1 : 0;
    }

    p = ngx_pnalloc(pu->round, len);
    if (p == NULL) {
        ngx_http_telehealth_purge_done();
        return;
    }

    pu->params[0] = (char *) p;
    *p++ = '{';

    for (i = 0; i < t->n; i++) {
        if (t->ids[i] != NULL) {
            p = ngx_sprintf(p, "%s,", t->ids[i]);
        }
    }

    if (p[-1] == ',') {
        p--;
    }

    *p++ = '}';
    *p = '\0';

    pu->pg->handler = ngx_http_telehealth_purge_reported;

    if (ngx_http_telehealth_pg_query(pu->pg,
            ngx_http_telehealth_purge_unlinked_sql, 1, pu->params)
        != NGX_AGAIN)
    {
        ngx_http_telehealth_purge_done();
    }
}


static void
ngx_http_telehealth_purge_reported(ngx_http_telehealth_pg_req_t *pg)
{
    ngx_http_telehealth_purger_t *pu = pg->data;

    if (!ngx_http_telehealth_pg_ok(pg)) {
        ngx_log_error(NGX_LOG_WARN, pu->log, 0,
            "telehealth: purge: unlinked files stay queued");
        pu->again = 0;
    }

    ngx_http_telehealth_purge_done();
}


static void
ngx_http_telehealth_purge_done(void)
{
    ngx_http_telehealth_purger_t *pu = ngx_http_telehealth_purger;

    if (pu->round != NULL) {
        ngx_destroy_pool(pu->round);
        pu->round = NULL;
    }

    if (pu->exiting || ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    /* a full batch: there is more to do now */
    ngx_add_timer(&pu->timer, pu->again ? 1 : pu->interval);
}
