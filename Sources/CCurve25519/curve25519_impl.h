/* The field arithmetic and maps, included by one translation unit per instruction set
 * (curve25519_generic.c, curve25519_bmi2.c): everything here is static, and nothing runs at load (the
 * BMI2 copy must never execute on a CPU without BMI2). */
#include <stdint.h>
#include <stddef.h>

#include <stdlib.h>
#include <string.h>

/* A field element: five limbs of 51 bits, value = sum v[i] * 2^(51 i). Limbs may exceed 2^51 a little
 * between operations; fe_carry brings each below 2^51 (+1 on limb 1). */
typedef struct { uint64_t v[5]; } fe;
typedef unsigned __int128 u128;

#define MASK51 ((uint64_t)0x7ffffffffffffULL)

static const fe fe_zero = {{0, 0, 0, 0, 0}};
static const fe fe_one = {{1, 0, 0, 0, 0}};
/* J = 486662, the Montgomery coefficient A. */
static const fe fe_J = {{486662, 0, 0, 0, 0}};

static uint64_t load64_le(const uint8_t *p) {
    uint64_t r = 0;
    for (int i = 7; i >= 0; i--) r = (r << 8) | p[i];
    return r;
}

static void store64_le(uint8_t *p, uint64_t x) {
    for (int i = 0; i < 8; i++) { p[i] = (uint8_t)x; x >>= 8; }
}

/* 32 bytes little-endian, bit 255 ignored. */
static void fe_frombytes(fe *h, const uint8_t s[32]) {
    uint64_t w0 = load64_le(s), w1 = load64_le(s + 8), w2 = load64_le(s + 16), w3 = load64_le(s + 24);
    h->v[0] = w0 & MASK51;
    h->v[1] = ((w0 >> 51) | (w1 << 13)) & MASK51;
    h->v[2] = ((w1 >> 38) | (w2 << 26)) & MASK51;
    h->v[3] = ((w2 >> 25) | (w3 << 39)) & MASK51;
    h->v[4] = (w3 >> 12) & MASK51;
}

static void fe_carry(fe *h) {
    uint64_t c;
    c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
    c = h->v[1] >> 51; h->v[1] &= MASK51; h->v[2] += c;
    c = h->v[2] >> 51; h->v[2] &= MASK51; h->v[3] += c;
    c = h->v[3] >> 51; h->v[3] &= MASK51; h->v[4] += c;
    c = h->v[4] >> 51; h->v[4] &= MASK51; h->v[0] += 19 * c;
    c = h->v[0] >> 51; h->v[0] &= MASK51; h->v[1] += c;
}

/* The canonical encoding (fully reduced mod p), 32 bytes little-endian. */
static void fe_tobytes(uint8_t s[32], const fe *f) {
    fe h = *f;
    fe_carry(&h);
    fe_carry(&h);
    /* q = 1 when h >= p, i.e. when h + 19 carries out of bit 255. */
    uint64_t q = (h.v[0] + 19) >> 51;
    q = (h.v[1] + q) >> 51;
    q = (h.v[2] + q) >> 51;
    q = (h.v[3] + q) >> 51;
    q = (h.v[4] + q) >> 51;
    h.v[0] += 19 * q;
    uint64_t c;
    c = h.v[0] >> 51; h.v[0] &= MASK51; h.v[1] += c;
    c = h.v[1] >> 51; h.v[1] &= MASK51; h.v[2] += c;
    c = h.v[2] >> 51; h.v[2] &= MASK51; h.v[3] += c;
    c = h.v[3] >> 51; h.v[3] &= MASK51; h.v[4] += c;
    h.v[4] &= MASK51;
    store64_le(s, h.v[0] | (h.v[1] << 51));
    store64_le(s + 8, (h.v[1] >> 13) | (h.v[2] << 38));
    store64_le(s + 16, (h.v[2] >> 26) | (h.v[3] << 25));
    store64_le(s + 24, (h.v[3] >> 39) | (h.v[4] << 12));
}

static void fe_add(fe *h, const fe *f, const fe *g) {
    for (int i = 0; i < 5; i++) h->v[i] = f->v[i] + g->v[i];
    fe_carry(h);
}

