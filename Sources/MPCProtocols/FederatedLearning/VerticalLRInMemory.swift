import Foundation
import MPCLearning

/// Every role of a vertical training in this process, over in-memory channels: the guest, the hosts (in
/// the order of `parameters.hosts`) and the arbiter, with real Paillier. For tests and `bench vertical-lr`.
public enum VerticalLRInMemory {
    public struct Outcome: Sendable {
        public var guestModel: LogisticModel
        /// Each host's weights, in the order of `parameters.hosts`.
        public var hostWeights: [[Double]]
        /// The arbiter's loss per epoch, and what the guest and each host were told.
        public var losses: [Double]
        public var guestLosses: [Double]
        public var hostLosses: [[Double]]

        /// The joint model over the guest's features followed by each host's.
        public var jointModel: LogisticModel {
            LogisticModel(weights: guestModel.weights + hostWeights.flatMap { $0 }, bias: guestModel.bias)
        }
    }

    public static func run(_ parameters: VerticalLRParameters, guest: LabeledRows, hosts: [LabeledRows],
                           tap: (@Sendable (NodeID, [UInt8]) -> Void)? = nil, intercept: InMemoryChannel.Intercept? = nil,
                           guestInitialWeights: [Double]? = nil) async throws -> Outcome {
        precondition(hosts.count == parameters.hosts.count && !hosts.isEmpty)
        let parameters = parameters.widths.isEmpty ? parameters.withWidths(guest: guest.width, hosts: hosts.map(\.width)) : parameters
        let names = parameters.hosts, g = parameters.guest, a = parameters.arbiter
        let toHosts = names.map { InMemoryChannel.pair(g, $0, tap: tap, intercept: intercept) }
        let (ga, ag) = InMemoryChannel.pair(g, a, tap: tap, intercept: intercept)
        let toArbiter = names.map { InMemoryChannel.pair($0, a, tap: tap, intercept: intercept) }
        let chain = zip(names, names.dropFirst()).map { InMemoryChannel.pair($0.0, $0.1, tap: tap, intercept: intercept) }
        async let losses = VerticalLRArbiter(parameters: parameters, guest: ag, hosts: toArbiter.map(\.1)).run()
        let hostRuns = Task {
            try await withThrowingTaskGroup(of: (Int, [Double], [Double]).self) { group in
                for (i, rows) in hosts.enumerated() {
                    let host = VerticalLRHost(parameters: parameters, features: rows, guest: toHosts[i].1, arbiter: toArbiter[i].0,
                                              previous: i > 0 ? chain[i - 1].1 : nil, next: i < chain.count ? chain[i].0 : nil)
                    group.addTask { let (w, l) = try await host.run(); return (i, w, l) }
                }
                var out = [([Double], [Double])](repeating: ([], []), count: hosts.count)
                for try await (i, w, l) in group { out[i] = (w, l) }
                return out
            }
        }
        var guestRole = VerticalLRGuest(parameters: parameters, data: guest, hosts: toHosts.map(\.0), arbiter: ga)
        guestRole.initialWeights = guestInitialWeights
        let (model, guestLosses) = try await guestRole.run()
        let hostOutcomes = try await hostRuns.value
        return Outcome(guestModel: model, hostWeights: hostOutcomes.map(\.0), losses: try await losses, guestLosses: guestLosses,
                       hostLosses: hostOutcomes.map(\.1))
    }
}
