/*
 * The API router (nginx-module/ngx_http_telehealth_api.c): a method and a
 * path below the API's location, matched against the route table.  A
 * capture must lie inside the path and hold no "/"; the Allow list of a
 * 405 must name only methods.
 */

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_api.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ngx_str_t                          path, id, id2, allow;
    ngx_http_request_t                *r;
    const ngx_http_telehealth_route_t *route;

    static const ngx_uint_t methods[] = { NGX_HTTP_GET, NGX_HTTP_HEAD,
        NGX_HTTP_POST, NGX_HTTP_PATCH, NGX_HTTP_DELETE, NGX_HTTP_PUT,
        NGX_HTTP_OPTIONS };

    if (size < 1) {
        return 0;
    }

    r = fuzz_ngx_request();
    r->method = methods[data[0] % (sizeof(methods) / sizeof(methods[0]))];

    path.len = size - 1;
    path.data = fuzz_ngx_copy(r->pool, data + 1, size - 1);

    ngx_str_null(&id);
    ngx_str_null(&id2);

    route = ngx_http_telehealth_route(r, &path, &id, &id2, &allow);

    if (route != NULL) {
        if ((id.len
                && (id.data < path.data
                    || id.data + id.len > path.data + path.len
                    || memchr(id.data, '/', id.len) != NULL))
            || (id2.len
                && (id2.data < path.data
                    || id2.data + id2.len > path.data + path.len
                    || memchr(id2.data, '/', id2.len) != NULL)))
        {
            abort();
        }

        if (route->handler == NULL) {
            abort();
        }
    }

    if (allow.len
        && (allow.len > sizeof("GET, HEAD, POST, PATCH, DELETE") - 1
            || route != NULL))
    {
        abort();
    }

    ngx_destroy_pool(r->pool);

    return 0;
}
