/* main.c: the command line: `hydrant serve`, `hydrant check`, `hydrant version`. */
#include <h2o/version.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <yajl/yajl_version.h>
#include "config.h"
#include "database.h"
#include "server.h"
#include "log.h"
#include "sqlroute.h"

/* Exit codes: 0 ok, 1 runtime failure, 2 config or usage error. */
enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

static const char *default_config = "conf/hydrant.yaml";

/* ---- usage ------------------------------------------------------------------------------------------------------------ */

static void usage_main(FILE *out)
{
    fputs("usage: hydrant <command> [options]\n"
          "\n"
          "An HTTP/2 application server on libh2o, configured by one YAML file.\n"
          "\n"
          "commands:\n"
          "  serve [-c FILE]   serve the configuration (HTTP/1.1, h2c and TLS h2)\n"
          "  check [-c FILE] [--database]\n"
          "                    validate the configuration and print a summary\n"
          "  migrate [-c FILE] apply the database migrations (database.migrations) in order\n"
          "  version           print the version and the libraries' versions\n"
          "\n"
          "FILE defaults to $HYDRANT_CONFIG, else conf/hydrant.yaml.\n"
          "Run `hydrant <command> --help` for a command's options.\n"
          "Exit codes: 0 ok, 1 runtime failure, 2 configuration or usage error.\n",
          out);
}

static void usage_command(const char *cmd, FILE *out)
{
    if (strcmp(cmd, "serve") == 0)
        fputs("usage: hydrant serve [-c FILE]\n"
              "\n"
              "Loads and validates FILE, opens its listeners and serves until SIGTERM or SIGINT, then drains\n"
              "gracefully (up to server.timeouts.shutdown) and exits 0.\n"
              "\n"
              "  -c, --config FILE   configuration file (default: $HYDRANT_CONFIG, else conf/hydrant.yaml)\n"
              "  -h, --help          show this help\n"
              "\n"
              "Environment overrides (win over the file): SERVER_PORT, SERVER_READ_TIMEOUT, SERVER_WRITE_TIMEOUT,\n"
              "SERVER_IDLE_TIMEOUT. Exit codes: 0 after a clean shutdown, 1 when a listener cannot be opened,\n"
              "2 when the configuration is invalid.\n",
              out);
    else if (strcmp(cmd, "check") == 0)
        fputs("usage: hydrant check [-c FILE] [--database]\n"
              "\n"
              "Validates FILE (with the environment applied, as `serve` would) and prints a normalized summary:\n"
              "listeners, threads, timeouts, limits and routes with their handlers. Every error is reported as\n"
              "FILE:LINE:COL: key.path: message. Exit 0 when valid, 2 with errors.\n"
              "\n"
              "  -c, --config FILE   configuration file (default: $HYDRANT_CONFIG, else conf/hydrant.yaml)\n"
              "  -d, --database      also prepare every sql route's query on the configured database, as `serve`\n"
              "                      does at start-up (exit 1 when the database cannot be reached)\n"
              "  -h, --help          show this help\n",
              out);
    else if (strcmp(cmd, "migrate") == 0)
        fputs("usage: hydrant migrate [-c FILE]\n"
              "\n"
              "Applies the NNNN_name.sql files of the database.migrations folder (default: migrations/ beside FILE)\n"
              "in order, each in a transaction, recorded in the schema_migrations table. Files already applied are\n"
              "skipped, so running it twice is a no-op. A failing migration stops with its file name and the\n"
              "server's error, and nothing of it is applied. Exit 0 ok, 1 on a database error, 2 on a config error.\n"
              "\n"
              "  -c, --config FILE   configuration file (default: $HYDRANT_CONFIG, else conf/hydrant.yaml)\n"
              "  -h, --help          show this help\n",
              out);
    else
        fputs("usage: hydrant version\n\nPrints hydrant's version and the versions of libh2o, OpenSSL, libyaml and yajl.\n", out);
}

/* ---- commands --------------------------------------------------------------------------------------------------------- */

/* Parses `[-c FILE] [-h]` (and `[-d]` when `database` is not NULL) after the command name. Returns 0 with *path set,
 * 1 when help was printed, -1 on a usage error (already reported). */
static int parse_options(const char *cmd, int argc, char **argv, const char **path, int *database)
{
    const char *env = getenv("HYDRANT_CONFIG");
    *path = env != NULL && env[0] != '\0' ? env : default_config;
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_command(cmd, stdout);
            return 1;
        } else if (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) {
            if (i + 1 == argc) {
                fprintf(stderr, "hydrant %s: option %s needs a file name\n", cmd, argv[i]);
                return -1;
            }
            *path = argv[++i];
        } else if (strncmp(argv[i], "--config=", 9) == 0) {
            *path = argv[i] + 9;
        } else if (database != NULL && (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--database") == 0)) {
            *database = 1;
        } else {
            fprintf(stderr, "hydrant %s: unknown argument \"%s\" (see `hydrant %s --help`)\n", cmd, argv[i], cmd);
            return -1;
        }
    }
    return 0;
}

