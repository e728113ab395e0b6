import CustosCore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Testing

/// TLS on the HTTP listener: certificates from PEM files (made here with the openssl CLI),
/// clear errors for every bad file, HTTPS served, plaintext refused.
@Suite struct TLSTests {
    /// A self-signed P-256 certificate for 127.0.0.1/localhost and its key (mode 0600).
    static func makeCert(_ dir: TempDir, name: String = "server") throws -> TLSFiles {
        let cert = dir.path + "/\(name).crt", key = dir.path + "/\(name).key"
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                       "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                       "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        p.waitUntilExit()
        try #require(p.terminationStatus == 0, "openssl req failed")
        chmod(key, 0o600)
        return TLSFiles(cert: cert, key: key)
    }

    @Test func badFilesAreRefusedWithTheirKeyPath() throws {
        let dir = TempDir()
        let good = try Self.makeCert(dir)
        #expect(throws: Never.self) { try good.serverConfiguration(label: "tls") }
        func message(_ f: TLSFiles, _ label: String = "tls") -> String {
            do { _ = try f.serverConfiguration(label: label); return "" } catch { return error.description }
        }
        #expect(message(TLSFiles(cert: good.cert, key: dir.path + "/nope.key")).hasPrefix("tls.key: cannot read"))
        #expect(message(TLSFiles(cert: dir.path + "/nope.crt", key: good.key), "audit_socket.tls").hasPrefix("audit_socket.tls.cert:"))
        // A key other users can read.
        chmod(good.key, 0o644)
        #expect(message(good).contains("readable by other users"))
        chmod(good.key, 0o600)
        // Not PEM.
        let junk = dir.path + "/junk.pem"
        _ = FileManager.default.createFile(atPath: junk, contents: Data("not a certificate\n".utf8), attributes: [.posixPermissions: 0o600])
        #expect(message(TLSFiles(cert: junk, key: good.key)).hasPrefix("tls.cert:"))
        #expect(message(TLSFiles(cert: good.cert, key: junk)).hasPrefix("tls.key:"))
        // A key that belongs to another certificate.
        let other = try Self.makeCert(dir, name: "other")
        #expect(message(TLSFiles(cert: good.cert, key: other.key)).contains("does not match"))
    }

    @Test func configTakesTLSForHTTPAndTheSocketListener() throws {
        let c = try ServeConfig.parse(yaml: """
            tls: { cert: certs/a.crt, key: certs/a.key }
            audit_socket: { listen: "127.0.0.1:9000", tls: { cert: /etc/b.crt, key: /etc/b.key } }
            """, baseDirectory: "/srv")
        #expect(c.tls == TLSFiles(cert: "/srv/certs/a.crt", key: "/srv/certs/a.key"))
        #expect(c.auditSocket?.tls == TLSFiles(cert: "/etc/b.crt", key: "/etc/b.key"))
        do {
            _ = try ServeConfig.parse(yaml: "tls: { cert: a.crt, chain: b }\n", baseDirectory: "/")
            Issue.record("accepted an incomplete tls section")
        } catch {
            let text = error.problems.map(\.description).joined(separator: "\n")
            #expect(text.contains("tls.chain") && text.contains("needs both cert and key"), "\(text)")
        }
    }

    @Test func servesHTTPSAndRefusesPlaintext() async throws {
        let dir = TempDir()
        let files = try Self.makeCert(dir)
        let (state, t) = try ServeTests.make(dir)
        let tls = try files.serverConfiguration(label: "tls")
        try await buildApplication(state: state, tls: tls).test(.ahc(.https)) { client in
            try await client.execute(uri: "/healthz", method: .get) { r in #expect(r.status == .ok) }
            try await client.execute(uri: "/v1/ingest?format=vault", method: .post, headers: [.authorization: "Bearer \(t.ingest)"],
                                     body: ByteBuffer(string: ServeTests.pairs)) { r in
                #expect(r.status == .ok)
            }
        }
        #expect(state.store.trail.size == 2)
        // A plaintext client gets no answer from a TLS listener.
        await #expect(throws: (any Error).self) {
            try await buildApplication(state: state, tls: tls).test(.live) { client in
                try await client.execute(uri: "/healthz", method: .get) { r in
                    if r.status == .ok { Issue.record("plaintext HTTP was served on the TLS port") }
                }
            }
        }
    }

    /// Writes `bytes` over TLS (trusting only `files.cert`) to 127.0.0.1:`port`.
    static func sendTLS(_ bytes: [UInt8], port: Int, trusting files: TLSFiles) async throws {
        var cfg = TLSConfiguration.makeClientConfiguration()
        cfg.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(files.cert))
        let ctx = try NIOSSLContext(configuration: cfg)
        let ch = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { ch in
                ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: ctx, serverHostname: "localhost")) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        try await ch.writeAndFlush(ByteBuffer(bytes: bytes)).get()
        try await Task.sleep(for: .milliseconds(300))
        try await ch.close().get()
    }

    @Test func syslogAndAuditSocketListenersSpeakTLS() async throws {
        let dir = TempDir()
        let files = try Self.makeCert(dir)
        let (state, _) = try ServeTests.make(dir)
        let ctx = try files.serverContext(label: "tls")
        final class Ports: @unchecked Sendable { let lock = NSLock(); var syslog: Int?; var socket: Int? }
        let ports = Ports()
        let logger = Logger(label: "test")
        let group = ServiceGroup(services: [
            SyslogTCPListener(state: state, host: "127.0.0.1", port: 0, instance: "sys", tls: ctx, logger: logger,
                              onBound: { p in ports.lock.withLock { ports.syslog = p } }),
            AuditSocketListener(state: state, host: "127.0.0.1", port: 0, format: .vault, instance: "sock", tls: ctx, logger: logger,
                                onBound: { p in ports.lock.withLock { ports.socket = p } }),
        ], gracefulShutdownSignals: [], logger: logger)
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<3000 where ports.lock.withLock({ ports.syslog == nil || ports.socket == nil }) { try await Task.sleep(for: .milliseconds(10)) }
            let (syslogPort, socketPort) = ports.lock.withLock { (ports.syslog!, ports.socket!) }
            // Syslog over TLS (RFC 5425: octet-counted RFC 5424 frames).
            let record = vaultPair(id: "tls1", path: "secret/data/a", name: "alice").split(separator: "\n").last!
            let msg = "<134>1 2026-01-02T03:04:05Z bao openbao - - - " + record
            try await Self.sendTLS(Array("\(msg.utf8.count) \(msg)".utf8), port: syslogPort, trusting: files)
            // The socket device's newline-delimited records over TLS.
            try await Self.sendTLS(Array(vaultPair(id: "tls2", path: "secret/data/b", name: "bob").utf8), port: socketPort, trusting: files)
            for _ in 0..<3000 where state.store.trail.size < 2 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(state.store.trail.size == 2)
            // Plaintext on a TLS port is not read as records.
            let plain = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: socketPort).get()
            try await plain.writeAndFlush(ByteBuffer(string: vaultPair(id: "tls3", path: "secret/data/c", name: "carol"))).get()
            try await Task.sleep(for: .milliseconds(300))
            try? await plain.close().get()
            #expect(state.store.trail.size == 2)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }
}
