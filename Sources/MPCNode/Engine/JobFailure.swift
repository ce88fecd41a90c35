import MPCProtocols

/// How a role's error ends a job at this node: the engine records it in the audit log and in the
/// outcome it reports, and callers switch on it rather than on message text.
public enum JobFailure: String, Sendable, CaseIterable {
    /// Something went wrong at this node, or a peer broke the protocol: look at the reason.
    case fault
    /// A node refused: its policy, or a release below a policy's minimum.
    case refusal
    /// This node left a protocol that tolerates it (a secure sum's dropout): the job goes on without it.
    case dropout
    /// The job was stopped: aborted by its coordinator or a peer, or the daemon stopping.
    case cancellation

    /// The kind of ending of `error`; `isDropout` is the job kind's verdict on it.
    public static func of(_ error: Error, isDropout: Bool) -> JobFailure {
        if isDropout { return .dropout }
        if error is CancellationError { return .cancellation }
        switch error {
        case JobError.refused, JobError.belowMinimum, JobError.refusedDuringJob: return .refusal
        case JobError.aborted, JobError.interruptedByRestart: return .cancellation
        case SessionError.aborted: return .cancellation
        default: return .fault
        }
    }
}
