/* cooldown.c: see cooldown.h. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "alloc.h"
#include "cooldown.h"

typedef struct st_slot_t {
    uint8_t addr[16]; /* IPv6, or IPv4-mapped */
    uint64_t until;   /* refused until this time (ms); 0: free */
} slot_t;

struct st_hy_cooldown_t {
    pthread_mutex_t lock; /* guards slots */
    slot_t slots[HY_COOLDOWN_SLOTS];
    _Atomic uint64_t until_max; /* the latest `until` of any slot: past it, nothing is cooling down */
};

/* The 16-byte form of an address; 0, or -1 for a family other than IPv4/IPv6. */
static int key_of(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    return -1;
}

hy_cooldown_t *hy_cooldown_create(void)
{
    hy_cooldown_t *c = hy_xcalloc(1, sizeof(*c));
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void hy_cooldown_free(hy_cooldown_t *c)
{
    if (c == NULL)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void hy_cooldown_add(hy_cooldown_t *c, const struct sockaddr *sa, uint64_t now_ms, uint64_t ms)
{
    uint8_t key[16];
    if (ms == 0 || key_of(sa, key) != 0)
        return;
    uint64_t until = now_ms + ms;
    pthread_mutex_lock(&c->lock);
    slot_t *pick = NULL;
    for (size_t i = 0; i != HY_COOLDOWN_SLOTS; ++i) {
        slot_t *s = &c->slots[i];
        if (s->until > now_ms && memcmp(s->addr, key, 16) == 0) {
            pick = s;
            break;
        }
        if (pick == NULL || s->until < pick->until)
            pick = s; /* a free or expired slot, else the one that ends first */
    }
    memcpy(pick->addr, key, 16);
    if (until > pick->until)
        pick->until = until;
    if (until > atomic_load_explicit(&c->until_max, memory_order_relaxed))
        atomic_store_explicit(&c->until_max, until, memory_order_release);
    pthread_mutex_unlock(&c->lock);
}

int hy_cooldown_check(hy_cooldown_t *c, const struct sockaddr *sa, uint64_t now_ms)
{
    uint8_t key[16];
    if (atomic_load_explicit(&c->until_max, memory_order_acquire) <= now_ms || key_of(sa, key) != 0)
        return 0;
    int found = 0;
    pthread_mutex_lock(&c->lock);
    for (size_t i = 0; i != HY_COOLDOWN_SLOTS && !found; ++i)
        found = c->slots[i].until > now_ms && memcmp(c->slots[i].addr, key, 16) == 0;
    pthread_mutex_unlock(&c->lock);
    return found;
}
