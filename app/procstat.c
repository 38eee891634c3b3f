/* procstat.c: reads the process's CPU time, memory, descriptors and start time from /proc for the process_* metrics. */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include "alloc.h"
#include "procstat.h"

/* ---- parsing ---------------------------------------------------------------------------------------------------------- */

/* Parses one unsigned decimal field at *p, skipping the spaces before it; advances *p past it. Returns 0 or -1. */
static int parse_u64(const char **p, uint64_t *out)
{
    const char *s = *p;
    while (*s == ' ')
        ++s;
    if (*s < '0' || *s > '9')
        return -1;
    uint64_t v = 0;
    for (; *s >= '0' && *s <= '9'; ++s) {
        if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
            return -1;
        v = v * 10 + (uint64_t)(*s - '0');
    }
    if (*s != ' ' && *s != '\n' && *s != '\0')
        return -1;
    *p = s;
    *out = v;
    return 0;
}

/* Skips one space-separated field (any text but a space) at *p. Returns 0, or -1 when there is none. */
static int skip_field(const char **p)
{
    const char *s = *p;
    while (*s == ' ')
        ++s;
    if (*s == '\0' || *s == '\n')
        return -1;
    while (*s != ' ' && *s != '\0' && *s != '\n')
        ++s;
    *p = s;
    return 0;
}

/* /proc/[pid]/stat (proc(5)), fields numbered from 1:
 *     1 pid  2 (comm)  3 state  4 ppid ... 14 utime  15 stime ... 22 starttime  23 vsize  24 rss ...
 * comm is the executable name, up to 15 bytes of anything (")" and spaces included), hence the last ')'. */
int hy_procstat_parse_stat(const char *contents, hy_proc_stat_fields_t *out)
{
    if (contents == NULL)
        return -1;
    const char *lparen = strchr(contents, '('), *rparen = strrchr(contents, ')');
    if (lparen == NULL || rparen == NULL || rparen < lparen || rparen[1] != ' ')
        return -1;
    const char *p = rparen + 1;
    uint64_t v[25] = {0}; /* by field number */
    for (int field = 3; field <= 24; ++field) {
        int wanted = field == 14 || field == 15 || field >= 22;
        if ((wanted ? parse_u64(&p, &v[field]) : skip_field(&p)) != 0)
            return -1;
    }
    out->utime = v[14];
    out->stime = v[15];
    out->starttime = v[22];
    out->vsize = v[23];
    out->rss = v[24];
    return 0;
}

/* /proc/stat holds one "btime 1700000000" line among many ("cpu ...", "intr ...", "ctxt ..."). */
int hy_procstat_parse_btime(const char *contents, uint64_t *btime)
{
    if (contents == NULL)
        return -1;
    for (const char *line = contents; *line != '\0';) {
        if (strncmp(line, "btime ", 6) == 0) {
            const char *p = line + 6;
            uint64_t v;
            if (parse_u64(&p, &v) != 0)
                return -1;
            while (*p == ' ')
                ++p;
            if (*p != '\n' && *p != '\0')
                return -1;
            *btime = v;
            return 0;
        }
        const char *nl = strchr(line, '\n');
        if (nl == NULL)
            break;
        line = nl + 1;
    }
    return -1;
}

void hy_procstat_from_fields(const hy_proc_stat_fields_t *fields, uint64_t btime, long clk_tck, long page_size, hy_procstat_t *out)
{
    double tck = clk_tck > 0 ? (double)clk_tck : 100;
    out->cpu_seconds = (double)(fields->utime + fields->stime) / tck;
    out->resident_bytes = (double)fields->rss * (double)(page_size > 0 ? page_size : 4096);
    out->virtual_bytes = (double)fields->vsize;
    out->start_time = (double)btime + (double)fields->starttime / tck;
    out->valid |= HY_PROCSTAT_CPU | HY_PROCSTAT_MEMORY | HY_PROCSTAT_START_TIME;
}

/* ---- reading ---------------------------------------------------------------------------------------------------------- */

/* Reads a whole file (procfs files report size 0, so read until EOF). Returns its contents, NUL-terminated and
 * malloc'ed (the caller frees them), or NULL when it cannot be read. */
static char *read_file(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd == -1)
        return NULL;
    size_t len = 0, cap = 4096;
    char *buf = hy_xmalloc(cap);
    for (;;) {
        if (cap - len < 2) {
            cap *= 2;
            buf = hy_xreallocarray(buf, cap, 1);
        }
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n == 0)
            break;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            free(buf);
            close(fd);
            return NULL;
        }
        len += (size_t)n;
    }
    close(fd);
    buf[len] = '\0';
    return buf;
}

/* Counts the entries of /proc/self/fd (the one opendir uses included, as client_golang counts). Returns 0 or -1. */
static int count_fds(double *out)
{
    DIR *dir = opendir("/proc/self/fd");
    if (dir == NULL)
        return -1;
    uint64_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ++n;
    closedir(dir);
    *out = (double)n;
    return 0;
}

int hy_procstat_read(hy_procstat_t *out)
{
    memset(out, 0, sizeof(*out));

    char *stat = read_file("/proc/self/stat"), *sys = read_file("/proc/stat");
    hy_proc_stat_fields_t fields;
    uint64_t btime = 0;
    if (hy_procstat_parse_stat(stat, &fields) == 0) {
        int have_btime = hy_procstat_parse_btime(sys, &btime) == 0;
        hy_procstat_from_fields(&fields, btime, sysconf(_SC_CLK_TCK), sysconf(_SC_PAGESIZE), out);
        if (!have_btime) {
            out->start_time = 0;
            out->valid &= ~(unsigned)HY_PROCSTAT_START_TIME;
        }
    }
    free(stat);
    free(sys);

    if (count_fds(&out->open_fds) == 0)
        out->valid |= HY_PROCSTAT_OPEN_FDS;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        out->max_fds = rl.rlim_cur == RLIM_INFINITY ? INFINITY : (double)rl.rlim_cur;
        out->valid |= HY_PROCSTAT_MAX_FDS;
    }
    return out->valid == HY_PROCSTAT_ALL ? 0 : -1;
}

/* ---- the collector ---------------------------------------------------------------------------------------------------- */

void hy_procstat_collect(void *data, hy_metrics_writer_t *w)
{
    (void)data;
    hy_procstat_t ps;
    hy_procstat_read(&ps);
    if (ps.valid & HY_PROCSTAT_CPU)
        hy_metrics_write_counter(w, "process_cpu_seconds_total", "User and system CPU time used by the process, in seconds.", NULL,
                                 ps.cpu_seconds);
    if (ps.valid & HY_PROCSTAT_OPEN_FDS)
        hy_metrics_write_gauge(w, "process_open_fds", "File descriptors the process has open.", NULL, ps.open_fds);
    if (ps.valid & HY_PROCSTAT_MAX_FDS)
        hy_metrics_write_gauge(w, "process_max_fds", "Most file descriptors the process may open (soft limit).", NULL, ps.max_fds);
    if (ps.valid & HY_PROCSTAT_MEMORY) {
        hy_metrics_write_gauge(w, "process_virtual_memory_bytes", "Virtual memory size of the process, in bytes.", NULL,
                               ps.virtual_bytes);
        hy_metrics_write_gauge(w, "process_resident_memory_bytes", "Resident memory size of the process, in bytes.", NULL,
                               ps.resident_bytes);
    }
    if (ps.valid & HY_PROCSTAT_START_TIME)
        hy_metrics_write_gauge(w, "process_start_time_seconds", "When the process started, in seconds since the Unix epoch.", NULL,
                               ps.start_time);
}
