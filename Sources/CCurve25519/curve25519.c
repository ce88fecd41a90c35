/* The exported entry points: the BMI2 and ADX build of the arithmetic where the CPU has them, the
 * generic one otherwise (decided once, when the library loads). Both give the same bytes
 * (Curve25519HashToCurveTests runs the RFC's vectors through whichever this machine uses, and both
 * through the batch and single paths). */
#include "ccurve25519.h"
#include "curve25519_variants.h"

#include <sodium.h>
#include <string.h>

static int use_bmi2 = 0;

__attribute__((constructor)) static void choose_variant(void) {
#if defined(__x86_64__) && defined(__clang__)
    __builtin_cpu_init();
    use_bmi2 = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("adx");
#endif
}

int mpc_curve25519_hash_to_curve_u(uint8_t out[32], const uint8_t uniform[96]) {
#if defined(__x86_64__) && defined(__clang__)
    if (use_bmi2) return mpc_c25519_bmi2_hash_u(out, uniform);
#endif
    return mpc_c25519_generic_hash_u(out, uniform);
}

int mpc_curve25519_hash_to_curve_u_batch(uint8_t *out, const uint8_t *uniform, size_t count) {
#if defined(__x86_64__) && defined(__clang__)
    if (use_bmi2) return mpc_c25519_bmi2_hash_u_batch(out, uniform, count);
#endif
    return mpc_c25519_generic_hash_u_batch(out, uniform, count);
}

int mpc_curve25519_uses_bmi2(void) { return use_bmi2; }

/* SHA-512 after the 128 zero bytes every msg_prime starts with (Z_pad: one block), computed at load. */
static crypto_hash_sha512_state zero_pad_state;

__attribute__((constructor)) static void prepare_zero_pad(void) {
    static const uint8_t zeros[128] = {0};
    crypto_hash_sha512_init(&zero_pad_state);
    crypto_hash_sha512_update(&zero_pad_state, zeros, sizeof zeros);
}

void mpc_curve25519_expand_xmd(uint8_t *uniform, const uint8_t *messages, const size_t *offsets, size_t count,
                               const uint8_t *dst_prime, size_t dst_prime_length, size_t length) {
    if (length == 0 || length > 255 * 64) return;
    const uint8_t length_and_zero[3] = {(uint8_t)(length >> 8), (uint8_t)length, 0};
    size_t blocks = (length + 63) / 64;
    for (size_t k = 0; k < count; k++) {
        crypto_hash_sha512_state state = zero_pad_state;
        uint8_t b0[64], bi[64], input[65];
        crypto_hash_sha512_update(&state, messages + offsets[k], offsets[k + 1] - offsets[k]);
        crypto_hash_sha512_update(&state, length_and_zero, 3);
        crypto_hash_sha512_update(&state, dst_prime, dst_prime_length);
        crypto_hash_sha512_final(&state, b0);
        uint8_t *out = uniform + length * k;
        for (size_t i = 1; i <= blocks; i++) {
            /* b_1 = H(b_0 ‖ 1 ‖ DST'), b_i = H((b_0 ⊕ b_(i−1)) ‖ i ‖ DST') */
            for (int j = 0; j < 64; j++) input[j] = i == 1 ? b0[j] : (uint8_t)(b0[j] ^ bi[j]);
            input[64] = (uint8_t)i;
            crypto_hash_sha512_init(&state);
            crypto_hash_sha512_update(&state, input, 65);
            crypto_hash_sha512_update(&state, dst_prime, dst_prime_length);
            crypto_hash_sha512_final(&state, bi);
            size_t take = length - 64 * (i - 1) < 64 ? length - 64 * (i - 1) : 64;
            memcpy(out + 64 * (i - 1), bi, take);
        }
    }
}
