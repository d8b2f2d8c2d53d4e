/*
 * argon2id verification on the thread pool of telehealth_thread_pool.
 *
 * The task lives in a pool of its own, not in the request's: a client that
 * disconnects frees the request while the thread may still be hashing.
 * The request's pool cleanup only disarms the completion.
 *
 * At most telehealth_password_max_pending tasks of a worker are queued or
 * running at once: beyond that a request is answered 503 at once rather
 * than queued behind work that a flood of logins made.
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
#define NGX_HTTP_TELEHEALTH_DUMMY_T 2
#define NGX_HTTP_TELEHEALTH_DUMMY_M 65536
#define NGX_HTTP_TELEHEALTH_DUMMY_P 1

/* new passwords (staff and patient accounts made through the API) */
#define NGX_HTTP_TELEHEALTH_HASH_LEN 32
#define NGX_HTTP_TELEHEALTH_SALT_LEN 16


typedef struct {
    ngx_pool_t                             *pool;
    ngx_http_request_t                     *request;
    ngx_pool_cleanup_t                     *cleanup;
    ngx_http_telehealth_password_handler_pt handler;
    char                                   *hash;
    size_t                                  hash_size;
    char                                   *password;
    size_t                                  password_len;
    ngx_str_t                              *out; /* hashing: result */
    ngx_uint_t                              dummy;
    int                                     rc;
} ngx_http_telehealth_password_ctx_t;


/* tasks of this worker queued or running */
static ngx_uint_t ngx_http_telehealth_password_pending;


static ngx_http_telehealth_password_ctx_t *
ngx_http_telehealth_password_task(ngx_http_request_t *r, ngx_str_t *password,
    size_t hash_size, ngx_http_telehealth_password_handler_pt handler,
    ngx_thread_task_t **t);
static ngx_int_t ngx_http_telehealth_password_post(ngx_http_request_t *r,
    ngx_thread_task_t                                                 *task);
static void ngx_http_telehealth_password_thread(void *data, ngx_log_t *log);
static void ngx_http_telehealth_hash_thread(void *data, ngx_log_t *log);
static void ngx_http_telehealth_password_done(ngx_event_t *ev);
static void ngx_http_telehealth_password_disarm(void *data);


ngx_int_t
ngx_http_telehealth_password_verify(ngx_http_request_t *r, ngx_str_t *hash,
    ngx_str_t *password, ngx_http_telehealth_password_handler_pt handler)
{
    ngx_thread_task_t                  *task;
    ngx_http_telehealth_main_conf_t    *mcf;
    ngx_http_telehealth_password_ctx_t *ctx;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);

    if (hash == NULL) {
        hash = &mcf->dummy_hash;
    }

    ctx = ngx_http_telehealth_password_task(r, password, hash->len + 1, handler,
        &task);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->dummy = (hash == &mcf->dummy_hash);
    ngx_cpystrn((u_char *) ctx->hash, hash->data, hash->len + 1);

    task->handler = ngx_http_telehealth_password_thread;

    return ngx_http_telehealth_password_post(r, task);
}


ngx_int_t
ngx_http_telehealth_password_hash(ngx_http_request_t *r, ngx_str_t *password,
    ngx_str_t *out, ngx_http_telehealth_password_handler_pt handler)
{
    ngx_thread_task_t                  *task;
    ngx_http_telehealth_password_ctx_t *ctx;

    ctx = ngx_http_telehealth_password_task(r, password,
        argon2_encodedlen(NGX_HTTP_TELEHEALTH_DUMMY_T,
            NGX_HTTP_TELEHEALTH_DUMMY_M, NGX_HTTP_TELEHEALTH_DUMMY_P,
            NGX_HTTP_TELEHEALTH_SALT_LEN, NGX_HTTP_TELEHEALTH_HASH_LEN,
            Argon2_id),
        handler, &task);
    if (ctx == NULL) {
        return NGX_ERROR;
    }

    ctx->out = out;
    task->handler = ngx_http_telehealth_hash_thread;

    return ngx_http_telehealth_password_post(r, task);
}


/* a task in a pool of its own, holding a copy of the password */

