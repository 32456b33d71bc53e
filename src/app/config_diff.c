/* config_diff.c - the running configuration and the one just read,
 * compared key by key through the fields cfg_keys[] names
 * (config_diff.h). */
#include <stdio.h>
#include <string.h>

#include "app/config_diff.h"

/* Key i's field in c. */
static const char *field_of(const struct ovl_config *c, size_t i)
{
    return (const char *)c + cfg_keys[i].off;
}

void cfg_diff(const struct ovl_config *run, const struct ovl_config *next, struct cfg_diff *d)
{
    memset(d, 0, sizeof(*d));
    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        if (memcmp(field_of(run, i), field_of(next, i), cfg_keys[i].width) == 0)
            continue;
        d->changed[i] = 1;
        d->n_changed++;
        d->steps |= cfg_keys[i].reload;
    }
}

void cfg_diff_keep(struct ovl_config *next, const struct ovl_config *run, const struct cfg_diff *d,
                   unsigned mask)
{
    for (size_t i = 0; i < CFG_KEY_COUNT; i++)
        if (d->changed[i] && (cfg_keys[i].reload & mask))
            memcpy((char *)next + cfg_keys[i].off, field_of(run, i), cfg_keys[i].width);
    /* One key sets both chain generators' rules (config_keys.c): they stay one. */
    next->dir.distinct_subnets = next->client.distinct_subnets;
    next->dir.by_capacity = next->client.by_capacity;
}

/* The sections of one named kind in a configuration: count elements of
 * size bytes from base, each starting with its NUL-terminated name. */
struct named {
    const char *base;
    size_t size;
    unsigned count;
};

static struct named named_of(const struct ovl_config *c, enum cfg_sect sect)
{
    if (sect == SECT_PEER)
        return (struct named){(const char *)c->peers, sizeof(c->peers[0]), c->n_peers};
    if (sect == SECT_BOOTSTRAP)
        return (struct named){(const char *)c->bootstraps, sizeof(c->bootstraps[0]),
                              c->n_bootstraps};
    return (struct named){(const char *)c->client.services, sizeof(c->client.services[0]),
                          c->client.n_services};
}

/* The element of a named name, or NULL. */
static const char *named_find(const struct named *a, const char *name)
{
    for (unsigned i = 0; i < a->count; i++)
        if (strcmp(a->base + i * a->size, name) == 0)
            return a->base + i * a->size;
    return NULL;
}

/* Call fn for each NAME of kind sect that was added, removed or changed;
 * return how many. */
static unsigned named_names(const struct ovl_config *run, const struct ovl_config *next,
                            enum cfg_sect sect, void (*fn)(void *arg, const char *name), void *arg)
{
    struct named a = named_of(run, sect), b = named_of(next, sect);
    char item[CFG_SECT_NAME_MAX + 32];
    unsigned n = 0;

    for (unsigned i = 0; i < b.count; i++) {
        const char *e = b.base + i * b.size, *was = named_find(&a, e);

        if (was && memcmp(was, e, b.size) == 0)
            continue;
        snprintf(item, sizeof(item), "%s.%.*s%s", cfg_sect_name(sect), CFG_SECT_NAME_MAX, e,
                 was ? "" : " (added)");
        fn(arg, item);
        n++;
    }
    for (unsigned i = 0; i < a.count; i++) {
        const char *e = a.base + i * a.size;

        if (named_find(&b, e))
            continue;
        snprintf(item, sizeof(item), "%s.%.*s (removed)", cfg_sect_name(sect), CFG_SECT_NAME_MAX,
                 e);
        fn(arg, item);
        n++;
    }
    return n;
}

unsigned cfg_diff_names(const struct cfg_diff *d, const struct ovl_config *run,
                        const struct ovl_config *next, unsigned mask, unsigned skip,
                        void (*fn)(void *arg, const char *name), void *arg)
{
    char item[CFG_SECT_NAME_MAX + 64];
    unsigned n = 0, kinds = 0;

    for (size_t i = 0; i < CFG_KEY_COUNT; i++) {
        enum cfg_sect sect = (enum cfg_sect)cfg_keys[i].sect;

        if (!d->changed[i] || !(cfg_keys[i].reload & mask) || (cfg_keys[i].reload & skip))
            continue;
        if (sect >= SECT_PEER) { /* a named kind: its sections, each once */
            if (!(kinds & (1u << sect)))
                n += named_names(run, next, sect, fn, arg);
            kinds |= 1u << sect;
            continue;
        }
        snprintf(item, sizeof(item), "%s.%s", cfg_sect_name(sect), cfg_key_name(&cfg_keys[i]));
        fn(arg, item);
        n++;
    }
    return n;
}
