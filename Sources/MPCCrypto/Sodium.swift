import CSodium

/// One-time initialisation of libsodium.
///
/// `sodium_init()` is idempotent and thread-safe; every public entry point of this module calls
/// `Sodium.ensureInitialized()` (cheap after the first call) so that callers never have to.
public enum Sodium {
    private static let initResult: Int32 = sodium_init()

    /// Initialises libsodium once. Traps if the library cannot be initialised (no entropy source),
    /// because nothing in MPCNode is safe without a working random number generator.
    @inline(__always)
    public static func ensureInitialized() {
        precondition(initResult >= 0, "libsodium failed to initialise (sodium_init returned \(initResult))")
    }

    /// The version string of the libsodium the process is linked against, e.g. "1.0.18".
    public static var version: String {
        ensureInitialized()
        return String(cString: sodium_version_string())
    }
}
