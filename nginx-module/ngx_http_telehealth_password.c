/*
 * argon2id verification on the thread pool of telehealth_thread_pool.
 *
 * The task lives in a pool of its own, not in the request's: a client that
 * disconnects frees the request while the thread may still be hashing.
 * The request's pool cleanup only disarms the completion.
 */

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include <argon2.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "ngx_http_telehealth_password.h"


/* the cost of the dummy hash: that of scripts/demo.sh and RFC 9106's
 * second recommendation (t=3 would be the first) */
#define NGX_HTTP_TELEHEALTH_DUMMY_T       2
#define NGX_HTTP_TELEHEALTH_DUMMY_M       65536
#define NGX_HTTP_TELEHEALTH_DUMMY_P       1


typedef struct {
    ngx_pool_t                               *pool;
    ngx_http_request_t                       *request;
    ngx_pool_cleanup_t                       *cleanup;
    ngx_http_telehealth_password_handler_pt   handler;
    char                                     *hash;
    char                                     *password;
    size_t                                    password_len;
    ngx_uint_t                                dummy;
    int                                       rc;
} ngx_http_telehealth_password_ctx_t;


static void ngx_http_telehealth_password_thread(void *data, ngx_log_t *log);
static void ngx_http_telehealth_password_done(ngx_event_t *ev);
static void ngx_http_telehealth_password_disarm(void *data);


ngx_int_t
ngx_http_telehealth_password_verify(ngx_http_request_t *r, ngx_str_t *hash,
    ngx_str_t *password, ngx_http_telehealth_password_handler_pt handler)
{
    ngx_pool_t                          *pool;
    ngx_thread_task_t                   *task;
    ngx_pool_cleanup_t                  *cln;
    ngx_http_telehealth_main_conf_t     *mcf;
    ngx_http_telehealth_password_ctx_t  *ctx;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_ERROR;
    }

    pool = ngx_create_pool(1024, r->connection->log);
    if (pool == NULL) {
        return NGX_ERROR;
    }

    task = ngx_thread_task_alloc(pool,
                                 sizeof(ngx_http_telehealth_password_ctx_t));
    if (task == NULL) {
        goto failed;
    }

    ctx = task->ctx;
    ctx->pool = pool;
    ctx->request = r;
    ctx->handler = handler;

    if (hash == NULL) {
        hash = &mcf->dummy_hash;
        ctx->dummy = 1;
    }

    ctx->hash = ngx_pnalloc(pool, hash->len + 1);
    ctx->password = ngx_pnalloc(pool, password->len + 1);

    if (ctx->hash == NULL || ctx->password == NULL) {
        goto failed;
    }

    ngx_cpystrn((u_char *) ctx->hash, hash->data, hash->len + 1);
    ngx_memcpy(ctx->password, password->data, password->len);
    ctx->password[password->len] = '\0';
    ctx->password_len = password->len;

    task->handler = ngx_http_telehealth_password_thread;
    task->event.handler = ngx_http_telehealth_password_done;
    task->event.data = ctx;
    task->event.log = ngx_cycle->log;     /* may outlive the connection */

    if (ngx_thread_task_post(mcf->thread_pool, task) != NGX_OK) {
        /* the pool's queue is full: too many logins at once */
        OPENSSL_cleanse(ctx->password, ctx->password_len);
        ngx_destroy_pool(pool);
        return NGX_DECLINED;
    }

    cln->handler = ngx_http_telehealth_password_disarm;
    cln->data = ctx;
    ctx->cleanup = cln;

    return NGX_OK;

failed:

    ngx_destroy_pool(pool);

    return NGX_ERROR;
}


static void
ngx_http_telehealth_password_thread(void *data, ngx_log_t *log)
{
    ngx_http_telehealth_password_ctx_t  *ctx = data;

    ctx->rc = argon2id_verify(ctx->hash, ctx->password, ctx->password_len);
}


static void
ngx_http_telehealth_password_done(ngx_event_t *ev)
{
    ngx_int_t                                 rc;
    ngx_http_request_t                       *r;
    ngx_http_telehealth_password_ctx_t       *ctx;
    ngx_http_telehealth_password_handler_pt   handler;

    ctx = ev->data;
    r = ctx->request;
    handler = ctx->handler;

    if (ctx->rc == ARGON2_OK) {
        rc = ctx->dummy ? NGX_DECLINED : NGX_OK;

    } else if (ctx->rc == ARGON2_VERIFY_MISMATCH || ctx->dummy) {
        rc = NGX_DECLINED;

    } else {
        /* a stored hash libargon2 cannot read, e.g. not argon2id */
        ngx_log_error(NGX_LOG_ERR, ev->log, 0,
                      "telehealth: password hash not verifiable: %s",
                      argon2_error_message(ctx->rc));
        rc = NGX_DECLINED;
    }

    if (r != NULL) {
        ctx->cleanup->handler = NULL;
    }

    OPENSSL_cleanse(ctx->password, ctx->password_len);
    ngx_destroy_pool(ctx->pool);

    if (r != NULL) {
        handler(r, rc);
    }
}


static void
ngx_http_telehealth_password_disarm(void *data)
{
    ngx_http_telehealth_password_ctx_t  *ctx = data;

    ctx->request = NULL;
}


ngx_int_t
ngx_http_telehealth_password_dummy(ngx_conf_t *cf, ngx_str_t *hash)
{
    int            rc;
    size_t         len;
    unsigned char  salt[16], secret[32];

    if (RAND_bytes(salt, sizeof(salt)) != 1
        || RAND_bytes(secret, sizeof(secret)) != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "RAND_bytes() failed");
        return NGX_ERROR;
    }

    len = argon2_encodedlen(NGX_HTTP_TELEHEALTH_DUMMY_T,
                            NGX_HTTP_TELEHEALTH_DUMMY_M,
                            NGX_HTTP_TELEHEALTH_DUMMY_P,
                            sizeof(salt), 32, Argon2_id);

    hash->data = ngx_pnalloc(cf->pool, len);
    if (hash->data == NULL) {
        return NGX_ERROR;
    }

    rc = argon2id_hash_encoded(NGX_HTTP_TELEHEALTH_DUMMY_T,
                               NGX_HTTP_TELEHEALTH_DUMMY_M,
                               NGX_HTTP_TELEHEALTH_DUMMY_P,
                               secret, sizeof(secret), salt, sizeof(salt),
                               32, (char *) hash->data, len);

    OPENSSL_cleanse(secret, sizeof(secret));

    if (rc != ARGON2_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "argon2id_hash_encoded() failed: %s",
                           argon2_error_message(rc));
        return NGX_ERROR;
    }

    hash->len = ngx_strlen(hash->data);

    return NGX_OK;
}
