/*
 * hiredis on nginx's event loop.  The adapter hooks map hiredis' read and
 * write interest onto an ngx_connection_t made for its socket.  Commands
 * carry a timer each; a command that times out drops the connection, which
 * makes hiredis answer every pending command with no reply, and the
 * connection is made again with back-off.
 *
 * A new connection first authenticates (AUTH, when configured) and, when
 * the primary is found through Sentinel, checks with ROLE that it reached
 * a primary; it counts as available only then.  With Sentinel the address
 * is asked of the sentinels in turn (SENTINEL get-master-addr-by-name) on
 * every connect, so a failover is followed by the next reconnect: the old
 * primary's clients are killed by Sentinel when it is demoted, and a
 * READONLY answer drops the connection too.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_event.h>

#include <stdio.h>

#include <hiredis/async.h>

#include "ngx_http_telehealth_redis.h"
#include "ngx_http_telehealth_conn.h"


#define NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN 100
#define NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MAX 2000


/* one hiredis context and the nginx connection around its socket */
typedef struct {
    redisAsyncContext *ac;
    ngx_connection_t  *c;
} ngx_http_telehealth_redis_link_t;


typedef struct {
    ngx_http_telehealth_redis_link_t     data;     /* the commands */
    ngx_http_telehealth_redis_link_t     sentinel; /* asking a sentinel */
    ngx_event_t                          timer;    /* reconnect or connect */
    ngx_msec_t                           backoff;
    ngx_msec_t                           timeout;
    ngx_log_t                           *log;
    char                                *host;
    char                                *unix_path;
    int                                  port;
    char                                *prefix;
    char                                *user; /* NULL: no AUTH */
    char                                *password;
    char                                *master; /* NULL: no Sentinel */
    ngx_http_telehealth_redis_addr_t    *sentinels;
    ngx_uint_t                           nsentinels;
    ngx_uint_t                           next_sentinel;
    u_char                               primary[NGX_SOCKADDR_STRLEN];
    char                                 primary_host[NGX_INET6_ADDRSTRLEN];
    char                                *channel; /* subscriber: NULL */
    ngx_http_telehealth_redis_handler_pt message; /* subscriber's */
    void                                *message_data;
    unsigned                             connected : 1;
    unsigned                             failed : 1;
    unsigned                             auth_failed : 1;
} ngx_http_telehealth_redis_t;


/* malloc()ed: hiredis may outlive the pool of whoever sent the command */
typedef struct {
    ngx_http_telehealth_redis_handler_pt handler;
    void                                *data;
    ngx_pool_cleanup_t                  *cleanup;
    ngx_event_t                          timer;
} ngx_http_telehealth_redis_cmd_t;


