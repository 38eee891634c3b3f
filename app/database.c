/* database.c: turns the `database:` configuration into libpq parameters and pool settings, and applies migrations. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include "database.h"

/* ---- connection parameters -------------------------------------------------------------------------------------------- */

void hy_conninfo_build(const hy_database_t *db, hy_conninfo_t *ci)
{
    static char connect_timeout[24];
    size_t n = 0;
#define ADD(k, v)                                                                                                                  \
    do {                                                                                                                           \
        if ((v) != NULL && (v)[0] != '\0') {                                                                                       \
            ci->keywords[n] = (k);                                                                                                 \
            ci->values[n++] = (v);                                                                                                 \
        }                                                                                                                          \
    } while (0)
    ADD("dbname", db->url); /* expanded: later keywords override the URL's parts */
    ADD("host", db->host);
    ADD("port", db->port);
    ADD("user", db->user);
    ADD("password", db->password);
    ADD("dbname", db->name);
    ADD("sslmode", db->sslmode);
    /* libpq's own connect_timeout (seconds) for blocking connects such as `hydrant migrate` */
    snprintf(connect_timeout, sizeof(connect_timeout), "%llu", (unsigned long long)((db->connect_timeout_ms + 999) / 1000));
    ADD("connect_timeout", connect_timeout);
#undef ADD
    ci->keywords[n] = NULL;
    ci->values[n] = NULL;
}

void hy_db_settings_build(const hy_database_t *db, const hy_conninfo_t *ci, hy_db_settings_t *out)
{
    memset(out, 0, sizeof(*out));
    out->keywords = ci->keywords;
    out->values = ci->values;
    out->max_open = db->max_open;
    out->max_idle = db->max_idle;
    out->max_lifetime_ms = db->max_lifetime_ms;
    out->max_idle_time_ms = db->max_idle_time_ms;
    out->acquire_timeout_ms = db->acquire_timeout_ms;
    out->queue_limit = db->queue_limit;
    out->connect_timeout_ms = db->connect_timeout_ms;
    out->statement_timeout_ms = db->statement_timeout_ms;
    out->pipeline_depth = db->pipeline_depth;
    out->breaker_threshold = db->breaker_threshold;
    out->breaker_cooldown_ms = db->breaker_cooldown_ms;
}

void hy_database_describe(const hy_database_t *db, char *buf, size_t bufsize)
{
    hy_pq_require();
    hy_conninfo_t ci;
    hy_conninfo_build(db, &ci);
    PQconninfoOption *opts = PQconninfoParse(db->url != NULL ? db->url : "", NULL);
    const char *host = db->host, *port = db->port, *user = db->user, *name = db->name;
    for (PQconninfoOption *o = opts; o != NULL && o->keyword != NULL; ++o) {
        if (o->val == NULL)
            continue;
        if (host == NULL && strcmp(o->keyword, "host") == 0)
            host = o->val;
        else if (port == NULL && strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (user == NULL && strcmp(o->keyword, "user") == 0)
            user = o->val;
        else if (name == NULL && strcmp(o->keyword, "dbname") == 0)
            name = o->val;
    }
    snprintf(buf, bufsize, "%s@%s:%s/%s", user != NULL ? user : "(default user)", host != NULL ? host : "(default host)",
             port != NULL ? port : "5432", name != NULL ? name : "(default database)");
    if (opts != NULL)
        PQconninfoFree(opts);
}

/* ---- migrations ------------------------------------------------------------------------------------------------------- */

static int is_migration_name(const char *n)
{
    size_t len = strlen(n);
    if (len < 10 || strcmp(n + len - 4, ".sql") != 0 || n[4] != '_')
        return 0;
    for (int i = 0; i != 4; ++i)
        if (n[i] < '0' || n[i] > '9')
            return 0;
    return 1;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *read_file(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return NULL;
    fseek(fp, 0, SEEK_END);
    long sz = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *buf = sz >= 0 ? malloc((size_t)sz + 1) : NULL;
    if (buf != NULL && fread(buf, 1, (size_t)sz, fp) != (size_t)sz) {
        free(buf);
        buf = NULL;
    }
    fclose(fp);
    if (buf != NULL) {
        buf[sz] = '\0';
        *len = (size_t)sz;
    }
    return buf;
}

/* Runs one SQL command; returns 0 or -1 with the server's message in err. */
static int exec_ok(PGconn *pg, const char *sql, const char *what, FILE *err)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok)
        fprintf(err, "hydrant migrate: %s: %s", what, PQerrorMessage(pg));
    PQclear(r);
    return ok ? 0 : -1;
}

