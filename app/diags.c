/* diags.c: the list of configuration messages ("FILE:LINE:COL: key.path: message"), value quoting and did-you-mean. */

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include "alloc.h"
#include "config.h"

/* ---- the message list ------------------------------------------------------------------------------------------------ */

void hy_diags_add(hy_diags_t *d, const char *file, unsigned line, unsigned col, const char *keypath, const char *fmt, ...)
{
    va_list ap, ap2;
    char prefix[64];
    const char *sep = keypath != NULL && keypath[0] != '\0' ? ": " : "";

    if (file == NULL)
        file = "<config>";
    if (keypath == NULL)
        keypath = "";
    if (line != 0)
        snprintf(prefix, sizeof(prefix), ":%u:%u: ", line, col);
    else
        snprintf(prefix, sizeof(prefix), ": ");

    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    size_t head = strlen(file) + strlen(prefix) + strlen(keypath) + strlen(sep);
    char *msg = hy_xmalloc(head + (size_t)n + 1);
    snprintf(msg, head + 1, "%s%s%s%s", file, prefix, keypath, sep);
    vsnprintf(msg + head, (size_t)n + 1, fmt, ap2);
    va_end(ap2);

    if (d->count == d->cap) {
        d->cap = d->cap != 0 ? d->cap * 2 : 8;
        d->msgs = hy_xreallocarray(d->msgs, d->cap, sizeof(*d->msgs));
    }
    d->msgs[d->count++] = msg;
}

void hy_diags_print(const hy_diags_t *d, FILE *out)
{
    for (size_t i = 0; i != d->count; ++i)
        fprintf(out, "%s\n", d->msgs[i]);
}

void hy_diags_clear(hy_diags_t *d)
{
    for (size_t i = 0; i != d->count; ++i)
        free(d->msgs[i]);
    free(d->msgs);
    d->msgs = NULL;
    d->count = 0;
    d->cap = 0;
}

/* ---- quoting --------------------------------------------------------------------------------------------------------- */

char *hy_quote(const char *s, size_t len, char *buf, size_t bufsize)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, i;

    if (bufsize < 8) {
        if (bufsize != 0)
            buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (i = 0; i != len; ++i) {
        unsigned char c = (unsigned char)s[i];
        char esc[5];
        size_t n;
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c, n = 2;
        } else if (c == '\n') {
            esc[0] = '\\', esc[1] = 'n', n = 2;
        } else if (c == '\r') {
            esc[0] = '\\', esc[1] = 'r', n = 2;
        } else if (c == '\t') {
            esc[0] = '\\', esc[1] = 't', n = 2;
        } else if (c < 0x20 || c == 0x7f) {
            esc[0] = '\\', esc[1] = 'x', esc[2] = hex[c >> 4], esc[3] = hex[c & 15], n = 4;
        } else {
            esc[0] = (char)c, n = 1;
        }
        /* keep room for the escape, `..."` and the NUL */
        if (o + n + 5 > bufsize)
            break;
        memcpy(buf + o, esc, n);
        o += n;
    }
    buf[o++] = '"';
    if (i != len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = '\0';
    return buf;
}

/* ---- did you mean ---------------------------------------------------------------------------------------------------- */

#define SUGGEST_MAX_LEN 64 /* longer words get no suggestion */

/* Case-insensitive Levenshtein distance between a[0..alen) and b[0..blen) (both at most SUGGEST_MAX_LEN). */
static size_t edit_distance(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t row[SUGGEST_MAX_LEN + 1];

    for (size_t j = 0; j <= blen; ++j)
        row[j] = j;
    for (size_t i = 1; i <= alen; ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= blen; ++j) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) == tolower((unsigned char)b[j - 1]) ? 0 : 1;
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

const char *hy_did_you_mean(const char *word, const char *const *candidates, size_t ncandidates)
{
    size_t wlen = strlen(word), best_score = SIZE_MAX;
    const char *best = NULL;

    if (wlen == 0 || wlen > SUGGEST_MAX_LEN)
        return NULL;
    size_t allowed = wlen <= 3 ? 1 : wlen <= 8 ? 2 : 3;
    if (allowed >= wlen)
        allowed = wlen - 1;

    for (size_t i = 0; i != ncandidates; ++i) {
        const char *cand = candidates[i];
        size_t clen = strlen(cand), score = SIZE_MAX;
        if (clen == 0 || clen > SUGGEST_MAX_LEN)
            continue;
        score = edit_distance(word, wlen, cand, clen);
        /* "users" or "userz" for "users.get": compare with the part before the first dot */
        const char *dot = strchr(cand, '.');
        if (dot != NULL && dot != cand) {
            size_t d = edit_distance(word, wlen, cand, (size_t)(dot - cand));
            if (d < score)
                score = d;
        }
        /* "plain" for "plaintext" */
        if (wlen >= 3 && wlen < clen && strncasecmp(word, cand, wlen) == 0 && score > 1)
            score = 1;
        if (score <= allowed && score < best_score) {
            best_score = score;
            best = cand;
        }
    }
    return best;
}
