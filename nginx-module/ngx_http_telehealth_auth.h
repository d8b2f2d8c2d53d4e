/*
 * Access tokens: password login, logout (revocation in Redis), the
 * authentication of every other request, and GET /me.
 */

#ifndef _NGX_HTTP_TELEHEALTH_AUTH_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_AUTH_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/* verifies the bearer token, fills ctx->caller, then calls next */
void ngx_http_telehealth_authenticate(ngx_http_request_t *r,
    ngx_http_telehealth_handler_pt                        next);

/* the caller from verified claims (sub, org, typ, jti, role, name, exp) */
ngx_int_t ngx_http_telehealth_caller(ngx_http_request_t *r, json_t *claims,
    ngx_http_telehealth_caller_t *caller);

/* ctx->caller came from elsewhere (a console ticket): revoked? then next */
void ngx_http_telehealth_authenticate_caller(ngx_http_request_t *r,
    ngx_http_telehealth_handler_pt                               next);

/* "staff", "patient" or "guest" (the token's "typ") */
const char *ngx_http_telehealth_caller_type(
    ngx_http_telehealth_caller_t *caller);

void ngx_http_telehealth_auth_login(ngx_http_request_t *r);
void ngx_http_telehealth_auth_logout(ngx_http_request_t *r);
void ngx_http_telehealth_auth_me(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_AUTH_H_INCLUDED_ */
