/* hidden.c - a hidden node's side (docs/PROTOCOL.md 22): it keeps
 * [node] intros introduction relays, each at the end of a line of chains
 * of its own (CLF_EXIT | CLF_INTRO); on each chain of such a line that
 * becomes ready it establishes a fresh cookie (INTRO_ESTABLISH); and it
 * publishes an inbound descriptor naming the relays and the cookies held
 * now through those same chains (BODY_PUBLISH), whose exits hand it to
 * their bootstraps. The relay of a line is the one party that knows the
 * line is ours (it checks our signature), so publishing through it tells
 * no one anything new; the main line, which carries what we send, never
 * carries our identity.
 *
 * Also here, below svc.c and client.c that use it: the way back of every
 * delivery, an exit's delivery ID on its link or an introduction relay's
 * handle up one of our chains (INTRO_BACK).
 *
 * Everything runs from the client's tick and from the bodies cchain.c
 * hands up through client.c; nothing here owns a timer.
 */
#include <stdlib.h>
#include <string.h>

#include <utlist.h>

#include "chain/body.h"
#include "client/client_int.h"
#include "dir/idesc.h"

#define HID_LIST_RETRY_MS 2000 /* a relay list that failed is asked for again after */
#define HID_PUB_RETRY_MS  2000 /* a publish nobody took goes out again after */
#define HID_REFRESH(life) ((life) / 5 * 4)

/* One introduction relay: the line of chains to it, the cookie the relay
 * holds for us on one of them, and one being asked for on another. */
struct hid_slot {
    struct cline *line; /* NULL until a relay is picked */
    uint32_t held;      /* serial of the chain whose cookie the relay took; 0: none */
    uint32_t asking;    /* serial of the chain an INTRO_ESTABLISH went on; 0: none */
    uint32_t held_splices, ask_splices; /* those chains' splices then: one more, and the
                                           relay's end is new, without the cookie */
    uint8_t cookie[IDESC_COOKIE_LEN], ask_cookie[IDESC_COOKIE_LEN];
};

/* Bits of struct hidden's flags. */
enum hidden_flag {
    HF_LIST = 1u << 0,  /* the relay list is being fetched */
    HF_DIRTY = 1u << 1, /* the cookies held changed since the last publish */
};

struct hidden {
    struct hid_slot slot[IDESC_MAX_INTRO];
    unsigned flags;       /* enum hidden_flag */
    uint64_t seq;         /* of the last descriptor made */
    uint64_t list_try_ms; /* no relay list fetch before (monotonic) */
    uint64_t pub_ms;      /* when a bootstrap last took our descriptor (monotonic); 0 never */
    uint64_t pub_try_ms;  /* when the last publish went out (monotonic); 0 none */
    uint64_t pub_seq;     /* seq of the last publish sent */
    uint64_t expires_wall; /* expires_ms of the descriptor last taken */
};

int hidden_init(struct client *c)
{
    if (!c->o.intros)
        return 0;
    c->hidden = calloc(1, sizeof(*c->hidden));
    return c->hidden ? 0 : OVL_ENOMEM;
}

void hidden_free(struct client *c)
{
    if (c->hidden) {
        ovl_wipe(c->hidden, sizeof(*c->hidden));
        free(c->hidden);
        c->hidden = NULL;
    }
}

/* ---- the way back of deliveries ---- */

/* The first-hop link ch's cells leave on, or NULL: none (ch is NULL, or
 * lost its slot) or closed. */
static struct link *hid_link(const struct cchain *ch)
{
    return ch && ch->chain_id ? link_by_serial(ch->c->n, ch->link_serial) : NULL;
}

struct link *deliv_link(const struct deliv *d)
{
    return (d->flags & DF_INTRO) ? hid_link(cchain_find(d->c, d->chain)) : d->l;
}

