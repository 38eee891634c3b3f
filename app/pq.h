/* pq.h: libpq, loaded on demand. hydrant links no libpq: libpq pulls in Kerberos, LDAP and GnuTLS, whose start-up costs
 * ~25 ms, which a server without a database should not pay. Include this instead of <libpq-fe.h>: each PQ function used
 * by hydrant becomes a call through a table filled by dlopen("libpq.so.5") on first use. */
#ifndef HY_PQ_H
#define HY_PQ_H

#include <libpq-fe.h>

typedef struct st_hy_pq_t {
    __typeof__(PQclear) *PQclear;                           /* libpq's PQclear */
    __typeof__(PQgetvalue) *PQgetvalue;                     /* libpq's PQgetvalue */
    __typeof__(PQresultStatus) *PQresultStatus;             /* libpq's PQresultStatus */
    __typeof__(PQntuples) *PQntuples;                       /* libpq's PQntuples */
    __typeof__(PQerrorMessage) *PQerrorMessage;             /* libpq's PQerrorMessage */
    __typeof__(PQgetlength) *PQgetlength;                   /* libpq's PQgetlength */
    __typeof__(PQfinish) *PQfinish;                         /* libpq's PQfinish */
    __typeof__(PQsocket) *PQsocket;                         /* libpq's PQsocket */
    __typeof__(PQcancel) *PQcancel;                         /* libpq's PQcancel */
    __typeof__(PQstatus) *PQstatus;                         /* libpq's PQstatus */
    __typeof__(PQresultErrorMessage) *PQresultErrorMessage; /* libpq's PQresultErrorMessage */
    __typeof__(PQresultErrorField) *PQresultErrorField;     /* libpq's PQresultErrorField */
    __typeof__(PQfreeCancel) *PQfreeCancel;                 /* libpq's PQfreeCancel */
    __typeof__(PQexecParams) *PQexecParams;                 /* libpq's PQexecParams */
    __typeof__(PQexec) *PQexec;                             /* libpq's PQexec */
    __typeof__(PQconninfoParse) *PQconninfoParse;           /* libpq's PQconninfoParse */
    __typeof__(PQconninfoFree) *PQconninfoFree;             /* libpq's PQconninfoFree */
    __typeof__(PQconnectPoll) *PQconnectPoll;               /* libpq's PQconnectPoll */
    __typeof__(PQsetnonblocking) *PQsetnonblocking;         /* libpq's PQsetnonblocking */
    __typeof__(PQsendQueryPrepared) *PQsendQueryPrepared;   /* libpq's PQsendQueryPrepared */
    __typeof__(PQsendPrepare) *PQsendPrepare;               /* libpq's PQsendPrepare */
    __typeof__(PQpipelineSync) *PQpipelineSync;             /* libpq's PQpipelineSync */
    __typeof__(PQisBusy) *PQisBusy;                         /* libpq's PQisBusy */
    __typeof__(PQgetisnull) *PQgetisnull;                   /* libpq's PQgetisnull */
    __typeof__(PQgetResult) *PQgetResult;                   /* libpq's PQgetResult */
    __typeof__(PQgetCancel) *PQgetCancel;                   /* libpq's PQgetCancel */
    __typeof__(PQfreemem) *PQfreemem;                       /* libpq's PQfreemem */
    __typeof__(PQflush) *PQflush;                           /* libpq's PQflush */
    __typeof__(PQenterPipelineMode) *PQenterPipelineMode;   /* libpq's PQenterPipelineMode */
    __typeof__(PQconsumeInput) *PQconsumeInput;             /* libpq's PQconsumeInput */
    __typeof__(PQconnectdbParams) *PQconnectdbParams;       /* libpq's PQconnectdbParams */
    __typeof__(PQconnectStartParams) *PQconnectStartParams; /* libpq's PQconnectStartParams */
    __typeof__(PQcmdTuples) *PQcmdTuples;                   /* libpq's PQcmdTuples */
    __typeof__(PQprepare) *PQprepare;                       /* libpq's PQprepare */
    __typeof__(PQdescribePrepared) *PQdescribePrepared;     /* libpq's PQdescribePrepared */
    __typeof__(PQnparams) *PQnparams;                       /* libpq's PQnparams */
    __typeof__(PQnfields) *PQnfields;                       /* libpq's PQnfields */
    __typeof__(PQfname) *PQfname;                           /* libpq's PQfname */
    __typeof__(PQftype) *PQftype;                           /* libpq's PQftype */
} hy_pq_t;

extern hy_pq_t hy_pq;

/* Loads libpq once (thread-safe). Returns 0, or -1 with a reason in err. */
int hy_pq_load(char *err, size_t errlen);

/* As hy_pq_load, but a failure is fatal: the message goes to stderr and the process exits 1. */
void hy_pq_require(void);

#ifndef HY_PQ_NO_MACROS
#define PQclear (hy_pq.PQclear)
#define PQgetvalue (hy_pq.PQgetvalue)
#define PQresultStatus (hy_pq.PQresultStatus)
#define PQntuples (hy_pq.PQntuples)
#define PQerrorMessage (hy_pq.PQerrorMessage)
#define PQgetlength (hy_pq.PQgetlength)
#define PQfinish (hy_pq.PQfinish)
#define PQsocket (hy_pq.PQsocket)
#define PQcancel (hy_pq.PQcancel)
#define PQstatus (hy_pq.PQstatus)
#define PQresultErrorMessage (hy_pq.PQresultErrorMessage)
#define PQresultErrorField (hy_pq.PQresultErrorField)
#define PQfreeCancel (hy_pq.PQfreeCancel)
#define PQexecParams (hy_pq.PQexecParams)
#define PQexec (hy_pq.PQexec)
#define PQconninfoParse (hy_pq.PQconninfoParse)
#define PQconninfoFree (hy_pq.PQconninfoFree)
#define PQconnectPoll (hy_pq.PQconnectPoll)
#define PQsetnonblocking (hy_pq.PQsetnonblocking)
#define PQsendQueryPrepared (hy_pq.PQsendQueryPrepared)
#define PQsendPrepare (hy_pq.PQsendPrepare)
#define PQpipelineSync (hy_pq.PQpipelineSync)
#define PQisBusy (hy_pq.PQisBusy)
#define PQgetisnull (hy_pq.PQgetisnull)
#define PQgetResult (hy_pq.PQgetResult)
#define PQgetCancel (hy_pq.PQgetCancel)
#define PQfreemem (hy_pq.PQfreemem)
#define PQflush (hy_pq.PQflush)
#define PQenterPipelineMode (hy_pq.PQenterPipelineMode)
#define PQconsumeInput (hy_pq.PQconsumeInput)
#define PQconnectdbParams (hy_pq.PQconnectdbParams)
#define PQconnectStartParams (hy_pq.PQconnectStartParams)
#define PQcmdTuples (hy_pq.PQcmdTuples)
#define PQprepare (hy_pq.PQprepare)
#define PQdescribePrepared (hy_pq.PQdescribePrepared)
#define PQnparams (hy_pq.PQnparams)
#define PQnfields (hy_pq.PQnfields)
#define PQfname (hy_pq.PQfname)
#define PQftype (hy_pq.PQftype)
#endif

#endif