/* f - g, adding 4p first so that no limb goes below zero (limbs of g are below 2^52). */
static void fe_sub(fe *h, const fe *f, const fe *g) {
    h->v[0] = f->v[0] + 0x1fffffffffffb4ULL - g->v[0];
    h->v[1] = f->v[1] + 0x1ffffffffffffcULL - g->v[1];
    h->v[2] = f->v[2] + 0x1ffffffffffffcULL - g->v[2];
    h->v[3] = f->v[3] + 0x1ffffffffffffcULL - g->v[3];
    h->v[4] = f->v[4] + 0x1ffffffffffffcULL - g->v[4];
    fe_carry(h);
}

static void fe_neg(fe *h, const fe *f) { fe_sub(h, &fe_zero, f); }

static void fe_reduce_wide(fe *h, u128 t0, u128 t1, u128 t2, u128 t3, u128 t4) {
    uint64_t r0, r1, r2, r3, r4, c;
    t1 += (uint64_t)(t0 >> 51); r0 = (uint64_t)t0 & MASK51;
    t2 += (uint64_t)(t1 >> 51); r1 = (uint64_t)t1 & MASK51;
    t3 += (uint64_t)(t2 >> 51); r2 = (uint64_t)t2 & MASK51;
    t4 += (uint64_t)(t3 >> 51); r3 = (uint64_t)t3 & MASK51;
    c = (uint64_t)(t4 >> 51); r4 = (uint64_t)t4 & MASK51;
    r0 += 19 * c;
    r1 += r0 >> 51; r0 &= MASK51;
    h->v[0] = r0; h->v[1] = r1; h->v[2] = r2; h->v[3] = r3; h->v[4] = r4;
}

static void fe_mul(fe *h, const fe *f, const fe *g) {
    uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    uint64_t g0 = g->v[0], g1 = g->v[1], g2 = g->v[2], g3 = g->v[3], g4 = g->v[4];
    uint64_t g1_19 = 19 * g1, g2_19 = 19 * g2, g3_19 = 19 * g3, g4_19 = 19 * g4;
    u128 t0 = (u128)f0 * g0 + (u128)f1 * g4_19 + (u128)f2 * g3_19 + (u128)f3 * g2_19 + (u128)f4 * g1_19;
    u128 t1 = (u128)f0 * g1 + (u128)f1 * g0 + (u128)f2 * g4_19 + (u128)f3 * g3_19 + (u128)f4 * g2_19;
    u128 t2 = (u128)f0 * g2 + (u128)f1 * g1 + (u128)f2 * g0 + (u128)f3 * g4_19 + (u128)f4 * g3_19;
    u128 t3 = (u128)f0 * g3 + (u128)f1 * g2 + (u128)f2 * g1 + (u128)f3 * g0 + (u128)f4 * g4_19;
    u128 t4 = (u128)f0 * g4 + (u128)f1 * g3 + (u128)f2 * g2 + (u128)f3 * g1 + (u128)f4 * g0;
    fe_reduce_wide(h, t0, t1, t2, t3, t4);
}

static void fe_sq(fe *h, const fe *f) {
    uint64_t f0 = f->v[0], f1 = f->v[1], f2 = f->v[2], f3 = f->v[3], f4 = f->v[4];
    uint64_t f0_2 = 2 * f0, f1_2 = 2 * f1, f3_19 = 19 * f3, f4_19 = 19 * f4;
    u128 t0 = (u128)f0 * f0 + (u128)f1_2 * f4_19 + (u128)(2 * f2) * f3_19;
    u128 t1 = (u128)f0_2 * f1 + (u128)(2 * f2) * f4_19 + (u128)f3 * f3_19;
    u128 t2 = (u128)f0_2 * f2 + (u128)f1 * f1 + (u128)(2 * f3) * f4_19;
    u128 t3 = (u128)f0_2 * f3 + (u128)f1_2 * f2 + (u128)f4 * f4_19;
    u128 t4 = (u128)f0_2 * f4 + (u128)f1_2 * f3 + (u128)f2 * f2;
    fe_reduce_wide(h, t0, t1, t2, t3, t4);
}

static void fe_sqn(fe *h, const fe *f, int n) {
    fe_sq(h, f);
    for (int i = 1; i < n; i++) fe_sq(h, h);
}