static void ngx_http_telehealth_redis_connect(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_connect_primary(
    ngx_http_telehealth_redis_t *rd);
static redisAsyncContext *
ngx_http_telehealth_redis_open(ngx_http_telehealth_redis_t *rd,
    ngx_http_telehealth_redis_link_t *link, const char *host, int port,
    const char *unix_path);
static void ngx_http_telehealth_redis_close(
    ngx_http_telehealth_redis_link_t *link);
static void ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_schedule(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_ready(ngx_http_telehealth_redis_t *rd);
static void ngx_http_telehealth_redis_connected(const redisAsyncContext *ac,
    int status);
static void ngx_http_telehealth_redis_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_telehealth_redis_auth_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_role_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_sentinel_connected(const redisAsyncContext
                                                             *ac,
    int                                                       status);
static void
ngx_http_telehealth_redis_sentinel_disconnected(const redisAsyncContext *ac,
    int status);
static void ngx_http_telehealth_redis_sentinel_reply(redisAsyncContext *ac,
    void *r, void *privdata);
static void
ngx_http_telehealth_redis_sentinel_failed(ngx_http_telehealth_redis_t *rd,
    const char                                                        *reason);
static void ngx_http_telehealth_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_telehealth_redis_event_handler(ngx_event_t *ev);
static void ngx_http_telehealth_redis_add_read(void *data);
static void ngx_http_telehealth_redis_del_read(void *data);
static void ngx_http_telehealth_redis_add_write(void *data);
static void ngx_http_telehealth_redis_del_write(void *data);
static void ngx_http_telehealth_redis_cleanup(void *data);
static void ngx_http_telehealth_redis_reply(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_cmd_timeout(ngx_event_t *ev);
static void ngx_http_telehealth_redis_cmd_disarm(void *data);
static void ngx_http_telehealth_redis_message(redisAsyncContext *ac, void *r,
    void *privdata);
static void ngx_http_telehealth_redis_lost(ngx_http_telehealth_redis_t *rd);


static ngx_http_telehealth_redis_t *ngx_http_telehealth_redis;
static ngx_http_telehealth_redis_t *ngx_http_telehealth_redis_sub;


ngx_int_t
ngx_http_telehealth_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                *mcf)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    /* the configuration strings are NUL-terminated */
    rd->host = mcf->redis_host.len ? (char *) mcf->redis_host.data : NULL;
    rd->unix_path = mcf->redis_unix.len ? (char *) mcf->redis_unix.data : NULL;
    rd->port = (int) mcf->redis_port;
    rd->prefix = (char *) mcf->redis_prefix.data;
    rd->timeout = mcf->timeout;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;

    if (mcf->redis_password.len) {
        rd->user = (char *) mcf->redis_user.data;
        rd->password = (char *) mcf->redis_password.data;
    }

    if (mcf->redis_sentinels != NULL) {
        rd->master = (char *) mcf->redis_master.data;
        rd->sentinels = mcf->redis_sentinels->elts;
        rd->nsentinels = mcf->redis_sentinels->nelts;
        rd->host = NULL;
        rd->unix_path = NULL;
    }

    rd->timer.handler = ngx_http_telehealth_redis_timer_handler;
    rd->timer.data = rd;
    rd->timer.log = cycle->log;
    rd->timer.cancelable = 1;

    ngx_http_telehealth_redis = rd;

    ngx_http_telehealth_redis_connect(rd);

    return NGX_OK;
}


void
ngx_http_telehealth_redis_exit_process(void)
{
    redisCallback                   *cb;
    ngx_http_telehealth_redis_t     *rd;
    ngx_http_telehealth_redis_cmd_t *cmd;

    rd = ngx_http_telehealth_redis;
    if (rd == NULL) {
        return;
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_http_telehealth_redis = NULL;

    if (ngx_http_telehealth_redis_sub != NULL) {
        if (ngx_http_telehealth_redis_sub->timer.timer_set) {
            ngx_del_timer(&ngx_http_telehealth_redis_sub->timer);
        }

        ngx_http_telehealth_redis_sub->message = NULL;
        ngx_http_telehealth_redis_close(
            &ngx_http_telehealth_redis_sub->sentinel);
        ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_sub);
        ngx_http_telehealth_redis_sub = NULL;
    }

    ngx_http_telehealth_redis_close(&rd->sentinel);

    if (rd->data.ac != NULL) {
        /* requests are being torn down: no reply may reach them now */
        for (cb = rd->data.ac->replies.head; cb; cb = cb->next) {
            if (cb->fn != ngx_http_telehealth_redis_reply) {
                continue;
            }

            cmd = cb->privdata;

            if (cmd != NULL) {
                cmd->handler = NULL;
            }
        }

        ngx_http_telehealth_redis_drop(rd);
    }
}


ngx_uint_t
ngx_http_telehealth_redis_available(void)
{
    return ngx_http_telehealth_redis != NULL
           && ngx_http_telehealth_redis->connected;
}


static void
ngx_http_telehealth_redis_connect(ngx_http_telehealth_redis_t *rd)
{
    redisAsyncContext                *ac;
    ngx_http_telehealth_redis_addr_t *sn;

    if (rd->master == NULL) {
        ngx_http_telehealth_redis_connect_primary(rd);
        return;
    }

    /* ask the next sentinel where the primary is */
    sn = &rd->sentinels[rd->next_sentinel];

    ac = ngx_http_telehealth_redis_open(rd, &rd->sentinel,
        (char *) sn->host.data, (int) sn->port, NULL);
    if (ac == NULL) {
        ngx_http_telehealth_redis_sentinel_failed(rd, "cannot connect");
        return;
    }

    redisAsyncSetConnectCallback(ac,
        ngx_http_telehealth_redis_sentinel_connected);
    redisAsyncSetDisconnectCallback(ac,
        ngx_http_telehealth_redis_sentinel_disconnected);

    if (redisAsyncCommand(ac, ngx_http_telehealth_redis_sentinel_reply, rd,
            "SENTINEL get-master-addr-by-name %s", rd->master)
        != REDIS_OK)
    {
        ngx_http_telehealth_redis_close(&rd->sentinel);
        ngx_http_telehealth_redis_sentinel_failed(rd, "cannot send");
        return;
    }

    ngx_add_timer(&rd->timer, rd->timeout);
}


static void
ngx_http_telehealth_redis_connect_primary(ngx_http_telehealth_redis_t *rd)
{
    int                rc;
    redisAsyncContext *ac;

    ac = ngx_http_telehealth_redis_open(rd, &rd->data, rd->host, rd->port,
        rd->unix_path);
    if (ac == NULL) {
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    rd->connected = 0;

    /* the connect callback asks for the first write event */
    redisAsyncSetConnectCallback(ac, ngx_http_telehealth_redis_connected);
    redisAsyncSetDisconnectCallback(ac, ngx_http_telehealth_redis_disconnected);

    /*
     * The handshake goes first on the connection: commands sent meanwhile
     * queue behind it, and get no reply if it fails.
     */
    rc = REDIS_OK;

    if (rd->password != NULL && rd->user != NULL) {
        rc = redisAsyncCommand(ac, ngx_http_telehealth_redis_auth_reply, rd,
            "AUTH %s %s", rd->user, rd->password);

    } else if (rd->password != NULL) {
        rc = redisAsyncCommand(ac, ngx_http_telehealth_redis_auth_reply, rd,
            "AUTH %s", rd->password);
    }

    if (rc == REDIS_OK && rd->master != NULL) {
        rc = redisAsyncCommand(ac, ngx_http_telehealth_redis_role_reply, rd,
            "ROLE");
    }

    if (rc != REDIS_OK) {
        ngx_http_telehealth_redis_drop(rd);
        return;
    }

    ngx_add_timer(&rd->timer, rd->timeout);
}


static redisAsyncContext *
ngx_http_telehealth_redis_open(ngx_http_telehealth_redis_t *rd,
    ngx_http_telehealth_redis_link_t *link, const char *host, int port,
    const char *unix_path)
{
    ngx_connection_t  *c;
    redisAsyncContext *ac;

    if (unix_path != NULL) {
        ac = redisAsyncConnectUnix(unix_path);

    } else {
        ac = redisAsyncConnect(host, port);
    }

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ALERT, rd->log, 0,
            "telehealth: redisAsyncConnect() failed");
        return NULL;
    }

    if (ac->err) {
        if (!rd->failed) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                "telehealth: Redis connect to %s failed: %s",
                unix_path ? unix_path : host, ac->errstr);
        }

        redisAsyncFree(ac);
        return NULL;
    }

    c = ngx_http_telehealth_conn_wrap(ac->c.fd, rd->log, link,
        ngx_http_telehealth_redis_event_handler);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NULL;
    }

    link->c = c;
    link->ac = ac;

    ac->data = rd;
    ac->ev.data = link;
    ac->ev.addRead = ngx_http_telehealth_redis_add_read;
    ac->ev.delRead = ngx_http_telehealth_redis_del_read;
    ac->ev.addWrite = ngx_http_telehealth_redis_add_write;
    ac->ev.delWrite = ngx_http_telehealth_redis_del_write;
    ac->ev.cleanup = ngx_http_telehealth_redis_cleanup;

    return ac;
}


