/* Native CPU kernels of the closed-form TTFS layer (float32, GCC/Clang vector extensions; compiled on first use
 * by deepspike/core/native.py, called through ctypes by deepspike/ttfs/backend_native.py).
 *
 * Same neuron and the same event order as the numba kernels (kernels_numba.py), organised position-major so that
 * an output position's running sums of a block of up to 32 output channels stay in vector registers:
 *
 * Forward, per sample: the inputs, sorted once (ascending time, ties by index), are distributed into one list per
 * output position (entries in time order: x = t - ref (relpsp) or exp((t - ref)/tau) (exp), and the weight row);
 * the bias is one entry at t = 0 in every list. Then each position sweeps its list with the sums
 * a = sum w, s = sum w x of its causal set in registers: before adding an input at t_g (the first of its tie group:
 * inputs at t_g are all added before the next check), a channel whose membrane reached theta by t_g (a x - s >= theta resp. theta x) fires at ref + (theta + s)/a resp. ref + tau log(s/(a-theta))
 * (clamped to t_g) and is frozen (a = -inf). After the last input, a > 0 resp. a > theta fires after it.
 * exp: whenever (t - ref)/tau would exceed RESCALE_AT the sample's reference moves to t (a new "epoch"); a position
 * crossing into a later epoch first fires (in the old epoch, clamped to ref_new) every channel whose membrane reached
 * theta by ref_new, V = a - s f >= theta, then multiplies s by the epoch's factor f = exp(-(ref_new - ref_old)/tau)
 * (which can underflow to 0, where the check at a later input would no longer see the crossing). A channel's sums
 * stay in the epoch of its last input, and its spike after that input is formed with that epoch's reference.
 *
 * Backward, per sample: for every output position and channel block (t_out, p, q in registers) and every input of
 * the receptive field with t_i < t_out: grad_w += x_i p - q, grad_t[i] += y_i sum_o p w (x_i = t_i, y_i = 1 for
 * relpsp; x_i = tau z_i, y_i = z_i, z_i = exp((t_i - ref)/tau) for exp), p, q the separable output factors of
 * kernels_numba._output_factors; the bias gradient is summed per output.
 *
 * Layouts: images channels-last, one sample's times a row [H*W*C] (index (iy*W + ix)*C + c); outputs [Ho*Wo*O];
 * weights in channel blocks of 32 (the last one Op - 32k wide, Op = O rounded up to 8), each block its rows
 * [kh*kw*C + 1][width] (row (ky*kw + kx)*C + c, the bias last; zeros in the padding channels): a block's sweep reads
 * rows 128 bytes apart from a slab that stays in cache, however many outputs the layer has. Block k starts at
 * float (kh*kw*C + 1) * 32k. Weight gradients use the same layout.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __AVX__
#include <immintrin.h>
#endif

typedef float v8f __attribute__((vector_size(32)));
typedef float v8f_unaligned __attribute__((vector_size(32), aligned(4), may_alias));
typedef int32_t v8i __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef double v4d __attribute__((vector_size(32)));
typedef int64_t v4l __attribute__((vector_size(32)));

#define RESCALE_AT 30.0
#define MAX_NB 4          /* channel block: MAX_NB vectors of 8 = 32 output channels */
#define ROW_BITS 24       /* entry code: weight row in the low bits, epoch above */
#define ROW_MASK ((1u << ROW_BITS) - 1u)

typedef struct {
    int32_t H, W, C, O, Op, kh, kw, sh, sw, ph, pw, Ho, Wo, use_bias, is_exp;
    double theta, tau;
} geom_t;

typedef struct {
    float x;
    uint32_t code;
} entry_t;

static inline v8f ld(const float *p) { return *(const v8f_unaligned *)p; }
static inline void st(float *p, v8f v) { *(v8f_unaligned *)p = v; }
static inline v8f splat(float x) { return (v8f){x, x, x, x, x, x, x, x}; }
static inline v8f keep(v8i m, v8f v) { return (v8f)((v8i)v & m); }
static inline v8f blend(v8i m, v8f a, v8f b) { return (v8f)(((v8i)a & m) | ((v8i)b & ~m)); } /* m ? a : b */

static inline int mask_bits(v8i m) {
#ifdef __AVX__
    return _mm256_movemask_ps((__m256)m);
#else
    int r = 0;
    for (int k = 0; k < 8; k++) r |= (m[k] != 0) << k;
    return r;
#endif
}

static inline float hsum(v8f v) { /* pairwise: ((v0+v4) + (v2+v6)) + ((v1+v5) + (v3+v7)) */
    const v8f a = v + __builtin_shuffle(v, (v8i){4, 5, 6, 7, 0, 1, 2, 3});
    const v8f b = a + __builtin_shuffle(a, (v8i){2, 3, 0, 1, 6, 7, 4, 5});
    return b[0] + b[1];
}

/* {hsum(a[0]), ..., hsum(a[7])}: pairwise adds of interleaved halves (three rounds) instead of eight hsums. */
static inline v8f sums8(const v8f *a) {
    v8f b[4], c[2];
    for (int k = 0; k < 4; k++) /* b[k] = {a0+a1 of pairs of 2k | of 2k+1}, per 128-bit lane */
        b[k] = __builtin_shuffle(a[2 * k], a[2 * k + 1], (v8i){0, 2, 8, 10, 4, 6, 12, 14}) +
               __builtin_shuffle(a[2 * k], a[2 * k + 1], (v8i){1, 3, 9, 11, 5, 7, 13, 15});
    for (int k = 0; k < 2; k++)
        c[k] = __builtin_shuffle(b[2 * k], b[2 * k + 1], (v8i){0, 2, 8, 10, 4, 6, 12, 14}) +
               __builtin_shuffle(b[2 * k], b[2 * k + 1], (v8i){1, 3, 9, 11, 5, 7, 13, 15});
    /* c[0] = {s0, s1, s2, s3 (low lanes) | s0, s1, s2, s3 (high lanes)}, c[1] the same for a4..a7 */
    return __builtin_shuffle(c[0], c[1], (v8i){0, 1, 2, 3, 8, 9, 10, 11}) +
           __builtin_shuffle(c[0], c[1], (v8i){4, 5, 6, 7, 12, 13, 14, 15});
}