/* z^(2^250 - 1), and z^11 on the side: the common part of the exponents below. */
static void fe_pow250(fe *z250, fe *z11, fe *z2out, const fe *z) {
    fe z2, z9, t, z5, z10, z20, z40, z50, z100, z200;
    fe_sq(&z2, z);
    fe_sqn(&t, &z2, 2);
    fe_mul(&z9, &t, z);
    fe_mul(z11, &z9, &z2);
    fe_sq(&t, z11);
    fe_mul(&z5, &t, &z9);              /* 2^5 - 1 */
    fe_sqn(&t, &z5, 5);
    fe_mul(&z10, &t, &z5);             /* 2^10 - 1 */
    fe_sqn(&t, &z10, 10);
    fe_mul(&z20, &t, &z10);            /* 2^20 - 1 */
    fe_sqn(&t, &z20, 20);
    fe_mul(&z40, &t, &z20);            /* 2^40 - 1 */
    fe_sqn(&t, &z40, 10);
    fe_mul(&z50, &t, &z10);            /* 2^50 - 1 */
    fe_sqn(&t, &z50, 50);
    fe_mul(&z100, &t, &z50);           /* 2^100 - 1 */
    fe_sqn(&t, &z100, 100);
    fe_mul(&z200, &t, &z100);          /* 2^200 - 1 */
    fe_sqn(&t, &z200, 50);
    fe_mul(z250, &t, &z50);            /* 2^250 - 1 */
    if (z2out) *z2out = z2;
}

/* z^(p-2) = z^(2^255 - 21): 1/z (0 for 0). */
static void fe_invert(fe *h, const fe *z) {
    fe z250, z11, t;
    fe_pow250(&z250, &z11, NULL, z);
    fe_sqn(&t, &z250, 5);
    fe_mul(h, &t, &z11);
}

/* z^((p-5)/8) = z^(2^252 - 3). */
static void fe_pow22523(fe *h, const fe *z) {
    fe z250, z11, t;
    fe_pow250(&z250, &z11, NULL, z);
    fe_sqn(&t, &z250, 2);
    fe_mul(h, &t, z);
}

static int fe_equal(const fe *f, const fe *g) {
    uint8_t a[32], b[32];
    fe_tobytes(a, f);
    fe_tobytes(b, g);
    return memcmp(a, b, 32) == 0;
}

static int fe_iszero(const fe *f) { return fe_equal(f, &fe_zero); }

/* sgn0 of RFC 9380 for GF(p): the parity of the canonical value. */
static int fe_sgn0(const fe *f) {
    uint8_t s[32];
    fe_tobytes(s, f);
    return s[0] & 1;
}

/* sqrt(-1) = 2^((p-1)/4) and c2 = 2^((p+3)/8), as limbs (literals: a constructor here would be compiled
 * for BMI2 too in curve25519_bmi2.c and run on every CPU at load). Checked by the RFC's vectors. */
static const fe fe_sqrtm1_value = {{0x61b274a0ea0b0ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL, 0x2b8324804fc1dULL}};
static const fe fe_c2_value = {{0x61b274a0ea0b1ULL, 0xd5a5fc8f189dULL, 0x7ef5e9cbd0c60ULL, 0x78595a6804c9eULL, 0x2b8324804fc1dULL}};

/* 48 bytes, a big-endian integer, reduced mod p: x = hi * 2^256 + lo ≡ lo + 38 hi (2^256 ≡ 38). */
static void fe_from_uniform48(fe *h, const uint8_t b[48]) {
    uint8_t lo[32], hi[32];
    memset(hi, 0, sizeof hi);
    for (int i = 0; i < 32; i++) lo[i] = b[47 - i];
    for (int i = 0; i < 16; i++) hi[i] = b[15 - i];
    int top = lo[31] >> 7;               /* bit 255 of lo: 2^255 ≡ 19 */
    fe l, k, t;
    fe_frombytes(&l, lo);
    fe_frombytes(&k, hi);
    l.v[0] += 19 * (uint64_t)top;
    fe thirtyeight = {{38, 0, 0, 0, 0}};
    fe_mul(&t, &k, &thirtyeight);
    fe_add(h, &l, &t);
}

/* Elligator 2 (RFC 9380 §6.7.1, Z = 2, with one exponentiation as in its appendix G.2.1): the point
 * (xn / xd, y). Split around its exponentiation (`map_before`, z^((p-5)/8) of `base`, `map_after`) so that
 * the two maps of a hash can run their exponentiations side by side (`fe_pow22523_x2`). */
typedef struct { fe u, tv1, xd, x1n, gxd, gx1, tv3, base; } map_state;

