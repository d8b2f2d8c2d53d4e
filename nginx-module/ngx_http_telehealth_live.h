/*
 * The live state of a session's room, from the members hash in Redis:
 * who is in and who waits, and who no longer qualifies after a change of
 * the access level.
 */

#ifndef _NGX_HTTP_TELEHEALTH_LIVE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_LIVE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/*
 * body: the answer of th_api('session_update') with "access_check"
 * {"room", "access", "staff": [ids]}; removes the members who no longer
 * qualify (access_changed) and answers 200 with "removed".  body is
 * borrowed.  Ends the request.
 */
void ngx_http_telehealth_live_access(ngx_http_request_t *r, json_t *body);

/*
 * body: the answer of th_api('session_update') with "room_update"
 * {"room", "session", "fields": [field, value, ...]}: writes the fields
 * into the room hash while it belongs to that session, then goes on with
 * "access_check" if there is one.  body is borrowed.  Ends the request.
 */
void ngx_http_telehealth_live_room_update(ngx_http_request_t *r, json_t *body);

/*
 * body: the answer of th_api('session_participants') with "members_of"
 * (a room or null); answers it with "participants" and "waiting".  body is
 * borrowed.  Ends the request.
 */
void ngx_http_telehealth_live_members(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);

/*
 * body: the answer of th_api('session_ban_lift') {"session_id",
 * "participant"}: the participant leaves the session's ban set in Redis,
 * which the plugin's join checks; answers 200 with body.  Ends the request.
 */
void ngx_http_telehealth_live_ban_lifted(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);

/*
 * The step of PATCH /sessions/{id}: with "room_update", that and then
 * "access_check" if there is one; with "access_check" only, that; else
 * the answer as it is.  Ends the request.
 */
void ngx_http_telehealth_live_updated(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);


#endif /* _NGX_HTTP_TELEHEALTH_LIVE_H_INCLUDED_ */
