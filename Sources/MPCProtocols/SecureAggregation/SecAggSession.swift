import Foundation
import MPCWire

extension ProtocolSession {
    func sendSecAgg(_ fill: (inout Mpcnode_V1_SecAggMessage) -> Void) async throws { try await send(\.secagg, fill) }

    func receiveSecAgg() async throws -> Mpcnode_V1_SecAggMessage.OneOf_Body {
        try await receive("a secure aggregation message") { if case .secagg(let m)? = $0 { return m.body } else { return nil } }
    }
}

enum VectorCoding {
    static func pack(_ values: [UInt64]) -> Data {
        var data = Data(count: values.count * 8)
        data.withUnsafeMutableBytes { raw in
            for (i, v) in values.enumerated() { raw.storeBytes(of: v.littleEndian, toByteOffset: i * 8, as: UInt64.self) }
        }
        return data
    }

    static func unpack(_ data: Data, count: Int) -> [UInt64]? {
        guard data.count == count * 8 else { return nil }
        return data.withUnsafeBytes { raw in
            (0..<count).map { UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * 8, as: UInt64.self)) }
        }
    }
}