/* frees a link's context now, or once the running callback returns */

static void
ngx_http_telehealth_redis_close(ngx_http_telehealth_redis_link_t *link)
{
    redisAsyncContext *ac;

    ac = link->ac;
    link->ac = NULL;

    if (ac != NULL) {
        redisAsyncFree(ac);
    }
}


/* closes the connection now; pending commands get a NULL reply */

static void
ngx_http_telehealth_redis_drop(ngx_http_telehealth_redis_t *rd)
{
    rd->connected = 0;

    ngx_http_telehealth_redis_close(&rd->data);

    ngx_http_telehealth_redis_lost(rd);

    if (ngx_http_telehealth_redis != NULL) {
        ngx_http_telehealth_redis_schedule(rd);
    }
}


static void
ngx_http_telehealth_redis_schedule(ngx_http_telehealth_redis_t *rd)
{
    if (ngx_http_telehealth_redis == NULL) {
        return; /* exiting */
    }

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_add_timer(&rd->timer, rd->backoff);
    rd->backoff =
        ngx_min(rd->backoff * 2, NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MAX);
}


/* connected, authenticated and, with Sentinel, on the primary */

static void
ngx_http_telehealth_redis_ready(ngx_http_telehealth_redis_t *rd)
{
    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    if (rd->failed) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
            "telehealth: Redis is reachable again");
    }

    rd->connected = 1;
    rd->failed = 0;
    rd->auth_failed = 0;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;

    /* a subscriber's connection only ever subscribes */
    if (rd->channel != NULL
        && redisAsyncCommand(rd->data.ac, ngx_http_telehealth_redis_message, rd,
               "SUBSCRIBE %s", rd->channel)
               != REDIS_OK)
    {
        rd->failed = 1;
        ngx_http_telehealth_redis_drop(rd);
    }
}


