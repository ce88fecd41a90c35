import MPCNode

extension JobSubmission {
    /// The two-bank PSI most node tests run: bank-a's and bank-b's `phone` column of one dataset each.
    static func phonePSI(dataset: String = "customers", deliverTo: [String] = ["bank-a"], cardinalityOnly: Bool = false,
                         group: String = "x25519", buckets: Int? = nil, psiProtocol: String? = nil,
                         workers: Int? = nil) -> JobSubmission {
        var s = JobSubmission(
            protocolName: "psi",
            parties: [.init(nodeID: "bank-a", dataset: dataset, column: "phone"), .init(nodeID: "bank-b", dataset: dataset, column: "phone")],
            deliverTo: deliverTo, cardinalityOnly: cardinalityOnly, group: group)
        s.buckets = buckets
        s.psiProtocol = psiProtocol
        s.workers = workers
        return s
    }
}
