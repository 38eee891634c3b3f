/* pq.c: loads libpq with dlopen the first time hydrant needs a database (see pq.h for why). */
#define HY_PQ_NO_MACROS
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include "pq.h"

hy_pq_t hy_pq;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256];

static void load(void)
{
    void *h = dlopen("libpq.so.5", RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        snprintf(load_error, sizeof(load_error), "cannot load libpq.so.5: %s", dlerror());
        return;
    }
#define SYM(name)                                                                                                                  \
    if ((*(void **)&hy_pq.name = dlsym(h, #name)) == NULL) {                                                                       \
        snprintf(load_error, sizeof(load_error), "libpq.so.5 has no %s (libpq 14 or later is needed)", #name);                     \
        return;                                                                                                                    \
    }
    SYM(PQclear)
    SYM(PQgetvalue)
    SYM(PQresultStatus)
    SYM(PQntuples)
    SYM(PQerrorMessage)
    SYM(PQgetlength)
    SYM(PQfinish)
    SYM(PQsocket)
    SYM(PQcancel)
    SYM(PQstatus)
    SYM(PQresultErrorMessage)
    SYM(PQresultErrorField)
    SYM(PQfreeCancel)
    SYM(PQexecParams)
    SYM(PQexec)
    SYM(PQconninfoParse)
    SYM(PQconninfoFree)
    SYM(PQconnectPoll)
    SYM(PQsetnonblocking)
    SYM(PQsendQueryPrepared)
    SYM(PQsendPrepare)
    SYM(PQpipelineSync)
    SYM(PQisBusy)
    SYM(PQgetisnull)
    SYM(PQgetResult)
    SYM(PQgetCancel)
    SYM(PQfreemem)
    SYM(PQflush)
    SYM(PQenterPipelineMode)
    SYM(PQconsumeInput)
    SYM(PQconnectdbParams)
    SYM(PQconnectStartParams)
    SYM(PQcmdTuples)
    SYM(PQprepare)
    SYM(PQdescribePrepared)
    SYM(PQnparams)
    SYM(PQnfields)
    SYM(PQfname)
    SYM(PQftype)
#undef SYM
}

int hy_pq_load(char *err, size_t errlen)
{
    pthread_once(&once, load);
    if (load_error[0] != '\0') {
        snprintf(err, errlen, "%s", load_error);
        return -1;
    }
    return 0;
}

void hy_pq_require(void)
{
    char err[300];
    if (hy_pq_load(err, sizeof(err)) != 0) {
        fprintf(stderr, "hydrant: %s\n", err);
        exit(1);
    }
}
