/* config_yaml.c: YAML text to a small node tree with 1-based positions (libyaml events), and ${VAR} interpolation. */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include "alloc.h"
#include "config.h"

/* ---- nodes ----------------------------------------------------------------------------------------------------------- */

/* Allocates a node of `kind` at a libyaml (0-based) mark. */
static hy_ynode_t *node_new(hy_ynode_kind_t kind, yaml_mark_t mark)
{
    hy_ynode_t *n = hy_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->pos.line = (unsigned)mark.line + 1;
    n->pos.col = (unsigned)mark.column + 1;
    return n;
}

/* Appends `child` to the sequence or mapping `parent`, which takes ownership. */
static void node_append(hy_ynode_t *parent, hy_ynode_t *child)
{
    if (parent->nchildren == parent->cap) {
        parent->cap = parent->cap != 0 ? parent->cap * 2 : 8;
        parent->children = hy_xreallocarray(parent->children, parent->cap, sizeof(*parent->children));
    }
    parent->children[parent->nchildren++] = child;
}

void hy_ynode_free(hy_ynode_t *node)
{
    if (node == NULL)
        return;
    for (size_t i = 0; i != node->nchildren; ++i)
        hy_ynode_free(node->children[i]);
    free(node->children);
    free(node->value);
    free(node);
}

int hy_ynode_is_null(const hy_ynode_t *node)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL"};

    if (node == NULL)
        return 1;
    if (node->kind != HY_YNODE_SCALAR || !node->plain)
        return 0;
    for (size_t i = 0; i != sizeof(nulls) / sizeof(nulls[0]); ++i)
        if (strcmp(node->value, nulls[i]) == 0)
            return 1;
    return 0;
}

/* ---- the loader ------------------------------------------------------------------------------------------------------ */

/* Reports a libyaml error as "FILE:LINE:COL: yaml: problem". Reader errors (bad encoding) carry a byte offset instead
 * of a mark, which we turn into a line and column ourselves. */
static void report_parser_error(const char *file, const yaml_parser_t *parser, const char *text, size_t len, hy_diags_t *diags)
{
    unsigned line, col;
    const char *problem = parser->problem != NULL ? parser->problem : "syntax error";

    if (parser->error == YAML_MEMORY_ERROR)
        hy_alloc_fail_(__FILE__, __LINE__);
    if (parser->error == YAML_READER_ERROR) {
        size_t end = parser->problem_offset < len ? parser->problem_offset : len;
        line = 1, col = 1;
        for (size_t i = 0; i != end; ++i) {
            if (text[i] == '\n')
                ++line, col = 1;
            else if (((unsigned char)text[i] & 0xc0) != 0x80)
                ++col;
        }
    } else {
        line = (unsigned)parser->problem_mark.line + 1;
        col = (unsigned)parser->problem_mark.column + 1;
    }
    hy_diags_add(diags, file, line, col, NULL, "yaml: %s", problem);
}

int hy_yaml_load(const char *file, const char *text, size_t len, hy_ynode_t **root, hy_diags_t *diags)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    hy_ynode_t *stack[HY_YAML_MAX_DEPTH];
    size_t depth = 0, ndocs = 0;
    int ret = -1, done = 0;

    *root = NULL;
    if (!yaml_parser_initialize(&parser))
        hy_alloc_fail_(__FILE__, __LINE__);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);

    while (!done) {
        hy_ynode_t *node = NULL;
        if (!yaml_parser_parse(&parser, &ev)) {
            report_parser_error(file, &parser, text, len, diags);
            goto Exit;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = 1;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                hy_diags_add(diags, file, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1, NULL,
                             "yaml: only one document is allowed");
                goto Error;
            }
            break;
        case YAML_ALIAS_EVENT:
            hy_diags_add(diags, file, (unsigned)ev.start_mark.line + 1, (unsigned)ev.start_mark.column + 1, NULL,
                         "yaml: aliases (*name) are not supported");
            goto Error;
        case YAML_SCALAR_EVENT:
            node = node_new(HY_YNODE_SCALAR, ev.start_mark);
            node->value = hy_xmemdup(ev.data.scalar.value, ev.data.scalar.length);
            node->len = ev.data.scalar.length;
            node->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
            break;
        case YAML_SEQUENCE_START_EVENT:
            node = node_new(HY_YNODE_SEQUENCE, ev.start_mark);
            break;
        case YAML_MAPPING_START_EVENT:
            node = node_new(HY_YNODE_MAPPING, ev.start_mark);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            --depth;
            break;
        default:
            break;
        }
        if (node != NULL) {
            if (depth == 0) {
                *root = node;
            } else {
                hy_ynode_t *parent = stack[depth - 1];
                int is_key = parent->kind == HY_YNODE_MAPPING && parent->nchildren % 2 == 0;
                node_append(parent, node);
                if (is_key && node->kind != HY_YNODE_SCALAR) {
                    hy_diags_add(diags, file, node->pos.line, node->pos.col, NULL, "yaml: mapping keys must be scalars");
                    goto Error;
                }
            }
            if (node->kind != HY_YNODE_SCALAR) {
                if (depth == HY_YAML_MAX_DEPTH) {
                    hy_diags_add(diags, file, node->pos.line, node->pos.col, NULL, "yaml: nesting deeper than %d levels",
                                 HY_YAML_MAX_DEPTH);
                    goto Error;
                }
                stack[depth++] = node;
            }
        }
        yaml_event_delete(&ev);
    }
    ret = 0;
    goto Exit;

