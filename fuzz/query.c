/*
 * The query-string parser of the records routes
 * (nginx-module/ngx_http_telehealth_records.c): ?a=1&b=x%20y into a JSON
 * object of strings, refusing %00, invalid UTF-8 and too many arguments.
 */

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_records.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t             *query, *v;
    ngx_int_t           rc;
    const char         *key;
    ngx_http_request_t *r;

    r = fuzz_ngx_request();

    r->args.len = size;
    r->args.data = fuzz_ngx_copy(r->pool, data, size);

    query = json_object();
    if (query == NULL) {
        abort();
    }

    rc = ngx_http_telehealth_records_query(r, query);

    if (rc != NGX_OK && rc != NGX_DECLINED) {
        abort();
    }

    if (rc == NGX_OK) {
        if (json_object_size(query) > NGX_HTTP_TELEHEALTH_MAX_ARGS) {
            abort();
        }

        json_object_foreach (query, key, v) {
            if (!json_is_string(v)
                || strlen(json_string_value(v)) != json_string_length(v))
            {
                abort(); /* a NUL inside a value */
            }
        }
    }

    json_decref(query);
    ngx_destroy_pool(r->pool);

    return 0;
}