static void
ngx_http_telehealth_redis_connected(const redisAsyncContext *ac, int status)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ac->data;

    if (rd->data.ac != ac) {
        return;
    }

    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback */
        if (!rd->failed) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                "telehealth: Redis connect failed: %s", ac->errstr);
        }

        rd->failed = 1;
        rd->data.ac = NULL;
        ngx_http_telehealth_redis_schedule(rd);
        return;
    }

    if (rd->password == NULL && rd->master == NULL) {
        ngx_http_telehealth_redis_ready(rd);
    }
}


static void
ngx_http_telehealth_redis_disconnected(const redisAsyncContext *ac, int status)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ac->data;

    if (rd->data.ac != ac) {
        return; /* dropped on purpose */
    }

    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
        "telehealth: Redis connection lost: %s",
        ac->errstr[0] ? ac->errstr : "closed");

    rd->data.ac = NULL;
    rd->connected = 0;
    rd->failed = 1;
    ngx_http_telehealth_redis_lost(rd);
    ngx_http_telehealth_redis_schedule(rd);
}


static void
ngx_http_telehealth_redis_auth_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_telehealth_redis_t *rd = privdata;

    if (reply == NULL || rd->data.ac != ac) {
        return; /* the connection went: it is made again */
    }

    if (reply->type == REDIS_REPLY_ERROR) {
        /* logged once until it succeeds: the password file is wrong */
        if (!rd->auth_failed) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                "telehealth: Redis refused AUTH as \"%s\": %s",
                rd->user ? rd->user : "default", reply->str);
        }

        rd->auth_failed = 1;
        rd->failed = 1;
        ngx_http_telehealth_redis_drop(rd);
        return;
    }

    if (rd->master == NULL) {
        ngx_http_telehealth_redis_ready(rd);
    }
}


static void
ngx_http_telehealth_redis_role_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    redisReply                  *reply = r;
    ngx_http_telehealth_redis_t *rd = privdata;

    if (reply == NULL || rd->data.ac != ac) {
        return;
    }

    if (reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
        && reply->element[0]->type == REDIS_REPLY_STRING
        && ngx_strcmp(reply->element[0]->str, "master") == 0)
    {
        ngx_http_telehealth_redis_ready(rd);
        return;
    }

    /* the sentinels have not caught up with a failover yet */
    ngx_log_error(NGX_LOG_WARN, rd->log, 0,
        "telehealth: Redis at %s is not a primary yet, asking the "
        "sentinels again",
        rd->primary);

    rd->failed = 1;
    ngx_http_telehealth_redis_drop(rd);
}


static void
ngx_http_telehealth_redis_sentinel_connected(const redisAsyncContext *ac,
    int                                                               status)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ac->data;

    if (rd->sentinel.ac != ac || status == REDIS_OK) {
        return;
    }

    /* hiredis frees the context after this callback */
    rd->sentinel.ac = NULL;
    ngx_http_telehealth_redis_sentinel_failed(rd, ac->errstr);
}


