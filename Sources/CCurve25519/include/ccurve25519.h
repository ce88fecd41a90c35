#ifndef CCURVE25519_H
#define CCURVE25519_H

#include <stddef.h>
#include <stdint.h>

/*
 * Arithmetic in GF(2^255 - 19) and the Elligator 2 map of RFC 9380 onto Curve25519
 * (v^2 = u^3 + 486662 u^2 + u), for hashing identifiers onto the curve (Protocols/psi.md,
 * Docs/decisions/0007-hash-to-curve25519.md). u-coordinates are 32 bytes little-endian, as X25519's.
 * Not constant time: the branches on squareness and sign depend on SHA-512 outputs of identifiers,
 * which are private and often guessable (phone numbers), so a process timing this one on the same
 * hardware could learn a few bits of H(id) per identifier. The node hashes on the bank's own machine,
 * and H(id) alone is never sent; Docs/threat-model.md lists co-located timing attackers out of scope. */

/* hash_to_curve's point before cofactor clearing, from two 48-byte outputs of expand_message_xmd
 * (u0 = first 48 bytes, u1 = next 48, each a big-endian integer reduced mod p): the u-coordinate of
 * map(u0) + map(u1). Returns 0, or -1 when the sum is the point at infinity (probability ~2^-252).
 * RFC 9380's hash_to_curve multiplies this point by the cofactor 8; X25519's clamped scalars do that
 * themselves. */
int mpc_curve25519_hash_to_curve_u(uint8_t out[32], const uint8_t uniform[96]);

/* The same for `count` points, sharing one field inversion among them (Montgomery's trick). */
int mpc_curve25519_hash_to_curve_u_batch(uint8_t *out, const uint8_t *uniform, size_t count);

/* expand_message_xmd with SHA-512 (RFC 9380 §5.3.1) of each of `count` messages, stored one after the
 * other in `messages` (message i from offsets[i] to offsets[i + 1]), to `length` bytes each (1 to 255·64)
 * laid end to end in `uniform`; dst_prime = DST ‖ I2OSP(len(DST), 1) with DST at most 255 bytes. */
void mpc_curve25519_expand_xmd(uint8_t *uniform, const uint8_t *messages, const size_t *offsets, size_t count,
                               const uint8_t *dst_prime, size_t dst_prime_length, size_t length);

/* Tests: the field element of 48 uniform bytes (big-endian out, as the RFC prints u[i]); the map of one
 * field element given big-endian (u and v out, big-endian); the u-coordinate of 2P given that of P
 * (little-endian in and out). */
void mpc_curve25519_field_from_uniform_be(uint8_t out_be[32], const uint8_t uniform[48]);
void mpc_curve25519_map_be(uint8_t u_be[32], uint8_t v_be[32], const uint8_t field_be[32]);
void mpc_curve25519_double_u(uint8_t out[32], const uint8_t in[32]);

/* 1 when the BMI2/ADX build of the arithmetic is in use on this CPU; the generic build's single hash,
 * which tests compare with the one in use. */
int mpc_curve25519_uses_bmi2(void);
int mpc_c25519_generic_hash_u(uint8_t out[32], const uint8_t uniform[96]);

#endif
