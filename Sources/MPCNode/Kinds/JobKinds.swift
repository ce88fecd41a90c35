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
        guard let kind = all.first(where: { $0.describes(spec) }) else { throw JobError.unknownKind(spec.protocol, known: names) }
        return kind
    }

    /// The kind a submission asks for.
    static func kind(of submission: JobSubmission) throws -> any JobKind {
        guard let kind = all.first(where: { $0.accepts(submission) }) else {
            throw JobError.invalidSubmission("unknown protocol '\(submission.protocolName)' (available: \(names.joined(separator: ", ")))")
        }
        return kind
    }
}
