// swift-tools-version:6.1
//
// MPCNode: a privacy-preserving multi-party computation node for bank consortia.
//
// The module graph mirrors the layers (each depends only on those above it):
//   CSodium (libsodium), COpenSSLCrypto       system libraries (libcrypto: big numbers only)
//   MPCCrypto      crypto primitives           group operations, hashing to the group, keyed shuffles
//   MPCLearning    models                      logistic regression, metrics, fixed point (pure Swift)
//   MPCWire        wire schema                 Swift generated from Protocols/*.proto (committed)
//   MPCProtocols   protocols                   transport-free roles over `MessageChannel`; composite ones over `SessionPort`
//   MPCIdentity    consortium PKI              CA, node certificates, identity of a certificate
//   MPCTransport   peer transport              TLS 1.3 + mutual authentication, frames, the TLS session port
//   MPCNode        the node                    engine (a job's lifecycle), kinds (one file per job kind),
//                                              store, policy, audit, admin endpoint, daemon
//   MPCBench       benchmarks                  figures of `mpcnode bench`, the in-process consortium tests start
//   MPCHTTPAPI     local HTTP API              Hummingbird: the bank's systems' lookups (Docs/api/openapi.yaml)
//   mpcnode        CLI                         `mpcnode serve | ca | data | job | bench`
import PackageDescription

let package = Package(
    name: "MPCNode",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "mpcnode", targets: ["mpcnode"]),
        .library(name: "MPCNodeKit", targets: ["MPCNode"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-protobuf.git", from: "1.39.0"),
        .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        // Without the swift-configuration trait: the node reads its own YAML.
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1", traits: ["FullFoundation"]),
        // Metrics: the swift-metrics API (Hummingbird already depends on it) into a Prometheus registry.
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .systemLibrary(
            name: "COpenSSLCrypto",
            pkgConfig: "libcrypto",
            providers: [.apt(["libssl-dev"])]
        ),
        // GF(2^255 − 19) and Elligator 2 for RFC 9380's hash onto Curve25519 (Docs/decisions/0007).
        .target(name: "CCurve25519", dependencies: ["CSodium"]),
        // Bit-matrix transposes of OT extension (Protocols/psi-oprf.md).
        .target(name: "COTExtension"),
        .target(
            name: "MPCCrypto",
            dependencies: ["CSodium", "COpenSSLCrypto", "CCurve25519", "COTExtension"]
        ),
        .target(name: "MPCLearning"),
        .target(
            name: "MPCWire",
            dependencies: [.product(name: "SwiftProtobuf", package: "swift-protobuf")]
        ),
        .target(
            name: "MPCProtocols",
            dependencies: [
                "MPCCrypto", "MPCWire", "MPCLearning",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
            ]
        ),
        .target(
            name: "MPCIdentity",
            dependencies: [
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftASN1", package: "swift-asn1"),
            ]
        ),
        .target(
            name: "MPCTransport",
            dependencies: [
                "MPCIdentity", "MPCProtocols", "MPCWire",
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "X509", package: "swift-certificates"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .target(
            name: "MPCNode",
            dependencies: [
                "MPCCrypto", "MPCWire", "MPCProtocols", "MPCIdentity", "MPCTransport", "MPCLearning",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "SwiftProtobuf", package: "swift-protobuf"),
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        // The node's local HTTP API (a listener apart from the peer port).
        .target(
            name: "MPCHTTPAPI",
            dependencies: [
                "MPCNode",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
        ),
        // Benchmarks and the in-process consortium they and the tests start; not part of MPCNodeKit.
        .target(
            name: "MPCBench",
            dependencies: [
                "MPCNode", "MPCHTTPAPI", "MPCCrypto", "MPCIdentity", "MPCLearning", "MPCProtocols", "MPCTransport", "MPCWire",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "mpcnode",
            dependencies: [
                "MPCNode", "MPCBench", "MPCHTTPAPI", "MPCLearning", "MPCCrypto", "MPCIdentity", "MPCProtocols",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
            ]
        ),
        // Helpers shared by the test targets (wire inspection); not part of any product.
        .target(name: "MPCTestSupport", dependencies: ["CSodium", "MPCIdentity", "MPCProtocols", "MPCWire", .product(name: "SwiftProtobuf", package: "swift-protobuf")]),
        .testTarget(name: "MPCCryptoTests", dependencies: ["MPCCrypto", "CSodium", "COpenSSLCrypto", "MPCTestSupport"]),
        .testTarget(name: "MPCLearningTests", dependencies: ["MPCLearning"]),
        .testTarget(name: "MPCProtocolsTests", dependencies: ["MPCProtocols", "MPCCrypto", "MPCWire", "MPCTestSupport", "MPCIdentity", "MPCLearning"]),
        .testTarget(name: "MPCTransportTests", dependencies: ["MPCTransport", "MPCIdentity", "MPCProtocols", "MPCTestSupport", "MPCCrypto", "MPCWire", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOEmbedded", package: "swift-nio")]),
        .testTarget(name: "MPCNodeTests", dependencies: ["MPCNode", "MPCBench", "MPCCrypto", "MPCHTTPAPI", "MPCLearning", "MPCIdentity", "MPCTransport", "MPCTestSupport", "MPCWire", .product(name: "X509", package: "swift-certificates"), .product(name: "NIOPosix", package: "swift-nio"), .product(name: "GRDB", package: "GRDB.swift"), .product(name: "Logging", package: "swift-log")]),
    ],
    swiftLanguageModes: [.v6]
)
