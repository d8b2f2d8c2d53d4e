/*
 * Revoked access tokens, in shared memory, so that every authenticated
 * request is checked without a network round trip.
 *
 * Whoever revokes (logout, revoke.lua for deactivation and a new password)
 * writes the revocation in one Redis script: its key as before, a member
 * "t <jti> <expires>" or "p <person> <nbf> <expires>" of the sorted set
 * <prefix>revocations (score: when it no longer matters), and the same text
 * published on the channel <prefix>revocations.  The node that revoked also
 * writes it here at once.
 *
 * The first worker of each nginx subscribes to the channel on a connection
 * of its own; once subscribed it reads the sorted set (what was revoked
 * before), and only then are answers given.  Every BEAT ms it publishes a
 * heartbeat "h <pid> <msec>" on the channel through the command connection;
 * a heartbeat that has not come back for LATE ms means the feed is down,
 * and every check answers NGX_BUSY (503) until it is back and synced again.
 * A revocation therefore applies on every node as soon as Redis delivers
 * it, and never later than LATE ms after Redis accepted it: a heartbeat
 * heard since was published after it, and Redis delivers in order.
 */

#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_revocations.h"
#include "ngx_http_telehealth_redis.h"


#define NGX_HTTP_TELEHEALTH_REVOCATIONS_SIZE (8 * 1024 * 1024)
#define NGX_HTTP_TELEHEALTH_REVOCATIONS_ID   128


typedef struct {
    ngx_rbtree_t      rbtree;
    ngx_rbtree_node_t sentinel;
    ngx_queue_t       queue;  /* oldest first */
    ngx_msec_t        heard;  /* our last beat back */
    ngx_uint_t        synced; /* the set read since the
                                                    subscription */
    ngx_uint_t        full;
} ngx_http_telehealth_revocations_sh_t;


typedef struct {
    ngx_str_node_t sn; /* "t<jti>", "p<person>" */
    ngx_queue_t    queue;
    time_t         expires;
    time_t         nbf; /* persons */
    u_char         data[1];
} ngx_http_telehealth_revocation_t;


typedef struct {
    ngx_http_telehealth_revocations_sh_t *sh;
    ngx_slab_pool_t                      *shpool;
} ngx_http_telehealth_revocations_zone_t;


static ngx_int_t ngx_http_telehealth_revocations_init_zone(ngx_shm_zone_t
                                                               *shm_zone,
    void                                                       *data);
static void ngx_http_telehealth_revocations_message(void *data,
    redisReply                                           *reply);
static void ngx_http_telehealth_revocations_sync(void);
static void ngx_http_telehealth_revocations_synced(void *data,
    redisReply                                          *reply);
static void ngx_http_telehealth_revocations_beat(ngx_event_t *ev);
static void ngx_http_telehealth_revocations_publish_beat(ngx_log_t *log);
static void ngx_http_telehealth_revocations_apply(u_char *p, size_t len);
static void ngx_http_telehealth_revocations_put(u_char kind, u_char *id,
    size_t len, time_t nbf, time_t expires);
static void
ngx_http_telehealth_revocations_expire(ngx_http_telehealth_revocations_zone_t
                                           *z,
    time_t                                  now);


static ngx_shm_zone_t *ngx_http_telehealth_revocations_shm;

/* the first worker's feed */
static ngx_event_t ngx_http_telehealth_revocations_timer;
static char       *ngx_http_telehealth_revocations_key;
static ngx_uint_t  ngx_http_telehealth_revocations_gen;
static ngx_uint_t  ngx_http_telehealth_revocations_subscribed;
static ngx_uint_t  ngx_http_telehealth_revocations_syncing;


