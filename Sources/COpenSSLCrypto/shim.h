// OpenSSL's libcrypto (Debian's libssl-dev), for big-number arithmetic only. Its symbols do not clash
// with the BoringSSL copies inside swift-nio-ssl and swift-crypto, which are prefixed.
#include <openssl/bn.h>
#include <openssl/rand.h>
