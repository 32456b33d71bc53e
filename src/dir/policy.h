/* policy.h - exit policies: which destinations an exit opens TCP
 * connections to (docs/CONFIG.md "[exit]", docs/PROTOCOL.md 15.1).
 *
 * Text form ([exit] policy, ovlctl relays), Tor's ExitPolicy shape: rules
 * separated by ',' or newlines, blanks (space, tab, CR) around a rule
 * ignored, empty rules skipped:
 *   accept|reject ADDR[/BITS]:PORT[-PORT]
 * ADDR is '*' (any address of either family; takes no /BITS), '*4' (any
 * IPv4), '*6' (any IPv6), an IPv4 literal or a bracketed IPv6 literal
 * ([2001:db8::1]). BITS is the prefix length, 0..32 or 0..128 (default:
 * the whole address); address bits past it are dropped (10.1.2.3/8 is
 * 10.0.0.0/8). PORT is '*' (1-65535), a port 1..65535 or a range LO-HI
 * with LO <= HI. accept and reject are lowercase.
 *
 * Matching: the first rule whose address and port cover the destination
 * decides; a destination no rule covers is rejected (so an empty policy
 * rejects everything). An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is
 * judged as the IPv4 address a.b.c.d, because a dial to it reaches that
 * address: IPv4 rules and '*4' cover it, IPv6 rules never do.
 *
 * Binary form (in descriptors), rule after rule, nothing else:
 *   head(1) | [bits(1) | prefix(ceil(bits / 8))] | [lo(2)] | [hi(2)]
 * head: bits 0-1 family (0 any, 1 IPv4, 2 IPv6), bits 2-3 ports (0 all:
 * no port bytes; 1 one port: lo; 2 a range lo < hi, not 1-65535: lo, hi),
 * bit 7 accept, bits 4-6 zero. bits and the prefix are present unless the
 * family is any; bits of the prefix's last byte past the prefix length are
 * zero. Ports are LE, 1..65535. The encoding of a policy is unique:
 * decoding refuses anything exit_policy_encode would not write.
 *
 * Nothing here allocates or keeps a pointer: every buffer is the caller's.
 */
#ifndef OVL_DIR_POLICY_H
#define OVL_DIR_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/err.h"

#define EXIT_POLICY_MAX_RULES 32
#define EXIT_POLICY_ENC_MAX   (EXIT_POLICY_MAX_RULES * 22) /* IPv6 /128, a port range */

enum exit_family {
    EXIT_ANY = 0, /* '*': either family */
    EXIT_V4 = 1,
    EXIT_V6 = 2,
};

struct exit_rule {
    uint8_t accept;   /* 1 accept, 0 reject */
    uint8_t family;   /* enum exit_family */
    uint8_t bits;     /* prefix length: 0 for EXIT_ANY, at most 32 or 128 */
    uint8_t addr[16]; /* the prefix (IPv4: bytes 0..3), zero past bits */
    uint16_t lo, hi;  /* ports, 1 <= lo <= hi */
};

struct exit_policy {
    uint8_t n; /* rules in use, at most EXIT_POLICY_MAX_RULES */
    struct exit_rule rules[EXIT_POLICY_MAX_RULES];
};

/* Parse the text form and add its rules after the first p->n of p (zero
 * p for a new policy; a config key given on several lines adds each
 * line's). On failure return OVL_EINVAL with p->n as it was, *bad the
 * index (from 0) of the bad rule among the text's non-empty ones and *why
 * a short static reason ("bad prefix length"); bad and why may be NULL.
 * Blank text adds no rule. A NULL p or text, or p->n over the maximum,
 * is OVL_EINVAL with bad and why untouched. */
int exit_policy_parse(struct exit_policy *p, const char *text, unsigned *bad,
                      const char **why) OVL_WUR;

/* True when p accepts a connection to addr (len 4: IPv4, 16: IPv6; any
 * other length is rejected) on port. */
bool exit_policy_match(const struct exit_policy *p, const uint8_t *addr, size_t len, uint16_t port);

/* True when p might accept some address on port, for a destination only
 * the exit will resolve: false only when no address of either family can
 * be accepted there. It may say true for an accept rule that earlier
 * narrower rejects shadow whole. */
bool exit_policy_may_accept_port(const struct exit_policy *p, uint16_t port);

/* Encode p into out (cap bytes); *len receives the size (0 for an empty
 * policy). OVL_EINVAL when a rule breaks the limits above, OVL_ETOOBIG
 * when cap is too small. */
int exit_policy_encode(const struct exit_policy *p, uint8_t *out, size_t cap, size_t *len) OVL_WUR;

/* Decode exactly len bytes into p; OVL_EPROTO (and p empty) for anything
 * malformed, more than EXIT_POLICY_MAX_RULES rules or trailing bytes. */
int exit_policy_decode(struct exit_policy *p, const uint8_t *in, size_t len) OVL_WUR;

/* Write the text form of p into out (cap bytes, at least 5), rules joined
 * by ", "; it parses back to p. OVL_ETOOBIG when it does not fit: out then
 * holds the rules that fit and " ...". OVL_EINVAL for bad arguments. */
int exit_policy_format(const struct exit_policy *p, char *out, size_t cap);

#endif