int deliv_send(struct deliv *d, const uint8_t *data, size_t len)
{
    struct client *c = d->c;
    uint8_t body[ONION_BODY];
    struct cchain *ch;
    struct link *l;
    int rc;

    if (len > BODY_DATA_MAX)
        return OVL_ETOOBIG;
    if (!(d->flags & DF_INTRO)) {
        struct cell cl = {.chain_id = d->id, .cmd = CELL_CHAIN_DELIVER, .len = (uint16_t)len};

        memcpy(cl.payload, data, len);
        return link_send(d->l, &cl); /* the caller counts it, or not (acknowledgements) */
    }
    ch = cchain_find(c, d->chain);
    l = hid_link(ch);
    if (!l)
        return OVL_ECLOSED;
    memset(body, 0, sizeof(body));
    body_hdr_put(body, BODY_INTRO_BACK, (uint16_t)(BODY_HANDLE + len));
    memcpy(body + BODY_HDR, d->handle, BODY_HANDLE);
    memcpy(body + BODY_HDR + BODY_HANDLE, data, len);
    rc = cchain_fwd_send(ch, l, ch->length, body);
    ovl_wipe(body, sizeof(body));
    return rc;
}

void deliv_from(const struct deliv *d, struct msg_from *from)
{
    from->link = (d->flags & DF_INTRO) ? DELIV_INTRO_SRC | d->chain : d->l->serial;
    from->chain = d->id;
}

/* ---- introduction relays ---- */

/* Whether relay pk is the relay of a slot already. */
static bool hid_uses(const struct hidden *h, unsigned n, const uint8_t pk[OVL_ED25519_PK])
{
    for (unsigned i = 0; i < n; i++)
        if (h->slot[i].line && memcmp(h->slot[i].line->exit.id_pk, pk, OVL_ED25519_PK) == 0)
            return true;
    return false;
}

/* Whether relay d may become an introduction relay: a relay, not
 * ourselves, not another slot's, sharing a suite with us. */
static bool hid_can(const struct client *c, const struct desc *d)
{
    return (d->flags & DESC_RELAY) && memcmp(d->id_pk, c->n->id.pk, OVL_ED25519_PK) != 0 &&
           !hid_uses(c->hidden, c->o.intros, d->id_pk) && (d->suites & c->n->opts.aead_suites);
}

/* Give slot s a line to a relay drawn uniformly from those hid_can takes. */
static void hid_pick(struct client *c, struct hid_slot *s, const struct desc *relays, unsigned n)
{
    unsigned cand = 0, k;
    struct cline *line;

    for (unsigned i = 0; i < n; i++)
        cand += hid_can(c, &relays[i]);
    if (!cand || !(line = calloc(1, sizeof(*line))))
        return;
    k = ovl_random_uniform(cand);
    for (unsigned i = 0; i < n; i++) {
        if (!hid_can(c, &relays[i]))
            continue;
        if (k-- == 0) {
            line->flags = CLF_EXIT | CLF_INTRO;
            line->exit = relays[i];
            cchain_line_add(c, line);
            s->line = line;
            return;
        }
    }
    free(line);
}

static void hid_on_list(void *arg, int err, const struct desc *relays, unsigned n)
{
    struct client *c = arg;
    struct hidden *h = c->hidden;

    h->flags &= ~HF_LIST;
    if (err) {
        h->list_try_ms = clock_now_ms() + HID_LIST_RETRY_MS;
        return;
    }
    for (unsigned i = 0; i < c->o.intros; i++)
        if (!h->slot[i].line)
            hid_pick(c, &h->slot[i], relays, n);
    cchain_maybe_build(c);
}

/* Forget what of slot s is gone: a dead line (its relay lost, or no chain
 * to it could be built) and chains that ended. */
static void hid_slot_check(struct client *c, struct hid_slot *s)
{
    struct hidden *h = c->hidden;
    struct cchain *ch;

    if (s->line && (s->line->flags & CLF_DEAD)) {
        cchain_line_free(s->line);
        s->line = NULL; /* another relay is picked */
    }
    ch = s->held ? cchain_find(c, s->held) : NULL;
    if (s->held && (!s->line || !ch || (ch->state != CCH_READY && ch->state != CCH_RETIRING) ||
                    ch->splices != s->held_splices)) {
        s->held = 0;
        h->flags |= HF_DIRTY;
    }
    ch = s->asking ? cchain_find(c, s->asking) : NULL;
    if (s->asking && (!s->line || !ch || ch->state != CCH_READY || ch->splices != s->ask_splices))
        s->asking = 0;
}

/* Ask slot s's relay to take a fresh cookie on ch, its line's new
 * current chain. The cookie lives as long as a descriptor may name it. */
