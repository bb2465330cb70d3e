/*
 * channel.h - framing of the process runtime (tee/process): the bytes the
 * host (cloisterd, runtime.c) and the core process (cloister-core,
 * core_main.c) exchange over their socketpair. Private to tee/process and
 * its tests.
 *
 *   frame := u32 length  u8 type  fields          (all integers little-endian)
 *
 * `length` counts the type byte and the fields, 1 <= length <=
 * CL_CHAN_MAX_FRAME. The conversation is strictly synchronous: the host sends
 * one ECALL_* frame; the core process answers with any number of OCALL_*
 * frames (each answered by one OCALL_RESULT, except OCALL_LOG_LINE which
 * has no answer) and finally one ECALL_RESULT. Field layouts are listed
 * next to the frame types below and in tee/process/README.md.
 *
 * Both ends treat the other as hostile: every length is checked against
 * what is left in the frame and against the caller's buffer, frames are
 * parsed exactly (no trailing bytes), the receive buffer grows only as
 * bytes actually arrive and never beyond CL_CHAN_MAX_FRAME.
 */
#ifndef CLOISTER_TEE_PROCESS_CHANNEL_H
#define CLOISTER_TEE_PROCESS_CHANNEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cloister/core.h"
#include "cloister/status.h"

/** Largest byte string a frame carries (a snapshot). */
#define CL_CHAN_MAX_DATA ((size_t)CL_CORE_MAX_SNAPSHOT)
/** Largest frame (length field value): the largest data plus fixed fields. */
#define CL_CHAN_MAX_FRAME (CL_CHAN_MAX_DATA + 64u)
/** Frame header: the u32 length. */
#define CL_CHAN_HDR_LEN 4u

/*
 * Frame types and fields. "bytes" = u32 len then len bytes. "st" = i32
 * cl_status_t; results carry their data only when st == CL_OK (their
 * integer fields are always present, zero on error).
 */
enum cl_frame_type {
    /* host -> core process */
    CL_FRAME_ECALL_OPEN = 0x01,   /* u32 api_version, u32 cfg.version, u32 snapshot_every,
                                     u32 max_sessions, u32 session_ttl_s, u16 seal_policy,
                                     u16 reserved, u16 host_ops_mask (CL_OPS_BIT_*) */
    CL_FRAME_ECALL_HANDLE = 0x02, /* u64 handle, u32 out_size, bytes in */
    CL_FRAME_ECALL_TICK = 0x03,   /* u64 handle, i64 now_ms */
    CL_FRAME_ECALL_ATTEST = 0x04, /* u64 handle, u32 out_size, bytes nonce */
    CL_FRAME_ECALL_CLOSE = 0x05,  /* u64 handle */
    /* core process -> host */
    CL_FRAME_ECALL_RESULT = 0x0f,       /* st, u64 value (open: the handle), bytes out */
    CL_FRAME_OCALL_LOG_APPEND = 0x21,   /* u64 counter, bytes rec        -> st */
    CL_FRAME_OCALL_LOG_READ = 0x22,     /* u64 counter, u32 size         -> st, u64 got, bytes */
    CL_FRAME_OCALL_LOG_COMPACT = 0x23,  /* u64 before                    -> st */
    CL_FRAME_OCALL_SNAPSHOT_PUT = 0x24, /* bytes blob                    -> st */
    CL_FRAME_OCALL_SNAPSHOT_GET = 0x25, /* u32 size                      -> st, bytes */
    CL_FRAME_OCALL_ARCHIVE_PUT = 0x26,  /* u32 n, n x (16 tag, u64 bucket, bytes)
                                           -> st, u32 n, n x u64 id */
    CL_FRAME_OCALL_ARCHIVE_SCAN = 0x27, /* 16 tag, u64 from, u64 to, u64 after_id,
                                           u64 max_records, u32 size  -> st, u64 n, bytes */
    CL_FRAME_OCALL_SEND = 0x28,         /* u64 peer, u16 transport, bytes msg -> st */
    CL_FRAME_OCALL_TIME_NOW = 0x29,     /* (none)                        -> st, i64 unix_ms */
    CL_FRAME_OCALL_LOG_LINE = 0x2a,     /* i32 level, bytes line (no NUL); NO answer */
    /* host -> core process */
    CL_FRAME_OCALL_RESULT = 0x2f,
};

/* host_ops_mask bits: which ocalls the host implements (the others are NULL
 * in the table the core sees, as with the in-process runtime). `quote` is
 * not in the mask: the core process runs the quoting enclave itself. */
#define CL_OPS_BIT_LOG_APPEND 0x001u
#define CL_OPS_BIT_LOG_READ 0x002u
#define CL_OPS_BIT_LOG_COMPACT 0x004u
#define CL_OPS_BIT_SNAPSHOT_PUT 0x008u
#define CL_OPS_BIT_SNAPSHOT_GET 0x010u
#define CL_OPS_BIT_ARCHIVE_PUT 0x020u
#define CL_OPS_BIT_ARCHIVE_SCAN 0x040u
#define CL_OPS_BIT_SEND 0x080u
#define CL_OPS_BIT_TIME_NOW 0x100u
#define CL_OPS_BIT_LOG_LINE 0x200u
#define CL_OPS_BITS_ALL 0x3ffu