char *
ngx_http_telehealth_revocations_conf(ngx_conf_t *cf)
{
    ngx_str_t                               name;
    ngx_shm_zone_t                         *shm;
    ngx_http_telehealth_revocations_zone_t *z;

    ngx_str_set(&name, "telehealth_revocations");

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_telehealth_revocations_zone_t));
    if (z == NULL) {
        return NGX_CONF_ERROR;
    }

    shm = ngx_shared_memory_add(cf, &name, NGX_HTTP_TELEHEALTH_REVOCATIONS_SIZE,
        &ngx_http_telehealth_module);
    if (shm == NULL) {
        return NGX_CONF_ERROR;
    }

    if (shm->data == NULL) {
        shm->init = ngx_http_telehealth_revocations_init_zone;
        shm->data = z;
    }

    ngx_http_telehealth_revocations_shm = shm;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_telehealth_revocations_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_telehealth_revocations_zone_t *oz = data;
    ngx_http_telehealth_revocations_zone_t *z;

    z = shm_zone->data;

    if (oz != NULL) {
        /* a reload: the revocations stay */
        z->sh = oz->sh;
        z->shpool = oz->shpool;
        return NGX_OK;
    }

    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    z->sh = ngx_slab_calloc(z->shpool,
        sizeof(ngx_http_telehealth_revocations_sh_t));
    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->shpool->data = z->sh;

    ngx_rbtree_init(&z->sh->rbtree, &z->sh->sentinel,
        ngx_str_rbtree_insert_value);
    ngx_queue_init(&z->sh->queue);

    z->shpool->log_nomem = 0;
    z->shpool->log_ctx = (u_char *) " in telehealth revocations";

    return NGX_OK;
}


