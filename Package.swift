// swift-tools-version:6.1
import PackageDescription

// Warnings are errors in CI (.ci/run passes -Xswiftc -warnings-as-errors).
let strict: [SwiftSetting] = [
    .swiftLanguageMode(.v6),
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Custos",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "custos", targets: ["custos"]),
        .library(name: "CustosCore", targets: ["CustosCore"]),
        .library(name: "CustosTrail", targets: ["CustosTrail"]),
        .library(name: "CustosStore", targets: ["CustosStore"]),
        .library(name: "CustosServer", targets: ["CustosServer"]),
        .library(name: "CustosAlerting", targets: ["CustosAlerting"]),
        .library(name: "CustosArchive", targets: ["CustosArchive"]),
        .library(name: "CustosScan", targets: ["CustosScan"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // Pure: event model, canonical JSON, decoders, Merkle math, signed notes. No files, no DB.
        .target(
            name: "CustosCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // The durable log: tiles + entry bundles on disk, group commit, fsync, verification.
        .target(
            name: "CustosTrail",
            dependencies: ["CustosCore", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        // The index behind one protocol (SQLite through GRDB now).
        .target(
            name: "CustosStore",
            dependencies: ["CustosCore", .product(name: "GRDB", package: "GRDB.swift"),
                           .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: strict),
        // Policy files (YAML), GeoIP databases on disk, routing and notifiers.
        .target(
            name: "CustosAlerting",
            dependencies: ["CustosCore", .product(name: "Yams", package: "Yams"),
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
            swiftSettings: strict),
        // Wires core, trail and index together: the data directory, ingestion.
        .target(
            name: "CustosServer",
            dependencies: ["CustosCore", "CustosTrail", "CustosStore", "CustosAlerting",
                           .product(name: "Hummingbird", package: "hummingbird"), .product(name: "HummingbirdTLS", package: "hummingbird"),
                           .product(name: "NIOSSL", package: "swift-nio-ssl"),
                           .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                           .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           // RS256 (RSASSA-PKCS1-v1_5) for OIDC ID tokens; Crypto itself has no RSA.
                           .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "_CryptoExtras", package: "swift-crypto")],
            swiftSettings: strict),
        // Retention tiers, archive (local directory, S3 with Object Lock, SigV4) and pruning.
        .target(
            name: "CustosArchive",
            dependencies: ["CustosCore", "CustosTrail", "CustosAlerting", .product(name: "Crypto", package: "swift-crypto"),
                           .product(name: "AsyncHTTPClient", package: "async-http-client"),
                           .product(name: "NIOCore", package: "swift-nio")],
            swiftSettings: strict),
        // Secret-leak scanning of CI build logs (`custos scan-log`): pure engine, bytes in, findings out.
        .target(
            name: "CustosScan",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict),
        .executableTarget(
            name: "custos",
            dependencies: [
                "CustosCore", "CustosTrail", "CustosStore", "CustosServer", "CustosAlerting", "CustosArchive", "CustosScan",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "AsyncHTTPClient", package: "async-http-client"), .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strict),
        // Benchmarks/README.md: detection throughput (release build, one core).
        .executableTarget(name: "custos-bench", dependencies: ["CustosCore"], path: "Benchmarks/Sources/custos-bench",
                          swiftSettings: strict),
        // Benchmarks/scan-log/README.md: scan-log throughput (release build, one core).
        .executableTarget(name: "custos-scan-bench", dependencies: ["CustosScan"], path: "Benchmarks/scan-log/Sources/custos-scan-bench",
                          swiftSettings: strict),
        .testTarget(name: "CustosScanTests", dependencies: ["CustosScan"], swiftSettings: strict),
        .testTarget(name: "CustosCoreTests", dependencies: ["CustosCore"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "CustosTrailTests", dependencies: ["CustosTrail", "CustosCore"], swiftSettings: strict),
        .testTarget(name: "CustosArchiveTests", dependencies: ["CustosArchive", "CustosTrail", "CustosCore",
                                                           .product(name: "AsyncHTTPClient", package: "async-http-client")],
                    swiftSettings: strict),
        .testTarget(name: "CustosStoreTests", dependencies: ["CustosStore", "CustosCore"], swiftSettings: strict),
        .testTarget(name: "CustosAlertingTests", dependencies: ["CustosAlerting", "CustosCore"],
                    resources: [.copy("Fixtures")], swiftSettings: strict),
        .testTarget(name: "CustosServerTests", dependencies: ["CustosServer", "CustosTrail", "CustosStore", "CustosCore", "CustosAlerting",
                                                          .product(name: "HummingbirdTesting", package: "hummingbird"),
                                                          .product(name: "NIOPosix", package: "swift-nio"), .product(name: "Yams", package: "Yams"),
                                                          .product(name: "NIOSSL", package: "swift-nio-ssl"),
                                                          .product(name: "NIOEmbedded", package: "swift-nio"),
                                                          .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                                                          .product(name: "Crypto", package: "swift-crypto"),
                                                          .product(name: "_CryptoExtras", package: "swift-crypto")],
                    swiftSettings: strict),
        // Starts a real OpenBao (installed by .ci/run) and drives the built `custos` binary.
        .testTarget(name: "CustosIntegrationTests", dependencies: ["CustosCore"], swiftSettings: strict),
    ]
)
