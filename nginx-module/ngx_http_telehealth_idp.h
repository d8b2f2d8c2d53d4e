/*
 * Tokens of the hospital's identity provider: RS256 and ES256 JWTs
 * verified with the keys of a JWKS file (telehealth_idp_jwks) and mapped
 * to a staff account.
 */

#ifndef _NGX_HTTP_TELEHEALTH_IDP_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_IDP_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/*
 * The telehealth_idp_* directives' defaults and checks, and the JWKS file
 * read and converted; NGX_CONF_OK or NGX_CONF_ERROR
 */
char *ngx_http_telehealth_idp_init_conf(ngx_conf_t *cf,
    ngx_http_telehealth_idp_conf_t                 *idp);

/*
 * Verifies an identity-provider token and looks its staff member up:
 * NGX_DECLINED when the token is not one (answer 401), NGX_AGAIN when the
 * lookup is under way; done(r) then follows with ctx->caller filled, or
 * the request has been answered.
 */
ngx_int_t ngx_http_telehealth_idp_authenticate(ngx_http_request_t *r,
    ngx_str_t *token, ngx_http_telehealth_handler_pt done);


#endif /* _NGX_HTTP_TELEHEALTH_IDP_H_INCLUDED_ */
