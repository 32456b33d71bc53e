/* metrics.c - the exposition of every counter and gauge (metrics.h), and
 * the control command "metrics" that carries it (docs/CONTROL.md).
 *
 * Most families are rows of one table: where the value is (a stats
 * structure and an offset, as the counters of "status" are), whether it
 * is a gauge and in which unit it is kept, and one string with each row's
 * name, labels and help, so that the rows hold no pointer. A row with an
 * empty name is one more sample of the family above it (another label
 * value). Families whose labels come from the code (link states, close
 * reasons, transports, drop reasons) and the histograms are written by
 * the functions after the table.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "chain/relay.h"
#include "client/client.h"
#include "control/ctl_int.h"
#include "control/metrics.h"
#include "core/link.h"
#include "core/memcap.h"
#include "core/tp_quic.h"
#include "dir/dir.h"
#include "ovl_config.h"

#define MX_LINE_MAX 512 /* one line of the exposition; a control line= holds it */

/* Where a row's value is. */
enum mx_src {
    MX_NODE,   /* struct node_counters */
    MX_NODEG,  /* struct mx_node: gauges worked out here */
    MX_QUIC,   /* the QUIC listeners' counters, summed */
    MX_CTL,    /* the control server's */
    MX_HTTP,   /* the metrics listener's, while it runs */
    MX_RELAY,  /* the relay role's */
    MX_LOOP,   /* the relay's loop cover: its cover-only client */
    MX_CLIENT, /* the client role's */
    MX_DIR,    /* every node's directory */
    MX_BOOT,   /* a bootstrap's */
    MX_BW,     /* the bandwidth meter (core/tp_meter.h) */
    MX_ACCT,   /* accounting (core/bw.h), struct mx_acct */
    MX_SRCS
};

/* Accounting, as gauges (core/acct.h): the current periods. */
struct mx_acct {
    uint64_t dormant, dormant_count, max[ACCT_PERIODS], used[ACCT_PERIODS][2];
};

/* The node's gauges that are no field of a stats structure. */
struct mx_node {
    uint64_t links_in, queued, max_queued, chain_ids, peers, uptime_ms, rss, registered;
};

#define MX_T_NODE   struct node_counters
#define MX_T_NODEG  struct mx_node
#define MX_T_QUIC   struct tp_quic_stats
#define MX_T_CTL    struct control_stats
#define MX_T_HTTP   struct mhttp_stats
#define MX_T_RELAY  struct relay_stats
#define MX_T_LOOP   struct client_stats
#define MX_T_CLIENT struct client_stats
#define MX_T_DIR    struct dir_stats
#define MX_T_BOOT   struct dir_stats
#define MX_T_BW     struct tp_meter
#define MX_T_ACCT   struct mx_acct

/* Bits of a row's flags. */
#define MX_GAUGE 1u /* else a counter, named ..._total */
#define MX_MS    2u /* kept in milliseconds, written in seconds */
#define MX_US    4u /* kept in microseconds, written in seconds */

#define G   MX_GAUGE
#define IN  "direction=\"in\""
#define OUT "direction=\"out\""

/* Every row: source, field, its bits, flags, name (without ovl_, the
 * source's prefix (mx_prefix) and _total; "" for the family above),
 * labels, help ("" likewise). */
