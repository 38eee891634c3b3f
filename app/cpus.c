/* cpus.c: how many CPUs this process may really use (affinity mask, lowered by a cgroup v2 CPU quota). */

#include <errno.h>
#include <limits.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "alloc.h"
#include "config.h"

/* ---- cgroup v2 cpu.max ----------------------------------------------------------------------------------------------- */

/* cpu.max holds "$MAX $PERIOD": "max 100000" (no limit) or e.g. "150000 100000" (1.5 CPUs, which we round up to 2). */

/* Parses an unsigned decimal at *s, advancing it. Returns 0, or -1 when there is no digit or it overflows. */
static int parse_u64(const char **s, uint64_t *out)
{
    uint64_t v = 0;
    const char *p = *s;

    if (*p < '0' || *p > '9')
        return -1;
    for (; *p >= '0' && *p <= '9'; ++p) {
        if (v > (UINT64_MAX - (uint64_t)(*p - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*p - '0');
    }
    *s = p;
    *out = v;
    return 0;
}

unsigned hy_cpu_max_parse(const char *contents)
{
    const char *p = contents;
    uint64_t quota, period;

    if (p == NULL)
        return 0;
    if (strncmp(p, "max", 3) == 0)
        return 0;
    if (parse_u64(&p, &quota) != 0 || *p != ' ')
        return 0;
    while (*p == ' ')
        ++p;
    if (parse_u64(&p, &period) != 0)
        return 0;
    while (*p == ' ' || *p == '\n')
        ++p;
    if (*p != '\0' || quota == 0 || period == 0)
        return 0;
    uint64_t cpus = quota / period + (quota % period != 0);
    return cpus > UINT_MAX ? UINT_MAX : (unsigned)cpus;
}

/* Reads a small text file into buf (NUL-terminated). Returns 0 or -1. */
static int read_small_file(const char *path, char *buf, size_t bufsize)
{
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, bufsize - 1, fp);
    int err = ferror(fp);
    fclose(fp);
    if (err)
        return -1;
    buf[n] = '\0';
    return 0;
}

unsigned hy_cpu_cgroup_limit(const char *proc_cgroup, const char *cgroup_root)
{
    char buf[4096], *path = NULL, *line, *save = NULL;
    unsigned best = 0;

    if (read_small_file(proc_cgroup, buf, sizeof(buf)) != 0)
        return 0;
    for (line = strtok_r(buf, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, "0::/", 4) == 0) {
            path = line + 3;
            break;
        }
    }
    if (path == NULL || strstr(path, "/..") != NULL)
        path = "/";

    /* dir = cgroup_root + path, without a trailing slash; then strip one component at a time down to cgroup_root */
    size_t rootlen = strlen(cgroup_root);
    while (rootlen > 1 && cgroup_root[rootlen - 1] == '/')
        --rootlen;
    size_t dirsize = rootlen + strlen(path) + 1;
    char *dir = hy_xmalloc(dirsize);
    snprintf(dir, dirsize, "%.*s%s", (int)rootlen, cgroup_root, path);
    size_t dirlen = strlen(dir);
    while (dirlen > rootlen && dir[dirlen - 1] == '/')
        dir[--dirlen] = '\0';

    for (;;) {
        char file[PATH_MAX], contents[128];
        if ((size_t)snprintf(file, sizeof(file), "%s/cpu.max", dir) < sizeof(file) &&
            read_small_file(file, contents, sizeof(contents)) == 0) {
            unsigned limit = hy_cpu_max_parse(contents);
            if (limit != 0 && (best == 0 || limit < best))
                best = limit;
        }
        if (dirlen <= rootlen)
            break;
        while (dirlen > rootlen && dir[dirlen - 1] != '/')
            --dirlen;
        while (dirlen > rootlen && dir[dirlen - 1] == '/')
            --dirlen;
        dir[dirlen] = '\0';
    }
    free(dir);
    return best;
}

/* ---- affinity -------------------------------------------------------------------------------------------------------- */

/* Number of CPUs in this thread's affinity mask, or 0 when it cannot be read. */
static unsigned affinity_count(void)
{
    for (int ncpus = 1024; ncpus <= (1 << 20); ncpus *= 2) {
        cpu_set_t *set = CPU_ALLOC(ncpus);
        if (set == NULL)
            hy_alloc_fail_(__FILE__, __LINE__);
        size_t size = CPU_ALLOC_SIZE(ncpus);
        CPU_ZERO_S(size, set);
        if (sched_getaffinity(0, size, set) == 0) {
            unsigned n = (unsigned)CPU_COUNT_S(size, set);
            CPU_FREE(set);
            return n;
        }
        int err = errno;
        CPU_FREE(set);
        if (err != EINVAL)
            break;
    }
    return 0;
}

unsigned hy_cpu_count(void)
{
    unsigned n = affinity_count();
    if (n == 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        n = online > 0 ? (unsigned)online : 1;
    }
    unsigned limit = hy_cpu_cgroup_limit("/proc/self/cgroup", "/sys/fs/cgroup");
    if (limit != 0 && limit < n)
        n = limit;
    return n != 0 ? n : 1;
}