static void map_before(map_state *m, const fe *u) {
    fe tv2;
    m->u = *u;
    fe_sq(&m->tv1, u);
    fe_add(&m->tv1, &m->tv1, &m->tv1);   /* 2u^2 */
    fe_add(&m->xd, &m->tv1, &fe_one);    /* nonzero: -1/2 is not a square */
    fe_neg(&m->x1n, &fe_J);              /* x1 = -J / (1 + 2u^2) */
    fe_sq(&tv2, &m->xd);
    fe_mul(&m->gxd, &tv2, &m->xd);       /* xd^3 */
    fe_mul(&m->gx1, &fe_J, &m->tv1);     /* x1n + J xd */
    fe_mul(&m->gx1, &m->gx1, &m->x1n);
    fe_add(&m->gx1, &m->gx1, &tv2);
    fe_mul(&m->gx1, &m->gx1, &m->x1n);   /* x1n^3 + J x1n^2 xd + x1n xd^2 */
    fe_sq(&m->tv3, &m->gxd);
    fe_sq(&tv2, &m->tv3);                /* gxd^4 */
    fe_mul(&m->tv3, &m->tv3, &m->gxd);   /* gxd^3 */
    fe_mul(&m->tv3, &m->tv3, &m->gx1);   /* gx1 gxd^3 */
    fe_mul(&m->base, &tv2, &m->tv3);     /* gx1 gxd^7 */
}

static void map_after(fe *xn, fe *xd, fe *y, const map_state *m, const fe *power) {
    fe tv2, gx2, x2n, y11, y12, y21, y22, y1, y2;
    fe sqrtm1 = fe_sqrtm1_value, c2 = fe_c2_value;
    fe_mul(&y11, power, &m->tv3);        /* a square root of gx1 / gxd, if it is a square */
    fe_mul(&y12, &y11, &sqrtm1);
    fe_sq(&tv2, &y11);
    fe_mul(&tv2, &tv2, &m->gxd);
    y1 = fe_equal(&tv2, &m->gx1) ? y11 : y12;
    fe_mul(&x2n, &m->x1n, &m->tv1);      /* x2 = 2u^2 x1 */
    /* c2 = 2^((p+3)/8): sqrt(g(x2)) = u c2 y11 or that times sqrt(-1). */
    fe_mul(&y21, &y11, &m->u);
    fe_mul(&y21, &y21, &c2);
    fe_mul(&y22, &y21, &sqrtm1);
    fe_mul(&gx2, &m->gx1, &m->tv1);      /* g(x2) gxd = 2u^2 g(x1) gxd */
    fe_sq(&tv2, &y21);
    fe_mul(&tv2, &tv2, &m->gxd);
    y2 = fe_equal(&tv2, &gx2) ? y21 : y22;
    fe_sq(&tv2, &y1);
    fe_mul(&tv2, &tv2, &m->gxd);
    int e3 = fe_equal(&tv2, &m->gx1);
    *xn = e3 ? m->x1n : x2n;
    *xd = m->xd;
    *y = e3 ? y1 : y2;
    int e4 = fe_sgn0(y);
    if (e3 ^ e4) fe_neg(y, y);
}

static void map_elligator2(fe *xn, fe *xd, fe *y, const fe *u) {
    map_state m;
    fe power;
    map_before(&m, u);
    fe_pow22523(&power, &m.base);
    map_after(xn, xd, y, &m, &power);
}

/* z0^((p-5)/8) and z1^((p-5)/8) with their squaring chains interleaved: each chain waits on its own
 * previous result, so two of them keep the multiplier busy (about 1.5 times the throughput of two in a row). */
static void fe_sq2(fe *h0, const fe *f0, fe *h1, const fe *f1) { fe_sq(h0, f0); fe_sq(h1, f1); }
static void fe_mul2(fe *h0, const fe *f0, const fe *g0, fe *h1, const fe *f1, const fe *g1) { fe_mul(h0, f0, g0); fe_mul(h1, f1, g1); }
static void fe_sqn2(fe *h0, const fe *f0, fe *h1, const fe *f1, int n) {
    fe_sq2(h0, f0, h1, f1);
    for (int i = 1; i < n; i++) fe_sq2(h0, h0, h1, h1);
}

