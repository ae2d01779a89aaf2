/* OpenSSL's libcrypto (libssl-dev): the NEFF header's SHA-256. */
#include <openssl/evp.h>