/* Scratch buffers of this thread, one per distinct size, kept for the thread's life (OpenMP workers persist, so
 * every layer of a training step finds its own buffer again: no fresh pages per call). Up to SCRATCH_SLOTS sizes
 * are kept, the least recently used is replaced. Carves the buffer into n parts of the given sizes, each after a
 * SKEW gap, 64-byte aligned. Returns 0 if out of memory. (Placement matters on the project's CPU: the same
 * 28x28 5x5 conv forward took 4.8 ms with a buffer allocated late from the heap and 6.5-6.9 ms with one
 * allocated early (mmap), whatever the skew; not understood, left alone.) */
#define SCRATCH_SLOTS 16
#ifndef SKEW
#define SKEW 1088 /* a 17-line gap before every part: without gaps these buffers measured slower on that conv
                     * (9.0 vs 6.9 ms); other gaps from 64 to 3520 bytes made no difference */
#endif
static int thread_scratch(const size_t *sizes, void **parts, int n) {
    static __thread struct {
        char *buf;
        size_t size;
        uint64_t used;
    } slot[SCRATCH_SLOTS];
    static __thread uint64_t clock;
    size_t total = SKEW;
    for (int i = 0; i < n; i++) total += (sizes[i] + 63) / 64 * 64 + SKEW;
    int k = 0;
    for (int i = 0; i < SCRATCH_SLOTS; i++) {
        if (slot[i].buf && slot[i].size == total) {
            k = i;
            break;
        }
        if (slot[i].used < slot[k].used) k = i; /* least recently used (empty slots first) */
    }
    if (!(slot[k].buf && slot[k].size == total)) {
        free(slot[k].buf);
        slot[k].buf = aligned_alloc(64, total > 0 ? total : 64);
        slot[k].size = slot[k].buf ? total : 0;
        if (!slot[k].buf) return 0;
    }
    slot[k].used = ++clock;
    char *buf = slot[k].buf;
    for (size_t i = 0, off = SKEW; i < (size_t)n; off += (sizes[i] + 63) / 64 * 64 + SKEW, i++) parts[i] = buf + off;
    return 1;
}

/* ---------------------------------------------------------------- forward */

/* Input time of list entry `code` at the output position whose receptive field starts at input index `base`
 * (possibly negative: padding), via the per-row offsets `row_off` (the bias row means t = 0). */
static inline double entry_time(const geom_t *g, const float *row, const int32_t *row_off, uint32_t code,
                                int base) {
    const int r = (int)(code & ROW_MASK);
    return r == g->kh * g->kw * g->C ? 0.0 : row[base + row_off[r]];
}

/* The float spike time t moved to just after t_last, the time of the channel's last causal input, where it is not
 * after it (and the next float after t_last is not past t_g, the input that revealed the crossing: ties):
 * V(t_last) < theta (the channel did not fire before that input), so the spike is strictly later, but rounding can
 * land the formula's value on t_last, where backward's causal mask t_i < t_out then dropped that input. */
static inline float after_last(float t, float t_last, float tg) {
    if (t <= t_last) {
        const float up = nextafterf(t_last, INFINITY);
        if (up <= tg) return up;
    }
    return t;
}

/* exp kernel: spike time and slope of one channel from the sums a, s it had when it fired (or after its last
 * input): t = ref + tau log(s/(a - theta)) clamped to the time t_g of the input (or the epoch start) that revealed
 * the crossing (+inf after the last input; t_g itself when the log is undefined) and to after t_last (after_last),
 * D = a - theta. (relpsp is formed vectorised.) */
static inline void exp_spike_time(const geom_t *g, float a, float s, double tg, double ref, float t_last, float *t_o,
                                  float *sl) {
    double t = tg;
    const double ratio = s / (a - g->theta);
    if (ratio > 0.0 && ratio < INFINITY) {
        const double tf = ref + g->tau * log(ratio);
        t = tg < tf ? tg : tf;
    }
    *sl = (float)(a - g->theta);
    *t_o = after_last((float)t, t_last, (float)tg);
}

/* Time of list entry e - 1, the last input before entry e (-inf for e = 0). */
static inline float prev_time(const geom_t *g, const entry_t *list, int e, const float *row, const int32_t *row_off,
                              int base) {
    return e > 0 ? (float)entry_time(g, row, row_off, list[e - 1].code, base) : -INFINITY;
}

/* Sweep one position's list for channels [o0, o0 + nreal) (NB vectors; NB, EXP constant after inlining).
 * A channel that fires is frozen (a = -inf); its sums, the input time t_g and (exp) the epoch are recorded in
 * vectors (branch-free selects on the rare firing path), and all spike times are formed after the sweep. */
