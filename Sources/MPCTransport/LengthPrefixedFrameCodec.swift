import NIOCore

/// Frames on the wire: a 4-byte big-endian length, then that many bytes. The length 0xFFFFFFFF (never
/// a frame's, every limit is far below it) is a heartbeat with no body: it keeps the connection alive
/// and is dropped by the decoder.
///
/// The decoder refuses a frame longer than its limit before buffering it (so a peer cannot make a node
/// allocate gigabytes by announcing a huge length), with a lower limit for the first frame when one is
/// given (an inbound connection's `Hello`), and reports a connection that ends in the middle of a frame
/// as truncated.
public struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    public typealias InboundOut = ByteBuffer
    public static let heartbeat: UInt32 = 0xFFFF_FFFF
    public let maximumFrameBytes: Int
    public let maximumFirstFrameBytes: Int?
    /// The node-wide budget of bytes in frames being received (`ReceiveBudget`), if any, and the peer its
    /// reservations are charged to.
    public let budget: ReceiveBudget?
    public let peer: ConnectionPeerLabel
    private var framesDecoded = 0
    /// What the frame being received reserved from `budget`, and for whom.
    private var reservedForFrame = 0
    private var reservedFor = ""

    public init(maximumFrameBytes: Int, maximumFirstFrameBytes: Int? = nil, budget: ReceiveBudget? = nil,
                peer: ConnectionPeerLabel = ConnectionPeerLabel()) {
        self.maximumFrameBytes = maximumFrameBytes
        self.maximumFirstFrameBytes = maximumFirstFrameBytes
        self.budget = budget
        self.peer = peer
    }

    public mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        if length == Self.heartbeat {
            buffer.moveReaderIndex(forwardBy: 4)
            return .continue
        }
        let limit = framesDecoded == 0 ? (maximumFirstFrameBytes ?? maximumFrameBytes) : maximumFrameBytes
        guard Int(length) <= limit else {
            throw FramingError.frameTooLarge(bytes: Int(length), limit: limit)
        }
        guard buffer.readableBytes >= 4 + Int(length) else {
            // A large frame waits for its body only if the node can hold it beside every other one.
            if let budget, reservedForFrame == 0, Int(length) > budget.reservationThreshold {
                let who = peer.value
                if let refused = budget.reserve(Int(length), peer: who) { throw refused }
                reservedForFrame = Int(length)
                reservedFor = who
            }
            return .needMoreData
        }
        buffer.moveReaderIndex(forwardBy: 4)
        framesDecoded += 1
        releaseReservation()
        context.fireChannelRead(Self.wrapInboundOut(buffer.readSlice(length: Int(length))!))
        return .continue
    }

    private mutating func releaseReservation() {
        guard reservedForFrame > 0 else { return }
        budget?.release(reservedForFrame, peer: reservedFor)
        reservedForFrame = 0
    }

    public mutating func decoderRemoved(context: ChannelHandlerContext) {
        releaseReservation()
    }

    public mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 {
            let pending = buffer.readableBytes
            buffer.moveReaderIndex(forwardBy: pending)
            releaseReservation()
            throw FramingError.truncatedFrame(bufferedBytes: pending)
        }
        return .needMoreData
    }
}

/// Prepends the 4-byte length to each outbound frame.
public struct LengthPrefixedFrameEncoder: MessageToByteEncoder {
    public typealias OutboundIn = ByteBuffer
    public init() {}
    public func encode(data: ByteBuffer, out: inout ByteBuffer) throws {
        out.writeInteger(UInt32(data.readableBytes))
        var data = data
        out.writeBuffer(&data)
    }
}

public enum FramingError: Error, Equatable, CustomStringConvertible {
    case frameTooLarge(bytes: Int, limit: Int)
    case truncatedFrame(bufferedBytes: Int)
    case receiveBudgetExhausted(bytes: Int, capacity: Int, scope: String)

    public var description: String {
        switch self {
        case .frameTooLarge(let b, let l): return "frame of \(b) bytes exceeds the limit of \(l) bytes"
        case .receiveBudgetExhausted(let b, let c, let scope):
            return "a frame of \(b) bytes does not fit in this node's receive budget (\(scope): \(c) bytes of frames being received at once): the connection is closed"
        case .truncatedFrame(let n): return "connection ended inside a frame (\(n) bytes of it received): truncated"
        }
    }
}