static void
ngx_http_telehealth_redis_sentinel_disconnected(const redisAsyncContext *ac,
    int                                                                  status)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ac->data;

    if (rd->sentinel.ac != ac) {
        return; /* closed on purpose */
    }

    rd->sentinel.ac = NULL;
    ngx_http_telehealth_redis_sentinel_failed(rd,
        ac->errstr[0] ? ac->errstr : "closed");
}


static void
ngx_http_telehealth_redis_sentinel_reply(redisAsyncContext *ac, void *r,
    void *privdata)
{
    int                          port;
    redisReply                  *reply = r;
    ngx_http_telehealth_redis_t *rd = privdata;
    u_char                       primary[NGX_SOCKADDR_STRLEN];

    if (reply == NULL || rd->sentinel.ac != ac) {
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2
        || reply->element[0]->type != REDIS_REPLY_STRING
        || reply->element[1]->type != REDIS_REPLY_STRING
        || reply->element[0]->len >= NGX_INET6_ADDRSTRLEN)
    {
        ngx_http_telehealth_redis_close(&rd->sentinel);
        ngx_http_telehealth_redis_sentinel_failed(rd,
            "no primary of that name known");
        return;
    }

    port = ngx_atoi((u_char *) reply->element[1]->str, reply->element[1]->len);
    if (port < 1 || port > 65535) {
        ngx_http_telehealth_redis_close(&rd->sentinel);
        ngx_http_telehealth_redis_sentinel_failed(rd, "bad port");
        return;
    }

    ngx_snprintf(primary, sizeof(primary) - 1, "%s:%d%Z",
        reply->element[0]->str, port);

    if (ngx_strcmp(primary, rd->primary) != 0) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
            "telehealth: Redis primary \"%s\" is at %s", rd->master, primary);
        ngx_cpystrn(rd->primary, primary, sizeof(rd->primary));
    }

    ngx_cpystrn((u_char *) rd->primary_host, (u_char *) reply->element[0]->str,
        NGX_INET6_ADDRSTRLEN);
    rd->host = rd->primary_host;
    rd->port = port;

    ngx_http_telehealth_redis_close(&rd->sentinel);

    if (rd->timer.timer_set) {
        ngx_del_timer(&rd->timer);
    }

    ngx_http_telehealth_redis_connect_primary(rd);
}


/* this sentinel did not help: the next one, after the back-off */

static void
ngx_http_telehealth_redis_sentinel_failed(ngx_http_telehealth_redis_t *rd,
    const char                                                        *reason)
{
    ngx_uint_t                        level;
    ngx_http_telehealth_redis_addr_t *sn;

    sn = &rd->sentinels[rd->next_sentinel];
    level = rd->failed ? NGX_LOG_INFO : NGX_LOG_WARN;

    ngx_log_error(level, rd->log, 0, "telehealth: Redis sentinel %V:%ui: %s",
        &sn->host, sn->port, reason);

    rd->next_sentinel = (rd->next_sentinel + 1) % rd->nsentinels;
    rd->failed = 1;

    ngx_http_telehealth_redis_schedule(rd);
}


static void
ngx_http_telehealth_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ev->data;

    if (rd->sentinel.ac != NULL) {
        ngx_http_telehealth_redis_close(&rd->sentinel);
        ngx_http_telehealth_redis_sentinel_failed(rd, "timed out");
        return;
    }

    if (rd->data.ac == NULL) {
        ngx_http_telehealth_redis_connect(rd);
        return;
    }

    ngx_log_error(NGX_LOG_ERR, rd->log, 0,
        "telehealth: Redis connect timed out");

    rd->failed = 1;
    ngx_http_telehealth_redis_drop(rd);
}


static void
ngx_http_telehealth_redis_event_handler(ngx_event_t *ev)
{
    ngx_connection_t                 *c;
    ngx_http_telehealth_redis_link_t *link;

    c = ev->data;
    link = c->data;

    if (link->ac == NULL) {
        return;
    }

    if (ev->write) {
        redisAsyncHandleWrite(link->ac);

    } else {
        redisAsyncHandleRead(link->ac);
    }
}


/*
 * The adapter.  Level-triggered: hiredis reads at most 16k per call and
 * relies on being called again while data is waiting.
 */

