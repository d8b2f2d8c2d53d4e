/*
 * The consumer of the plugin's event stream: applies room and participant
 * events to the call history in PostgreSQL, one transaction per entry,
 * and acknowledges an entry only after its transaction committed.
 */

#ifndef _NGX_HTTP_TELEHEALTH_EVENTS_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_EVENTS_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


ngx_int_t ngx_http_telehealth_events_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t                           *mcf);
void ngx_http_telehealth_events_exit_process(void);


#endif /* _NGX_HTTP_TELEHEALTH_EVENTS_H_INCLUDED_ */
