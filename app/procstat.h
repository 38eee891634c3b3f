/* procstat.h: the process's own CPU time, memory, file descriptors and start time, read from /proc, as the
 * process_* metrics that Prometheus client libraries export by default. */
#ifndef HY_PROCSTAT_H
#define HY_PROCSTAT_H

#include <stdint.h>
#include "metrics.h"

/* ---- types ------------------------------------------------------------------------------------------------------------ */

/* Which fields of hy_procstat_t were read (bits of `valid`). */
enum {
    HY_PROCSTAT_CPU = 1u << 0,        /* cpu_seconds */
    HY_PROCSTAT_MEMORY = 1u << 1,     /* resident_bytes and virtual_bytes */
    HY_PROCSTAT_OPEN_FDS = 1u << 2,   /* open_fds */
    HY_PROCSTAT_MAX_FDS = 1u << 3,    /* max_fds */
    HY_PROCSTAT_START_TIME = 1u << 4, /* start_time */
    HY_PROCSTAT_ALL = (1u << 5) - 1
};

typedef struct st_hy_procstat_t {
    unsigned valid;        /* HY_PROCSTAT_* bits of the fields below that hold a value read now */
    double cpu_seconds;    /* process_cpu_seconds_total: user + system CPU time in seconds */
    double resident_bytes; /* process_resident_memory_bytes: resident set size */
    double virtual_bytes;  /* process_virtual_memory_bytes: virtual memory size */
    double open_fds;       /* process_open_fds: entries of /proc/self/fd */
    double max_fds;        /* process_max_fds: the RLIMIT_NOFILE soft limit (+Inf when unlimited) */
    double start_time;     /* process_start_time_seconds: start time in seconds since the Unix epoch */
} hy_procstat_t;

/* The fields of a /proc/[pid]/stat line that the metrics use, in the kernel's units. */
typedef struct st_hy_proc_stat_fields_t {
    uint64_t utime;     /* field 14: user time, in clock ticks */
    uint64_t stime;     /* field 15: system time, in clock ticks */
    uint64_t starttime; /* field 22: start time after boot, in clock ticks */
    uint64_t vsize;     /* field 23: virtual memory size, in bytes */
    uint64_t rss;       /* field 24: resident set size, in pages */
} hy_proc_stat_fields_t;

/* ---- reading ---------------------------------------------------------------------------------------------------------- */

/* Reads the process's statistics now (/proc/self/stat, /proc/stat, /proc/self/fd, getrlimit). Returns 0 when every
 * field was read, or -1 when some could not be; out->valid tells which were. Any thread; allocates. */
int hy_procstat_read(hy_procstat_t *out);

/* A collector for hy_metrics_add_collector (data: unused, pass NULL): writes the process_* families of the fields
 * hy_procstat_read could read. */
void hy_procstat_collect(void *data, hy_metrics_writer_t *w);

/* ---- parsing (for tests) ---------------------------------------------------------------------------------------------- */

/* Parses the contents of /proc/[pid]/stat: "pid (comm) state ppid ...". comm may hold spaces and parentheses, so the
 * fields are counted from the last ')'. Returns 0, or -1 when the text is malformed. */
int hy_procstat_parse_stat(const char *contents, hy_proc_stat_fields_t *out);

/* Finds the "btime SECONDS" line (boot time, seconds since the epoch) in the contents of /proc/stat. Returns 0, or -1
 * when there is none or it is malformed. */
int hy_procstat_parse_btime(const char *contents, uint64_t *btime);

/* Fills out->cpu_seconds, resident_bytes, virtual_bytes and start_time from parsed fields, the boot time and the
 * system's clock ticks per second and page size, and sets their bits in out->valid. */
void hy_procstat_from_fields(const hy_proc_stat_fields_t *fields, uint64_t btime, long clk_tck, long page_size, hy_procstat_t *out);

#endif
