#ifndef COTEXTENSION_H
#define COTEXTENSION_H

#include <stddef.h>
#include <stdint.h>

/*
 * Bit-matrix work of OT extension (Protocols/psi-oprf.md): the k x bins matrices are produced one
 * column (a PRG stream) at a time and used one row (a bin) at a time, so they are transposed.
 *
 * A matrix of `rows` rows of `cols` bits is stored row after row, `cols / 8` bytes a row; bit c of a
 * row is bit (c % 8) of byte c / 8 (least significant first). `out` receives the transpose: `cols`
 * rows of `rows` bits. Both `rows` and `cols` must be multiples of 8; `out` and `in` must not overlap.
 */
void mpc_bitmatrix_transpose(uint8_t *out, const uint8_t *in, size_t rows, size_t cols);

/* out[i] = a[i] ^ (b[i] & mask[i % mask_length]) for i < length; mask_length divides length. */
void mpc_xor_and_mask(uint8_t *out, const uint8_t *a, const uint8_t *b, const uint8_t *mask,
                      size_t mask_length, size_t length);

#endif
