/* fuzz_query.c: libFuzzer target for hy_query_find (app/query.c): every input is looked up as a raw query string under
 * a few fixed names, and once more split into a name and a query; each answer must equal the old hy_query_get loop's
 * (tests/fuzz/query_ref.h) and stay inside the documented bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "query.h"
#include "fuzz_check.h"
#include "query_ref.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- invariants ------------------------------------------------------------------------------------------------------- */

/* Looks `name` up in the `len` bytes at `query` with an output buffer of exactly len + 1 bytes (so that ASan sees any
 * write past it) and checks the answer against the reference model. */
static void check_lookup(const char *query, size_t len, const char *name)
{
    char *out = malloc(len + 1), *ref = malloc(len + 1);
    size_t outlen = (size_t)-1, reflen = 0;
    CHECK(out != NULL && ref != NULL);

    int ret = hy_query_find(query, len, name, out, len + 1, &outlen);
    CHECK(ret == 0 || ret == -1);
    CHECK(outlen <= len);
    CHECK(out[outlen] == '\0');
    if (ret == -1)
        CHECK(outlen == 0);

    int want = query_ref_find(query, len, name, ref, &reflen);
    CHECK(ret == want);
    if (want == 0)
        CHECK(outlen == reflen && memcmp(out, ref, reflen) == 0);

    /* one byte too small is a caller error, refused before anything is read */
    if (len != 0) {
        outlen = 99;
        CHECK(hy_query_find(query, len, name, out, len, &outlen) == -1 && outlen == 0 && out[0] == '\0');
    }
    free(out);
    free(ref);
}

/* ---- the target ------------------------------------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const names[] = {"limit", "after", "a", "", "q"};
    const char *q = (const char *)data;

    for (size_t i = 0; i != sizeof(names) / sizeof(names[0]); ++i)
        check_lookup(q, size, names[i]);

    /* The first byte gives the length of a name (0-15) taken from the bytes after it; the rest is the query. */
    if (size != 0) {
        size_t nlen = data[0] % 16;
        if (nlen > size - 1)
            nlen = size - 1;
        char name[16];
        memcpy(name, data + 1, nlen);
        name[nlen] = '\0'; /* a NUL inside the name shortens it, as it would for any C caller */
        check_lookup(q + 1 + nlen, size - 1 - nlen, name);
    }
    return 0;
}
