/* Bit-matrix transpose in 8 x 8 blocks: eight bytes (one from each of eight rows) form a 64-bit word
 * whose byte r is row r; three delta swaps exchange bit (r, c) with bit (c, r) inside the word
 * (Hacker's Delight, section 7-3); byte c of the result is then 8 bits of output row c. */
#include "cotextension.h"

#include <string.h>

static inline uint64_t transpose8x8(uint64_t x) {
    uint64_t t;
    t = (x ^ (x >> 7)) & 0x00AA00AA00AA00AAULL;
    x = x ^ t ^ (t << 7);
    t = (x ^ (x >> 14)) & 0x0000CCCC0000CCCCULL;
    x = x ^ t ^ (t << 14);
    t = (x ^ (x >> 28)) & 0x00000000F0F0F0F0ULL;
    x = x ^ t ^ (t << 28);
    return x;
}

void mpc_bitmatrix_transpose(uint8_t *out, const uint8_t *in, size_t rows, size_t cols) {
    const size_t in_stride = cols / 8, out_stride = rows / 8;
    for (size_t r = 0; r < rows; r += 8) {
        const uint8_t *src = in + r * in_stride;
        for (size_t cb = 0; cb < in_stride; cb++) {
            uint64_t x = 0;
            for (size_t k = 0; k < 8; k++) x |= (uint64_t)src[k * in_stride + cb] << (8 * k);
            x = transpose8x8(x);
            uint8_t *dst = out + (cb * 8) * out_stride + r / 8;
            for (size_t b = 0; b < 8; b++) dst[b * out_stride] = (uint8_t)(x >> (8 * b));
        }
    }
}

void mpc_xor_and_mask(uint8_t *out, const uint8_t *a, const uint8_t *b, const uint8_t *mask,
                      size_t mask_length, size_t length) {
    /* Word by word (memcpy loads and stores compile to plain moves; out may be a). */
    if (mask_length % 8 == 0) {
        for (size_t i = 0; i < length; i += mask_length) {
            for (size_t j = 0; j < mask_length; j += 8) {
                uint64_t x, y, m;
                memcpy(&x, a + i + j, 8);
                memcpy(&y, b + i + j, 8);
                memcpy(&m, mask + j, 8);
                x ^= y & m;
                memcpy(out + i + j, &x, 8);
            }
        }
        return;
    }
    for (size_t i = 0; i < length; i += mask_length)
        for (size_t j = 0; j < mask_length; j++) out[i + j] = a[i + j] ^ (b[i + j] & mask[j]);
}
