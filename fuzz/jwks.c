/*
 * The identity provider's key set (nginx-module/ngx_http_telehealth_idp.c):
 * a JWKS document, each key through the same conversion as the file
 * telehealth_idp_jwks names (RSA and EC P-256 keys from their JWK
 * members, into cjose JWKs).  A key taken has a kid, an algorithm and a
 * key of that algorithm's type and size.
 */

#include "fuzz_ngx.h"

#include "../nginx-module/ngx_http_telehealth_idp.c"


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t                         i;
    json_t                        *jwks, *keys, *jwk;
    ngx_conf_t                     cf;
    ngx_pool_t                    *pool;
    ngx_http_telehealth_idp_key_t *key;
    ngx_http_telehealth_idp_conf_t idp;

    jwks = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
    keys = json_object_get(jwks, "keys");

    if (!json_is_array(keys)) {
        json_decref(jwks);
        return 0;
    }

    pool = ngx_create_pool(4096, fuzz_ngx_log());

    ngx_memzero(&cf, sizeof(ngx_conf_t));
    cf.pool = pool;
    cf.temp_pool = pool;
    cf.log = pool->log;

    ngx_memzero(&idp, sizeof(idp));
    idp.keys = ngx_array_create(pool, json_array_size(keys) + 1,
        sizeof(ngx_http_telehealth_idp_key_t));
    if (idp.keys == NULL) {
        abort();
    }

    json_array_foreach (keys, i, jwk) {
        if (ngx_http_telehealth_idp_add_key(&cf, &idp, jwk, i) != NGX_OK) {
            break;
        }
    }

    key = idp.keys->elts;

    for (i = 0; i < idp.keys->nelts; i++) {
        if (key[i].kid.len == 0 || key[i].jwk == NULL
            || ngx_http_telehealth_idp_key_usable(key[i].jwk, key[i].alg)
                   != NGX_OK)
        {
            abort();
        }
    }

    json_decref(jwks);
    ngx_destroy_pool(pool);

    return 0;
}