static inline __attribute__((always_inline)) void sweep(const int NB, const int EXP, const geom_t *g,
                                                        const entry_t *list, int n, const float *wp,
                                                        const float *row, const int32_t *row_off, int base,
                                                        const double *ep_ref, const float *ep_fac, int n_ep,
                                                        int nreal, float *t_o, float *sl) {
    v8f a[MAX_NB], s[MAX_NB], fa[MAX_NB], fs[MAX_NB], ftg[MAX_NB], fep[MAX_NB], flast[MAX_NB];
    for (int v = 0; v < NB; v++) {
        a[v] = s[v] = fa[v] = fs[v] = fep[v] = splat(0.0f);
        ftg[v] = splat(INFINITY);
        flast[v] = splat(-INFINITY);
    }
    const v8f th = splat((float)g->theta), ninf = splat(-INFINITY);
    int ep = 0, fired = 0;
    (void)n_ep; /* a channel's sums stay in the epoch of its last input: no scaling to the last epoch */
    for (int e = 0; e < n; e++) {
        const float x = list[e].x;
        const uint32_t code = list[e].code;
        v8f thx = th;
        if (EXP) {
            for (const int e_ep = (int)(code >> ROW_BITS); ep < e_ep; ep++) {
                /* Into the next epoch: s is scaled by f = exp(-(ref_new - ref_old)/tau), which can underflow to 0.
                 * First every channel whose membrane reached theta by ref_new, V = a - s f >= theta, fires in the
                 * old epoch, clamped to ref_new: the check at its next input would no longer see it. (a > theta or
                 * s <= 0: with s > 0 and a <= theta V stays below theta, even where s f underflows.) */
                const v8f f = splat(ep_fac[ep + 1]), tnew = splat((float)ep_ref[ep + 1]), epv = splat((float)ep);
                const v8f last = splat(prev_time(g, list, e, row, row_off, base));
                for (int v = 0; v < NB; v++) {
                    const v8f sf = s[v] * f;
                    const v8i m = (a[v] > ninf) & (a[v] - th >= sf) & ((a[v] > th) | (s[v] <= splat(0.0f)));
                    fa[v] = blend(m, a[v], fa[v]);
                    fs[v] = blend(m, s[v], fs[v]);
                    ftg[v] = blend(m, tnew, ftg[v]);
                    flast[v] = blend(m, last, flast[v]);
                    fep[v] = blend(m, epv, fep[v]);
                    a[v] = blend(m, ninf, a[v]);
                    fired += __builtin_popcount((unsigned)mask_bits(m));
                    s[v] = sf;
                }
            }
            if (fired >= nreal) break;
            thx = splat((float)(g->theta * x));
        }
        const v8f xv = splat(x);
        v8i m[MAX_NB], any = (v8i){0};
        /* A tie group (entries of equal x in one epoch: V is linear in x) is checked at its first entry only: adding
         * an input at t_g leaves V(t_g) unchanged, but not its rounded value a x - s, and a channel then fired
         * partway through the group, with the slope of part of it. */
        if (e == 0 || x != list[e - 1].x || (code >> ROW_BITS) != (list[e - 1].code >> ROW_BITS))
            for (int v = 0; v < NB; v++) {
                m[v] = a[v] * xv - s[v] >= thx;
                any |= m[v];
            }
        if (__builtin_expect(mask_bits(any) != 0, 0)) {
            const v8f tg = splat((float)entry_time(g, row, row_off, code, base)), epv = splat((float)ep);
            const v8f last = splat(prev_time(g, list, e, row, row_off, base));
            for (int v = 0; v < NB; v++) {
                fa[v] = blend(m[v], a[v], fa[v]);
                fs[v] = blend(m[v], s[v], fs[v]);
                ftg[v] = blend(m[v], tg, ftg[v]);
                flast[v] = blend(m[v], last, flast[v]);
                if (EXP) fep[v] = blend(m[v], epv, fep[v]);
                a[v] = blend(m[v], ninf, a[v]);
                fired += __builtin_popcount((unsigned)mask_bits(m[v]));
            }
            if (fired >= nreal) break; /* padding channels never fire: their weights are 0 and theta > 0 */
        }
        const float *w = wp + (size_t)(code & ROW_MASK) * (8 * NB); /* the block's row stride */
        for (int v = 0; v < NB; v++) {
            const v8f wv = ld(w + 8 * v);
            a[v] += wv;
            s[v] += wv * xv;
        }
    }
    const float t_end = prev_time(g, list, n, row, row_off, base); /* last input of a channel that never fired */
    if (!EXP) { /* relpsp: all channels at once, in double like the scalar form */
        float tb[8 * MAX_NB], db[8 * MAX_NB];
        const v4d ref = {ep_ref[0], ep_ref[0], ep_ref[0], ep_ref[0]};
        const v4d th4 = {g->theta, g->theta, g->theta, g->theta};
        for (int v = 0; v < NB; v++) {
            const v8i hit = ftg[v] < splat(INFINITY), ok = hit | (a[v] > splat(0.0f));
            const v8f A = blend(hit, fa[v], a[v]);
            const v8f S = blend(hit, fs[v], s[v]);
            float t8[8];
            for (int h = 0; h < 2; h++) {
                v4f a4, s4, g4;
                memcpy(&a4, (const float *)&A + 4 * h, 16);
                memcpy(&s4, (const float *)&S + 4 * h, 16);
                memcpy(&g4, (const float *)&ftg[v] + 4 * h, 16);
                const v4d tg = __builtin_convertvector(g4, v4d);
                const v4d tf = ref + (th4 + __builtin_convertvector(s4, v4d)) / __builtin_convertvector(a4, v4d);
                const v4l earlier = tg < tf; /* min(tf, t_g) with Python's min semantics */
                const v4f t4 = __builtin_convertvector((v4d)(((v4l)tg & earlier) | ((v4l)tf & ~earlier)), v4f);
                memcpy(t8 + 4 * h, &t4, 16);
            }
            const v8f t = blend(ok, ld(t8), splat(INFINITY)), last = blend(hit, flast[v], splat(t_end));
            st(tb + 8 * v, t);
            st(db + 8 * v, (v8f)((v8i)A & ok));
            if (__builtin_expect(mask_bits(t <= last) != 0, 0)) /* rare: see after_last */
                for (int k = 8 * v; k < 8 * v + 8; k++)
                    tb[k] = after_last(tb[k], ((const float *)&last)[k - 8 * v], ((const float *)&ftg[v])[k - 8 * v]);
        }
        memcpy(t_o, tb, sizeof(float) * (size_t)nreal);
        memcpy(sl, db, sizeof(float) * (size_t)nreal);
        return;
    }
    float ab[8 * MAX_NB], sb[8 * MAX_NB], fab[8 * MAX_NB], fsb[8 * MAX_NB], ftb[8 * MAX_NB], feb[8 * MAX_NB];
    float flb[8 * MAX_NB];
    for (int v = 0; v < NB; v++) {
        st(flb + 8 * v, flast[v]);
        st(ab + 8 * v, a[v]);
        st(sb + 8 * v, s[v]);
        st(fab + 8 * v, fa[v]);
        st(fsb + 8 * v, fs[v]);
        st(ftb + 8 * v, ftg[v]);
        st(feb + 8 * v, fep[v]);
    }
    for (int o = 0; o < nreal; o++) {
        if (ftb[o] < INFINITY) /* fired at an input */
            exp_spike_time(g, fab[o], fsb[o], ftb[o], ep_ref[(int)feb[o]], flb[o], t_o + o, sl + o);
        else if (ab[o] > g->theta) /* fires after its last input */
            exp_spike_time(g, ab[o], sb[o], INFINITY, ep_ref[ep], t_end, t_o + o, sl + o);
    }
}

