/* log.h: the server's own log lines (errors, warnings, lifecycle) as JSON on stderr, one write(2) per line. */
#ifndef HY_LOG_H
#define HY_LOG_H

/* Writes {"time":...,"level":level,"request_id":...,"msg":...} to stderr. `level` is "error", "warn" or "info";
 * `request_id` may be NULL. Never pass a secret in the message. Thread-safe (each line is one write). */
void hy_log(const char *level, const char *request_id, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