static void fe_pow22523_x2(fe *r0, fe *r1, const fe *z0, const fe *z1) {
    fe a2, b2, a9, b9, a11, b11, a5, b5, a10, b10, a20, b20, a40, b40, a50, b50, a100, b100, a200, b200, a250, b250, ta, tb;
    fe_sq2(&a2, z0, &b2, z1);
    fe_sqn2(&ta, &a2, &tb, &b2, 2);
    fe_mul2(&a9, &ta, z0, &b9, &tb, z1);
    fe_mul2(&a11, &a9, &a2, &b11, &b9, &b2);
    fe_sq2(&ta, &a11, &tb, &b11);
    fe_mul2(&a5, &ta, &a9, &b5, &tb, &b9);
    fe_sqn2(&ta, &a5, &tb, &b5, 5);
    fe_mul2(&a10, &ta, &a5, &b10, &tb, &b5);
    fe_sqn2(&ta, &a10, &tb, &b10, 10);
    fe_mul2(&a20, &ta, &a10, &b20, &tb, &b10);
    fe_sqn2(&ta, &a20, &tb, &b20, 20);
    fe_mul2(&a40, &ta, &a20, &b40, &tb, &b20);
    fe_sqn2(&ta, &a40, &tb, &b40, 10);
    fe_mul2(&a50, &ta, &a10, &b50, &tb, &b10);
    fe_sqn2(&ta, &a50, &tb, &b50, 50);
    fe_mul2(&a100, &ta, &a50, &b100, &tb, &b50);
    fe_sqn2(&ta, &a100, &tb, &b100, 100);
    fe_mul2(&a200, &ta, &a100, &b200, &tb, &b100);
    fe_sqn2(&ta, &a200, &tb, &b200, 50);
    fe_mul2(&a250, &ta, &a50, &b250, &tb, &b50);
    fe_sqn2(&ta, &a250, &tb, &b250, 2);
    fe_mul2(r0, &ta, z0, r1, &tb, z1);
}

/* The sum of two affine points (x0n/x0d, y0) + (x1n/x1d, y1) as a fraction num/den of its u-coordinate;
 * returns -1 for the point at infinity. Equal points are doubled. */
static int add_points(fe *num, fe *den, const fe *x0n, const fe *x0d, const fe *y0, const fe *x1n, const fe *x1d, const fe *y1) {
    fe m, d, a, b, n, t, s;
    fe_mul(&m, x0d, x1d);                /* M = x0d x1d */
    fe_mul(&a, x1n, x0d);
    fe_mul(&b, x0n, x1d);
    fe_sub(&d, &a, &b);                  /* D = (x1 - x0) M */
    if (fe_iszero(&d)) {
        fe_sub(&t, y1, y0);
        if (!fe_iszero(&t) || fe_iszero(y0)) return -1;    /* P + (-P), or a point of order 2 doubled */
        /* Doubling: lambda = (3x^2 + 2Jx + 1) / (2y), x = x0n / x0d. */
        fe x0, inv, l, l2, twoy;
        fe_invert(&inv, x0d);
        fe_mul(&x0, x0n, &inv);
        fe_sq(&t, &x0);
        fe_add(&s, &t, &t);
        fe_add(&s, &s, &t);              /* 3x^2 */
        fe_mul(&t, &fe_J, &x0);
        fe_add(&s, &s, &t);
        fe_add(&s, &s, &t);
        fe_add(&s, &s, &fe_one);
        fe_add(&twoy, y0, y0);
        fe_invert(&inv, &twoy);
        fe_mul(&l, &s, &inv);
        fe_sq(&l2, &l);
        fe_sub(&l2, &l2, &fe_J);
        fe_sub(&l2, &l2, &x0);
        fe_sub(num, &l2, &x0);
        *den = fe_one;
        return 0;
    }
    /* lambda = N / D with N = (y1 - y0) M; u3 = lambda^2 - J - x0 - x1
     *   = (N^2 M - J D^2 M - (x0n x1d + x1n x0d) D^2) / (D^2 M). */
    fe_sub(&t, y1, y0);
    fe_mul(&n, &t, &m);
    fe_sq(&s, &d);                       /* D^2 */
    fe_mul(den, &s, &m);                 /* D^2 M */
    fe_sq(&t, &n);
    fe_mul(&t, &t, &m);                  /* N^2 M */
    fe_mul(&a, &fe_J, den);              /* J D^2 M */
    fe_sub(&t, &t, &a);
    fe_mul(&a, x1n, x0d);
    fe_add(&a, &a, &b);
    fe_mul(&a, &a, &s);
    fe_sub(num, &t, &a);
    return 0;
}

