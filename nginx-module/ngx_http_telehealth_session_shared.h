/*
 * What the session files share (not part of the module's interface):
 * the state of a start and of a join, the room script that opens a room
 * (a start's, and a scheduled session's on its opener's first join), its
 * release, and the check of a room a credential is issued for.
 */

#ifndef _NGX_HTTP_TELEHEALTH_SESSION_SHARED_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_SESSION_SHARED_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"
#include "ngx_http_telehealth_pg.h"
#include "ngx_http_telehealth_redis.h"


#define NGX_HTTP_TELEHEALTH_IN_SESSION \
    "The participant is already in a video session."


typedef struct {
    ngx_str_t   session;
    ngx_str_t   org; /* the caller's, unless opened by a link */
    ngx_str_t   patient;
    ngx_str_t   kind;
    ngx_str_t   body; /* the request body, for the plan */
    ngx_str_t   plan; /* of th_session_plan() */
    ngx_str_t   room;
    ngx_log_t  *log;
    unsigned    locking : 1; /* the room script is under way */
    char       *lock_key;
    char       *room_key;
    u_char      created_at[NGX_TIME_T_LEN + 1];
    u_char      now_ms[NGX_INT64_LEN + 1];
    json_t     *answer; /* the new session, while invites go out */
    u_char      sms_delay[NGX_INT_T_LEN + 1];
    const char *params[10];
} ngx_http_telehealth_start_t;


typedef struct {
    ngx_str_t                    room;
    ngx_str_t                    kind;
    ngx_str_t                    role;
    ngx_str_t                    name;
    ngx_str_t                    session; /* NUL-terminated, as the rest */
    ngx_str_t                    org;
    ngx_str_t                    sub;
    ngx_str_t                    node;     /* placement: where to join */
    ngx_str_t                    url;      /* that node's public URL */
    char                         hash[65]; /* of an invite link's token */
    const char                  *params[6];
    ngx_uint_t                   retried;     /* read the session again once */
    ngx_uint_t                   racing;      /* the room holding the lock */
    ngx_uint_t                   unlisted;    /* staff not on the list */
    ngx_uint_t                   redeem;      /* by an invite link */
    ngx_uint_t                   preadmitted; /* a group's registrant */
    ngx_http_telehealth_start_t *open;        /* opening a scheduled room */
} ngx_http_telehealth_join_t;


/* ngx_http_telehealth_session.c */
void ngx_http_telehealth_room_open(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, const char *created_by, json_t *fields,
    void (*handler)(void *data, redisReply *reply));
ngx_int_t ngx_http_telehealth_room_taken(ngx_http_request_t *r,
    ngx_http_telehealth_start_t *st, redisReply *reply);
void ngx_http_telehealth_start_release(ngx_http_telehealth_start_t *st);

/* ngx_http_telehealth_session_read.c */
void ngx_http_telehealth_session_query(ngx_http_request_t *r, const char *sql,
    const char **params, ngx_uint_t with_id,
    ngx_http_telehealth_pg_handler_pt handler);

/* ngx_http_telehealth_join.c */
void ngx_http_telehealth_join_check_room(ngx_http_request_t *r,
    ngx_http_telehealth_join_t                              *jn);
/* the room script's answer when a scheduled session's room opens */
void ngx_http_telehealth_join_locked(void *data, redisReply *reply);

/* ngx_http_telehealth_redeem.c: reads an invite link's session again */
void ngx_http_telehealth_redeem_query(ngx_http_request_t *r,
    ngx_http_telehealth_join_t                           *jn);


#endif /* _NGX_HTTP_TELEHEALTH_SESSION_SHARED_H_INCLUDED_ */
