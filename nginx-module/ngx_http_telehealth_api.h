/*
 * The REST API: routing, request bodies, JSON and problem+json answers.
 *
 * Every route handler is called once the body has been read (and, for
 * routes that need it, once the caller is authenticated) and must end the
 * request exactly once with ngx_http_telehealth_finalize().
 */

#ifndef _NGX_HTTP_TELEHEALTH_API_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_API_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_module.h"
#include "ngx_http_telehealth_pg.h"


typedef void (*ngx_http_telehealth_handler_pt)(ngx_http_request_t *r);

/*
 * The step after PostgreSQL answered a route 2xx (th_api), when the route
 * names one: it gets the answer's status and body (borrowed), decides
 * from them what to do, and ends the request.
 */
typedef void (*ngx_http_telehealth_then_pt)(ngx_http_request_t *r,
    ngx_uint_t status, json_t *body);


typedef enum {
    NGX_HTTP_TELEHEALTH_INVALID_REQUEST = 0,
    NGX_HTTP_TELEHEALTH_UNAUTHORIZED,
    NGX_HTTP_TELEHEALTH_INVALID_CREDENTIALS,
    NGX_HTTP_TELEHEALTH_FORBIDDEN,
    NGX_HTTP_TELEHEALTH_NOT_FOUND,
    NGX_HTTP_TELEHEALTH_METHOD_NOT_ALLOWED,
    NGX_HTTP_TELEHEALTH_PATIENT_IN_SESSION,
    NGX_HTTP_TELEHEALTH_ROOM_NOT_OPEN,
    NGX_HTTP_TELEHEALTH_BANNED,
    NGX_HTTP_TELEHEALTH_CONFLICT,
    NGX_HTTP_TELEHEALTH_PRECONDITION_FAILED,
    NGX_HTTP_TELEHEALTH_PAYLOAD_TOO_LARGE,
    NGX_HTTP_TELEHEALTH_VALIDATION,
    NGX_HTTP_TELEHEALTH_INVITE_NOT_FOUND,
    NGX_HTTP_TELEHEALTH_INVITE_USED,
    NGX_HTTP_TELEHEALTH_INVITE_EXPIRED,
    NGX_HTTP_TELEHEALTH_NO_EMAIL,
    NGX_HTTP_TELEHEALTH_NO_MOBILE,
    NGX_HTTP_TELEHEALTH_NOT_SMS_CAPABLE,
    NGX_HTTP_TELEHEALTH_NO_WHATSAPP,
    NGX_HTTP_TELEHEALTH_SESSION_IN_PROGRESS,
    NGX_HTTP_TELEHEALTH_THIRD_PARTIES_AT_CREATION,
    NGX_HTTP_TELEHEALTH_NO_INTERPRETER,
    NGX_HTTP_TELEHEALTH_REQUEST_ANSWERED,
    NGX_HTTP_TELEHEALTH_CLOCK_IN_REQUIRED,
    NGX_HTTP_TELEHEALTH_VIDEO_SESSION_ACTIVE,
    NGX_HTTP_TELEHEALTH_VISIT_OVER,
    NGX_HTTP_TELEHEALTH_NO_VIDEO_CONSENT,
    NGX_HTTP_TELEHEALTH_UNAVAILABLE,
    NGX_HTTP_TELEHEALTH_TOO_MANY_ATTEMPTS,
    NGX_HTTP_TELEHEALTH_RATE_LIMITED,
    NGX_HTTP_TELEHEALTH_UNSUPPORTED_MEDIA_TYPE,
    NGX_HTTP_TELEHEALTH_MALWARE,
    NGX_HTTP_TELEHEALTH_SCHEMA_MISMATCH,
    NGX_HTTP_TELEHEALTH_INTERNAL
} ngx_http_telehealth_problem_e;