ngx_int_t
ngx_http_telehealth_revocations_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                      *mcf)
{
    char                                   *channel;
    ngx_http_telehealth_revocations_zone_t *z;

    if (ngx_http_telehealth_revocations_shm == NULL || ngx_worker != 0) {
        return NGX_OK;
    }

    z = ngx_http_telehealth_revocations_shm->data;

    /* nothing is answered until this worker has synced */
    ngx_shmtx_lock(&z->shpool->mutex);
    z->sh->synced = 0;
    ngx_shmtx_unlock(&z->shpool->mutex);

    channel =
        ngx_http_telehealth_redis_key(cycle->pool, TH_KEY_REVOCATIONS, "");
    ngx_http_telehealth_revocations_key = channel;

    if (channel == NULL
        || ngx_http_telehealth_redis_subscribe(cycle, channel,
               ngx_http_telehealth_revocations_message, z)
               != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_http_telehealth_revocations_timer.handler =
        ngx_http_telehealth_revocations_beat;
    ngx_http_telehealth_revocations_timer.data = z;
    ngx_http_telehealth_revocations_timer.log = cycle->log;
    ngx_http_telehealth_revocations_timer.cancelable = 1;

    ngx_add_timer(&ngx_http_telehealth_revocations_timer,
        NGX_HTTP_TELEHEALTH_REVOCATIONS_BEAT);

    return NGX_OK;
}


ngx_int_t
ngx_http_telehealth_revocations_check(ngx_str_t *jti, ngx_str_t *person,
    time_t iat)
{
    uint32_t                                hash;
    ngx_int_t                               rc;
    ngx_str_t                               key;
    ngx_http_telehealth_revocation_t       *rv;
    ngx_http_telehealth_revocations_zone_t *z;
    u_char buf[1 + NGX_HTTP_TELEHEALTH_REVOCATIONS_ID];

    if (ngx_http_telehealth_revocations_shm == NULL
        || jti->len > NGX_HTTP_TELEHEALTH_REVOCATIONS_ID
        || person->len > NGX_HTTP_TELEHEALTH_REVOCATIONS_ID)
    {
        return NGX_BUSY;
    }

    z = ngx_http_telehealth_revocations_shm->data;
    rc = NGX_OK;

    ngx_shmtx_lock(&z->shpool->mutex);

    if (!z->sh->synced || z->sh->full
        || (ngx_msec_int_t) (ngx_current_msec - z->sh->heard)
               > NGX_HTTP_TELEHEALTH_REVOCATIONS_LATE)
    {
        rc = NGX_BUSY;
        goto done;
    }

    key.data = buf;

    buf[0] = 't';
    ngx_memcpy(buf + 1, jti->data, jti->len);
    key.len = 1 + jti->len;
    hash = ngx_crc32_short(key.data, key.len);

    rv = (ngx_http_telehealth_revocation_t *)
        ngx_str_rbtree_lookup(&z->sh->rbtree, &key, hash);

    if (rv != NULL) {
        rc = NGX_DECLINED;
        goto done;
    }

    buf[0] = 'p';
    ngx_memcpy(buf + 1, person->data, person->len);
    key.len = 1 + person->len;
    hash = ngx_crc32_short(key.data, key.len);

    rv = (ngx_http_telehealth_revocation_t *)
        ngx_str_rbtree_lookup(&z->sh->rbtree, &key, hash);

    if (rv != NULL && iat <= rv->nbf) {
        rc = NGX_DECLINED;
    }

done:

    ngx_shmtx_unlock(&z->shpool->mutex);

    return rc;
}


void
ngx_http_telehealth_revocations_token(ngx_str_t *jti, time_t expires)
{
    ngx_http_telehealth_revocations_put('t', jti->data, jti->len, 0, expires);
}


void
ngx_http_telehealth_revocations_person(ngx_str_t *person, time_t nbf,
    time_t expires)
{
    ngx_http_telehealth_revocations_put('p', person->data, person->len, nbf,
        expires);
}


static void
ngx_http_telehealth_revocations_put(u_char kind, u_char *id, size_t len,
    time_t nbf, time_t expires)
{
    uint32_t                                hash;
    ngx_str_t                               key;
    ngx_http_telehealth_revocation_t       *rv;
    ngx_http_telehealth_revocations_zone_t *z;
    u_char buf[1 + NGX_HTTP_TELEHEALTH_REVOCATIONS_ID];

    if (ngx_http_telehealth_revocations_shm == NULL || len == 0
        || len > NGX_HTTP_TELEHEALTH_REVOCATIONS_ID || expires < ngx_time())
    {
        return;
    }

    z = ngx_http_telehealth_revocations_shm->data;

    buf[0] = kind;
    ngx_memcpy(buf + 1, id, len);
    key.data = buf;
    key.len = 1 + len;
    hash = ngx_crc32_short(key.data, key.len);

    ngx_shmtx_lock(&z->shpool->mutex);

    rv = (ngx_http_telehealth_revocation_t *)
        ngx_str_rbtree_lookup(&z->sh->rbtree, &key, hash);

    if (rv != NULL) {
        rv->nbf = ngx_max(rv->nbf, nbf);
        rv->expires = ngx_max(rv->expires, expires);
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    rv = ngx_slab_alloc_locked(z->shpool,
        offsetof(ngx_http_telehealth_revocation_t, data) + key.len);

    if (rv == NULL) {
        ngx_http_telehealth_revocations_expire(z, ngx_time());

        rv = ngx_slab_alloc_locked(z->shpool,
            offsetof(ngx_http_telehealth_revocation_t, data) + key.len);
    }

    if (rv == NULL) {
        /* a revocation that cannot be kept: nothing is answered any more */
        z->sh->full = 1;
        ngx_shmtx_unlock(&z->shpool->mutex);
        ngx_log_error(NGX_LOG_CRIT, ngx_cycle->log, 0,
            "telehealth: the revocations zone is full, "
            "authenticated requests are refused");
        return;
    }

    ngx_memcpy(rv->data, key.data, key.len);
    rv->sn.str.data = rv->data;
    rv->sn.str.len = key.len;
    rv->sn.node.key = hash;
    rv->nbf = nbf;
    rv->expires = expires;

    ngx_rbtree_insert(&z->sh->rbtree, &rv->sn.node);
    ngx_queue_insert_tail(&z->sh->queue, &rv->queue);

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* the oldest first, until one still matters; with the mutex held */

static void
ngx_http_telehealth_revocations_expire(ngx_http_telehealth_revocations_zone_t
                                           *z,
    time_t                                  now)
{
    ngx_queue_t                      *q;
    ngx_http_telehealth_revocation_t *rv;

    while (!ngx_queue_empty(&z->sh->queue)) {
        q = ngx_queue_head(&z->sh->queue);
        rv = ngx_queue_data(q, ngx_http_telehealth_revocation_t, queue);

        if (rv->expires >= now) {
            break;
        }

        ngx_queue_remove(q);
        ngx_rbtree_delete(&z->sh->rbtree, &rv->sn.node);
        ngx_slab_free_locked(z->shpool, rv);
        z->sh->full = 0;
    }
}


/* "t <jti> <expires>" or "p <person> <nbf> <expires>" */

static void
ngx_http_telehealth_revocations_apply(u_char *p, size_t len)
{
    u_char    *last, *f[4];
    size_t     flen[4];
    time_t     nbf, expires;
    ngx_uint_t n;

    last = p + len;
    n = 0;

    while (p < last && n < 4) {
        f[n] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        flen[n] = p - f[n];
        n++;

        if (p < last) {
            p++;
        }
    }

    if (p != last || n < 3 || flen[0] != 1) {
        return;
    }

    if (f[0][0] == 't' && n == 3) {
        expires = ngx_atotm(f[2], flen[2]);
        if (expires != NGX_ERROR) {
            ngx_http_telehealth_revocations_put('t', f[1], flen[1], 0, expires);
        }

    } else if (f[0][0] == 'p' && n == 4) {
        nbf = ngx_atotm(f[2], flen[2]);
        expires = ngx_atotm(f[3], flen[3]);
        if (nbf != NGX_ERROR && expires != NGX_ERROR) {
            ngx_http_telehealth_revocations_put('p', f[1], flen[1], nbf,
                expires);
        }
    }
}


/* the subscription's messages; NULL: the connection was lost */

static void
ngx_http_telehealth_revocations_message(void *data, redisReply *reply)
{
    u_char                                 *p, *last;
    ngx_int_t                               pid, sent;
    redisReply                             *kind, *msg;
    ngx_http_telehealth_revocations_zone_t *z = data;

    if (reply == NULL) {
        if (ngx_http_telehealth_revocations_subscribed) {
            ngx_log_error(NGX_LOG_WARN, ngx_cycle->log, 0,
                "telehealth: the revocations feed is down, "
                "authenticated requests are refused");
        }

        ngx_http_telehealth_revocations_subscribed = 0;

        ngx_shmtx_lock(&z->shpool->mutex);
        z->sh->synced = 0;
        ngx_shmtx_unlock(&z->shpool->mutex);
        return;
    }

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[0]->type != REDIS_REPLY_STRING)
    {
        return;
    }

    kind = reply->element[0];
    msg = reply->element[2];

    if (kind->len == 9 && ngx_strncmp(kind->str, "subscribe", 9) == 0) {
        ngx_http_telehealth_revocations_subscribed = 1;
        ngx_http_telehealth_revocations_gen++;
        ngx_http_telehealth_revocations_sync();
        ngx_http_telehealth_revocations_publish_beat(ngx_cycle->log);
        return;
    }

    if (kind->len != 7 || ngx_strncmp(kind->str, "message", 7) != 0
        || msg->type != REDIS_REPLY_STRING || msg->len < 3)
    {
        return;
    }

    p = (u_char *) msg->str;
    last = p + msg->len;

    if (p[0] != 'h') {
        ngx_http_telehealth_revocations_apply(p, msg->len);
        return;
    }

    /* "h <pid> <msec>": our own beat is back */
    p += 2;
    pid = 0;

    while (p < last && *p >= '0' && *p <= '9') {
        pid = pid * 10 + (*p++ - '0');
    }

    if (pid != ngx_pid || p == last || *p != ' ') {
        return;
    }

    p++;
    sent = ngx_atoi(p, last - p);

    if (sent == NGX_ERROR) {
        return;
    }

    ngx_shmtx_lock(&z->shpool->mutex);
    z->sh->heard = (ngx_msec_t) sent;
    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* what was revoked before the subscription */

static void
ngx_http_telehealth_revocations_sync(void)
{
    const char *argv[4];
    size_t      argvlen[4];
    u_char      now[NGX_TIME_T_LEN + 1];

    /* hiredis copies the arguments into the command it writes */

    argv[0] = "ZRANGEBYSCORE";
    argv[1] = ngx_http_telehealth_revocations_key;
    argv[2] = (char *) now;
    argv[3] = "+inf";

    argvlen[0] = sizeof("ZRANGEBYSCORE") - 1;
    argvlen[1] = ngx_strlen(argv[1]);
    argvlen[2] = ngx_sprintf(now, "%T", ngx_time()) - now;
    argvlen[3] = sizeof("+inf") - 1;

    if (ngx_http_telehealth_redis_command(NULL, ngx_cycle->log,
            ngx_http_telehealth_revocations_synced,
            (void *) (uintptr_t) ngx_http_telehealth_revocations_gen, 4, argv,
            argvlen)
        == NGX_OK)
    {
        ngx_http_telehealth_revocations_syncing = 1;
    }
}


static void
ngx_http_telehealth_revocations_synced(void *data, redisReply *reply)
{
    size_t                                  i;
    redisReply                             *e;
    ngx_http_telehealth_revocations_zone_t *z;

    ngx_http_telehealth_revocations_syncing = 0;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY
        || ngx_http_telehealth_revocations_shm == NULL)
    {
        return;
    }

    for (i = 0; i < reply->elements; i++) {
        e = reply->element[i];

        if (e->type == REDIS_REPLY_STRING) {
            ngx_http_telehealth_revocations_apply((u_char *) e->str, e->len);
        }
    }

    /* still the subscription that was made before the read */
    if (!ngx_http_telehealth_revocations_subscribed
        || (uintptr_t) data != ngx_http_telehealth_revocations_gen)
    {
        return;
    }

    z = ngx_http_telehealth_revocations_shm->data;

    ngx_shmtx_lock(&z->shpool->mutex);
    z->sh->synced = 1;
    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
        "telehealth: revocations synced, %uz from Redis", reply->elements);
}


/* every BEAT ms: a heartbeat, a sync not yet done, expired entries */

static void
ngx_http_telehealth_revocations_beat(ngx_event_t *ev)
{
    ngx_uint_t                              synced;
    ngx_http_telehealth_revocations_zone_t *z = ev->data;

    if (ngx_exiting || ngx_quit || ngx_terminate) {
        return;
    }

    ngx_add_timer(ev, NGX_HTTP_TELEHEALTH_REVOCATIONS_BEAT);

    ngx_shmtx_lock(&z->shpool->mutex);
    ngx_http_telehealth_revocations_expire(z, ngx_time());
    synced = z->sh->synced;
    ngx_shmtx_unlock(&z->shpool->mutex);

    if (!synced && ngx_http_telehealth_revocations_subscribed
        && !ngx_http_telehealth_revocations_syncing)
    {
        ngx_http_telehealth_revocations_sync();
    }

    ngx_http_telehealth_revocations_publish_beat(ev->log);
}


static void
ngx_http_telehealth_revocations_publish_beat(ngx_log_t *log)
{
    u_char     *p;
    const char *argv[3];
    size_t      argvlen[3];
    u_char      msg[2 * NGX_INT_T_LEN + 4];

    p = ngx_sprintf(msg, "h %P %M", ngx_pid, ngx_current_msec);

    argv[0] = "PUBLISH";
    argv[1] = ngx_http_telehealth_revocations_key;
    argv[2] = (char *) msg;

    argvlen[0] = sizeof("PUBLISH") - 1;
    argvlen[1] = ngx_strlen(argv[1]);
    argvlen[2] = p - msg;

    (void) ngx_http_telehealth_redis_command(NULL, log, NULL, NULL, 3, argv,
        argvlen);
}