/* Calls fn(NB, EXP, args...) with NB = nb in 1..MAX_NB and EXP = exp as compile-time constants. */
#define BY_BLOCK(fn, nb, exp, ...)                         \
    do {                                                   \
        if (exp) {                                         \
            if ((nb) == 1) fn(1, 1, __VA_ARGS__);          \
            else if ((nb) == 2) fn(2, 1, __VA_ARGS__);     \
            else if ((nb) == 3) fn(3, 1, __VA_ARGS__);     \
            else fn(4, 1, __VA_ARGS__);                    \
        } else {                                           \
            if ((nb) == 1) fn(1, 0, __VA_ARGS__);          \
            else if ((nb) == 2) fn(2, 0, __VA_ARGS__);     \
            else if ((nb) == 3) fn(3, 0, __VA_ARGS__);     \
            else fn(4, 0, __VA_ARGS__);                    \
        }                                                  \
    } while (0)

static void sweep_block(const geom_t *g, const entry_t *list, int n, const float *wp, const float *row,
                        const int32_t *row_off, int base, const double *ep_ref, const float *ep_fac, int n_ep,
                        int nreal, float *t_o, float *sl) {
    BY_BLOCK(sweep, (nreal + 7) / 8, g->is_exp, g, list, n, wp, row, row_off, base, ep_ref, ep_fac, n_ep, nreal, t_o,
             sl);
}

/* Output range [lo, hi) along one axis reached by input coordinate i (o = (i + pad - k)/stride, k in [0, ks)). */
static void reach(int i, int pad, int ks, int stride, int n_out, int16_t *lo, int16_t *hi) {
    const int top = i + pad; /* k = 0 */
    const int first = top - ks + 1 > 0 ? (top - ks + 1 + stride - 1) / stride : 0;
    const int last = top / stride < n_out - 1 ? top / stride : n_out - 1;
    *lo = (int16_t)first;
    *hi = (int16_t)(last + 1 > first ? last + 1 : first);
}

/* Per-layer tables shared by all samples: for every input, the output rows/columns it reaches and the code of
 * its weight row at output (0, 0) (code(oy, ox) = code0 - oy*sh*kw*C - ox*sw*C); for every weight row, the
 * offset of its input from the receptive field's first input. */
typedef struct {
    int32_t code0;
    int16_t oy0, oy1, ox0, ox1;
} reach_t;

static void layer_tables(const geom_t *g, reach_t *tab, int32_t *row_off) {
    for (int iy = 0; iy < g->H; iy++)
        for (int ix = 0; ix < g->W; ix++)
            for (int c = 0; c < g->C; c++) {
                reach_t *r = tab + (iy * g->W + ix) * g->C + c;
                reach(iy, g->ph, g->kh, g->sh, g->Ho, &r->oy0, &r->oy1);
                reach(ix, g->pw, g->kw, g->sw, g->Wo, &r->ox0, &r->ox1);
                r->code0 = ((iy + g->ph) * g->kw + ix + g->pw) * g->C + c;
            }
    for (int ky = 0; ky < g->kh; ky++)
        for (int kx = 0; kx < g->kw; kx++)
            for (int c = 0; c < g->C; c++) row_off[(ky * g->kw + kx) * g->C + c] = (ky * g->W + kx) * g->C + c;
}

/* Stable ascending argsort of n float32 times into ord (LSD radix on (key << 32 | index) items, 8 bits per pass,
 * all four histograms from one read, passes on which all keys agree skipped). Keys: the float bits with the
 * magnitude flipped for negatives and the sign bit flipped, so they order as unsigned integers (+inf last, -0.0
 * just before +0.0). items: scratch of 2n uint64. Returns 1 if a time is NaN or -inf (the order is then
 * meaningless), else 0. */
