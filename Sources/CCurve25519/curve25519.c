/* The exported entry points: the BMI2 and ADX build of the arithmetic where the CPU has them, the
 * generic one otherwise (decided once, when the library loads). Both give the same bytes
 * (Curve25519HashToCurveTests runs the RFC's vectors through whichever this machine uses, and both
 * through the batch and single paths). */
#include "ccurve25519.h"
#include "curve25519_variants.h"

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
