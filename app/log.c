/* log.c: JSON log lines for the server's own messages, formatted by accesslog.c's error-log formatter. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "accesslog.h"
#include "log.h"

void hy_log(const char *level, const char *request_id, const char *fmt, ...)
{
    char msg[HY_ERRORLOG_MSG_MAX], line[HY_ERRORLOG_MSG_MAX * 6 + 512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* messages from libpq end in newlines: the line carries one of its own */
    size_t n = strlen(msg);
    while (n != 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    size_t len = hy_errorlog_format(line, sizeof(line), level, request_id, msg);
    if (len != 0 && len + 1 < sizeof(line) && line[len - 1] != '\n')
        line[len++] = '\n';
    if (len != 0 && write(2, line, len) < 0) {
        /* nothing better to do with a log line that cannot be written */
    }
}