static int sum_fraction(fe *num, fe *den, const uint8_t uniform[96]) {
    fe u0, u1, x0n, x0d, y0, x1n, x1d, y1, p0, p1;
    map_state m0, m1;
    fe_from_uniform48(&u0, uniform);
    fe_from_uniform48(&u1, uniform + 48);
    map_before(&m0, &u0);
    map_before(&m1, &u1);
    fe_pow22523_x2(&p0, &p1, &m0.base, &m1.base);
    map_after(&x0n, &x0d, &y0, &m0, &p0);
    map_after(&x1n, &x1d, &y1, &m1, &p1);
    return add_points(num, den, &x0n, &x0d, &y0, &x1n, &x1d, &y1);
}

static int impl_hash_to_curve_u(uint8_t out[32], const uint8_t uniform[96]) {
    fe num, den, inv, u;
    if (sum_fraction(&num, &den, uniform) != 0) { memset(out, 0, 32); return -1; }
    fe_invert(&inv, &den);
    fe_mul(&u, &num, &inv);
    fe_tobytes(out, &u);
    return 0;
}

static int impl_hash_to_curve_u_batch(uint8_t *out, const uint8_t *uniform, size_t count) {
    if (count == 0) return 0;
    if (count > SIZE_MAX / sizeof(fe)) return -2;
    fe *num = malloc(count * sizeof(fe)), *acc = malloc(count * sizeof(fe));
    if (!num || !acc) { free(num); free(acc); return -2; }
    int rc = 0;
    fe running = fe_one, den;
    /* acc[i] = den_0 ... den_(i-1); a point at infinity gets den = 1 and u = 0 (X25519 refuses it). */
    for (size_t i = 0; i < count; i++) {
        if (sum_fraction(&num[i], &den, uniform + 96 * i) != 0) { num[i] = fe_zero; den = fe_one; rc = -1; }
        acc[i] = running;
        fe_mul(&running, &running, &den);
        /* keep den for the backward pass: store it in out temporarily */
        fe_tobytes(out + 32 * i, &den);
    }
    fe inv;
    fe_invert(&inv, &running);           /* 1 / (den_0 ... den_(n-1)) */
    for (size_t i = count; i-- > 0;) {
        fe d, u, inv_i;
        fe_frombytes(&d, out + 32 * i);
        fe_mul(&inv_i, &inv, &acc[i]);   /* 1 / den_i */
        fe_mul(&inv, &inv, &d);          /* 1 / (den_0 ... den_(i-1)) */
        fe_mul(&u, &num[i], &inv_i);
        fe_tobytes(out + 32 * i, &u);
    }
    free(num);
    free(acc);
    return rc;
}

__attribute__((unused)) static void impl_field_from_uniform_be(uint8_t out_be[32], const uint8_t uniform[48]) {
    fe h;
    uint8_t le[32];
    fe_from_uniform48(&h, uniform);
    fe_tobytes(le, &h);
    for (int i = 0; i < 32; i++) out_be[i] = le[31 - i];
}

__attribute__((unused)) static void impl_map_be(uint8_t u_be[32], uint8_t v_be[32], const uint8_t field_be[32]) {
    uint8_t le[32];
    for (int i = 0; i < 32; i++) le[i] = field_be[31 - i];
    fe f, xn, xd, y, inv, x;
    fe_frombytes(&f, le);
    map_elligator2(&xn, &xd, &y, &f);
    fe_invert(&inv, &xd);
    fe_mul(&x, &xn, &inv);
    fe_tobytes(le, &x);
    for (int i = 0; i < 32; i++) u_be[i] = le[31 - i];
    fe_tobytes(le, &y);
    for (int i = 0; i < 32; i++) v_be[i] = le[31 - i];
}

__attribute__((unused)) static void impl_double_u(uint8_t out[32], const uint8_t in[32]) {
    /* x(2P) = (x^2 - 1)^2 / (4 x (x^2 + J x + 1)) */
    fe x, x2, n, d, t, inv, r;
    fe_frombytes(&x, in);
    fe_sq(&x2, &x);
    fe_sub(&n, &x2, &fe_one);
    fe_sq(&n, &n);
    fe_mul(&t, &fe_J, &x);
    fe_add(&d, &x2, &t);
    fe_add(&d, &d, &fe_one);
    fe_mul(&d, &d, &x);
    fe_add(&d, &d, &d);
    fe_add(&d, &d, &d);
    fe_invert(&inv, &d);
    fe_mul(&r, &n, &inv);
    fe_tobytes(out, &r);
}