/* clang-format off */
#define MX_ROWS(M)                                                                                 \
    M(NODE, links_accepted, 64, 0, "links_created", IN, "Links made: accepted (in), dialed (out)") \
    M(NODE, links_dialed, 64, 0, "", OUT, "")                                                      \
    M(NODEG, links_in, 64, G, "links_inbound", "", "Inbound links not closing")                    \
    M(NODE, links_evicted, 64, 0, "links_evicted", "", "Inbound links closed in their handshake to make room") \
    M(NODE, links_limited_block, 64, 0, "links_refused_block", "", "Inbound connections refused: their address block held its share") \
    M(NODE, memory_closed, 64, 0, "links_closed_memory", "", "Links closed: all send queues were over max_queued") \
    M(NODE, hs_limited, 64, 0, "handshakes_refused", "reason=\"rate\"", "Handshake messages 1 refused before public-key work") \
    M(NODE, hs_replays, 64, 0, "", "reason=\"replay\"", "")                                        \
    M(NODE, handshakes_ok, 64, 0, "handshakes", "result=\"ok\"", "Link handshakes finished, by result") \
    M(NODE, handshakes_failed, 64, 0, "", "result=\"failed\"", "")                                  \
    M(NODE, cells_in, 64, 0, "link_cells", IN, "Cells received and sent on every link")            \
    M(NODE, cells_out, 64, 0, "", OUT, "")                                                         \
    M(NODE, cells_unhandled, 64, 0, "link_cells_unhandled", "", "Cells whose command nobody handles") \
    M(NODE, frames_in, 64, 0, "link_frames", IN, "Transport frames received and sent")             \
    M(NODE, frames_out, 64, 0, "", OUT, "")                                                        \
    M(NODE, padding_in, 64, 0, "link_padding_cells", IN, "Link padding cells received and sent")   \
    M(NODE, padding_out, 64, 0, "", OUT, "")                                                       \
    M(NODE, rekeys, 64, 0, "link_rekeys", "", "Link key ratchet steps")                            \
    M(NODE, heartbeats, 64, 0, "link_heartbeats", "", "PINGs sent on quiet links")                 \
    M(NODE, pongs_skipped, 64, 0, "link_pongs_skipped", "", "PONGs not sent: the link's queue was full") \
    M(NODE, probes, 64, 0, "link_probes", "", "PINGs sent to peers a bootstrap doubted")           \
    M(NODE, probes_failed, 64, 0, "link_probes_failed", "", "Links those probes found dead")       \
    M(NODE, dead_detect_ms_last, 64, G | MX_MS, "link_dead_detect_last_seconds", "", "Silence before the last link declared dead") \
    M(NODE, dead_detect_ms_max, 64, G | MX_MS, "link_dead_detect_max_seconds", "", "Longest silence before a link was declared dead") \
    M(NODEG, queued, 64, G, "link_queued_bytes", "", "Bytes waiting in the links' send queues")    \
    M(NODEG, max_queued, 64, G, "link_queued_limit_bytes", "", "[node] max_queued (0: no budget)") \
    M(NODE, dial_fallbacks, 64, 0, "dial_fallbacks", "", "Dials moved on to a relay's next address") \
    M(NODEG, peers, 64, G, "peers_configured", "", "[peer.NAME] sections")                         \
    M(NODEG, chain_ids, 64, G, "chain_ids", "", "Chain IDs in use on all links")                   \
    M(NODE, chain_unknown, 64, 0, "chain_cells_unknown", "", "Chain cells for an ID nobody owns")  \
    M(NODE, cover_out, 64, 0, "cover_cells", "", "Cover cells sent: link padding and chain cover") \
    M(NODE, cover_skipped, 64, 0, "cover_cells_skipped", "", "Cover cells not sent: over cover_budget") \
    M(NODE, reloads, 64, 0, "config_reloads", "result=\"taken\"", "Config files read again (SIGHUP, ovlctl reload), by result") \
    M(NODE, reloads_refused, 64, 0, "", "result=\"refused\"", "")                                \
    M(NODE, reload_failures, 64, 0, "config_reload_steps_failed", "", "Reload steps that could not apply their keys") \
    M(NODEG, uptime_ms, 64, G | MX_MS, "uptime_seconds", "", "Time since the node started")       \
    M(NODEG, rss, 64, G, "resident_memory_bytes", "", "Resident memory of the process")            \
    M(QUIC, datagrams, 64, 0, "datagrams", "", "Datagrams the QUIC listeners received")       \
    M(QUIC, dropped, 64, 0, "datagrams_dropped", "", "Of those, dropped as unusable")         \
    M(QUIC, refused, 64, 0, "initials_refused", "reason=\"slots\"", "Initials refused without state: no slot, or the block's share") \
    M(QUIC, refused_block, 64, 0, "", "reason=\"block\"", "")                                      \
    M(QUIC, retries, 64, 0, "retries", "", "Retry packets sent")                              \
    M(QUIC, resets, 64, 0, "resets", "", "Stateless resets sent")                             \
    M(QUIC, vneg, 64, 0, "version_negotiations", "", "Version negotiations sent")            \
    M(QUIC, handshakes, 64, 0, "accepted", "", "Connections the QUIC listeners handed on")    \
    M(QUIC, streams_refused, 64, 0, "streams_refused", "", "Connections closed: their peer opened streams past the lanes") \
    M(QUIC, conns, 32, G, "connections", "", "Connections of the QUIC listeners now")         \
    M(CTL, requests, 64, 0, "requests", "", "Control requests answered")                  \
    M(CTL, errors, 64, 0, "errors", "", "Control error replies")                           \
    M(CTL, clients_refused, 64, 0, "clients_refused", "", "Control clients turned away at the cap") \
    M(CTL, clients_dropped, 64, 0, "clients_dropped", "", "Control clients closed for idling") \
    M(HTTP, accepted, 64, 0, "connections", "", "Connections the metrics listener took") \
    M(HTTP, open, 32, G, "connections_open", "", "Its connections now")              \
    M(HTTP, refused, 64, 0, "refused", "", "Its connections closed at once: over a cap") \
    M(HTTP, timeouts, 64, 0, "timeouts", "", "Its connections closed for want of a request or of reading") \
    M(HTTP, answers[0], 64, 0, "answers", "code=\"200\"", "Its answers, by status")   \
    M(HTTP, answers[1], 64, 0, "", "code=\"400\"", "")                                             \
    M(HTTP, answers[2], 64, 0, "", "code=\"404\"", "")                                             \
    M(HTTP, answers[3], 64, 0, "", "code=\"405\"", "")                                             \
    M(HTTP, answers[4], 64, 0, "", "code=\"431\"", "")                                             \
    M(HTTP, answers[5], 64, 0, "", "code=\"505\"", "")                                             \
    M(RELAY, chains, 32, G, "chains", "", "Chains through this relay now")                   \
    M(RELAY, setups_in, 64, 0, "setups_received", "", "Chain setups received")               \
    M(RELAY, setups_ok, 64, 0, "setups", "result=\"ok\"", "Chain setups done, by result")    \
    M(RELAY, setups_failed, 64, 0, "", "result=\"failed\"", "")                                    \
    M(RELAY, cells_fwd_in, 64, 0, "forward_cells_received", "", "Forward cells received")    \
    M(RELAY, cells_peeled, 64, 0, "forward_cells_peeled", "", "Forward cells whose layer was removed") \
    M(RELAY, cells_forwarded, 64, 0, "forward_cells_sent", "", "Forward cells passed to the next hop") \
    M(RELAY, cells_back_in, 64, 0, "backward_cells_received", "", "Backward cells from the next hop") \
    M(RELAY, cells_back_out, 64, 0, "backward_cells_sent", "", "Backward cells sent to the previous hop") \
    M(RELAY, cells_originated, 64, 0, "cells_originated", "", "Backward cells this relay made") \
    M(RELAY, delivered, 64, 0, "deliveries", "", "Delivery IDs an exit opened")              \
    M(RELAY, delivered_cells, 64, 0, "delivered_cells", "", "Cells an exit handed to their destination") \
    M(RELAY, delivered_back, 64, 0, "delivered_back_cells", "", "Cells destinations sent back") \
    M(RELAY, dropped_cover, 64, 0, "cover_cells_dropped", "", "Drop cover discarded as intended") \
    M(RELAY, broken, 64, 0, "chains_broken", "", "Chains whose next hop this relay lost")   \
    M(RELAY, reextended, 64, 0, "chains_reextended", "", "Of those, extended to a replacement") \
    M(RELAY, stalled, 64, 0, "links_stalled", "", "Outgoing links closed for holding others back") \
    M(RELAY, bytes_held, 64, G, "held_bytes", "", "Memory the relay holds: chains, setups, waiting cells, streams") \
    M(RELAY, streams_active, 32, G, "exit_streams", "", "Exit streams now")                  \
    M(RELAY, streams_opened, 64, 0, "exit_streams_opened", "", "Exit streams whose target connection opened") \
    M(RELAY, streams_refused_policy, 64, 0, "exit_streams_refused", "reason=\"policy\"", "Exit stream opens refused, by reason") \
    M(RELAY, streams_refused_limit, 64, 0, "", "reason=\"limit\"", "")                             \
    M(RELAY, streams_failed_connect, 64, 0, "exit_streams_failed", "", "Exit streams that did not resolve or connect") \
    M(RELAY, streams_unknown, 64, 0, "exit_frames_unknown", "", "Frames for no stream of the exit") \
    M(RELAY, stream_bytes_in, 64, 0, "exit_stream_bytes", IN, "Bytes the exit read from (in) and wrote to (out) targets") \
    M(RELAY, stream_bytes_out, 64, 0, "", OUT, "")                                                 \
    M(RELAY, intros_active, 32, G, "intro_cookies", "", "Introduction cookies held now")     \
    M(RELAY, intros_established, 64, 0, "intro_cookies_taken", "", "Introduction cookies taken") \
    M(RELAY, intros_refused_protocol, 64, 0, "intro_cookies_refused", "reason=\"protocol\"", "Introduction cookies refused, by reason") \
    M(RELAY, intros_refused_expired, 64, 0, "", "reason=\"expired\"", "")                          \
    M(RELAY, intros_refused_busy, 64, 0, "", "reason=\"busy\"", "")                                \
    M(RELAY, intros_refused_limit, 64, 0, "", "reason=\"limit\"", "")                              \
    M(RELAY, intro_delivs_active, 32, G, "intro_deliveries", "", "Deliveries bound to cookies now") \
    M(RELAY, intro_cells_down, 64, 0, "intro_cells", "direction=\"down\"", "Cells passed down to hidden nodes and back up") \
    M(RELAY, intro_cells_up, 64, 0, "", "direction=\"up\"", "")                                    \
    M(RELAY, intro_unknown, 64, 0, "intro_unknown", "", "Introduction cells for no cookie or handle held") \
    M(RELAY, publishes, 64, 0, "publishes", "", "Inbound descriptors passed on to bootstraps") \
    M(RELAY, publishes_refused, 64, 0, "publishes_refused", "", "Publishes refused by the caps") \
    M(RELAY, hidden_delivs, 64, 0, "hidden_deliveries", "", "Deliveries to hidden nodes opened") \
    M(RELAY, hidden_gone, 64, 0, "hidden_gone", "", "Introductions that ended or reached no relay") \
    M(LOOP, loops_out, 64, 0, "cells", OUT, "The relay's loop cover: cells sent (out) and come back (in)") \
    M(LOOP, loops_in, 64, 0, "", IN, "")                                                           \
    M(LOOP, cover_skipped, 64, 0, "cells_skipped", "", "Loop cells not sent: over cover_budget") \
    M(LOOP, chains, 32, G, "chains", "", "Chains kept for loop cover now")              \
    M(LOOP, chains_built, 64, 0, "chains_built", "", "Loop chains built")               \
    M(LOOP, chains_failed, 64, 0, "chains_failed", "", "Loop chains failed or broken")  \
    M(CLIENT, messages_sent, 64, 0, "messages_sent", "", "Messages sent in full")           \
    M(CLIENT, messages_failed, 64, 0, "messages_failed", "", "Messages given up")           \
    M(CLIENT, messages_received, 64, 0, "messages_received", "", "Messages put in the inbox") \
    M(CLIENT, cells_out, 64, 0, "cells", OUT, "Chain cells sent and received")              \
    M(CLIENT, cells_in, 64, 0, "", IN, "")                                                         \
    M(CLIENT, fragments_in, 64, 0, "fragments_received", "", "Message fragments received") \
    M(CLIENT, chains, 32, G, "chains", "", "Live chains: building, ready, repairing or retiring") \
    M(CLIENT, chains_built, 64, 0, "chains_built", "", "Chains set up")                     \
    M(CLIENT, chains_failed, 64, 0, "chains_failed", "", "Chains failed")                   \
    M(CLIENT, chains_replaced, 64, 0, "chains_replaced", "", "Chains replaced before their end") \
    M(CLIENT, chains_repaired, 64, 0, "chains_repaired", "", "Chains repaired with a backup") \
    M(CLIENT, avoid_builds, 64, 0, "chains_avoiding", "", "Chains built to leave a destination out") \
    M(CLIENT, bytes_acked, 64, 0, "acked_bytes", "", "Message bytes acknowledged")          \
    M(CLIENT, busy_us, 64, MX_US, "busy_seconds", "", "Time with a message queued or unacknowledged") \
    M(CLIENT, send_queued, 32, G, "send_queued_messages", "", "Messages queued or waiting for their acknowledgement") \
    M(CLIENT, bytes_held, 64, G, "held_bytes", "", "Memory the client holds: messages, inbox, chains, streams") \
    M(CLIENT, inbox_messages, 32, G, "inbox_messages", "", "Messages waiting for recv")     \
    M(CLIENT, inbox_bytes, 64, G, "inbox_bytes", "", "Bytes waiting for recv")              \
    M(CLIENT, dropped_auth, 64, 0, "received_dropped", "reason=\"auth\"", "Received data dropped, by reason") \
    M(CLIENT, dropped_bad, 64, 0, "", "reason=\"bad\"", "")                                        \
    M(CLIENT, dropped_reassembly, 64, 0, "", "reason=\"reassembly\"", "")                          \
    M(CLIENT, dropped_inbox_full, 64, 0, "", "reason=\"inbox_full\"", "")                          \
    M(CLIENT, dropped_stale, 64, 0, "", "reason=\"stale\"", "")                                    \
    M(CLIENT, refused_tombstones, 64, 0, "", "reason=\"tombstones\"", "")                          \
    M(CLIENT, refused_share, 64, 0, "", "reason=\"share\"", "")                                    \
    M(CLIENT, refused_ids, 64, 0, "deliver_refused", "", "Delivery cells refused for their ID") \
    M(CLIENT, deliveries, 32, G, "deliveries", "", "Delivery IDs open now")                 \
    M(CLIENT, tombstones, 32, G, "tombstones", "", "Delivered messages remembered")         \
    M(CLIENT, duplicates, 64, 0, "duplicates", "", "Copies of messages already delivered")  \
    M(CLIENT, retransmits, 64, 0, "retransmits", "", "Messages sent again")                 \
    M(CLIENT, acks_sent, 64, 0, "acks", OUT, "Acknowledgements sent (out) and accepted (in)") \
    M(CLIENT, acks_in, 64, 0, "", IN, "")                                                          \
    M(CLIENT, replies_sent, 64, 0, "replies", OUT, "Replies sent (out) and received (in)")  \
    M(CLIENT, replies_in, 64, 0, "", IN, "")                                                       \
    M(CLIENT, reply_keys_dropped, 64, 0, "reply_keys_dropped", "", "Keys of sent messages forgotten early") \
    M(CLIENT, cover_out, 64, 0, "cover_cells", "", "Cover cells sent")                      \
    M(CLIENT, cover_skipped, 64, 0, "cover_cells_skipped", "", "Cover cells not sent: over cover_budget") \
    M(CLIENT, rate_missed, 64, 0, "rate_slots_missed", "", "Constant-rate slots with no chain or room") \
    M(CLIENT, loops_out, 64, 0, "loop_cells", OUT, "Loop cover cells sent (out) and come back (in)") \
    M(CLIENT, loops_in, 64, 0, "", IN, "")                                                         \
    M(CLIENT, streams_active, 32, G, "streams", "", "SOCKS streams open now")               \
    M(CLIENT, streams_opened, 64, 0, "streams_opened", "", "SOCKS streams the far end took") \
    M(CLIENT, streams_failed, 64, 0, "streams_failed", "", "SOCKS streams that did not finish both ways") \
    M(CLIENT, streams_no_exit, 64, 0, "streams_no_exit", "", "SOCKS streams no exit's policy takes") \
    M(CLIENT, socks_refused, 64, 0, "socks_refused", "", "SOCKS connections refused")       \
    M(CLIENT, stream_cells_out, 64, 0, "stream_cells", OUT, "Stream frames sent (out) and taken back (in)") \
    M(CLIENT, stream_cells_in, 64, 0, "", IN, "")                                                  \
    M(CLIENT, stream_unknown, 64, 0, "stream_frames_unknown", "", "Stream frames for no stream of ours") \
    M(CLIENT, service_streams_active, 32, G, "service_streams", "", "Streams to our services now") \
    M(CLIENT, service_streams_opened, 64, 0, "service_streams_opened", "", "Streams to our services connected") \
    M(CLIENT, service_streams_refused, 64, 0, "service_streams_refused", "", "Streams to our services refused") \
    M(CLIENT, service_streams_failed, 64, 0, "service_streams_failed", "", "Streams to our services failed") \
    M(CLIENT, service_records_bad, 64, 0, "service_records_bad", "", "Stream records dropped as bad") \
    M(CLIENT, service_replays, 64, 0, "service_replays", "", "Stream opens dropped as replays") \
    M(CLIENT, intros_established, 64, 0, "intros_established", "", "Cookies introduction relays took") \
    M(CLIENT, intros_refused, 64, 0, "intros_refused", "", "Cookies introduction relays refused") \
    M(CLIENT, intro_cells_in, 64, 0, "intro_cells", "", "Cells introduction relays handed down") \
    M(CLIENT, idesc_published, 64, 0, "idesc_published", "", "Inbound descriptors published") \
    M(CLIENT, idesc_unpublished, 64, 0, "idesc_unpublished", "", "Inbound descriptors no bootstrap took") \
    M(CLIENT, hidden_gone, 64, 0, "hidden_gone", "", "Introductions to hidden destinations that ended") \
    M(CLIENT, routes_offered, 64, 0, "routes_offered", "", "Routes the bootstraps offered") \
    M(CLIENT, routes_chosen, 64, 0, "routes_chosen", "", "Routes taken from those offers")  \
    M(CLIENT, routes_unfit, 64, 0, "routes_unfit", "", "Offers set aside as unfit")         \
    M(CLIENT, routes_local, 64, 0, "routes_local", "", "Routes picked from the relay list") \
    M(CLIENT, guards, 32, G, "guards", "", "Entry guards held now")                         \
    M(CLIENT, guards_sampled, 64, 0, "guards_sampled", "", "Relays sampled as guards")      \
    M(CLIENT, guards_loaded, 64, 0, "guards_loaded", "", "Guards read at start")            \
    M(CLIENT, guards_dropped_down, 64, 0, "guards_dropped", "reason=\"down\"", "Guards replaced, by reason") \
    M(CLIENT, guards_dropped_old, 64, 0, "", "reason=\"old\"", "")                                 \
    M(CLIENT, guard_failures, 64, 0, "guard_failures", "", "Chains that could not reach their guard") \
    M(NODEG, registered, 64, G, "dir_registered", "", "1 once a bootstrap accepted our descriptor") \
    M(DIR, requests_out, 64, 0, "requests_sent", "", "Our requests to bootstraps")             \
    M(DIR, replies_in, 64, 0, "replies_received", "", "Answers to them")                       \
    M(DIR, request_timeouts, 64, 0, "request_timeouts", "", "Our requests no bootstrap answered in time") \
    M(DIR, bad_replies, 64, 0, "replies_bad", "", "Answers refused")                           \
    M(DIR, registrations_ok, 64, 0, "registrations", "result=\"ok\"", "Our registrations, by result") \
    M(DIR, registrations_failed, 64, 0, "", "result=\"failed\"", "")                               \
    M(DIR, heartbeats_sent, 64, 0, "heartbeats_sent", "", "Heartbeats sent to bootstraps")     \
    M(DIR, reports_sent, 64, 0, "reports_sent", "", "Relays reported to bootstraps as failed") \
    M(DIR, idesc_published, 64, 0, "idesc_published", "", "Inbound descriptors passed on to bootstraps") \
    M(DIR, idesc_answers, 64, 0, "idesc_answers", "", "Lookups answered by an inbound descriptor taken") \
    M(DIR, idesc_answer_bad, 64, 0, "idesc_answers_refused", "reason=\"bad\"", "Lookups answered by an inbound descriptor refused, by reason") \
    M(DIR, idesc_answer_bad_sig, 64, 0, "", "reason=\"bad_sig\"", "")                              \
    M(DIR, idesc_answer_refused[IDESC_OTHER_KEY], 64, 0, "", "reason=\"other_key\"", "")          \
    M(DIR, idesc_answer_refused[IDESC_EXPIRED], 64, 0, "", "reason=\"expired\"", "")              \
    M(DIR, idesc_answer_refused[IDESC_FUTURE], 64, 0, "", "reason=\"future\"", "")                \
    M(DIR, idesc_answer_refused[IDESC_STALE], 64, 0, "", "reason=\"stale\"", "")                  \
    M(DIR, list_relays, 32, G, "list_relays", "", "Relays in the last good relay list")        \
    M(DIR, list_restored, 64, G, "list_restored", "", "1 when the relay list on disk was taken at start") \
    M(DIR, list_fallbacks, 64, 0, "list_fallbacks", "", "Relay lists answered from the last good one") \
    M(DIR, lookup_fallbacks, 64, 0, "lookup_fallbacks", "", "Lookups answered without a bootstrap") \
    M(DIR, lists_saved, 64, 0, "lists_saved", "", "Relay lists written to disk")               \
    M(DIR, requests_in, 64, 0, "requests_received", "", "Directory requests received")         \
    M(DIR, replies_out, 64, 0, "replies_sent", "", "Directory requests answered")              \
    M(DIR, bad_requests, 64, 0, "requests_bad", "", "Malformed directory requests")            \
    M(DIR, replies_dropped, 64, 0, "replies_dropped", "", "Answers without room to send")      \
    M(DIR, requests_limited, 64, 0, "requests_busy", "reason=\"rate\"", "Requests answered busy: over the link's rate, or no room") \
    M(DIR, replies_no_room, 64, 0, "", "reason=\"no_room\"", "")                                   \
    M(DIR, bad_addresses, 64, 0, "descriptors_bad_address", "", "Descriptors refused for an address that is not public") \
    M(DIR, dropped_link_closed, 64, 0, "nodes_dropped_link_closed", "", "Registered nodes dropped when their link closed") \
    M(BOOT, reg.relays, 32, G, "relays", "", "Registered relays now")                          \
    M(BOOT, reg.endpoints, 32, G, "endpoints", "", "Registered endpoints now")                 \
    M(BOOT, reg.replicated_relays, 32, G, "relays_replicated", "", "Of those relays, held from other bootstraps") \
    M(BOOT, reg.replicated_endpoints, 32, G, "endpoints_replicated", "", "Of those endpoints, held from other bootstraps") \
    M(BOOT, reg.registered, 64, 0, "nodes_registered", "", "Nodes registered")                 \
    M(BOOT, reg.dropped, 64, 0, "nodes_dropped", "", "Nodes dropped")                          \
    M(BOOT, reg.full, 64, 0, "registrations_full", "", "Registrations refused at max_nodes")   \
    M(BOOT, registrations_full_block, 64, 0, "registrations_full_block", "", "New identities refused at max_nodes_per_block") \
    M(BOOT, reports_in, 64, 0, "reports_received", "", "Reports of listed relays")             \
    M(BOOT, reports_probed, 64, 0, "reports_probed", "", "Probes those reports caused")       \
    M(BOOT, reg.chains, 32, G, "cached_chains", "", "Chains cached now")                       \
    M(BOOT, reg.chains_generated, 64, 0, "chains_generated", "", "Chains generated")           \
    M(BOOT, reg.chains_refreshed, 64, 0, "chains_refreshed", "", "Chain sets drawn anew for a fresh request") \
    M(BOOT, reg.chains_cached, 64, 0, "chains_from_cache", "", "Chain answers served from the cache") \
    M(BOOT, reg.chains_evicted, 64, 0, "chains_evicted", "", "Cached chains evicted")          \
    M(BOOT, lists_built, 64, 0, "lists_built", "", "Relay lists signed")                       \
    M(BOOT, lists_limited, 64, 0, "lists_limited", "", "Relay lists answered busy: over list_rate") \
    M(BOOT, requests_limited_block, 64, 0, "requests_limited_block", "", "Requests answered busy: over the block's rate") \
    M(BOOT, chains_limited_block, 64, 0, "chains_limited_block", "", "Chain draws refused: over the block's rate") \
    M(BOOT, chains_held_block, 64, 0, "chains_held_block", "", "Of those, answered with the cached set") \
    M(BOOT, blocks, 32, G, "blocks", "", "Address blocks whose buckets are held")              \
    M(BOOT, idescs, 32, G, "idescs", "", "Inbound descriptors held now")                       \
    M(BOOT, idesc_accepted, 64, 0, "idesc_received", "outcome=\"accepted\"", "Inbound descriptors judged, by outcome") \
    M(BOOT, idesc_bad, 64, 0, "", "outcome=\"bad\"", "")                                           \
    M(BOOT, idesc_bad_sig, 64, 0, "", "outcome=\"bad_sig\"", "")                                   \
    M(BOOT, idesc_relay, 64, 0, "", "outcome=\"relay\"", "")                                       \
    M(BOOT, idesc_full, 64, 0, "", "outcome=\"full\"", "")                                         \
    M(BOOT, idesc_refused[IDESC_EXPIRED], 64, 0, "", "outcome=\"expired\"", "")                   \
    M(BOOT, idesc_refused[IDESC_FUTURE], 64, 0, "", "outcome=\"future\"", "")                     \
    M(BOOT, idesc_refused[IDESC_STALE], 64, 0, "", "outcome=\"stale\"", "")                       \
    M(BOOT, idesc_refused[IDESC_REPLAY], 64, 0, "", "outcome=\"replay\"", "")                     \
    M(BOOT, idescs_dropped, 64, 0, "idescs_expired", "", "Held inbound descriptors dropped when they expired") \
    M(BOOT, syncs_sent, 64, 0, "syncs_sent", "", "Sync requests to the other bootstraps")      \
    M(BOOT, syncs_ok, 64, 0, "sync_answers", "result=\"ok\"", "Sync answers, by result")       \
    M(BOOT, syncs_failed, 64, 0, "", "result=\"failed\"", "")                                      \
    M(BOOT, syncs_served, 64, 0, "syncs_served", "", "Sync documents sent to the other bootstraps") \
    M(BOOT, syncs_refused, 64, 0, "syncs_refused", "", "Sync requests from a peer not ours")   \
    M(BOOT, sync_added, 64, 0, "sync_entries", "result=\"added\"", "Entries of sync documents, by result") \
    M(BOOT, sync_bad, 64, 0, "", "result=\"bad\"", "")                                             \
    M(BOOT, sync_full, 64, 0, "", "result=\"full\"", "")                                           \
    M(BOOT, reg.replicated_kept, 64, 0, "replicated_kept", "", "Replicated nodes kept on a close or report") \
    M(BOOT, reg.replicated_ceded, 64, 0, "replicated_ceded", "", "Replicated nodes dropped to make room") \
    M(BOOT, registry_loaded, 64, 0, "registry_loaded", "", "Nodes read from the registry file at start") \
    M(BOOT, registry_skipped, 64, 0, "registry_skipped", "", "Entries of that file no longer valid") \
    M(BOOT, registry_saves, 64, 0, "registry_saves", "", "Writes of the registry file") \
    M(BW, b[TPM_NODE][0].rate, 64, G, "limit_bytes_per_second", "scope=\"node\"", "The limits in force, each way: [node] rate, [relay] rate (0: none)") \
    M(BW, b[TPM_RELAY][0].rate, 64, G, "", "scope=\"relay\"", "")                                  \
    M(BW, b[TPM_NODE][0].burst, 64, G, "burst_bytes", "scope=\"node\"", "What may pass at once after a quiet spell") \
    M(BW, b[TPM_RELAY][0].burst, 64, G, "", "scope=\"relay\"", "")                                 \
    M(BW, st[TPM_NODE].bytes[TPM_IN], 64, 0, "bytes", "scope=\"node\"," IN, "Bytes counted: every link frame (node), relayed cells (relay)") \
    M(BW, st[TPM_NODE].bytes[TPM_OUT], 64, 0, "", "scope=\"node\"," OUT, "")                      \
    M(BW, st[TPM_RELAY].bytes[TPM_IN], 64, 0, "", "scope=\"relay\"," IN, "")                      \
    M(BW, st[TPM_RELAY].bytes[TPM_OUT], 64, 0, "", "scope=\"relay\"," OUT, "")                    \
    M(BW, st[TPM_NODE].holds, 64, 0, "holds", "scope=\"node\"", "Links stopped (or streams held) for the limit") \
    M(BW, st[TPM_RELAY].holds, 64, 0, "", "scope=\"relay\"", "")                                   \
    M(BW, st[TPM_NODE].limited_ms, 64, MX_MS, "limited_seconds", "scope=\"node\"", "Time the limit held some link back") \
    M(BW, st[TPM_RELAY].limited_ms, 64, MX_MS, "", "scope=\"relay\"", "")                          \
    M(BW, st[TPM_NODE].limited_bytes[TPM_IN], 64, 0, "limited_bytes", "scope=\"node\"," IN, "Bytes counted meanwhile") \
    M(BW, st[TPM_NODE].limited_bytes[TPM_OUT], 64, 0, "", "scope=\"node\"," OUT, "")              \
    M(BW, st[TPM_RELAY].limited_bytes[TPM_IN], 64, 0, "", "scope=\"relay\"," IN, "")              \
    M(BW, st[TPM_RELAY].limited_bytes[TPM_OUT], 64, 0, "", "scope=\"relay\"," OUT, "")            \
    M(BW, n_wait, 32, G, "links_waiting", "", "Links waiting for tokens now")                  \
    M(ACCT, dormant, 64, G, "dormant", "", "1 while a period's bytes are spent: no new chains") \
    M(ACCT, dormant_count, 64, 0, "dormant_periods", "", "Times the relay went dormant")       \
    M(ACCT, max[ACCT_DAY], 64, G, "max_bytes", "period=\"day\"", "[relay] max_per_day, max_per_month (0: none)") \
    M(ACCT, max[ACCT_MONTH], 64, G, "", "period=\"month\"", "")                                    \
    M(ACCT, used[ACCT_DAY][0], 64, G, "period_bytes", "period=\"day\"," IN, "Relayed bytes counted in the current period") \
    M(ACCT, used[ACCT_DAY][1], 64, G, "", "period=\"day\"," OUT, "")                               \
    M(ACCT, used[ACCT_MONTH][0], 64, G, "", "period=\"month\"," IN, "")                            \
    M(ACCT, used[ACCT_MONTH][1], 64, G, "", "period=\"month\"," OUT, "")
