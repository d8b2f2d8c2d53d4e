/*
 * The reconciler: repairs any disagreement between PostgreSQL (whether a
 * session is open) and Redis (its room, the patient locks), docs/lifecycle.md.
 */

#ifndef _NGX_HTTP_TELEHEALTH_RECONCILE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_RECONCILE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


ngx_int_t ngx_http_telehealth_reconcile_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                              *mcf);
void ngx_http_telehealth_reconcile_exit_process(void);


#endif /* _NGX_HTTP_TELEHEALTH_RECONCILE_H_INCLUDED_ */
