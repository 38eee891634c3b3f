/* database.h: the `database:` section of the configuration and what the server and `hydrant migrate` build from it. */
#ifndef HY_DATABASE_H
#define HY_DATABASE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include "db.h"

typedef struct st_hy_database_t {
    char *url;                     /* `url` or $DATABASE_URL: a libpq URI; when set, the fields below add to / override it */
    char *host;                    /* `host` / $DB_HOST */
    char *port;                    /* `port` / $DB_PORT (kept as text, validated 1-65535) */
    char *user;                    /* `user` / $DB_USER */
    char *password;                /* `password` / $DB_PASSWORD: never printed, logged or put in a message */
    char *name;                    /* `name` / $DB_NAME: the database name */
    char *sslmode;                 /* `sslmode` / $DB_SSLMODE: disable, allow, prefer, require, verify-ca, verify-full */
    char *migrations;              /* `migrations`: folder of NNNN_name.sql files, relative to the config file's folder */
    uint64_t max_open;             /* pool.max_open, default 25 */
    uint64_t max_idle;             /* pool.max_idle, default 10 */
    uint64_t max_lifetime_ms;      /* pool.max_lifetime, default 5m */
    uint64_t max_idle_time_ms;     /* pool.max_idle_time, default 0 (never) */
    uint64_t acquire_timeout_ms;   /* pool.acquire_timeout, default 1s */
    uint64_t queue_limit;          /* pool.queue_limit, default 10000 per thread (0 = unbounded) */
    uint64_t connect_timeout_ms;   /* pool.connect_timeout, default 5s */
    uint64_t statement_timeout_ms; /* pool.statement_timeout, default 0 (the server's) */
    uint64_t pipeline_depth;       /* pool.pipeline_depth, default 16 statements in flight per connection */
    uint64_t breaker_threshold;    /* pool.breaker_threshold: consecutive connection failures that open the circuit (5) */
    uint64_t breaker_cooldown_ms;  /* pool.breaker_cooldown: how long an open circuit fails fast before probing (5s) */
} hy_database_t;

/* libpq keyword/value arrays built from a database section (NULL-terminated, both owned by this struct). */
typedef struct st_hy_conninfo_t {
    const char *keywords[16]; /* keywords */
    const char *values[16];   /* values, pointing into the hy_database_t */
} hy_conninfo_t;

/* Fills `ci` from `db`: dbname=url (expanded by libpq) first, then host, port, user, password, dbname, sslmode,
 * connect_timeout. Valid while `db` lives. */
void hy_conninfo_build(const hy_database_t *db, hy_conninfo_t *ci);

/* Fills pool settings from `db` and `ci`. */
void hy_db_settings_build(const hy_database_t *db, const hy_conninfo_t *ci, hy_db_settings_t *out);

/* A one-line description of where the database is, safe to log (no password): "app@127.0.0.1:5432/app". */
void hy_database_describe(const hy_database_t *db, char *buf, size_t bufsize);

/* `hydrant migrate`: applies the migrations folder's NNNN_name.sql files in order, each in a transaction, recorded in
 * schema_migrations; those already applied are skipped. `config_dir` resolves a relative folder. Progress goes to out,
 * errors to err (naming the file and the server's message). Returns 0 or -1. */
int hy_migrate(const hy_database_t *db, const char *config_dir, FILE *out, FILE *err);

#endif