/** Why the last channel operation failed. */
typedef enum cl_chan_err {
    CL_CHAN_OK = 0,
    CL_CHAN_EOF,     /**< the peer closed (or died) */
    CL_CHAN_TIMEOUT, /**< no complete frame within the timeout */
    CL_CHAN_IO,      /**< read/write/poll error (errno in sys_errno) */
    CL_CHAN_PROTO,   /**< the peer sent a malformed frame header */
    CL_CHAN_NOMEM,   /**< allocation failed / frame too large to build */
} cl_chan_err_t;

/** One end of the channel. Not thread-safe (one conversation at a time). */
typedef struct cl_chan {
    int fd;
    int timeout_ms;    /**< per frame; -1 = wait forever */
    cl_chan_err_t err; /**< reason of the last failure */
    int sys_errno;
    uint8_t *rbuf; /**< the last received frame (type byte excluded) */
    size_t rcap;
    uint8_t *wbuf; /**< the frame being built (header included) */
    size_t wcap, wlen;
    bool wfail; /**< the frame being built overflowed / allocation failed */
} cl_chan_t;

/** A cursor over a received frame's fields. */
typedef struct cl_rd {
    const uint8_t *p;
    size_t len, pos;
    bool bad; /**< a read went past the end */
} cl_rd_t;

/** Initialises a channel on a connected stream socket (owned: closed by cl_chan_free). */
void cl_chan_init(cl_chan_t *ch, int fd, int timeout_ms);
/** Frees the buffers and closes the socket. */
void cl_chan_free(cl_chan_t *ch);

/** Starts building a frame of this type (discarding any unsent one). */
void cl_chan_begin(cl_chan_t *ch, uint8_t type);
void cl_chan_put_u16(cl_chan_t *ch, uint16_t v);
void cl_chan_put_u32(cl_chan_t *ch, uint32_t v);
void cl_chan_put_u64(cl_chan_t *ch, uint64_t v);
void cl_chan_put_raw(cl_chan_t *ch, const uint8_t *p, size_t len);
/** u32 len then the bytes (len > CL_CHAN_MAX_DATA fails the frame). */
void cl_chan_put_bytes(cl_chan_t *ch, const uint8_t *p, size_t len);
/**
 * Sends the frame built since cl_chan_begin. CL_ERR_LIMIT if it overflowed
 * CL_CHAN_MAX_FRAME, CL_ERR_STATE if the peer is gone or the write timed out.
 */
cl_status_t cl_chan_send(cl_chan_t *ch) CL_MUST_CHECK;

/**
 * Receives one whole frame: *type and a cursor over its fields (valid until
 * the next cl_chan_recv). CL_ERR_STATE when the peer closed, timed out or
 * failed (ch->err says which), CL_ERR_BAD_INPUT for a length of 0 or above
 * CL_CHAN_MAX_FRAME (the stream is then out of sync: give up on it).
 */
cl_status_t cl_chan_recv(cl_chan_t *ch, uint8_t *type, cl_rd_t *rd) CL_MUST_CHECK;

/**
 * A byte source for cl_chan_recv_from: reads at most len (> 0) bytes into p
 * and returns how many (> 0), 0 at the end of the stream, or -1 with errno
 * set (EINTR / EAGAIN: try again). Lets the frame reassembly run on bytes
 * that do not come from the socket (tests, fuzz/fuzz_channel.c).
 */
typedef long (*cl_chan_read_fn)(void *ctx, uint8_t *p, size_t len);

/** cl_chan_recv reading from `rfn` instead of the socket (no poll, no timeout). */
cl_status_t cl_chan_recv_from(cl_chan_t *ch, cl_chan_read_fn rfn, void *ctx, uint8_t *type,
                              cl_rd_t *rd) CL_MUST_CHECK;

/** Writes raw bytes (test hooks that fake a broken peer); same errors as send. */
cl_status_t cl_chan_write_raw(cl_chan_t *ch, const uint8_t *p, size_t len) CL_MUST_CHECK;

/** Short text for ch->err. */
const char *cl_chan_err_str(cl_chan_err_t e);

/* ---- field readers: on underflow they set rd->bad and return 0 / NULL ---- */
uint16_t cl_rd_u16(cl_rd_t *rd);
uint32_t cl_rd_u32(cl_rd_t *rd);
uint64_t cl_rd_u64(cl_rd_t *rd);
int32_t cl_rd_i32(cl_rd_t *rd);
int64_t cl_rd_i64(cl_rd_t *rd);
/** n raw bytes (a pointer into the frame). */
const uint8_t *cl_rd_raw(cl_rd_t *rd, size_t n);
/** u32 len then len bytes; *len receives the length; len > max sets bad. */
const uint8_t *cl_rd_bytes(cl_rd_t *rd, size_t max, size_t *len);
/** Bytes left unread. */
size_t cl_rd_left(const cl_rd_t *rd);
/** true when every read succeeded and the frame was consumed exactly. */
bool cl_rd_done(const cl_rd_t *rd);

