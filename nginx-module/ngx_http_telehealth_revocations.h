/*
 * Revoked access tokens in shared memory, kept current from Redis pub/sub:
 * a token is checked without a network round trip (docs/redis.md,
 * "Revocations").
 */

#ifndef _NGX_HTTP_TELEHEALTH_REVOCATIONS_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_REVOCATIONS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


/* the feed is taken for down when the worker's own heartbeat, published
 * every BEAT ms, has not come back for LATE ms: the bound on how late a
 * revocation can apply on any node */
#define NGX_HTTP_TELEHEALTH_REVOCATIONS_BEAT 1000
#define NGX_HTTP_TELEHEALTH_REVOCATIONS_LATE 3000


/* the shared memory zone; from init_main_conf when Redis is configured */
char *ngx_http_telehealth_revocations_conf(ngx_conf_t *cf);

/* the first worker subscribes, syncs and beats */
ngx_int_t ngx_http_telehealth_revocations_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                                *mcf);

/*
 * NGX_OK: neither the token (jti) nor its holder's tokens issued at or
 * before iat are revoked; NGX_DECLINED: revoked; NGX_BUSY: the feed is down
 * or not synced yet, nothing can be told (fail closed).
 */
ngx_int_t ngx_http_telehealth_revocations_check(ngx_str_t *jti,
    ngx_str_t *person, time_t iat);

/* what this node revoked itself, at once, before Redis echoes it */
void ngx_http_telehealth_revocations_token(ngx_str_t *jti, time_t expires);
void ngx_http_telehealth_revocations_person(ngx_str_t *person, time_t nbf,
    time_t expires);


#endif /* _NGX_HTTP_TELEHEALTH_REVOCATIONS_H_INCLUDED_ */
