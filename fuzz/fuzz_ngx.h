/*
 * What the nginx-side targets share: a log and a pool from fuzz_ngx.c,
 * and a request with just the fields the parsers read.
 */

#ifndef FUZZ_NGX_H
#define FUZZ_NGX_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>


ngx_log_t *fuzz_ngx_log(void);

/* the status of the last answer, or of the last finalize without one */
extern ngx_uint_t fuzz_ngx_status;


static ngx_http_request_t *
fuzz_ngx_request(void)
{
    ngx_pool_t         *pool;
    ngx_http_request_t *r;

    pool = ngx_create_pool(4096, fuzz_ngx_log());
    if (pool == NULL) {
        abort();
    }

    r = ngx_pcalloc(pool, sizeof(ngx_http_request_t));
    if (r == NULL) {
        abort();
    }

    r->pool = pool;
    r->method = NGX_HTTP_GET;
    r->main = r;

    r->connection = ngx_pcalloc(pool, sizeof(ngx_connection_t));
    r->ctx = ngx_pcalloc(pool, sizeof(void *) * 256);

    if (r->connection == NULL || r->ctx == NULL
        || ngx_list_init(&r->headers_out.headers, pool, 4,
               sizeof(ngx_table_elt_t))
               != NGX_OK)
    {
        abort();
    }

    r->connection->log = fuzz_ngx_log();
    r->connection->pool = pool;
    fuzz_ngx_status = 0;

    return r;
}


/* a NUL-ended copy of data in the pool */

static u_char *
fuzz_ngx_copy(ngx_pool_t *pool, const uint8_t *data, size_t size)
{
    u_char *p;

    p = ngx_pnalloc(pool, size + 1);
    if (p == NULL) {
        abort();
    }

    memcpy(p, data, size);
    p[size] = '\0';

    return p;
}


#endif /* FUZZ_NGX_H */