Error:
    yaml_event_delete(&ev);
Exit:
    if (ret != 0) {
        hy_ynode_free(*root);
        *root = NULL;
    }
    yaml_parser_delete(&parser);
    return ret;
}

/* ---- ${VAR} interpolation -------------------------------------------------------------------------------------------- */

/* Syntax inside any scalar value:
 *     ${NAME}            the value of the environment variable NAME (error when unset or empty)
 *     ${NAME:-default}   the value of NAME, or `default` (literal text up to the first '}') when unset or empty
 *     $$                 a literal '$'
 * NAME is [A-Za-z_][A-Za-z0-9_]*. Any other '$' stands for itself. */

#define VAR_NAME_MAX 128 /* longest variable name accepted */

typedef struct st_strbuf_t {
    char *s;    /* bytes, NUL-terminated */
    size_t len; /* length */
    size_t cap; /* allocated */
} strbuf_t;

static void strbuf_append(strbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        while (b->len + n + 1 > b->cap)
            b->cap = b->cap != 0 ? b->cap * 2 : 64;
        b->s = hy_xreallocarray(b->s, b->cap, 1);
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static int is_name_char(char c, int first)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || (!first && c >= '0' && c <= '9');
}

int hy_interpolate(const char *in, size_t len, char **out, size_t *outlen, char *err, size_t errlen)
{
    strbuf_t b = {NULL, 0, 0};

    strbuf_append(&b, "", 0);
    for (size_t i = 0; i < len; ++i) {
        if (in[i] != '$' || i + 1 == len || (in[i + 1] != '$' && in[i + 1] != '{')) {
            strbuf_append(&b, in + i, 1);
            continue;
        }
        if (in[i + 1] == '$') {
            strbuf_append(&b, "$", 1);
            ++i;
            continue;
        }
        /* ${...} */
        const char *start = in + i + 2, *end = memchr(start, '}', len - (i + 2));
        if (end == NULL) {
            snprintf(err, errlen, "unterminated \"${\" (expected ${NAME} or ${NAME:-default})");
            goto Error;
        }
        const char *name_end = start;
        while (name_end != end && *name_end != ':')
            ++name_end;
        size_t name_len = (size_t)(name_end - start);
        int ok = name_len != 0 && name_len <= VAR_NAME_MAX;
        for (size_t k = 0; ok && k != name_len; ++k)
            ok = is_name_char(start[k], k == 0);
        if (!ok) {
            char q[48];
            snprintf(err, errlen, "bad variable name %s in \"${...}\"", hy_quote(start, name_len, q, sizeof(q)));
            goto Error;
        }
        int has_default = 0;
        if (name_end != end) {
            if (end - name_end < 2 || name_end[1] != '-') {
                snprintf(err, errlen, "bad \"${%.*s...}\" (expected ${NAME} or ${NAME:-default})", (int)name_len, start);
                goto Error;
            }
            has_default = 1;
        }
        char name[VAR_NAME_MAX + 1];
        memcpy(name, start, name_len);
        name[name_len] = '\0';
        const char *value = getenv(name);
        if (value != NULL && value[0] != '\0') {
            strbuf_append(&b, value, strlen(value));
        } else if (has_default) {
            strbuf_append(&b, name_end + 2, (size_t)(end - (name_end + 2)));
        } else {
            snprintf(err, errlen, "environment variable %s is not set", name);
            goto Error;
        }
        i = (size_t)(end - in);
    }
    *out = b.s;
    *outlen = b.len;
    return 0;

Error:
    free(b.s);
    return -1;
}
