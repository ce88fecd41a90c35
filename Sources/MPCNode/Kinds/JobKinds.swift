import MPCWire

/// The registry of job kinds: the only list of what this node can run. A participant refuses a spec
/// whose kind is not here, by name; nothing falls back to another kind.
enum JobKinds {
    static let all: [any JobKind] = [
        PSIKind(),
        SecureSumKind(),
        SetOperationKind(.mpsi),
        SetOperationKind(.watchlist),
        SetOperationKind(.unionSum),
        SetOperationKind(.intersectionStats),
        HorizontalTrainingKind(),
        VerticalTrainingKind(),
        PredictKind(),
    ]

    /// The names a coordinator accepts, for messages and help.
    static var names: [String] {
        var seen = Set<String>()
        return all.map(\.name).filter { seen.insert($0).inserted }
    }

    /// The kind of a stored or proposed spec.
    static func kind(of spec: Mpcnode_V1_JobSpec) throws -> any JobKind {
        if let kind = all.first(where: { $0.describes(spec) }) { return kind }
        if names.contains(spec.protocol) { throw JobError.kindMismatch(spec.protocol, part: partName(spec)) }
        throw JobError.unknownKind(spec.protocol, known: names)
    }

    /// The wire name of the kind-specific part a spec carries, for messages.
    static func partName(_ spec: Mpcnode_V1_JobSpec) -> String {
        switch spec.kind {
        case .psi?: return "psi"
        case .aggregate?: return "aggregate"
        case .sets?: return "sets"
        case .training?: return "training"
        case .predict?: return "predict"
        case nil: return "none"
        }
    }

    /// The kind a submission asks for.
    static func kind(of submission: JobSubmission) throws -> any JobKind {
        guard let kind = all.first(where: { $0.accepts(submission) }) else {
            throw JobError.invalidSubmission("unknown protocol '\(submission.protocolName)' (available: \(names.joined(separator: ", ")))")
        }
        return kind
    }
}