static void hid_establish(struct client *c, struct hid_slot *s, struct cchain *ch)
{
    uint8_t body[ONION_BODY], msg[INTRO_SIG_MSG_LEN];
    uint8_t *a = body + BODY_HDR;
    uint64_t exp = clock_wall_ms() + c->o.lifetime_ms + c->o.idesc_life_ms;
    struct link *l = hid_link(ch);

    if (!l)
        return;
    if (exp > clock_wall_ms() + IDESC_MAX_LIFE_MS)
        exp = clock_wall_ms() + IDESC_MAX_LIFE_MS;
    ovl_random(s->ask_cookie, sizeof(s->ask_cookie));
    memset(body, 0, sizeof(body));
    body_hdr_put(body, BODY_INTRO_ESTABLISH, BODY_INTRO_EST_LEN);
    memcpy(a, s->ask_cookie, BODY_COOKIE);
    memcpy(a + BODY_COOKIE, c->n->id.pk, OVL_ED25519_PK);
    st_le64(a + BODY_INTRO_EXP, exp);
    intro_sig_msg(msg, s->line->exit.id_pk, s->ask_cookie, exp);
    if (ovl_sign(&c->n->id, msg, sizeof(msg), a + BODY_INTRO_SIG) == 0 &&
        cchain_fwd_send(ch, l, ch->length, body) == 0) {
        s->asking = ch->serial;
        s->ask_splices = ch->splices;
    }
}

/* Make and sign the descriptor naming the cookies held now into out;
 * its length, or 0 when no relay holds one. */
static size_t hid_make(struct client *c, uint8_t out[IDESC_MAX_LEN])
{
    struct hidden *h = c->hidden;
    const struct dir_onion *keys;
    unsigned n_keys = 0;
    struct idesc d;
    size_t len = 0;

    memset(&d, 0, sizeof(d));
    for (unsigned i = 0; i < c->o.intros; i++) {
        const struct hid_slot *s = &h->slot[i];

        if (!s->held)
            continue;
        memcpy(d.intro[d.n_intro].relay_pk, s->line->exit.id_pk, OVL_ED25519_PK);
        memcpy(d.intro[d.n_intro++].cookie, s->cookie, IDESC_COOKIE_LEN);
    }
    keys = dir_onion_keys(c->n->dir, &n_keys);
    if (!d.n_intro || !n_keys)
        return 0;
    /* Larger than any before, across restarts too: the wall clock. */
    d.seq = h->seq = h->seq + 1 > clock_wall_ms() ? h->seq + 1 : clock_wall_ms();
    d.suites = (uint8_t)(c->n->opts.aead_suites & 3u);
    d.published_ms = clock_wall_ms();
    d.expires_ms = d.published_ms + c->o.idesc_life_ms;
    memcpy(d.id_pk, c->n->id.pk, OVL_ED25519_PK);
    memcpy(d.onion_pk, keys[0].pk, OVL_X25519_LEN);
    if (idesc_sign(&d, &c->n->id, out, IDESC_MAX_LEN, &len) != 0)
        return 0;
    h->expires_wall = d.expires_ms;
    return len;
}

/* Publish when the cookies changed, when the one out is due for
 * refresh, or when the last try found no bootstrap: through every chain
 * whose relay holds a cookie. */
static void hid_publish(struct client *c, uint64_t now)
{
    struct hidden *h = c->hidden;
    uint8_t body[ONION_BODY];
    size_t len;
    bool dirty = h->flags & HF_DIRTY;
    bool due = dirty || !h->pub_ms || h->pub_ms < h->pub_try_ms ||
               now >= h->pub_ms + HID_REFRESH(c->o.idesc_life_ms);
    unsigned sent = 0;

    /* Unanswered (or taken by no bootstrap): again after a while. */
    if (!due || (!dirty && h->pub_try_ms && now < h->pub_try_ms + HID_PUB_RETRY_MS))
        return;
    memset(body, 0, sizeof(body));
    len = hid_make(c, body + BODY_HDR);
    if (!len)
        return;
    body_hdr_put(body, BODY_PUBLISH, (uint16_t)len);
    for (unsigned i = 0; i < c->o.intros; i++) {
        struct cchain *ch = h->slot[i].held ? cchain_find(c, h->slot[i].held) : NULL;
        struct link *l = hid_link(ch);

        sent += l && cchain_fwd_send(ch, l, ch->length, body) == 0;
    }
    if (sent) {
        h->flags &= ~HF_DIRTY;
        h->pub_try_ms = now;
        h->pub_seq = h->seq;
    }
}

