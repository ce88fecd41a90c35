/* The arithmetic for any x86-64 or other 64-bit CPU. */
#include "curve25519_impl.h"
#include "curve25519_variants.h"

int mpc_c25519_generic_hash_u(uint8_t out[32], const uint8_t uniform[96]) { return impl_hash_to_curve_u(out, uniform); }
int mpc_c25519_generic_hash_u_batch(uint8_t *out, const uint8_t *uniform, size_t count) { return impl_hash_to_curve_u_batch(out, uniform, count); }

void mpc_curve25519_field_from_uniform_be(uint8_t out_be[32], const uint8_t uniform[48]) { impl_field_from_uniform_be(out_be, uniform); }
void mpc_curve25519_map_be(uint8_t u_be[32], uint8_t v_be[32], const uint8_t field_be[32]) { impl_map_be(u_be, v_be, field_be); }
void mpc_curve25519_double_u(uint8_t out[32], const uint8_t in[32]) { impl_double_u(out, in); }
