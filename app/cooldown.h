/* cooldown.h: client addresses whose new connections are refused for a while (the HTTP/2 Rapid Reset abusers that
 * server.c shut down: limits.http2.abuse_cooldown), shared by all event-loop threads. A fixed table: when it is full,
 * the entry that ends first is replaced. Checking costs one atomic load while no address is cooling down. */
#ifndef HY_COOLDOWN_H
#define HY_COOLDOWN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HY_COOLDOWN_SLOTS 256 /* addresses remembered at once */

typedef struct st_hy_cooldown_t hy_cooldown_t;

hy_cooldown_t *hy_cooldown_create(void);
void hy_cooldown_free(hy_cooldown_t *c);

/* Refuses `sa` (AF_INET or AF_INET6; others are ignored) until now_ms + ms; an address already there is extended. */
void hy_cooldown_add(hy_cooldown_t *c, const struct sockaddr *sa, uint64_t now_ms, uint64_t ms);

/* 1 while `sa` is cooling down at now_ms, else 0. An IPv4 address and its IPv4-mapped IPv6 form are the same. */
int hy_cooldown_check(hy_cooldown_t *c, const struct sockaddr *sa, uint64_t now_ms);

#endif
