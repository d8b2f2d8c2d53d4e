/*
 * Request bodies (nginx-module/ngx_http_telehealth_api.c): the body as
 * nginx hands it over, in up to three buffers, read and parsed as the
 * handlers get it, and answered with problem+json when it is not a JSON
 * object.  A body taken must be an object; a refused one must have been
 * answered 400 or 413, once.  The fields the C handlers check themselves
 * (ids) go through the same checks.
 */

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_api.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                           cut[2], from, to;
    json_t                          *id;
    ngx_int_t                        rc;
    ngx_uint_t                       i;
    ngx_buf_t                       *b;
    ngx_chain_t                     *cl, **last;
    ngx_http_request_t              *r;
    ngx_http_telehealth_ctx_t       *ctx;
    ngx_http_telehealth_main_conf_t *mcf;

    static const char *ids[] = { "patient_id", "appointment_id", "id" };

    if (size < 2) {
        return 0;
    }

    r = fuzz_ngx_request();

    mcf = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_main_conf_t));
    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_telehealth_ctx_t));
    r->request_body = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));

    if (mcf == NULL || ctx == NULL || r->request_body == NULL) {
        abort();
    }

    mcf->max_body_size = 4096;
    ctx->mcf = mcf;

    /* nginx numbers the modules at start; here ours is the only one */
    ngx_http_telehealth_module.ctx_index = 0;
    ngx_http_set_ctx(r, ctx, ngx_http_telehealth_module);

    /* the first two bytes say where the buffers split */
    cut[0] = data[0] % (size - 1);
    cut[1] = cut[0] + data[1] % (size - 1 - cut[0] + 1);
    data += 2;
    size -= 2;

    last = &r->request_body->bufs;
    from = 0;

    for (i = 0; i < 3; i++) {
        to = (i < 2) ? ngx_min(cut[i], size) : size;

        cl = ngx_pcalloc(r->pool, sizeof(ngx_chain_t));
        b = ngx_pcalloc(r->pool, sizeof(ngx_buf_t));
        if (cl == NULL || b == NULL) {
            abort();
        }

        b->pos = fuzz_ngx_copy(r->pool, data + from, to - from);
        b->last = b->pos + (to - from);
        cl->buf = b;
        *last = cl;
        last = &cl->next;
        from = to;
    }

    rc = ngx_http_telehealth_read_body(r, ctx);

    if (rc == NGX_OK) {
        if (fuzz_ngx_status != 0
            || (ctx->body != NULL && !json_is_object(ctx->body))
            || (ctx->body == NULL && size != 0))
        {
            abort();
        }

        for (i = 0; ctx->body && i < sizeof(ids) / sizeof(ids[0]); i++) {
            id = json_object_get(ctx->body, ids[i]);
            if (json_is_string(id)) {
                (void) ngx_http_telehealth_is_uuid(json_string_value(id),
                    json_string_length(id));
            }
        }

    } else if (rc != NGX_DONE
               || (fuzz_ngx_status != NGX_HTTP_BAD_REQUEST
                   && fuzz_ngx_status != NGX_HTTP_REQUEST_ENTITY_TOO_LARGE))
    {
        abort();
    }

    ngx_destroy_pool(r->pool);

    return 0;
}