/* who is calling, from a verified access token; strings NUL-terminated */
typedef struct {
    ngx_str_t id;
    ngx_str_t org;
    ngx_str_t role; /* empty for patients */
    ngx_str_t name;
    ngx_str_t jti;
    ngx_str_t email; /* empty: not in the token */
    time_t    iat;   /* 0: none */
    time_t    exp;
    unsigned  staff : 1;
    unsigned  guest : 1; /* a redeemed link's */
    unsigned  own : 1;   /* one of our tokens */
} ngx_http_telehealth_caller_t;


typedef struct {
    ngx_http_telehealth_main_conf_t       *mcf;
    ngx_str_t                              base; /* the location's prefix */
    ngx_str_t                              path; /* below the prefix */
    ngx_str_t                              id;   /* {id}, NUL-terminated */
    ngx_str_t                              id2;  /* a second {id}, too */
    const char                            *op;   /* th_api() operation */
    ngx_http_telehealth_then_pt            then; /* after th_api(op) */
    json_t                                *body; /* NULL without a body */
    ngx_http_telehealth_caller_t           caller;
    ngx_http_telehealth_handler_pt         next; /* after authentication */
    ngx_http_telehealth_pg_req_t          *pg;
    void                                  *data;     /* the route's own state */
    struct ngx_http_telehealth_throttle_s *throttle; /* NULL: none */
    unsigned   guests : 1; /* the route takes guests */
    ngx_uint_t route;      /* index + 1; 0: none */
} ngx_http_telehealth_ctx_t;


ngx_int_t ngx_http_telehealth_api_handler(ngx_http_request_t *r);

/* the route table, for the figures of each (metrics.c) */
ngx_uint_t ngx_http_telehealth_routes_count(void);
void ngx_http_telehealth_route_name(ngx_uint_t i, ngx_uint_t *method,
    ngx_str_t **path);
/* GET /health (metrics.c) */
void ngx_http_telehealth_health(ngx_http_request_t *r);

/* sends json (the reference is stolen) with the status */
ngx_int_t ngx_http_telehealth_send_json(ngx_http_request_t *r,
    ngx_uint_t status, json_t *json);
/* a JSON text as it is (PostgreSQL's), copied */
ngx_int_t ngx_http_telehealth_send_json_text(ngx_http_request_t *r,
    ngx_uint_t status, u_char *text, size_t len);
ngx_int_t ngx_http_telehealth_send_status(ngx_http_request_t *r,
    ngx_uint_t                                                status);
ngx_int_t ngx_http_telehealth_send_problem(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);
ngx_int_t ngx_http_telehealth_add_header(ngx_http_request_t *r, const char *key,
    u_char *value, size_t len);

/* ends the request: the only way a route handler finishes */
void ngx_http_telehealth_finalize(ngx_http_request_t *r, ngx_int_t rc);
void ngx_http_telehealth_fail(ngx_http_request_t *r,
    ngx_http_telehealth_problem_e problem, const char *detail);

/* the problem whose type ends in name ("not-found"), or INTERNAL */
ngx_http_telehealth_problem_e ngx_http_telehealth_problem_named(
    const char *name);

/* the HTTP status of a problem */
ngx_uint_t ngx_http_telehealth_problem_status(
    ngx_http_telehealth_problem_e problem);

/* a Location header: telehealth_public_url + the API's prefix + path */
ngx_int_t ngx_http_telehealth_set_location(ngx_http_request_t *r, u_char *path,
    size_t len);

/* answers a PostgreSQL request that did not succeed: 503 or 500 */
void ngx_http_telehealth_fail_pg(ngx_http_request_t *r,
    ngx_http_telehealth_pg_req_t                    *req);

/* json_decref() when the pool goes; returns json or NULL */
json_t *ngx_http_telehealth_json_track(ngx_pool_t *pool, json_t *json);

/* the client's address as a NUL-terminated string (for the audit log) */
char *ngx_http_telehealth_client_addr(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_API_H_INCLUDED_ */