/**
 * A status code received from the other side: values outside the known
 * cl_status_t range (or positive) become CL_ERR_BAD_INPUT; *ok false then.
 */
cl_status_t cl_chan_status(int32_t wire, bool *ok);

/*
 * ---- frame decoders: bytes in, struct out, no I/O ----
 * Shared by both ends (runtime.c parses ocalls and ECALL_RESULT, core_main.c
 * parses ecalls and OCALL_RESULT) and by fuzz/fuzz_channel.c. Each takes a
 * cursor over a received frame's fields (cl_chan_recv) and parses it
 * exactly; byte strings are pointers into the frame.
 */

/** An ocall frame (core process -> host), as the host decodes it. */
typedef struct cl_ocall_frame {
    uint8_t type;
    union {
        struct {
            int32_t level;
            const uint8_t *line;
            size_t len;
        } log_line;
        struct {
            uint64_t counter;
            const uint8_t *rec;
            size_t len;
        } log_append;
        struct {
            uint64_t counter;
            size_t size;
        } log_read;
        struct {
            uint64_t before;
        } log_compact;
        struct {
            const uint8_t *blob;
            size_t len;
        } snapshot_put;
        struct {
            size_t size;
        } snapshot_get;
        struct {
            size_t n; /* the records follow: cl_ocall_decode_archive_recs */
        } archive_put;
        struct {
            uint8_t tag[16];
            uint64_t from, to, after_id, max_records;
            size_t size;
        } archive_scan;
        struct {
            uint64_t peer;
            uint16_t transport;
            const uint8_t *msg;
            size_t len;
        } send;
    } u;
} cl_ocall_frame_t;

/**
 * Host side: decodes an ocall frame of this type. NULL when well-formed,
 * otherwise what is wrong ("malformed send", "unexpected frame type", ...).
 * For OCALL_ARCHIVE_PUT only the count is read (bounded by the bytes left,
 * a record taking at least 28): the caller allocates n records and reads
 * them with cl_ocall_decode_archive_recs.
 */
const char *cl_ocall_decode(uint8_t type, cl_rd_t *rd, cl_ocall_frame_t *f);
/** The n records of an OCALL_ARCHIVE_PUT (data points into the frame); false if malformed. */
bool cl_ocall_decode_archive_recs(cl_rd_t *rd, cl_archive_rec_t *recs, size_t n);

/** An ECALL_RESULT frame (core process -> host). */
typedef struct cl_ecall_result {
    cl_status_t status;
    uint64_t value;
    const uint8_t *out;
    size_t len;
} cl_ecall_result_t;

/**
 * Host side: decodes the ECALL_RESULT of a call that told the core
 * out_size; has_out: the caller has an output buffer. NULL when acceptable,
 * otherwise the violation (malformed, status outside cl_status_t, more than
 * out_size, data with an error status or for a call without output).
 */
const char *cl_ecall_result_decode(cl_rd_t *rd, size_t out_size, bool has_out,
                                   cl_ecall_result_t *r);

/** An ecall frame (host -> core process), as the core process decodes it. */
typedef struct cl_ecall_frame {
    uint8_t type;
    uint64_t handle; /* all but ECALL_OPEN */
    union {
        struct {
            uint32_t api;
            cl_core_config_t cfg;
            uint16_t ops_mask;
        } open;
        struct {
            size_t out_size;
            const uint8_t *in;
            size_t len;
        } call; /* ECALL_HANDLE, ECALL_ATTEST */
        struct {
            int64_t now_ms;
        } tick;
    } u;
} cl_ecall_frame_t;

/**
 * Core side: decodes an ecall frame of this type. CL_OK; CL_ERR_BAD_INPUT
 * when malformed (ECALL_OPEN: also unknown host_ops_mask bits);
 * CL_ERR_NOT_FOUND for a type that is not an ecall.
 */
cl_status_t cl_ecall_decode(uint8_t type, cl_rd_t *rd, cl_ecall_frame_t *f);

/** What an OCALL_RESULT carries besides the status. */
typedef struct cl_ocall_result {
    uint64_t got;        /* LOG_READ: the counter read; ARCHIVE_SCAN: records found */
    int64_t unix_ms;     /* TIME_NOW */
    const uint8_t *data; /* LOG_READ, SNAPSHOT_GET, ARCHIVE_SCAN */
    size_t len;
} cl_ocall_result_t;

/**
 * Core side: decodes the OCALL_RESULT answering the ocall `op` that asked
 * for `size` bytes (LOG_READ, SNAPSHOT_GET, ARCHIVE_SCAN), at most
 * max_records (ARCHIVE_SCAN) or stored n records (ARCHIVE_PUT: their n ids
 * are written to ids). Returns what the core sees: CL_ERR_BAD_INPUT for a
 * malformed result or a status outside cl_status_t, otherwise the host's
 * status. *r and ids are written only on CL_OK.
 */
cl_status_t cl_ocall_result_decode(uint8_t op, cl_rd_t *rd, size_t size, size_t max_records,
                                   size_t n, uint64_t *ids, cl_ocall_result_t *r);

#endif
