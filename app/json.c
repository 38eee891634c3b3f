/* json.c: per-thread yajl generators that write JSON for one request at a time. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "json.h"

/* ---- the per-thread generator ---------------------------------------------------------------------------------------- */

static _Thread_local yajl_gen thread_gen; /* created on first use on each event-loop thread */

yajl_gen hy_json_begin(void)
{
    if (thread_gen == NULL) {
        if ((thread_gen = yajl_gen_alloc(NULL)) == NULL) {
            fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
            abort();
        }
        yajl_gen_config(thread_gen, yajl_gen_validate_utf8, 1);
    }
    return thread_gen;
}

h2o_iovec_t hy_json_finish(yajl_gen gen, h2o_mem_pool_t *pool)
{
    const unsigned char *buf;
    size_t len;
    yajl_gen_get_buf(gen, &buf, &len);
    h2o_iovec_t out = h2o_strdup(pool, (const char *)buf, len);
    yajl_gen_clear(gen);
    yajl_gen_reset(gen, NULL);
    return out;
}

void hy_json_thread_dispose(void)
{
    if (thread_gen != NULL) {
        yajl_gen_free(thread_gen);
        thread_gen = NULL;
    }
}

/* ---- helpers ---------------------------------------------------------------------------------------------------------- */

void hy_json_str(yajl_gen gen, const char *s)
{
    yajl_gen_string(gen, (const unsigned char *)s, strlen(s));
}

void hy_json_kv_str(yajl_gen gen, const char *key, const char *value)
{
    hy_json_str(gen, key);
    hy_json_str(gen, value);
}

void hy_json_kv_int(yajl_gen gen, const char *key, long long value)
{
    hy_json_str(gen, key);
    yajl_gen_integer(gen, value);
}

char *hy_json_error_render(const char *code, const char *message, size_t *len)
{
    yajl_gen gen = yajl_gen_alloc(NULL);
    if (gen == NULL) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    yajl_gen_map_open(gen);
    hy_json_kv_str(gen, "error", code);
    if (message != NULL)
        hy_json_kv_str(gen, "message", message);
    yajl_gen_map_close(gen);
    const unsigned char *buf;
    size_t buflen;
    yajl_gen_get_buf(gen, &buf, &buflen);
    char *out = malloc(buflen + 1);
    if (out == NULL) {
        fprintf(stderr, "%s:%d: out of memory\n", __FILE__, __LINE__);
        abort();
    }
    memcpy(out, buf, buflen);
    out[buflen] = '\0';
    *len = buflen;
    yajl_gen_free(gen);
    return out;
}
