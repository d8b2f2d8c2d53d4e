/*
 * The purge: deletes the content of sessions that ended more than
 * telehealth_purge_after ago (docs/lifecycle.md, "The purge").
 */

#ifndef _NGX_HTTP_TELEHEALTH_PURGE_H_INCLUDED_
#define _NGX_HTTP_TELEHEALTH_PURGE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>

#include "ngx_http_telehealth_module.h"


/*
 * files_dir: the directory relative to which the files that
 * th_purge_chat() lists are unlinked (NULL: only absolute paths are).
 */
ngx_int_t ngx_http_telehealth_purge_init_process(ngx_cycle_t *cycle,
    ngx_http_telehealth_main_conf_t *mcf, ngx_str_t *files_dir);
void ngx_http_telehealth_purge_exit_process(void);


#endif /* _NGX_HTTP_TELEHEALTH_PURGE_H_INCLUDED_ */
