/*
 * Cutting a person off at once: when a staff member is deactivated or
 * their password changes, every access token they hold is refused (a
 * per-person "not before" in Redis, checked against the token's "iat" by
 * ngx_http_telehealth_authenticate()), and they are removed from the live
 * rooms they are in (the room command "remove").
 */

#ifndef _NGX_HTTP_TELEHEALTH_REVOKE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_REVOKE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/*
 * type "staff" or "patient", id the person's uuid (NUL-terminated).  Calls
 * next once done; when PostgreSQL or Redis fails it answers 503 itself.
 */
void ngx_http_telehealth_revoke_person(ngx_http_request_t *r, const char *type,
    const char *id, ngx_http_telehealth_handler_pt next);


#endif /* _NGX_HTTP_TELEHEALTH_REVOKE_H_INCLUDED_ */
