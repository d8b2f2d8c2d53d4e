/*
 * argon2id password verification and hashing on an nginx thread pool: each
 * takes tens of milliseconds of CPU and would stall every other request of
 * the worker if it ran on the event loop.
 */

#ifndef _NGX_HTTP_TELEHEALTH_PASSWORD_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_PASSWORD_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_module.h"


/* rc: NGX_OK password matches, NGX_DECLINED it does not, NGX_ERROR failed */
typedef void (*ngx_http_telehealth_password_handler_pt)(ngx_http_request_t *r,
    ngx_int_t                                                               rc);


/*
 * Verifies password against an encoded argon2id hash, or against the dummy
 * hash when hash is NULL (unknown accounts cost the same).  NGX_OK: the
 * handler will be called unless the request is freed first.  NGX_DECLINED:
 * too many checks pending (telehealth_password_max_pending) or the thread
 * pool's queue is full; the caller answers 503 at once.
 */
ngx_int_t ngx_http_telehealth_password_verify(ngx_http_request_t *r,
    ngx_str_t *hash, ngx_str_t *password,
    ngx_http_telehealth_password_handler_pt handler);

/*
 * Hashes a new password with argon2id into out (the request's pool).  The
 * handler gets NGX_OK, or NGX_ERROR.  Returns as the verification does.
 */
ngx_int_t ngx_http_telehealth_password_hash(ngx_http_request_t *r,
    ngx_str_t *password, ngx_str_t *out,
    ngx_http_telehealth_password_handler_pt handler);

/* an argon2id hash of a random secret, made once at configuration time */
ngx_int_t ngx_http_telehealth_password_dummy(ngx_conf_t *cf, ngx_str_t *hash);


#endif /* _NGX_HTTP_TELEHEALTH_PASSWORD_H_INCLUDED_ */
