/*
 * Room commands of chairs (close, remove, mute, set_role): PostgreSQL has
 * checked the chair and built the command (sql/functions/sessions.sql);
 * this publishes it to <prefix>cmd:<node> of the node hosting the room.
 */

#ifndef _NGX_HTTP_TELEHEALTH_COMMAND_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_COMMAND_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


/*
 * answer: {"room", "command"} from th_api(), answered 202; with "reply"
 * (an object) that is answered 200 with "command_id" added.  Ends the
 * request.
 */
void ngx_http_telehealth_command_publish(ngx_http_request_t *r, json_t *answer);

/*
 * The step of a room command's route: publishes the answer's "command";
 * an answer without one is answered as it is.  Ends the request.
 */
void ngx_http_telehealth_command_then(ngx_http_request_t *r, ngx_uint_t status,
    json_t *body);


#endif /* _NGX_HTTP_TELEHEALTH_COMMAND_H_INCLUDED_ */
