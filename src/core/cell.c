/* cell.c - cell encoding and sealed FRAME_CELL frames (see cell.h). */
#include "core/cell.h"

#include <string.h>

#include "lib/bytes.h"

/* Encode c into out; refuse anything cell_decode would refuse. */
int cell_encode(uint8_t out[OVL_CELL_LEN], const struct cell *c)
{
    if (c == NULL || c->len > OVL_CELL_PAYLOAD || c->flags != 0)
        return OVL_EINVAL;
    st_be32(out, c->chain_id);
    out[4] = c->cmd;
    out[5] = c->flags;
    st_be16(out + 6, c->len);
    memcpy(out + OVL_CELL_HDR, c->payload, c->len);
    memset(out + OVL_CELL_HDR + c->len, 0, OVL_CELL_PAYLOAD - c->len);
    return 0;
}

/* Decode a cell, rejecting bad flags, an overlong length or a non-zero tail. */
int cell_decode(struct cell *c, const uint8_t in[OVL_CELL_LEN])
{
    uint16_t len = ld_be16(in + 6);
    uint8_t acc = 0;

    if (in[5] != 0 || len > OVL_CELL_PAYLOAD)
        goto bad;
    /* The tail is inside the AEAD, so only a buggy or hostile peer can make
     * it non-zero; refusing it keeps the padding from becoming a side channel. */
    for (size_t i = OVL_CELL_HDR + len; i < OVL_CELL_LEN; i++)
        acc |= in[i];
    if (acc != 0)
        goto bad;
    c->chain_id = ld_be32(in);
    c->cmd = in[4];
    c->flags = 0;
    c->len = len;
    /* The whole payload: its tail is zero, so c's is too, without zeroing
     * c first (a data cell is all payload). */
    memcpy(c->payload, in + OVL_CELL_HDR, OVL_CELL_PAYLOAD);
    return 0;
bad:
    memset(c, 0, sizeof(*c));
    return OVL_EPROTO;
}

/* Return the snake_case name of cmd, or "unknown". */
const char *cell_cmd_name(uint8_t cmd)
{
    switch ((enum cell_cmd)cmd) {
    case CELL_PADDING:
        return "padding";
    case CELL_HELLO:
        return "hello";
    case CELL_PING:
        return "ping";
    case CELL_PONG:
        return "pong";
    case CELL_CHAIN_SETUP:
        return "chain_setup";
    case CELL_CHAIN_SETUP_ACK:
        return "chain_setup_ack";
    case CELL_CHAIN_FWD:
        return "chain_fwd";
    case CELL_CHAIN_BACK:
        return "chain_back";
    case CELL_CHAIN_DESTROY:
        return "chain_destroy";
    case CELL_CHAIN_NOTICE:
        return "chain_notice";
    case CELL_CHAIN_DELIVER:
        return "chain_deliver";
    case CELL_CHAIN_INTRO:
        return "chain_intro";
    case CELL_DIR_REQUEST:
        return "dir_request";
    case CELL_DIR_REPLY:
        return "dir_reply";
    }
    return "unknown";
}

/* Seal cell under key with counter as nonce; type and counter are the AD. */
int frame_seal(uint8_t out[FRAME_CELL_LEN], const struct ovl_aead *key, uint64_t counter,
               const uint8_t cell[OVL_CELL_LEN])
{
    uint8_t nonce[OVL_AEAD_NONCE];

    out[0] = FRAME_CELL;
    st_le64(out + 1, counter);
    ovl_nonce(nonce, counter);
    return ovl_aead_seal(key, out + FRAME_CELL_AD, cell, OVL_CELL_LEN, out, FRAME_CELL_AD, nonce);
}

/* Read the counter of a FRAME_CELL after checking its length and type. */
int frame_counter(const uint8_t *frame, size_t len, uint64_t *counter)
{
    *counter = 0;
    if (frame == NULL || len != FRAME_CELL_LEN || frame[0] != FRAME_CELL)
        return OVL_EPROTO;
    *counter = ld_le64(frame + 1);
    return 0;
}

/* Open a FRAME_CELL into cell; the counter in the frame is the nonce. */
int frame_open(uint8_t cell[OVL_CELL_LEN], const struct ovl_aead *key, const uint8_t *frame,
               size_t len)
{
    uint8_t nonce[OVL_AEAD_NONCE];
    uint64_t ctr;
    int rc = frame_counter(frame, len, &ctr);

    if (rc != 0)
        return rc;
    ovl_nonce(nonce, ctr);
    rc = ovl_aead_open(key, cell, frame + FRAME_CELL_AD, OVL_CELL_LEN + OVL_AEAD_TAG, frame,
                       FRAME_CELL_AD, nonce);
    return rc == 0 ? 0 : OVL_ECRYPTO;
}
