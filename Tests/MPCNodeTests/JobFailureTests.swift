import MPCNode
import MPCProtocols
import XCTest

/// A role's error is told apart by what it means for the job, not by its message.
final class JobFailureTests: XCTestCase {
    func testEachErrorIsClassifiedByWhatItMeansForTheJob() {
        let cases: [(Error, Bool, JobFailure)] = [
            (JobError.fault("the stored model does not match"), false, .fault),
            (ProtocolError.protocolViolation(peer: "bank-b", detail: "expected 3 partial scores"), false, .fault),
            (SessionError.peerDidNotConnect(peer: "bank-b", seconds: 30), false, .fault),
            (JobError.refused(by: "bank-b", reason: "policy"), false, .refusal),
            (JobError.belowMinimum("the intersection is below 100"), false, .refusal),
            (JobError.aborted(reason: "aborted by the coordinator"), false, .cancellation),
            (SessionError.aborted(reason: "the job was aborted"), false, .cancellation),
            (CancellationError(), false, .cancellation),
            (JobError.interruptedByRestart, false, .cancellation),
            // The kind's verdict wins: a peer that did not connect in a secure sum is a dropout.
            (SessionError.peerDidNotConnect(peer: "bank-b", seconds: 30), true, .dropout),
        ]
        for (error, isDropout, expected) in cases {
            XCTAssertEqual(JobFailure.of(error, isDropout: isDropout), expected, "\(error)")
        }
    }
}