/* clang-format on */

struct mx_row {
    uint16_t off; /* in the source's structure; CTL_U32 for a uint32_t */
    uint8_t src;  /* enum mx_src */
    uint8_t flags;
};

#define MX_ROW(s, f, bits, fl, name, lab, help)                                                    \
    {(uint16_t)(offsetof(MX_T_##s, f) | ((bits) == 32 ? CTL_U32 : 0)), MX_##s, fl},
#define MX_TEXT(s, f, bits, fl, name, lab, help) name "\0" lab "\0" help "\0"

/* Append one line printed by fmt; a line over MX_LINE_MAX fails out. */
__attribute__((format(printf, 2, 3))) static void mx_line(struct kvbuf *b, const char *fmt, ...)
{
    char line[MX_LINE_MAX];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof line) {
        b->err = b->err ? b->err : OVL_EINVAL;
        return;
    }
    kv_raw(b, line, (size_t)n);
}

/* HELP and TYPE of the family ovl_NAME (ovl_NAME_total for a counter). */
static void mx_head(struct kvbuf *b, const char *name, const char *type, const char *help)
{
    const char *tot = strcmp(type, "counter") == 0 ? "_total" : "";

    mx_line(b, "# HELP ovl_%s%s %s\n# TYPE ovl_%s%s %s\n", name, tot, help, name, tot, type);
}

/* Write us microseconds as seconds, without trailing zeros. */
static void mx_secs(char out[32], uint64_t us)
{
    int n = snprintf(out, 32, "%" PRIu64 ".%06" PRIu64, us / 1000000, us % 1000000);

    while (n > 0 && out[n - 1] == '0')
        out[--n] = '\0';
    if (n > 0 && out[n - 1] == '.')
        out[n - 1] = '\0';
}

int metrics_escape(char *out, size_t outlen, const char *v)
{
    size_t n = 0;

    for (; *v; v++) {
        const char *e = *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : *v == '\n' ? "\\n" : NULL;
        size_t k = e ? 2 : 1;

        if (n + k >= outlen) {
            if (outlen)
                out[0] = '\0';
            return OVL_ETOOBIG;
        }
        memcpy(out + n, e ? e : v, k);
        n += k;
    }
    if (n >= outlen)
        return OVL_ETOOBIG;
    out[n] = '\0';
    return (int)n;
}

void metrics_hist(struct kvbuf *b, const char *name, const char *help, const struct hist *h)
{
    char le[32];
    uint64_t c = 0;

    mx_head(b, name, "histogram", help);
    for (unsigned i = 0; i < HIST_BOUNDS; i++) {
        c += h->n[i];
        mx_secs(le, hist_bound_us[i]);
        mx_line(b, "ovl_%s_bucket{le=\"%s\"} %" PRIu64 "\n", name, le, c);
    }
    c += h->n[HIST_BOUNDS];
    mx_secs(le, h->sum_us);
    mx_line(b, "ovl_%s_bucket{le=\"+Inf\"} %" PRIu64 "\novl_%s_sum %s\novl_%s_count %" PRIu64 "\n",
            name, c, name, le, name, c);
}

/* The prefix of the names of source src's rows (in the order of enum mx_src). */
static const char *mx_prefix(unsigned src)
{
    static const char prefixes[] = "\0\0quic_\0control_\0metrics_http_\0relay_\0relay_loop_\0"
                                   "client_\0dir_\0dir_\0bandwidth_\0accounting_";
    const char *p = prefixes;

    while (src--)
        p += strlen(p) + 1;
    return p;
}

/* Every row whose source is there (base[src] not NULL). */
static void mx_rows(struct kvbuf *b, const void *const base[MX_SRCS])
{
    static const struct mx_row rows[] = {MX_ROWS(MX_ROW)};
    static const char text[] = MX_ROWS(MX_TEXT);
    const char *s = text;
    char name[96] = "", val[32];

    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const char *nm = s, *lab = nm + strlen(nm) + 1, *help = lab + strlen(lab) + 1;
        const struct mx_row *r = &rows[i];
        uint64_t v;

        s = help + strlen(help) + 1;
        if (*nm)
            snprintf(name, sizeof name, "%s%s", mx_prefix(r->src), nm);
        if (!base[r->src])
            continue;
        if (*help)
            mx_head(b, name, (r->flags & MX_GAUGE) ? "gauge" : "counter", help);
        v = ctl_stat(base[r->src], r->off);
        if (r->flags & (MX_MS | MX_US))
            mx_secs(val, (r->flags & MX_MS) ? v * 1000 : v);
        else
            snprintf(val, sizeof val, "%" PRIu64, v);
        mx_line(b, "ovl_%s%s%s%s%s %s\n", name, (r->flags & MX_GAUGE) ? "" : "_total",
                *lab ? "{" : "", lab, *lab ? "}" : "", val);
    }
}

/* The build, the roles and the links by state. */
static void mx_info(struct kvbuf *b, const struct node *n)
{
    static const char roles[] = "bootstrap\0relay\0client\0";
    uint64_t by_state[LINK_STATE_COUNT] = {0};
    char ver[64];
    unsigned i = 0;

    mx_head(b, "info", "gauge", "The version and transports of this ovld (always 1)");
    if (metrics_escape(ver, sizeof ver, OVL_VERSION) < 0)
        ver[0] = '\0';
    mx_line(b, "ovl_info{version=\"%s\",transports=\"%s\"} 1\n", ver, tp_names());
    mx_head(b, "role", "gauge", "The roles this node runs (1) or not (0)");
    for (const char *s = roles; *s; s += strlen(s) + 1, i++)
        mx_line(b, "ovl_role{role=\"%s\"} %u\n", s, (n->roles >> i) & 1u);
    for (const struct link *l = n->links; l; l = l->next)
        if ((unsigned)l->state < LINK_STATE_COUNT)
            by_state[l->state]++;
    mx_head(b, "links", "gauge", "Links now, by state");
    for (i = 0; i < LINK_STATE_COUNT; i++)
        mx_line(b, "ovl_links{state=\"%s\"} %" PRIu64 "\n", link_state_name((enum link_state)i),
                by_state[i]);
}

/* Bytes by transport, links closed by reason, relay cells dropped by reason. */
static void mx_reasons(struct kvbuf *b, const struct node *n, const struct relay_stats *rs)
{
    static const char tps[] = "tcp\0quic\0";
    const char *s = tps;

    mx_head(b, "link_bytes", "counter",
            "Bytes of the frames received (in) and sent (out), by transport");
    for (unsigned i = 0; i < TP_MAX; i++, s += strlen(s) + 1)
        if (tp_all_bits() & (1u << i))
            mx_line(b,
                    "ovl_link_bytes_total{direction=\"in\",transport=\"%s\"} %" PRIu64 "\n"
                    "ovl_link_bytes_total{direction=\"out\",transport=\"%s\"} %" PRIu64 "\n",
                    s, n->ctr.tp_bytes_in[i], s, n->ctr.tp_bytes_out[i]);
    mx_head(b, "link_closes", "counter", "Links closed, by reason");
    for (int r = LC_NONE + 1; r < LC_REASON_COUNT; r++)
        mx_line(b, "ovl_link_closes_total{reason=\"%s\"} %" PRIu64 "\n",
                link_close_reason_name((enum link_close_reason)r), n->ctr.link_closed[r]);
    if (!rs)
        return;
    mx_head(b, "relay_cells_dropped", "counter", "Cells the relay dropped, by reason");
    for (int i = 0; i < RD_COUNT; i++) {
        const char *name = relay_drop_name((enum relay_drop)i);

        if (name)
            mx_line(b, "ovl_relay_cells_dropped_total{reason=\"%s\"} %" PRIu64 "\n", name,
                    rs->dropped[i]);
    }
}

/* The node's gauges that no stats structure holds. */
static void mx_node_gauges(const struct node *n, struct mx_node *g)
{
    size_t rss = 0;

    memset(g, 0, sizeof *g);
    g->links_in = n->n_links_in;
    g->queued = memcap_queued(n);
    g->max_queued = n->opts.max_queued;
    g->chain_ids = n->n_chanmap;
    g->peers = n->n_peers;
    g->uptime_ms = ctl_since(clock_now_ms(), n->started_ms);
    g->rss = uv_resident_set_memory(&rss) == 0 ? rss : 0;
    g->registered = n->dir && dir_registered(n->dir);
}

void metrics_build(struct kvbuf *b, const struct node *n, const struct control *c)
{
    struct node_counters k = n->ctr;
    struct client_stats cs, ls;
    struct tp_quic_stats q;
    struct relay_stats rs;
    struct dir_stats ds;
    struct mx_node g;
    struct mx_acct a = {.dormant = bw_dormant(&n->bw), .dormant_count = n->bw.dormant_count};
    const void *base[MX_SRCS] = {&k, &g};
    const struct hist *setup, *rtt;

    memcpy(a.max, n->bw.o.acct.max, sizeof a.max);
    memcpy(a.used, n->bw.acct.used, sizeof a.used);
    base[MX_BW] = &n->bw.meter; /* zeros while no limit was ever set */
    base[MX_ACCT] = &a;
    k.cells_unhandled += n->disp.unhandled;
    mx_node_gauges(n, &g);
#if OVL_HAVE_QUIC
    ctl_quic_sum(n, &q);
    base[MX_QUIC] = &q;
#else
    (void)q;
#endif
    if (c) {
        base[MX_CTL] = &c->st;
        base[MX_HTTP] = c->http_uri[0] ? &c->http : NULL;
    }
    if (n->relay) {
        relay_stats(n->relay, &rs);
        client_stats((n->roles & ROLE_CLIENT) ? NULL : n->client, &ls); /* NULL: zeros */
        base[MX_RELAY] = &rs;
        base[MX_LOOP] = &ls;
    }
    if (n->client && (n->roles & ROLE_CLIENT)) {
        client_stats(n->client, &cs);
        base[MX_CLIENT] = &cs;
    }
    if (n->dir) {
        memset(&ds, 0, sizeof ds);
        dir_stats(n->dir, &ds);
        base[MX_DIR] = &ds;
        base[MX_BOOT] = (n->roles & ROLE_BOOTSTRAP) ? &ds : NULL;
    }
    mx_info(b, n);
    mx_rows(b, base);
    mx_reasons(b, n, n->relay ? &rs : NULL);
    if (!n->client)
        return;
    client_hists(n->client, &setup, &rtt);
    metrics_hist(b, "chain_setup_seconds", "Chain setup: SETUP sent to SETUP_OK", setup);
    metrics_hist(b, "message_round_trip_seconds",
                 "Message round trip: first fragment sent to acknowledgement", rtt);
}

/* metrics: the exposition, one line= per line. */
int ctl_cmd_metrics(struct ctl_req *rq)
{
    struct kvbuf text = {0};

    metrics_build(&text, rq->ctl->node, rq->ctl);
    if (text.err) {
        kvbuf_free(&text);
        return ctl_fail(rq, -ENOMEM, "cannot build the metrics");
    }
    for (const char *p = text.data, *nl; p && (nl = strchr(p, '\n')); p = nl + 1)
        kv_addn(rq->out, "line", p, (size_t)(nl - p));
    kvbuf_free(&text);
    return 0;
}