static int argsort_times(const float *restrict t, int n, int32_t *restrict ord, uint64_t *restrict items) {
    uint32_t count[4][256], bad = 0;
    memset(count, 0, sizeof count);
    uint64_t *src = items, *dst = items + n;
    for (int i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, t + i, 4);
        bad |= ((u & 0x7FFFFFFFu) > 0x7F800000u) | (u == 0xFF800000u); /* NaN or -inf */
        const uint32_t key = (u & 0x80000000u) ? ~u : (u | 0x80000000u);
        src[i] = (uint64_t)key << 32 | (uint32_t)i;
        for (int k = 0; k < 4; k++) count[k][(key >> (8 * k)) & 0xFF]++;
    }
    for (int k = 0; k < 4; k++) {
        const int shift = 32 + 8 * k;
        if (count[k][(src[0] >> shift) & 0xFF] == (uint32_t)n) continue;
        uint32_t start[256], sum = 0;
        for (int d = 0; d < 256; d++) {
            start[d] = sum;
            sum += count[k][d];
        }
        for (int i = 0; i < n; i++) dst[start[(src[i] >> shift) & 0xFF]++] = src[i];
        uint64_t *tmp = src;
        src = dst;
        dst = tmp;
    }
    for (int i = 0; i < n; i++) ord[i] = (int32_t)(uint32_t)src[i];
    return (int)bad;
}

/* Append the sample's events (input ev_in[k], -1: the bias; x ev_x[k]; epoch bits ev_epoch[k]), in time order, to
 * the lists of the output positions they reach. (Its own function: inlined into forward_sample its loop ran
 * with spilled registers.) */
static __attribute__((noinline)) void distribute(const geom_t *g, int n_ev, const int32_t *ev_in,
                                                 const float *ev_x, const uint32_t *ev_epoch, const reach_t *tab,
                                                 entry_t *restrict lists, int32_t *restrict len) {
    const int n_pos = g->Ho * g->Wo, cap = g->kh * g->kw * g->C + 1, Wo = g->Wo;
    const int step_y = g->sh * g->kw * g->C, step_x = g->sw * g->C; /* code(oy, ox) = code0 - oy step_y - ox step_x */
    memset(len, 0, sizeof(int32_t) * (size_t)n_pos);
    for (int k = 0; k < n_ev; k++) {
        const float x = ev_x[k];
        const uint32_t epoch = ev_epoch[k];
        if (ev_in[k] < 0) {
            const entry_t e = {x, (uint32_t)(cap - 1) | epoch};
            for (int p = 0; p < n_pos; p++) lists[(size_t)p * cap + len[p]++] = e;
            continue;
        }
        const reach_t r = tab[ev_in[k]];
        for (int oy = r.oy0; oy < r.oy1; oy++) {
            const uint32_t code_y = (uint32_t)(r.code0 - oy * step_y) | epoch;
            entry_t *restrict dst = lists + (size_t)oy * Wo * cap;
            int32_t *restrict n_row = len + oy * Wo;
            for (int ox = r.ox0; ox < r.ox1; ox++) {
                const int n = n_row[ox];
                dst[(size_t)ox * cap + n] = (entry_t){x, code_y - (uint32_t)(ox * step_x)};
                n_row[ox] = n + 1;
            }
        }
    }
}

/* One sample: distribute the sorted inputs into per-position lists, then sweep every position. Returns 1 (and
 * does nothing more) if the sample needs more exp epochs than an entry code can name, 4 if a time is NaN or
 * -inf, else 0. */
static int forward_sample(const geom_t *g, const float *row, const float *wp, float *t_o, float *sl,
                          entry_t *lists, int32_t *len, double *ep_ref, float *ep_fac, const reach_t *tab,
                          const int32_t *row_off, int32_t *ord, uint64_t *sort_scratch) {
    const int n_in = g->H * g->W * g->C, n_pos = g->Ho * g->Wo, cap = g->kh * g->kw * g->C + 1;
    for (int i = 0; i < n_pos * g->O; i++) { /* no spike unless the sweep finds one */
        t_o[i] = INFINITY;
        sl[i] = 0.0f;
    }
    if (argsort_times(row, n_in, ord, sort_scratch)) return 4;
    int n_fin = 0;
    while (n_fin < n_in && row[ord[n_fin]] < INFINITY) n_fin++;
    double ref = n_fin > 0 ? row[ord[0]] : INFINITY;
    if (g->use_bias && ref > 0.0) ref = 0.0;
    if (!(ref < INFINITY)) return 0;
    int n_ep = 1;
    ep_ref[0] = ref;
    ep_fac[0] = 1.0f;
    int bias_pending = g->use_bias, n_ev = 0;
    int32_t *ev_in = (int32_t *)sort_scratch; /* the sort's scratch is free again: the events in time order */
    float *ev_x = (float *)(ev_in + n_in + 1);
    uint32_t *ev_epoch = (uint32_t *)(ev_x + n_in + 1);
    for (int j = 0; j < n_fin || bias_pending;) {
        const int with_bias = bias_pending && (j >= n_fin || row[ord[j]] >= 0.0f);
        const double tg = with_bias ? 0.0 : row[ord[j]];
        float x;
        if (g->is_exp) {
            if ((tg - ref) / g->tau > RESCALE_AT) {
                if (n_ep == 1 << (32 - ROW_BITS)) return 1;
                ep_fac[n_ep] = (float)exp(-(tg - ref) / g->tau);
                ref = tg;
                ep_ref[n_ep++] = ref;
            }
            x = (float)exp((tg - ref) / g->tau);
        } else {
            x = (float)(tg - ref);
        }
        ev_x[n_ev] = x;
        ev_epoch[n_ev] = (uint32_t)(n_ep - 1) << ROW_BITS;
        if (with_bias) {
            ev_in[n_ev++] = -1;
            bias_pending = 0;
            continue;
        }
        ev_in[n_ev++] = ord[j++];
    }
    distribute(g, n_ev, ev_in, ev_x, ev_epoch, tab, lists, len);
    for (int p = 0; p < n_pos; p++) {
        const int base = (((p / g->Wo) * g->sh - g->ph) * g->W + (p % g->Wo) * g->sw - g->pw) * g->C;
        for (int o0 = 0; o0 < g->O; o0 += 8 * MAX_NB) {
            const int nreal = g->O - o0 < 8 * MAX_NB ? g->O - o0 : 8 * MAX_NB;
            sweep_block(g, lists + (size_t)p * cap, len[p], wp + (size_t)cap * o0, row, row_off, base, ep_ref, ep_fac,
                        n_ep, nreal, t_o + (size_t)p * g->O + o0, sl + (size_t)p * g->O + o0);
        }
    }
    return 0;
}