static void
ngx_http_telehealth_redis_add_read(void *data)
{
    ngx_http_telehealth_redis_link_t *link = data;

    if (link->c != NULL && !link->c->read->active) {
        (void) ngx_add_event(link->c->read, NGX_READ_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_telehealth_redis_del_read(void *data)
{
    ngx_http_telehealth_redis_link_t *link = data;

    if (link->c != NULL && link->c->read->active) {
        (void) ngx_del_event(link->c->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_telehealth_redis_add_write(void *data)
{
    ngx_http_telehealth_redis_link_t *link = data;

    if (link->c != NULL && !link->c->write->active) {
        (void) ngx_add_event(link->c->write, NGX_WRITE_EVENT, NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_telehealth_redis_del_write(void *data)
{
    ngx_http_telehealth_redis_link_t *link = data;

    if (link->c != NULL && link->c->write->active) {
        (void) ngx_del_event(link->c->write, NGX_WRITE_EVENT, 0);
    }
}


/* called by hiredis right before it closes the socket */

static void
ngx_http_telehealth_redis_cleanup(void *data)
{
    ngx_connection_t                 *c;
    ngx_http_telehealth_redis_link_t *link = data;

    c = link->c;
    if (c == NULL) {
        return;
    }

    /* hiredis closes the socket itself, which also removes it from epoll */
    ngx_http_telehealth_conn_release(c, NGX_CLOSE_EVENT);

    link->c = NULL;
}


ngx_int_t
ngx_http_telehealth_redis_command(ngx_pool_t *pool, ngx_log_t *log,
    ngx_http_telehealth_redis_handler_pt handler, void *data, int argc,
    const char **argv, const size_t *argvlen)
{
    ngx_pool_cleanup_t              *cln;
    ngx_http_telehealth_redis_t     *rd;
    ngx_http_telehealth_redis_cmd_t *cmd;

    rd = ngx_http_telehealth_redis;

    if (rd == NULL || rd->data.ac == NULL) {
        return NGX_DECLINED;
    }

    cln = NULL;

    if (pool != NULL) {
        cln = ngx_pool_cleanup_add(pool, 0);
        if (cln == NULL) {
            return NGX_ERROR;
        }
    }

    cmd = ngx_calloc(sizeof(ngx_http_telehealth_redis_cmd_t), log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->timer.handler = ngx_http_telehealth_redis_cmd_timeout;
    cmd->timer.data = cmd;
    cmd->timer.log = rd->log;

    if (redisAsyncCommandArgv(rd->data.ac, ngx_http_telehealth_redis_reply, cmd,
            argc, argv, argvlen)
        != REDIS_OK)
    {
        ngx_free(cmd);
        return NGX_DECLINED;
    }

    if (cln != NULL) {
        cln->handler = ngx_http_telehealth_redis_cmd_disarm;
        cln->data = cmd;
        cmd->cleanup = cln;
    }

    ngx_add_timer(&cmd->timer, rd->timeout);

    return NGX_OK;
}


static void
ngx_http_telehealth_redis_reply(redisAsyncContext *ac, void *r, void *privdata)
{
    redisReply                      *reply = r;
    ngx_http_telehealth_redis_t     *rd;
    ngx_http_telehealth_redis_cmd_t *cmd = privdata;

    rd = ngx_http_telehealth_redis;

    if (cmd->timer.timer_set) {
        ngx_del_timer(&cmd->timer);
    }

    if (cmd->cleanup != NULL) {
        cmd->cleanup->handler = NULL;
    }

    /*
     * A primary demoted by a failover answers writes with READONLY: to the
     * sender that is Redis being away, and the connection is made again.
     */
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR
        && ngx_strncmp(reply->str, "READONLY", 8) == 0)
    {
        if (rd != NULL && rd->data.ac == ac) {
            ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                "telehealth: Redis at %s is no longer the "
                "primary",
                rd->primary[0] ? rd->primary : (u_char *) "?");
            rd->failed = 1;
            ngx_http_telehealth_redis_drop(rd);
        }

        reply = NULL;
    }

    if (cmd->handler) {
        cmd->handler(cmd->data, reply);
    }

    ngx_free(cmd);
}


static void
ngx_http_telehealth_redis_cmd_timeout(ngx_event_t *ev)
{
    ngx_http_telehealth_redis_t *rd;

    rd = ngx_http_telehealth_redis;

    ngx_log_error(NGX_LOG_ERR, ev->log, 0,
        "telehealth: Redis command timed out");

    if (rd != NULL && rd->data.ac != NULL) {
        rd->failed = 1;
        ngx_http_telehealth_redis_drop(rd);
    }
}


/* the owner's pool is going away: the reply must not reach it */

static void
ngx_http_telehealth_redis_cmd_disarm(void *data)
{
    ngx_http_telehealth_redis_cmd_t *cmd = data;

    cmd->handler = NULL;
    cmd->cleanup = NULL;
}


char *
ngx_http_telehealth_redis_key(ngx_pool_t *pool, const char *fmt, const char *id)
{
    int         n;
    char       *key;
    size_t      len;
    const char *prefix;

    prefix = ngx_http_telehealth_redis ? ngx_http_telehealth_redis->prefix
                                       : TH_REDIS_PREFIX_DEFAULT;

    len = ngx_strlen(fmt) + ngx_strlen(prefix) + (id ? ngx_strlen(id) : 0);

    key = ngx_pnalloc(pool, len + 1);
    if (key == NULL) {
        return NULL;
    }

    n = snprintf(key, len + 1, fmt, prefix, id);
    if (n < 0 || (size_t) n > len) {
        return NULL;
    }

    return key;
}


/*
 * A subscriber: a connection of its own (a subscribed connection takes no
 * other command) on one channel, to the same Redis as the commands' (the
 * same AUTH, the same sentinels), made again with back-off when it drops.
 * handler gets every message of the channel and the subscription's
 * confirmation (arrays as Redis sends them), and NULL whenever the
 * connection is lost: what was published meanwhile is lost too.
 */

ngx_int_t
ngx_http_telehealth_redis_subscribe(ngx_cycle_t *cycle, const char *channel,
    ngx_http_telehealth_redis_handler_pt handler, void *data)
{
    size_t                       len;
    ngx_http_telehealth_redis_t *rd, *first;

    first = ngx_http_telehealth_redis;

    if (first == NULL || ngx_http_telehealth_redis_sub != NULL) {
        return NGX_ERROR;
    }

    rd = ngx_pcalloc(cycle->pool, sizeof(ngx_http_telehealth_redis_t));
    if (rd == NULL) {
        return NGX_ERROR;
    }

    len = ngx_strlen(channel);
    rd->channel = ngx_pnalloc(cycle->pool, len + 1);
    if (rd->channel == NULL) {
        return NGX_ERROR;
    }

    ngx_memcpy(rd->channel, channel, len + 1);

    rd->host = first->host;
    rd->unix_path = first->unix_path;
    rd->port = first->port;
    rd->prefix = first->prefix;
    rd->user = first->user;
    rd->password = first->password;
    rd->master = first->master;
    rd->sentinels = first->sentinels;
    rd->nsentinels = first->nsentinels;
    rd->timeout = first->timeout;
    rd->log = cycle->log;
    rd->backoff = NGX_HTTP_TELEHEALTH_REDIS_BACKOFF_MIN;
    rd->message = handler;
    rd->message_data = data;

    rd->timer.handler = ngx_http_telehealth_redis_timer_handler;
    rd->timer.data = rd;
    rd->timer.log = cycle->log;
    rd->timer.cancelable = 1;

    ngx_http_telehealth_redis_sub = rd;

    ngx_http_telehealth_redis_connect(rd);

    return NGX_OK;
}


static void
ngx_http_telehealth_redis_message(redisAsyncContext *ac, void *r,
    void *privdata)
{
    ngx_http_telehealth_redis_t *rd = privdata;

    /* a NULL reply: the connection is going, redis_lost() tells */
    if (r == NULL || rd->data.ac != ac || rd->message == NULL) {
        return;
    }

    rd->message(rd->message_data, r);
}


static void
ngx_http_telehealth_redis_lost(ngx_http_telehealth_redis_t *rd)
{
    if (rd->channel != NULL && rd->message != NULL) {
        rd->message(rd->message_data, NULL);
    }
}
