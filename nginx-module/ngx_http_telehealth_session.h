/*
 * Sessions: starting a video call (access check, the patient's one-room
 * lock and the room in Redis, the records in PostgreSQL), listing and
 * reading sessions, and issuing join credentials for the room.
 */

#ifndef _NGX_HTTP_TELEHEALTH_SESSION_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_SESSION_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


void ngx_http_telehealth_session_create(ngx_http_request_t *r);

/* POST /appointments/{id}/session, after th_api's "session_request" */
void ngx_http_telehealth_session_from_appointment(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
/* GET /sessions, after th_api: a patient's page keeps the open rooms */
void ngx_http_telehealth_session_list_open(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);
void ngx_http_telehealth_session_get(ngx_http_request_t *r);
void ngx_http_telehealth_session_join(ngx_http_request_t *r);

/* POST /invites/redeem: a guest's join credential for an invite link */
void ngx_http_telehealth_invite_redeem(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_SESSION_H_INCLUDED_ */
