/*
 * Operation figures: counters in shared memory across workers, the
 * Prometheus text of the location with telehealth_metrics, and the
 * schema version check (docs/operations.md, "Monitoring").
 */

#ifndef _NGX_HTTP_TELEHEALTH_METRICS_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_METRICS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "ngx_http_telehealth_module.h"


/* the shared zone of the counters, when the API or metrics are served */
ngx_int_t ngx_http_telehealth_metrics_zone(ngx_conf_t *cf,
    ngx_http_telehealth_main_conf_t                   *mcf);
/* counts API requests at the log phase */
ngx_int_t ngx_http_telehealth_metrics_postconfiguration(ngx_conf_t *cf);

ngx_int_t ngx_http_telehealth_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                            *mcf);
void ngx_http_telehealth_metrics_exit_process(void);

/* the content handler of a location with telehealth_metrics */
ngx_int_t ngx_http_telehealth_metrics_handler(ngx_http_request_t *r);

/*
 * The schema version: checked when a PostgreSQL connection is made.
 * mismatch() is NULL while the database's version is this module's (or
 * not known yet), else the detail of the 503 that names both.
 */
void ngx_http_telehealth_schema_check(ngx_log_t *log);
const char *ngx_http_telehealth_schema_mismatch(void);
/* the database's version as last read ("" when not known) */
const char *ngx_http_telehealth_schema_database(void);


#endif /* _NGX_HTTP_TELEHEALTH_METRICS_H_INCLUDED_ */
