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

/* Writes {"error":"<code>","message":"<message>"} (no "message" when it is NULL) into gen. */
void hy_json_gen_error(yajl_gen gen, const char *code, const char *message);

/* Renders {"error":"<code>","message":"<message>"} with proper escaping into a malloc'ed, NUL-terminated buffer
 * (message may be NULL: then there is no "message" member). The caller frees it. */
char *hy_json_error_render(const char *code, const char *message, size_t *len);

/* ---- reading request bodies ------------------------------------------------------------------------------------------ */

typedef enum en_hy_json_kind_t {
    HY_JSON_ABSENT = 0, /* the member is not in the object */
    HY_JSON_STRING,     /* value: the decoded UTF-8 string */
    HY_JSON_NUMBER,     /* value: the number's text */
    HY_JSON_BOOL,       /* value: "true" or "false" */
    HY_JSON_NULL,       /* null */
    HY_JSON_OBJECT,     /* value: the object's JSON text, as written */
    HY_JSON_ARRAY       /* value: the array's JSON text, as written */
} hy_json_kind_t;

typedef struct st_hy_json_field_t {
    const char *name;    /* member name to look for (in) */
    hy_json_kind_t kind; /* what was found (out) */
    h2o_iovec_t value;   /* its text, NUL-terminated, in the pool (out) */
} hy_json_field_t;

/* Parses `body` as one JSON object and fills the top-level members named in `fields` (other members are ignored; a
 * repeated member keeps its last value). The parser allocates from `pool` only. Returns 0, or -1 with a short reason
 * in err ("malformed JSON: ...", "the body must be a JSON object"). */
int hy_json_parse_fields(h2o_mem_pool_t *pool, const char *body, size_t len, hy_json_field_t *fields, size_t nfields, char *err,
                         size_t errlen);

/* 1 when the bytes are strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
int hy_utf8_valid(const unsigned char *s, size_t len);

/* The name of a kind for messages: "a string", "a number", "a boolean", "null", "an object", "an array", "absent". */
const char *hy_json_kind_name(hy_json_kind_t kind);

#endif