/* Samples [b0, b1), scratch from this thread's buffer. Returns 0, 1 if a sample's span needs more exp epochs than
 * 2^(32 - ROW_BITS) (its outputs are left unwritten: the caller uses another backend), 2 if out of memory, 4 if
 * an input time is NaN or -inf (the callers skip their own scan of the inputs). */
static int forward_range(int b0, int b1, const geom_t *g, const float *t_in, const float *wp, float *t_out,
                         float *slope) {
    const size_t n_in = (size_t)g->H * g->W * g->C, n_out = (size_t)g->Ho * g->Wo * g->O;
    const size_t n_pos = (size_t)g->Ho * g->Wo, rows = (size_t)g->kh * g->kw * g->C;
    const size_t sizes[] = {n_pos * (rows + 1) * sizeof(entry_t), n_pos * 4, (n_in + 2) * 8, (n_in + 2) * 4,
                            n_in * sizeof(reach_t), rows * 4, n_in * 4, 2 * (n_in + 2) * 8 /* sort, then events */};
    void *part[8];
    if (!thread_scratch(sizes, part, 8)) return 2;
    layer_tables(g, part[4], part[5]);
    for (int b = b0; b < b1; b++) {
        const int code = forward_sample(g, t_in + b * n_in, wp, t_out + b * n_out, slope + b * n_out, part[0],
                                        part[1], part[2], part[3], part[4], part[5], part[6], part[7]);
        if (code) return code;
    }
    return 0;
}

/* Forward of B samples split into n_parts contiguous ranges (one per OpenMP thread; ttfs_forward_part runs one
 * range, for callers that bring their own threads). t_in [B][H*W*C]; wp the weights in the block layout; t_out,
 * slope [B][Ho*Wo*O] receive spike times (+inf: none) and slopes (0: none). Returns the OR of the ranges' codes
 * (forward_range). */
int ttfs_forward_part(int k, int n_parts, int B, const geom_t *g, const float *t_in, const float *wp, float *t_out,
                      float *slope) {
    return forward_range((int)((int64_t)k * B / n_parts), (int)((int64_t)(k + 1) * B / n_parts), g, t_in, wp, t_out,
                         slope);
}

int ttfs_forward(int n_parts, int B, const geom_t *g, const float *t_in, const float *wp, float *t_out,
                 float *slope) {
    int code = 0;
#pragma omp parallel for num_threads(n_parts) schedule(static, 1) reduction(| : code)
    for (int k = 0; k < n_parts; k++) code |= ttfs_forward_part(k, n_parts, B, g, t_in, wp, t_out, slope);
    return code;
}

/* ---------------------------------------------------------------- backward */

/* p, q, t_out of one sample's outputs in padded layout [Ho*Wo][Op] (padding: p = q = 0), bias gradient to gb. */
static void output_factors(const geom_t *g, const float *to, const float *sl, const float *go, double ref,
                           float *P, float *Q, float *TO, double *gb) {
    const int n_pos = g->Ho * g->Wo, O = g->O, Op = g->Op;
    for (int p = 0; p < n_pos; p++) {
        const float *t_p = to + (size_t)p * O, *d_p = sl + (size_t)p * O, *g_p = go + (size_t)p * O;
        float *P_p = P + (size_t)p * Op, *Q_p = Q + (size_t)p * Op, *T_p = TO + (size_t)p * Op;
        for (int o = O; o < Op; o++) P_p[o] = Q_p[o] = 0.0f, T_p[o] = -INFINITY;
        if (!g->is_exp) { /* branch-free, so it vectorises (the first conv layer has 16 x 784 outputs per sample) */
            for (int o = 0; o < O; o++) {
                const float t = t_p[o], d = d_p[o], gi = g_p[o];
                const int ok = (t < INFINITY) & (d != 0.0f) & (fabsf(gi) < INFINITY);
                const float c = ok ? gi / d : 0.0f, ct = ok ? c * t : 0.0f;
                P_p[o] = c;
                Q_p[o] = ct;
                T_p[o] = t;
                gb[o] -= t > 0.0f ? (double)ct : 0.0;
            }
            continue;
        }
        for (int o = 0; o < O; o++) {
            const float t = t_p[o], d = d_p[o], gi = g_p[o];
            P_p[o] = Q_p[o] = 0.0f;
            T_p[o] = t;
            if (!(t < INFINITY && d != 0.0f && isfinite(gi))) continue;
            const float c = gi / d;
            P_p[o] = (float)(c * exp(-(t - ref) / g->tau));
            Q_p[o] = (float)(g->tau * c);
            if (t > 0.0f) gb[o] += c * g->tau * (exp(-t / g->tau) - 1.0);
        }
    }
}

