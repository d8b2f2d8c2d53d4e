/*
 * Throttling of guessable endpoints (login, invite redeem, interpreter
 * decide) in Redis: per subject (account, link) and per client address,
 * exponential back-off after a number of failures, then a lock.  Keys hold
 * SHA-256 hashes only (common/th_names.h, TH_KEY_THROTTLE).
 */

#ifndef _NGX_HTTP_TELEHEALTH_THROTTLE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_THROTTLE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_api.h"


typedef struct ngx_http_telehealth_throttle_s ngx_http_telehealth_throttle_t;

/*
 * rc: NGX_OK, the request may go on; NGX_BUSY, refused: the throttle has
 * set retry_after and the caller answers (throttle_refuse()); NGX_ERROR,
 * Redis failed (the caller answers 503).
 */
typedef void (
    *ngx_http_telehealth_throttle_pt)(ngx_http_request_t *r, ngx_int_t rc);


struct ngx_http_telehealth_throttle_s {
    char                           *subject_key; /* NULL: none */
    char                           *addr_key;
    ngx_uint_t                      fail_status;  /* counts a failure */
    ngx_uint_t                      reset_status; /* clears subject */
    time_t                          retry_after;  /* s, when refused */
    ngx_http_telehealth_throttle_pt handler;
    unsigned                        recorded : 1;
};


/*
 * Checks the subject (may be NULL: only the address) and the client
 * address of scopes subject_scope and addr_scope, and arms the record of
 * the request's outcome: when the request finalizes with fail_status the
 * failure counts, with reset_status the subject's failures are forgotten.
 */
ngx_int_t ngx_http_telehealth_throttle_check(ngx_http_request_t *r,
    const char *subject_scope, ngx_str_t *subject, const char *addr_scope,
    ngx_uint_t fail_status, ngx_uint_t reset_status,
    ngx_http_telehealth_throttle_pt handler);

/* called by ngx_http_telehealth_finalize(): records the outcome */
void ngx_http_telehealth_throttle_outcome(ngx_http_request_t *r);

/* 429 too-many-attempts with Retry-After */
void ngx_http_telehealth_throttle_refuse(ngx_http_request_t *r);

/* the route handlers of POST /invites/redeem and .../decide */
void ngx_http_telehealth_throttle_redeem(ngx_http_request_t *r);
/* POST /sessions/{id}/invites and .../resend: telehealth_invite_limit */
void ngx_http_telehealth_throttle_invites(ngx_http_request_t *r);
void ngx_http_telehealth_throttle_decide(ngx_http_request_t *r);


#endif /* _NGX_HTTP_TELEHEALTH_THROTTLE_H_INCLUDED_ */
