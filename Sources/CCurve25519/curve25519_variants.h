#ifndef CURVE25519_VARIANTS_H
#define CURVE25519_VARIANTS_H
#include <stddef.h>
#include <stdint.h>
int mpc_c25519_generic_hash_u(uint8_t out[32], const uint8_t uniform[96]);
int mpc_c25519_generic_hash_u_batch(uint8_t *out, const uint8_t *uniform, size_t count);
#if defined(__x86_64__) && defined(__clang__)
int mpc_c25519_bmi2_hash_u(uint8_t out[32], const uint8_t uniform[96]);
int mpc_c25519_bmi2_hash_u_batch(uint8_t *out, const uint8_t *uniform, size_t count);
#endif
#endif