static ngx_http_telehealth_password_ctx_t *
ngx_http_telehealth_password_task(ngx_http_request_t *r, ngx_str_t *password,
    size_t hash_size, ngx_http_telehealth_password_handler_pt handler,
    ngx_thread_task_t **t)
{
    ngx_pool_t                         *pool;
    ngx_thread_task_t                  *task;
    ngx_http_telehealth_password_ctx_t *ctx;

    pool = ngx_create_pool(1024, r->connection->log);
    if (pool == NULL) {
        return NULL;
    }

    task =
        ngx_thread_task_alloc(pool, sizeof(ngx_http_telehealth_password_ctx_t));
    if (task == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ctx = task->ctx;
    ctx->pool = pool;
    ctx->request = r;
    ctx->handler = handler;
    ctx->hash_size = hash_size;

    ctx->hash = ngx_pcalloc(pool, hash_size);
    ctx->password = ngx_pnalloc(pool, password->len + 1);

    if (ctx->hash == NULL || ctx->password == NULL) {
        ngx_destroy_pool(pool);
        return NULL;
    }

    ngx_memcpy(ctx->password, password->data, password->len);
    ctx->password[password->len] = '\0';
    ctx->password_len = password->len;

    task->event.handler = ngx_http_telehealth_password_done;
    task->event.data = ctx;
    task->event.log = ngx_cycle->log; /* may outlive the connection */

    *t = task;

    return ctx;
}


static ngx_int_t
ngx_http_telehealth_password_post(ngx_http_request_t *r,
    ngx_thread_task_t                                *task)
{
    ngx_pool_cleanup_t                 *cln;
    ngx_http_telehealth_main_conf_t    *mcf;
    ngx_http_telehealth_password_ctx_t *ctx;

    mcf = ngx_http_get_module_main_conf(r, ngx_http_telehealth_module);
    ctx = task->ctx;

    if (ngx_http_telehealth_password_pending >= mcf->throttle.password_pending)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
            "telehealth: %ui password checks pending, "
            "request shed",
            ngx_http_telehealth_password_pending);
        OPENSSL_cleanse(ctx->password, ctx->password_len);
        ngx_destroy_pool(ctx->pool);
        return NGX_DECLINED;
    }

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        OPENSSL_cleanse(ctx->password, ctx->password_len);
        ngx_destroy_pool(ctx->pool);
        return NGX_ERROR;
    }

    if (ngx_thread_task_post(mcf->thread_pool, task) != NGX_OK) {
        /* the pool's queue is full: too many logins at once */
        OPENSSL_cleanse(ctx->password, ctx->password_len);
        ngx_destroy_pool(ctx->pool);
        return NGX_DECLINED;
    }

    cln->handler = ngx_http_telehealth_password_disarm;
    cln->data = ctx;
    ctx->cleanup = cln;

    ngx_http_telehealth_password_pending++;

    return NGX_OK;
}


static void
ngx_http_telehealth_password_thread(void *data, ngx_log_t *log)
{
    ngx_http_telehealth_password_ctx_t *ctx = data;

    ctx->rc = argon2id_verify(ctx->hash, ctx->password, ctx->password_len);
}


static void
ngx_http_telehealth_hash_thread(void *data, ngx_log_t *log)
{
    unsigned char                       salt[NGX_HTTP_TELEHEALTH_SALT_LEN];
    ngx_http_telehealth_password_ctx_t *ctx = data;

    if (RAND_bytes(salt, sizeof(salt)) != 1) {
        ctx->rc = ARGON2_MISSING_ARGS;
        return;
    }

    ctx->rc = argon2id_hash_encoded(NGX_HTTP_TELEHEALTH_DUMMY_T,
        NGX_HTTP_TELEHEALTH_DUMMY_M, NGX_HTTP_TELEHEALTH_DUMMY_P, ctx->password,
        ctx->password_len, salt, sizeof(salt), NGX_HTTP_TELEHEALTH_HASH_LEN,
        ctx->hash, ctx->hash_size);
}


static void
ngx_http_telehealth_password_done(ngx_event_t *ev)
{
    ngx_int_t                               rc;
    ngx_http_request_t                     *r;
    ngx_http_telehealth_password_ctx_t     *ctx;
    ngx_http_telehealth_password_handler_pt handler;

    ctx = ev->data;
    r = ctx->request;
    handler = ctx->handler;

    ngx_http_telehealth_password_pending--;

    if (ctx->out != NULL) {
        rc = NGX_ERROR;

        if (ctx->rc != ARGON2_OK) {
            ngx_log_error(NGX_LOG_ALERT, ev->log, 0,
                "telehealth: argon2id_hash_encoded() failed: %s",
                argon2_error_message(ctx->rc));

        } else if (r != NULL) {
            ctx->out->len = ngx_strlen(ctx->hash);
            ctx->out->data = ngx_pnalloc(r->pool, ctx->out->len + 1);

            if (ctx->out->data != NULL) {
                ngx_memcpy(ctx->out->data, ctx->hash, ctx->out->len + 1);
                rc = NGX_OK;
            }
        }

    } else if (ctx->rc == ARGON2_OK) {
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
    ngx_http_telehealth_password_ctx_t *ctx = data;

    ctx->request = NULL;
}


ngx_int_t
ngx_http_telehealth_password_dummy(ngx_conf_t *cf, ngx_str_t *hash)
{
    int           rc;
    size_t        len;
    unsigned char salt[16], secret[32];

    if (RAND_bytes(salt, sizeof(salt)) != 1
        || RAND_bytes(secret, sizeof(secret)) != 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "RAND_bytes() failed");
        return NGX_ERROR;
    }

    len = argon2_encodedlen(NGX_HTTP_TELEHEALTH_DUMMY_T,
        NGX_HTTP_TELEHEALTH_DUMMY_M, NGX_HTTP_TELEHEALTH_DUMMY_P, sizeof(salt),
        32, Argon2_id);

    hash->data = ngx_pnalloc(cf->pool, len);
    if (hash->data == NULL) {
        return NGX_ERROR;
    }

    rc = argon2id_hash_encoded(NGX_HTTP_TELEHEALTH_DUMMY_T,
        NGX_HTTP_TELEHEALTH_DUMMY_M, NGX_HTTP_TELEHEALTH_DUMMY_P, secret,
        sizeof(secret), salt, sizeof(salt), 32, (char *) hash->data, len);

    OPENSSL_cleanse(secret, sizeof(secret));

    if (rc != ARGON2_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
            "argon2id_hash_encoded() failed: %s", argon2_error_message(rc));
        return NGX_ERROR;
    }

    hash->len = ngx_strlen(hash->data);

    return NGX_OK;
}
