import Foundation
import MPCCrypto
import MPCProtocols
import MPCWire

/// The aggregator's report of a set operation: sizes and the multiplicity histogram, and for union-sum
/// and intersection-stats the totals of the value column from the secure sum over the union.
/// Identifiers never appear: per-identifier rows carry a pseudonym label valid for this job only.
enum SetOperationReport {
    static func build(spec: Mpcnode_V1_JobSpec, kind: SetOperation, multiplicities m: Multiplicities,
                      sums: SecureAggregationServer.Outcome?, buckets: Int? = nil, started: Date) -> ReportView {
        let s = spec.sets
        let n = m.owners
        let decimals = Int(s.decimals)
        let measure = "sum(\(s.valueColumn))", mean = "mean(\(s.valueColumn))"
        var cells: [ReportView.Cell] = []
        var notes: [String] = []
        if let buckets {
            notes.append("computed in \(buckets) bucket\(buckets == 1 ? "" : "s") under a key only the parties hold, each padded to a size fixed by the announced set sizes; the figures are over all buckets")
        }
        func count(_ label: String, _ value: Int) -> ReportView.Cell {
            ReportView.Cell(group: label, records: Int64(value), parties: nil, values: [:], suppressed: false, suppressionReason: nil)
        }
        cells.append(count("distinct identifiers (union)", m.unionSize))
        cells.append(count("held by all \(n) parties (intersection)", m.intersectionSize))
        for (c, k) in m.histogram.enumerated() where c >= 1 {
            cells.append(count("held by exactly \(c) \(c == 1 ? "party" : "parties")", k))
        }
        if kind == .watchlist {
            let k = Int(s.atLeast)
            cells.append(count("held by at least \(k) parties", m.heldByAtLeast(k)))
        }
        var measures: [String] = []
        let included = sums?.included ?? spec.parties.map(\.nodeID)
        let dropped = sums.map { o in o.dropped.map(\.client).filter { !o.included.contains($0) } } ?? []
        if let sums, kind.sumsValues {
            let totals = LocalAggregate.signed(sums.sum)
            measures = [measure]
            if !dropped.isEmpty { notes.append("\(dropped.joined(separator: ", ")) dropped out of the secure sum: totals are over the other parties' values") }
            switch kind {
            case .unionSum:
                var total: Int64 = 0, holdings: Int64 = 0
                for i in 0..<m.unionSize { holdings += totals[2 * i]; total &+= totals[2 * i + 1] }
                cells.append(ReportView.Cell(group: "total over the union", records: holdings, parties: Int64(included.count),
                                             values: [measure: ReportRepository.decimalText(total, decimals: decimals)], suppressed: false, suppressionReason: nil))
                if !s.reportingThreshold.isEmpty, let threshold = LocalAggregate.parseFixedPoint(s.reportingThreshold, decimals: decimals) {
                    let above = (0..<m.unionSize).filter { totals[2 * $0 + 1] >= threshold }
                    cells.append(count("identifiers with a total ≥ \(s.reportingThreshold)", above.count))
                    notes.append("rows ψ-… are pseudonymous identifiers of this job (unlinkable to any other job); parties = how many hold the identifier")
                    for i in above {
                        let holders = totals[2 * i]
                        if holders < Int64(s.minCellParties) {
                            cells.append(ReportView.Cell(group: label(m.pseudonyms[i]), records: nil, parties: nil, values: [:], suppressed: true,
                                                         suppressionReason: "held by fewer than \(s.minCellParties) parties"))
                        } else {
                            cells.append(ReportView.Cell(group: label(m.pseudonyms[i]), records: nil, parties: holders,
                                                         values: [measure: ReportRepository.decimalText(totals[2 * i + 1], decimals: decimals)],
                                                         suppressed: false, suppressionReason: nil))
                        }
                    }
                }
            case .intersectionStats:
                measures = [measure, mean]
                let members = (0..<m.unionSize).filter { Int(m.counts[$0]) == n }
                let values = members.map { totals[2 * $0 + 1] }
                let sum = values.reduce(Int64(0), &+)
                let average = values.isEmpty ? 0 : Int64((Double(sum) / Double(values.count)).rounded())
                cells.append(ReportView.Cell(group: "over the intersection", records: Int64(values.count), parties: Int64(included.count),
                                             values: [measure: ReportRepository.decimalText(sum, decimals: decimals),
                                                      mean: ReportRepository.decimalText(average, decimals: decimals)],
                                             suppressed: false, suppressionReason: nil))
                let edges = s.histogramBins.compactMap { LocalAggregate.parseFixedPoint($0, decimals: decimals) }
                if !edges.isEmpty {
                    var bins = Array(repeating: 0, count: edges.count + 1)
                    for v in values { bins[edges.lastIndex(where: { $0 <= v }).map { $0 + 1 } ?? 0] += 1 }
                    let text = s.histogramBins
                    for (b, k) in bins.enumerated() {
                        let name = b == 0 ? "total < \(text[0])" : b == edges.count ? "total ≥ \(text[b - 1])" : "\(text[b - 1]) ≤ total < \(text[b])"
                        cells.append(count(name, k))
                    }
                }
                notes.append("per-identifier totals are summed over the parties; the mean is per identifier of the intersection")
            default: break
            }
        }
        return ReportView(id: "report-" + spec.jobID.dropFirst(4), kind: spec.protocol, notes: notes, jobID: spec.jobID,
                          specHash: (try? JobRepository.specHash(spec)) ?? "", coordinator: spec.coordinator, createdAt: Date(), startedAt: started,
                          groupBy: nil, measures: measures, decimals: decimals, minCellRecords: 1, minCellParties: Int(s.minCellParties),
                          included: included, dropped: dropped, participantAuditHashes: sums?.auditRecordHashes ?? [:], cells: cells)
    }

    /// A short label of a pseudonym (its first six bytes), for per-identifier rows.
    static func label(_ p: GroupElement) -> String {
        "ψ-" + GroupElement.pack([p]).prefix(6).map { String(format: "%02x", $0) }.joined()
    }
}
