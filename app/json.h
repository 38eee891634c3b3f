/* json.h: JSON output with yajl, generated per request and copied once into the request's pool. */
#ifndef HY_JSON_H
#define HY_JSON_H

#include <h2o.h>
#include <yajl/yajl_gen.h>

/* Returns this thread's reusable yajl generator, reset and empty. Valid on the calling thread until the next call
 * of hy_json_begin or hy_json_thread_dispose on it. Aborts on allocation failure. */
yajl_gen hy_json_begin(void);

/* Copies the generated document into `pool` and resets the generator. The returned buffer lives as long as the
 * pool. */
h2o_iovec_t hy_json_finish(yajl_gen gen, h2o_mem_pool_t *pool);

/* Frees this thread's generator (call when an event-loop thread exits). */
void hy_json_thread_dispose(void);

/* Helpers over yajl_gen_string/yajl_gen_integer for C strings. */
void hy_json_str(yajl_gen gen, const char *s);
void hy_json_kv_str(yajl_gen gen, const char *key, const char *value);
void hy_json_kv_int(yajl_gen gen, const char *key, long long value);

/* Renders {"error":"<code>","message":"<message>"} with proper escaping into a malloc'ed, NUL-terminated buffer
 * (message may be NULL: then there is no "message" member). The caller frees it. */
char *hy_json_error_render(const char *code, const char *message, size_t *len);

#endif
