/* fuzz_config.c: libFuzzer target for hy_config_parse (app/config.c, app/config_yaml.c): every input is a YAML
 * config; a config that loads must be coherent, and one that does not must come with one-line diagnostics that point
 * into the file. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "config.h"
#include "fuzz_check.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

#define FILE_NAME "fuzz.yaml" /* the path messages name; TLS paths in the input resolve against the working directory */

static FILE *devnull; /* where the summary of a config that loads is printed */

/* ---- set-up ----------------------------------------------------------------------------------------------------------- */

/* The environment overrides the file (SERVER_*, DATABASE_URL, DB_*) and fills the defaults of conf/hydrant.yaml
 * (HYDRANT_*): all are removed so that an input means the same on every machine. Other ${VAR} references still see the
 * environment, which is fixed for the run. */
static int is_overriding(const char *entry)
{
    static const char *const prefixes[] = {"SERVER_", "DB_", "HYDRANT_", "DATABASE_URL="};
    for (size_t i = 0; i != sizeof(prefixes) / sizeof(prefixes[0]); ++i)
        if (strncmp(entry, prefixes[i], strlen(prefixes[i])) == 0)
            return 1;
    return 0;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    for (int again = 1; again;) {
        again = 0;
        for (char **e = environ; *e != NULL; ++e) {
            if (!is_overriding(*e))
                continue;
            char name[256];
            size_t n = strcspn(*e, "=");
            if (n >= sizeof(name))
                n = sizeof(name) - 1;
            memcpy(name, *e, n);
            name[n] = '\0';
            unsetenv(name);
            again = 1; /* environ changed under us: scan it again */
            break;
        }
    }
    CHECK((devnull = fopen("/dev/null", "w")) != NULL);
    return 0;
}

/* ---- invariants ------------------------------------------------------------------------------------------------------- */

/* "fuzz.yaml:LINE:COL: ..." (both >= 1) or "fuzz.yaml: ..." for the file as a whole; one line, no control bytes. */
static void check_message(const char *msg)
{
    size_t flen = strlen(FILE_NAME);
    CHECK(msg != NULL && strncmp(msg, FILE_NAME, flen) == 0 && msg[flen] == ':');
    const char *s = msg + flen + 1;
    if (*s != ' ') {
        char *end;
        unsigned long line = strtoul(s, &end, 10), col;
        CHECK(end != s && *end == ':' && line >= 1);
        s = end + 1;
        col = strtoul(s, &end, 10);
        CHECK(end != s && *end == ':' && col >= 1);
        s = end + 1;
    }
    CHECK(s[0] == ' ' && s[1] != '\0');
    for (; *s != '\0'; ++s)
        CHECK((unsigned char)*s >= 0x20 && *s != 0x7f);
}

static void check_config(const hy_config_t *c)
{
    char err[256];
    CHECK(c->nlisteners >= 1 && c->listeners != NULL);
    for (size_t i = 0; i != c->nlisteners; ++i) {
        const hy_listener_t *l = &c->listeners[i];
        CHECK(l->host != NULL && l->host[0] != '\0' && l->port >= 1);
        if (l->tls != NULL)
            CHECK(l->tls->certificate != NULL && l->tls->key != NULL);
    }
    CHECK(c->threads >= 1 && c->router != NULL);
    CHECK(c->limits.max_concurrent_streams >= 1 && c->limits.max_concurrent_streams <= 100);
    CHECK(c->access_log_sample >= 0 && c->access_log_sample <= 1);
    CHECK(c->middleware.n <= HY_MW_MAX);
    for (size_t i = 0; i != c->nroutes; ++i) {
        const hy_route_t *r = &c->routes[i];
        CHECK(r->path != NULL && hy_router_check_template(r->path, err, sizeof(err)) == 0);
        CHECK(r->methods != 0 && (r->methods & ~(unsigned)HY_METHOD_ALL) == 0 && r->index == i);
        CHECK(r->kind == HY_ROUTE_HANDLER ? r->handler != NULL : r->static_.status >= 200 && r->static_.status <= 599);
        CHECK(r->middleware.n <= HY_MW_MAX && r->pos.line >= 1 && r->pos.col >= 1);
        /* a route without parameters is found by its own path, for one of its methods */
        if (strchr(r->path, '{') == NULL && strchr(r->path, '%') == NULL) {
            size_t len = strlen(r->path);
            char *buf = malloc(len + 1);
            hy_match_t m;
            unsigned method = r->methods & -r->methods; /* the lowest method bit */
            CHECK(buf != NULL);
            CHECK(hy_router_match(c->router, method, r->path, len, buf, len + 1, &m) == HY_MATCH_OK);
            CHECK(m.template_ != NULL && strcmp(m.template_, r->path) == 0);
            free(buf);
        }
    }
    for (size_t i = 0; i + 1 < c->nbuckets; ++i)
        CHECK(c->buckets[i] < c->buckets[i + 1]);
    hy_config_print_summary(c, devnull);
}

/* ---- the target ------------------------------------------------------------------------------------------------------- */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hy_diags_t diags = {NULL, 0, 0};
    hy_config_t *config = hy_config_parse(FILE_NAME, (const char *)data, size, &diags);

    if (config == NULL) {
        CHECK(diags.count >= 1); /* a config that does not load says why */
    } else {
        CHECK(diags.count == 0);
        check_config(config);
    }
    for (size_t i = 0; i != diags.count; ++i)
        check_message(diags.msgs[i]);
    hy_config_free(config);
    hy_diags_clear(&diags);
    return 0;
}