/* The masked VJP of one position and channel block (NB vectors, EXP; constant after inlining). */
static inline __attribute__((always_inline)) void vjp_block(const int NB, const int EXP, const geom_t *g,
                                                            const float *row, const float *Z, const float *P,
                                                            const float *Q, const float *TO, const float *wp,
                                                            float *gw, float *grad_t, int oy, int ox) {
    v8f p[MAX_NB], q[MAX_NB], to[MAX_NB];
    for (int v = 0; v < NB; v++) {
        p[v] = ld(P + 8 * v);
        q[v] = ld(Q + 8 * v);
        to[v] = ld(TO + 8 * v);
    }
    const int iy0 = oy * g->sh - g->ph, ix0 = ox * g->sw - g->pw, C = g->C, Op = 8 * NB; /* block row stride */
    const int ky0 = iy0 < 0 ? -iy0 : 0, ky1 = g->H - iy0 < g->kh ? g->H - iy0 : g->kh;
    const int kx0 = ix0 < 0 ? -ix0 : 0, kx1 = g->W - ix0 < g->kw ? g->W - ix0 : g->kw;
    for (int ky = ky0; ky < ky1; ky++)
        for (int kx = kx0; kx < kx1; kx++) {
            const size_t base = ((size_t)(iy0 + ky) * g->W + ix0 + kx) * C;
            const size_t r0 = (size_t)(ky * g->kw + kx) * C;
            const float *t_run = row + base, *w = wp + r0 * Op;
            float *gwr = gw + r0 * Op, *gt = grad_t ? grad_t + base : NULL;
            int c = 0;
            if (gt) /* 8 inputs at a time: their 8 partial sums reduced together (sums8) */
                for (; c + 8 <= C; c += 8, w += 8 * Op, gwr += 8 * Op) {
                    const v8f t8 = ld(t_run + c);
                    if (!mask_bits(t8 < splat(INFINITY))) continue;
                    v8f acc[8];
                    for (int j = 0; j < 8; j++) {
                        const float t = t8[j];
                        const v8f tv = splat(t), xv = splat(EXP ? (float)(g->tau * Z[base + c + j]) : t);
                        acc[j] = splat(0.0f);
                        for (int v = 0; v < NB; v++) {
                            const v8i m = tv < to[v];
                            st(gwr + j * Op + 8 * v, ld(gwr + j * Op + 8 * v) + keep(m, xv * p[v] - q[v]));
                            acc[j] += keep(m, p[v] * ld(w + j * Op + 8 * v));
                        }
                    }
                    const v8f y8 = EXP ? ld(Z + base + c) : splat(1.0f);
                    st(gt + c, ld(gt + c) + y8 * sums8(acc));
                }
            for (; c < C; c++, w += Op, gwr += Op) {
                const float t = t_run[c];
                if (!(t < INFINITY)) continue;
                const float y = EXP ? Z[base + c] : 1.0f;
                const v8f tv = splat(t), xv = splat(EXP ? (float)(g->tau * y) : t);
                v8f acc = splat(0.0f);
                for (int v = 0; v < NB; v++) {
                    const v8i m = tv < to[v];
                    st(gwr + 8 * v, ld(gwr + 8 * v) + keep(m, xv * p[v] - q[v]));
                    if (gt) acc += keep(m, p[v] * ld(w + 8 * v));
                }
                if (gt) gt[c] += y * hsum(acc);
            }
        }
}

/* Samples [b0, b1) into one partial weight gradient gw [kh*kw*C + 1][Op] and bias gradient gb [O]; scratch from
 * this thread's buffer. Returns 0, or 2 if out of memory. */
static int backward_range(int b0, int b1, const geom_t *g, const float *t_in, const float *wp, const float *t_out,
                          const float *slope, const float *grad_out, float *grad_t, float *gw, double *gb) {
    const size_t n_in = (size_t)g->H * g->W * g->C, n_out = (size_t)g->Ho * g->Wo * g->O;
    const size_t n_pad = (size_t)g->Ho * g->Wo * g->Op, rows = (size_t)g->kh * g->kw * g->C + 1;
    const size_t sizes[] = {3 * n_pad * 4, n_in * 4};
    void *part[2];
    if (!thread_scratch(sizes, part, 2)) return 2;
    float *P = part[0], *Q = P + n_pad, *TO = P + 2 * n_pad, *z = part[1];
    for (int b = b0; b < b1; b++) {
        const float *row = t_in + b * n_in;
        double ref = INFINITY;
        for (size_t i = 0; i < n_in; i++) ref = fmin(ref, row[i]);
        if (!(ref < INFINITY)) ref = 0.0; /* no input spike: only the bias can have made outputs fire */
        output_factors(g, t_out + b * n_out, slope + b * n_out, grad_out + b * n_out, ref, P, Q, TO, gb);
        float last = -INFINITY; /* the sample's last output spike: inputs from then on are causal for no output */
        for (size_t i = 0; i < n_out; i++)
            if (t_out[b * n_out + i] < INFINITY && t_out[b * n_out + i] > last) last = t_out[b * n_out + i];
        if (g->is_exp) /* z = 0 there: exp((t_i - ref)/tau) of such a late input may overflow, and inf * 0 is NaN */
            for (size_t i = 0; i < n_in; i++) z[i] = row[i] < last ? (float)exp((row[i] - ref) / g->tau) : 0.0f;
        float *gt = grad_t ? grad_t + b * n_in : NULL;
        if (gt) memset(gt, 0, n_in * sizeof(float));
        for (int oy = 0; oy < g->Ho; oy++)
            for (int ox = 0; ox < g->Wo; ox++)
                for (int o0 = 0; o0 < g->Op; o0 += 8 * MAX_NB) {
                    const int nb = (g->Op - o0) / 8 < MAX_NB ? (g->Op - o0) / 8 : MAX_NB;
                    const size_t k = (size_t)(oy * g->Wo + ox) * g->Op + o0;
                    BY_BLOCK(vjp_block, nb, g->is_exp, g, row, z, P + k, Q + k, TO + k, wp + rows * o0,
                             gw + rows * o0, gt, oy, ox);
                }
        /* the bias (an input at t = 0) needs no weight row here: its gradient is summed in output_factors */
    }
    return 0;
}