static hy_config_t *load(const char *path)
{
    hy_diags_t diags = {0};
    hy_config_t *config = hy_config_load(path, &diags);
    if (config == NULL) {
        hy_diags_print(&diags, stderr);
        fprintf(stderr, "hydrant: %zu error%s in %s\n", diags.count, diags.count == 1 ? "" : "s", path);
    }
    hy_diags_clear(&diags);
    return config;
}

/* Prepares the sql routes' queries on the database (hy_sql_validate). Returns 0 when they all prepare (or there is
 * none), -1 after printing their errors, 1 when the database is unreachable (the reason in why). */
static int check_queries(const hy_config_t *config, const char *path, char *why, size_t whylen)
{
    hy_diags_t diags = {0};
    int checked = hy_sql_validate(config, &diags, why, whylen);
    if (checked < 0) {
        hy_diags_print(&diags, stderr);
        fprintf(stderr, "hydrant: %zu error%s in %s\n", diags.count, diags.count == 1 ? "" : "s", path);
    }
    hy_diags_clear(&diags);
    return checked;
}

static int cmd_check(int argc, char **argv)
{
    const char *path;
    int database = 0;
    int r = parse_options("check", argc, argv, &path, &database);
    if (r != 0)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    hy_config_t *config = load(path);
    if (config == NULL)
        return EXIT_USAGE;
    int ret = EXIT_OK;
    char why[512];
    int checked = database ? check_queries(config, path, why, sizeof(why)) : 0;
    if (checked < 0) {
        ret = EXIT_USAGE;
    } else if (checked > 0) {
        fprintf(stderr, "hydrant check: cannot check the sql routes' queries: the database is unreachable (%s)\n", why);
        ret = EXIT_RUNTIME;
    } else {
        printf("%s: ok%s\n", path, database ? " (sql queries prepared on the database)" : "");
        hy_config_print_summary(config, stdout);
    }
    hy_config_free(config);
    return ret;
}

static int cmd_serve(int argc, char **argv)
{
    const char *path;
    int r = parse_options("serve", argc, argv, &path, NULL);
    if (r != 0)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    hy_config_t *config = load(path);
    if (config == NULL)
        return EXIT_USAGE;
    /* the sql routes' queries are checked against the database before serving (unless it is down: then it starts, as
     * it does without sql routes, and the statements report their own errors) */
    char why[512];
    int checked = check_queries(config, path, why, sizeof(why));
    if (checked < 0) {
        hy_config_free(config);
        return EXIT_USAGE;
    }
    if (checked > 0)
        hy_log("warn", NULL, "the sql routes' queries were not checked: the database is unreachable (%s)", why);
    int ret = hy_server_run(config) == 0 ? EXIT_OK : EXIT_RUNTIME;
    hy_config_free(config);
    return ret;
}

static int cmd_migrate(int argc, char **argv)
{
    const char *path;
    int r = parse_options("migrate", argc, argv, &path, NULL);
    if (r != 0)
        return r > 0 ? EXIT_OK : EXIT_USAGE;
    hy_config_t *config = load(path);
    if (config == NULL)
        return EXIT_USAGE;
    int ret = EXIT_OK;
    if (!config->has_database) {
        fprintf(stderr, "hydrant migrate: %s has no database section (and DATABASE_URL / DB_HOST are not set)\n", path);
        ret = EXIT_USAGE;
    } else {
        char dir[4096];
        const char *slash = strrchr(path, '/');
        snprintf(dir, sizeof(dir), "%.*s", slash != NULL ? (int)(slash - path) : 1, slash != NULL ? path : ".");
        if (hy_migrate(&config->database, dir, stdout, stderr) != 0)
            ret = EXIT_RUNTIME;
    }
    hy_config_free(config);
    return ret;
}

static int cmd_version(int argc, char **argv)
{
    for (int i = 0; i < argc; ++i) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_command("version", stdout);
            return EXIT_OK;
        }
        fprintf(stderr, "hydrant version: unknown argument \"%s\"\n", argv[i]);
        return EXIT_USAGE;
    }
    printf("hydrant %s (libh2o %s, %s, libyaml %s, yajl %d.%d.%d)\n", HY_VERSION, H2O_VERSION, OpenSSL_version(OPENSSL_VERSION),
           yaml_get_version_string(), YAJL_MAJOR, YAJL_MINOR, YAJL_MICRO);
    return EXIT_OK;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage_main(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return cmd_serve(argc - 2, argv + 2);
    if (strcmp(cmd, "check") == 0)
        return cmd_check(argc - 2, argv + 2);
    if (strcmp(cmd, "migrate") == 0)
        return cmd_migrate(argc - 2, argv + 2);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0)
        return cmd_version(argc - 2, argv + 2);
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        usage_main(stdout);
        return EXIT_OK;
    }
    fprintf(stderr, "hydrant: unknown command \"%s\"\n\n", cmd);
    usage_main(stderr);
    return EXIT_USAGE;
}
