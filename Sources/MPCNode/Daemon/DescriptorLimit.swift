import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The process's limit on open files: a daemon raises its soft limit to the hard limit at start, so
/// that many peers' connections (and a flood of strangers', until they are evicted) do not exhaust the
/// common default of 1,024 descriptors.
public enum DescriptorLimit {
    /// Raises the soft limit to the hard one where allowed; returns the limit in force afterwards.
    @discardableResult
    public static func raiseToHardLimit() -> UInt64 {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { return UInt64(raised.rlim_cur) }
        }
        return UInt64(limit.rlim_cur)
    }
}