void hidden_tick(struct client *c, uint64_t now)
{
    struct hidden *h = c->hidden;
    bool need = false;

    if (!h)
        return;
    for (unsigned i = 0; i < c->o.intros; i++) {
        struct hid_slot *s = &h->slot[i];
        struct cchain *cur;

        hid_slot_check(c, s);
        if (!s->line) {
            need = true;
            continue;
        }
        cur = s->line->current; /* a chain spliced since cleared held and asking above */
        if (cur && cur->state == CCH_READY && cur->serial != s->held &&
            cur->serial != s->asking)
            hid_establish(c, s, cur);
    }
    if (need && !(h->flags & HF_LIST) && now >= h->list_try_ms) {
        if (dir_request_list(c->n->dir, hid_on_list, c) == 0)
            h->flags |= HF_LIST;
        else
            h->list_try_ms = now + HID_LIST_RETRY_MS;
    }
    hid_publish(c, now);
}

/* The slot whose line ch serves, or NULL. */
static struct hid_slot *hid_slot_of(struct client *c, const struct cchain *ch)
{
    for (unsigned i = 0; i < c->o.intros; i++)
        if (c->hidden->slot[i].line == ch->line)
            return &c->hidden->slot[i];
    return NULL;
}

bool hidden_body(struct cchain *ch, uint8_t cmd, const uint8_t *args, size_t len)
{
    struct client *c = ch->c;
    struct hidden *h = c->hidden;
    struct hid_slot *s = h ? hid_slot_of(c, ch) : NULL;

    if (!s)
        return false;
    switch (cmd) {
    case BODY_INTRO_OK:
        if (len != BODY_COOKIE || s->asking != ch->serial || ch->splices != s->ask_splices ||
            !ovl_equal(args, s->ask_cookie, BODY_COOKIE))
            return false;
        memcpy(s->cookie, s->ask_cookie, BODY_COOKIE);
        s->held = ch->serial;
        s->held_splices = s->ask_splices;
        s->asking = 0;
        h->flags |= HF_DIRTY; /* this chain's cookie replaces the last one's */
        c->st.intros_established++;
        hid_publish(c, clock_now_ms());
        return true;
    case BODY_INTRO_FAIL:
        if (len != BODY_COOKIE + 1 || s->asking != ch->serial ||
            !ovl_equal(args, s->ask_cookie, BODY_COOKIE))
            return false;
        log_info(&c->n->log, "client: introduction relay refused our cookie (reason %u)",
                 args[BODY_COOKIE]);
        c->st.intros_refused++;
        s->asking = 0;
        s->line->flags |= CLF_DEAD; /* another relay, at the next tick */
        return true;
    case BODY_PUBLISHED:
        if (len != 1)
            return false;
        if (args[0] > 0) {
            c->st.idesc_published++;
            if (h->pub_seq == h->seq)
                h->pub_ms = clock_now_ms();
        } else {
            c->st.idesc_unpublished++;
        }
        return true;
    default:
        return false;
    }
}

int client_hidden(const struct client *c, struct client_hidden_info *hi)
{
    const struct hidden *h = c ? c->hidden : NULL;
    uint64_t now = clock_now_ms(), wall = clock_wall_ms();

    memset(hi, 0, sizeof(*hi));
    if (!h)
        return OVL_ENOENT;
    for (unsigned i = 0; i < c->o.intros; i++) {
        const struct hid_slot *s = &h->slot[i];
        struct client_intro_info *ii = &hi->intro[hi->n];
        const struct deliv *d;

        if (!s->line)
            continue;
        memcpy(ii->relay, s->line->exit.id_pk, OVL_ED25519_PK);
        ii->state = s->held ? "established" : s->asking ? "establishing" : "building";
        ii->chain = s->held ? s->held : s->asking;
        DL_FOREACH(c->delivs, d)
        {
            ii->deliveries += (d->flags & DF_INTRO) && s->held && d->chain == s->held;
        }
        hi->n++;
    }
    hi->seq = h->pub_ms ? h->pub_seq : 0;
    hi->published_ago_ms = h->pub_ms ? now - h->pub_ms : 0;
    hi->expires_in_ms = h->pub_ms && h->expires_wall > wall ? h->expires_wall - wall : 0;
    return 0;
}
