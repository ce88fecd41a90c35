import Dispatch
import Foundation

/// Order-preserving map over a batch, spread over all cores with `DispatchQueue.concurrentPerform`.
///
/// Used for the group operations, which dominate every set protocol's cost: the batch is cut into
/// contiguous slices, one iteration a slice, and results are written in place.
public enum ParallelMap {
    /// Batches smaller than this run on the calling thread.
    static let minimumParallelBatch = 64

    public static func map<T, R>(_ input: [T], _ transform: (T) throws -> R) throws -> [R] {
        let n = input.count
        if n < minimumParallelBatch { return try input.map(transform) }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let slices = min(cores * 4, (n + 31) / 32)
        let sliceSize = (n + slices - 1) / slices
        let failure = FirstError()
        let result = try withoutActuallyEscaping(transform) { transform -> [R] in
            let work = SharedWork(input: input, transform: transform)
            return [R](unsafeUninitializedCapacity: n) { buffer, count in
                let out = SharedOutput(buffer: buffer)
                DispatchQueue.concurrentPerform(iterations: slices) { s in
                    let lo = s * sliceSize, hi = min(n, lo + sliceSize)
                    var i = lo
                    while i < hi {
                        do {
                            (out.buffer.baseAddress! + i).initialize(to: try work.transform(work.input[i]))
                        } catch {
                            failure.record(error, at: i)
                            break
                        }
                        i += 1
                    }
                    // Remember how far this slice got, so a failure can deinitialise what was written.
                    failure.markDone(slice: s, upTo: i)
                }
                if failure.error != nil {
                    for s in 0..<slices {
                        let lo = s * sliceSize
                        let hi = failure.done[s] ?? lo
                        if lo < hi { (buffer.baseAddress! + lo).deinitialize(count: hi - lo) }
                    }
                    count = 0
                } else {
                    count = n
                }
            }
        }
        if let error = failure.error { throw error }
        return result
    }
}

extension ParallelMap {
    /// `map` one chunk at a time, yielding between chunks. The calling thread is a cooperative thread of
    /// Swift's concurrency pool (as many as cores) and waits while the chunk runs on every core: a whole
    /// set's work at once (10^6 sealed boxes take tens of seconds on two cores) would hold those threads
    /// that long, and a node's other tasks — the Hello of a connection it just opened, another job's
    /// messages — would wait past their deadlines. Between chunks they run.
    public static func mapInChunks<T, R>(_ input: [T], chunk: Int = 16_384, _ transform: (T) throws -> R) async throws -> [R] {
        if input.count <= chunk { return try map(input, transform) }
        var out = [R]()
        out.reserveCapacity(input.count)
        var start = 0
        while start < input.count {
            let end = min(input.count, start + chunk)
            out.append(contentsOf: try map(Array(input[start..<end]), transform))
            start = end
            if start < input.count { await Task.yield() }
        }
        return out
    }
}

/// The read-only inputs shared by the iterations of one `map`.
private struct SharedWork<T, R>: @unchecked Sendable {
    let input: [T]
    let transform: (T) throws -> R
}

/// The output buffer; iterations write disjoint index ranges.
private struct SharedOutput<R>: @unchecked Sendable {
    let buffer: UnsafeMutableBufferPointer<R>
}

/// The first error of any iteration, and how far each slice got.
private final class FirstError: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: (any Error)?
    private var storedIndex = Int.max
    private(set) var done: [Int: Int] = [:]

    func record(_ e: any Error, at index: Int) {
        lock.withLock { if index < storedIndex { stored = e; storedIndex = index } }
    }
    func markDone(slice: Int, upTo index: Int) { lock.withLock { done[slice] = index } }
    var error: (any Error)? { lock.withLock { stored } }
}

extension ParallelMap {
    /// Calls `body` on contiguous slices of `0..<count`, spread over all cores; `body` writes only its
    /// own slice of whatever it fills (flat buffers of per-element results).
    public static func forEachSlice(count: Int, minimumSlice: Int = 256, _ body: (Range<Int>) -> Void) {
        guard count >= 2 * minimumSlice else {
            if count > 0 { body(0..<count) }
            return
        }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let slices = max(1, min(cores * 4, count / minimumSlice))
        let sliceSize = (count + slices - 1) / slices
        withoutActuallyEscaping(body) { body in
            let work = SliceWork(body: body)
            DispatchQueue.concurrentPerform(iterations: slices) { s in
                let lo = s * sliceSize, hi = min(count, lo + sliceSize)
                if lo < hi { work.body(lo..<hi) }
            }
        }
    }
}

/// The body shared by the iterations of one `forEachSlice` (each writes a disjoint slice).
private struct SliceWork: @unchecked Sendable {
    let body: (Range<Int>) -> Void
}

/// A raw address handed to the slices of a parallel loop (`forEachSlice`), each touching its own part.
public struct SendableAddress: @unchecked Sendable {
    public let pointer: UnsafeMutableRawPointer
    public init(_ pointer: UnsafeMutableRawPointer) { self.pointer = pointer }
    public init(_ pointer: UnsafeRawPointer) { self.pointer = UnsafeMutableRawPointer(mutating: pointer) }
}
