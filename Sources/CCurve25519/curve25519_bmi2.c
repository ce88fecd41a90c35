/* The same arithmetic compiled for CPUs with BMI2 and ADX (mulx: about 25 % faster here), chosen at
 * run time by curve25519.c; on other CPUs (or compilers) it is never called. */
#include "curve25519_variants.h"
#include <stdint.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__clang__)
#pragma clang attribute push(__attribute__((target("bmi2,adx"))), apply_to = function)
#include "curve25519_impl.h"
int mpc_c25519_bmi2_hash_u(uint8_t out[32], const uint8_t uniform[96]) { return impl_hash_to_curve_u(out, uniform); }
int mpc_c25519_bmi2_hash_u_batch(uint8_t *out, const uint8_t *uniform, size_t count) { return impl_hash_to_curve_u_batch(out, uniform, count); }
#pragma clang attribute pop
#endif
