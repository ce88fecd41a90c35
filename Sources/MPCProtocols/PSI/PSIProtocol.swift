/// The round a bucketed PSI runs per bucket, chosen per job (`mpcnode job submit psi --protocol`).
public enum PSIProtocol: String, CaseIterable, Sendable {
    /// Commutative blinding (Protocols/psi.md): the default; any output, cardinality only included.
    case ecdh
    /// The OPRF by OT extension of KKRT16 (Protocols/psi-oprf.md): semi-honest, the intersection only.
    case kkrt

    /// The protocol a spec or hello names ("" is ECDH, what nodes before the field sent).
    public init?(wireName: String) {
        self.init(rawValue: wireName.isEmpty ? "ecdh" : wireName)
    }
}
