import Foundation

/// A value shared between tasks in a test.
public final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var _value: T
    public init(_ value: T) { _value = value }
    public var value: T { lock.withLock { _value } }
    public func withValue(_ body: (inout T) -> Void) { lock.withLock { body(&_value) } }
}