int hy_migrate(const hy_database_t *db, const char *config_dir, FILE *out, FILE *err)
{
    hy_pq_require();
    char dir[4096], where[256];
    const char *m = db->migrations != NULL ? db->migrations : "migrations";
    if (m[0] == '/')
        snprintf(dir, sizeof(dir), "%s", m);
    else
        snprintf(dir, sizeof(dir), "%s/%s", config_dir, m);
    hy_database_describe(db, where, sizeof(where));

    /* list the files first: a missing folder is an error before anything touches the database */
    DIR *d = opendir(dir);
    if (d == NULL) {
        fprintf(err, "hydrant migrate: cannot open migrations folder \"%s\": %s\n", dir, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t nnames = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!is_migration_name(e->d_name))
            continue;
        if (nnames == cap) {
            cap = cap == 0 ? 16 : cap * 2;
            names = realloc(names, cap * sizeof(*names));
            if (names == NULL)
                abort();
        }
        names[nnames++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nnames, sizeof(*names), cmp_names);

    int ret = -1;
    hy_conninfo_t ci;
    hy_conninfo_build(db, &ci);
    PGconn *pg = PQconnectdbParams(ci.keywords, ci.values, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        fprintf(err, "hydrant migrate: cannot connect to %s: %s", where, PQerrorMessage(pg));
        goto Exit;
    }
    /* one migrator at a time; the table records what ran */
    if (exec_ok(pg, "SET client_min_messages = warning", "set-up", err) != 0 ||
        exec_ok(pg, "SELECT pg_advisory_lock(727274)", "taking the migration lock", err) != 0 ||
        exec_ok(pg,
                "CREATE TABLE IF NOT EXISTS schema_migrations (version text PRIMARY KEY, name text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())",
                "creating schema_migrations", err) != 0)
        goto Exit;
    size_t applied = 0;
    for (size_t i = 0; i != nnames; ++i) {
        char version[5];
        memcpy(version, names[i], 4);
        version[4] = '\0';
        const char *params[2] = {version, names[i]};
        PGresult *r = PQexecParams(pg, "SELECT 1 FROM schema_migrations WHERE version = $1", 1, NULL, params, NULL, NULL, 0);
        int done = PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1;
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            fprintf(err, "hydrant migrate: reading schema_migrations: %s", PQerrorMessage(pg));
            PQclear(r);
            goto Exit;
        }
        PQclear(r);
        if (done)
            continue;
        char path[4352];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        size_t len;
        char *sql = read_file(path, &len);
        if (sql == NULL) {
            fprintf(err, "hydrant migrate: cannot read %s: %s\n", path, strerror(errno));
            goto Exit;
        }
        int ok = exec_ok(pg, "BEGIN", path, err) == 0 && exec_ok(pg, sql, path, err) == 0;
        free(sql);
        if (ok) {
            r = PQexecParams(pg, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2, NULL, params, NULL, NULL, 0);
            ok = PQresultStatus(r) == PGRES_COMMAND_OK;
            if (!ok)
                fprintf(err, "hydrant migrate: %s: recording it: %s", path, PQerrorMessage(pg));
            PQclear(r);
        }
        if (!ok || exec_ok(pg, "COMMIT", path, err) != 0) {
            PQclear(PQexec(pg, "ROLLBACK"));
            fprintf(err, "hydrant migrate: stopped at %s; nothing of it was applied\n", names[i]);
            goto Exit;
        }
        fprintf(out, "applied %s\n", names[i]);
        ++applied;
    }
    if (applied == 0)
        fprintf(out, "%s: schema is up to date (%zu migration%s)\n", where, nnames, nnames == 1 ? "" : "s");
    else
        fprintf(out, "%s: applied %zu migration%s\n", where, applied, applied == 1 ? "" : "s");
    ret = 0;
Exit:
    PQfinish(pg);
    for (size_t i = 0; i != nnames; ++i)
        free(names[i]);
    free(names);
    return ret;
}
