import NIOCore
import NIOEmbedded
import XCTest
@testable import MPCTransport

/// Finding 16: members that each stay under the per-frame limit cannot together make a node buffer more
/// than its receive budget, and one member cannot take the budget from the others: a large frame reserves
/// its length from one node-wide budget, within its peer's share, when its header arrives, and gives it
/// back when it is whole or its connection ends.
final class ReceiveBudgetTests: XCTestCase {
    func header(_ channel: EmbeddedChannel, length: UInt32, body: Int) -> ByteBuffer {
        var b = channel.allocator.buffer(capacity: 4 + body)
        b.writeInteger(length)
        b.writeBytes([UInt8](repeating: 7, count: body))
        return b
    }

    func decoder(_ budget: ReceiveBudget, peer: String) -> EmbeddedChannel {
        EmbeddedChannel(handler: ByteToMessageHandler(LengthPrefixedFrameDecoder(maximumFrameBytes: 4096, budget: budget,
                                                                                   peer: ConnectionPeerLabel(peer))))
    }

    func testLargeFramesFromSeveralConnectionsShareOneBudget() throws {
        let budget = ReceiveBudget(capacity: 1000, perPeer: 1000, reservationThreshold: 100)
        let a = decoder(budget, peer: "bank-a"), b = decoder(budget, peer: "bank-b"), c = decoder(budget, peer: "bank-c")
        // a and b each start a 600-byte frame: a's fits, b's does not and its connection fails.
        XCTAssertNoThrow(try a.writeInbound(header(a, length: 600, body: 10)))
        XCTAssertEqual(budget.inUse, 600)
        XCTAssertThrowsError(try b.writeInbound(header(b, length: 600, body: 10))) {
            XCTAssertEqual($0 as? FramingError, .receiveBudgetExhausted(bytes: 600, capacity: 1000, scope: "the node's whole budget"))
        }
        XCTAssertEqual(budget.inUse, 600)
        // Small frames reserve nothing and always pass.
        XCTAssertNoThrow(try c.writeInbound(header(c, length: 50, body: 50)))
        XCTAssertEqual(try c.readInbound(as: ByteBuffer.self)?.readableBytes, 50)
        // a's frame completes: its reservation is given back, and a new large frame fits.
        XCTAssertNoThrow(try a.writeInbound(a.allocator.buffer(bytes: [UInt8](repeating: 1, count: 590))))
        XCTAssertEqual(try a.readInbound(as: ByteBuffer.self)?.readableBytes, 600)
        XCTAssertEqual(budget.inUse, 0)
        XCTAssertNoThrow(try c.writeInbound(header(c, length: 900, body: 1)))
        XCTAssertEqual(budget.inUse, 900)
        // A connection that ends inside its frame gives its reservation back too.
        XCTAssertThrowsError(try c.finish())
        XCTAssertEqual(budget.inUse, 0)
        _ = try? a.finish()
        _ = try? b.finish()
    }

    /// One member opening several connections and leaving large frames half-sent holds at most its share;
    /// another member's frame still fits.
    func testOneMemberHoldsAtMostItsShare() throws {
        let budget = ReceiveBudget(capacity: 1000, perPeer: 400, reservationThreshold: 100)
        let m1 = decoder(budget, peer: "bank-m"), m2 = decoder(budget, peer: "bank-m"), honest = decoder(budget, peer: "bank-h")
        XCTAssertNoThrow(try m1.writeInbound(header(m1, length: 300, body: 1)))
        XCTAssertThrowsError(try m2.writeInbound(header(m2, length: 300, body: 1))) {
            XCTAssertEqual($0 as? FramingError, .receiveBudgetExhausted(bytes: 300, capacity: 400, scope: "one peer's share"))
        }
        XCTAssertNoThrow(try honest.writeInbound(header(honest, length: 400, body: 1)))
        XCTAssertEqual(budget.inUse, 700)
        _ = try? m1.finish(); _ = try? m2.finish(); _ = try? honest.finish()
        XCTAssertEqual(budget.inUse, 0)
    }

    func testAFrameOverTheWholeBudgetIsRefusedAtItsHeader() throws {
        let budget = ReceiveBudget(capacity: 1000, perPeer: 1000, reservationThreshold: 100)
        let a = decoder(budget, peer: "bank-a")
        XCTAssertThrowsError(try a.writeInbound(header(a, length: 2000, body: 0))) {
            XCTAssertEqual($0 as? FramingError, .receiveBudgetExhausted(bytes: 2000, capacity: 1000, scope: "one peer's share"))
        }
        XCTAssertEqual(budget.inUse, 0)
        _ = try? a.finish()
    }
}