/* Backward of B samples split into n_parts ranges as in ttfs_forward. t_in [B][H*W*C]; t_out, slope, grad_out
 * [B][Ho*Wo*O]; grad_t [B][H*W*C] (written) or NULL; range k adds its weight and bias gradients to
 * gw + k*(kh*kw*C + 1)*Op and gb + k*O (zeros). Returns 0, or 2 if out of memory. */
int ttfs_backward_part(int k, int n_parts, int B, const geom_t *g, const float *t_in, const float *wp,
                       const float *t_out, const float *slope, const float *grad_out, float *grad_t, float *gw,
                       double *gb) {
    const size_t rows = (size_t)g->kh * g->kw * g->C + 1;
    return backward_range((int)((int64_t)k * B / n_parts), (int)((int64_t)(k + 1) * B / n_parts), g, t_in, wp,
                          t_out, slope, grad_out, grad_t, gw + k * rows * g->Op, gb + (size_t)k * g->O);
}

int ttfs_backward(int n_parts, int B, const geom_t *g, const float *t_in, const float *wp, const float *t_out,
                  const float *slope, const float *grad_out, float *grad_t, float *gw, double *gb) {
    int code = 0;
#pragma omp parallel for num_threads(n_parts) schedule(static, 1) reduction(| : code)
    for (int k = 0; k < n_parts; k++)
        code |= ttfs_backward_part(k, n_parts, B, g, t_in, wp, t_out, slope, grad_out, grad_t, gw, gb);
    return code;
}

/* ---------------------------------------------------------------- weight layout */

/* w [O][C][kh][kw] (+ bias [O] or NULL) -> wp in the block layout (see the top of this file; padding channels
 * and, without a bias, the bias rows get 0). Returns 8 if a weight or the bias is NaN or +-inf (wp is complete
 * either way), else 0. */
int ttfs_pack_weights(const geom_t *g, const float *w, const float *bias, float *wp) {
    const int O = g->O, Op = g->Op, C = g->C, kk = g->kh * g->kw, rows = kk * C + 1;
    uint32_t bad = 0;
    for (int o0 = 0; o0 < Op; o0 += 8 * MAX_NB) {
        const int width = Op - o0 < 8 * MAX_NB ? Op - o0 : 8 * MAX_NB;
        float *blk = wp + (size_t)rows * o0;
        memset(blk, 0, sizeof(float) * (size_t)rows * width);
        for (int j = 0; j < width && o0 + j < O; j++) {
            const float *w_o = w + (size_t)(o0 + j) * C * kk;
            for (int c = 0; c < C; c++)
                for (int k = 0; k < kk; k++) { /* k = ky*kw + kx */
                    const float x = w_o[c * kk + k];
                    uint32_t u;
                    memcpy(&u, &x, 4);
                    bad |= (u & 0x7F800000u) == 0x7F800000u; /* NaN or +-inf: all exponent bits set */
                    blk[(size_t)(k * C + c) * width + j] = x;
                }
            if (bias) {
                bad |= !isfinite(bias[o0 + j]);
                blk[(size_t)(rows - 1) * width + j] = bias[o0 + j];
            }
        }
    }
    return bad ? 8 : 0;
}

/* The partial gradients of ttfs_backward (n_parts x gw in the block layout, n_parts x gb) summed and laid out
 * as grad_w [O][C][kh][kw] and grad_b [O] (skipped when NULL). */
void ttfs_unpack_grads(const geom_t *g, int n_parts, const float *gw, const double *gb, float *grad_w,
                       float *grad_b) {
    const int O = g->O, Op = g->Op, C = g->C, kk = g->kh * g->kw, rows = kk * C + 1;
    const size_t part = (size_t)rows * Op;
    for (int o0 = 0; o0 < Op; o0 += 8 * MAX_NB) {
        const int width = Op - o0 < 8 * MAX_NB ? Op - o0 : 8 * MAX_NB;
        const float *blk = gw + (size_t)rows * o0;
        for (int j = 0; j < width && o0 + j < O; j++) {
            float *g_o = grad_w + (size_t)(o0 + j) * C * kk;
            for (int c = 0; c < C; c++)
                for (int k = 0; k < kk; k++) {
                    const size_t at = (size_t)(k * C + c) * width + j;
                    float sum = 0.0f;
                    for (int q = 0; q < n_parts; q++) sum += blk[q * part + at];
                    g_o[c * kk + k] = sum;
                }
        }
    }
    if (grad_b)
        for (int o = 0; o < O; o++) {
            double sum = 0.0;
            for (int q = 0; q < n_parts; q++) sum += gb[(size_t)q * O + o];
            grad_b[o] = (float)sum;
        }
}

/* 1 when compiled with OpenMP (ttfs_forward/ttfs_backward then run their ranges in parallel), else 0. */
int ttfs_openmp(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}
