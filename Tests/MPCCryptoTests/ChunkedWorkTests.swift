import XCTest
@testable import MPCCrypto

/// The chunked (yielding) forms of a whole set's work give exactly the one-call results, across chunk
/// boundaries.
final class ChunkedWorkTests: XCTestCase {
    func testMapInChunksEqualsMapAcrossChunkBoundaries() async throws {
        for n in [0, 1, 63, 64, 99, 100, 101, 250, 1000] {
            let input = (0..<n).map { UInt64($0) &* 0x9E37_79B9_7F4A_7C15 }
            let chunked = try await ParallelMap.mapInChunks(input, chunk: 100) { $0.byteSwapped ^ 7 }
            XCTAssertEqual(chunked, try ParallelMap.map(input) { $0.byteSwapped ^ 7 }, "\(n)")
        }
    }

    func testMultisetHashInChunksEqualsTheWholeHash() async throws {
        let memberSize = 24
        for members in [0, 1, 99, 100, 101, 333] {
            var bytes = [UInt8](repeating: 0, count: members * memberSize)
            for i in bytes.indices { bytes[i] = UInt8(truncatingIfNeeded: i &* 31 &+ 7) }
            let domain = Array("chunk-test".utf8)
            let whole = try MultisetHash.of(bytes, memberSize: memberSize, domain: domain)
            let chunked = try await MultisetHash.ofInChunks(bytes, memberSize: memberSize, domain: domain, chunk: 100)
            XCTAssertEqual(whole, chunked, "\(members) members")
        }
    }
}
