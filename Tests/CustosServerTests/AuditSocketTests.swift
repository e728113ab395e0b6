import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import Logging
import NIOCore
import NIOPosix
import ServiceLifecycle
import Testing

/// The TCP listener for the Vault/OpenBao socket audit device, over real loopback sockets.
@Suite struct AuditSocketTests {
    final class Port: @unchecked Sendable {
        let lock = NSLock(); var value: Int?
        func set(_ p: Int) { lock.withLock { value = p } }
        func get() -> Int? { lock.withLock { value } }
    }

    static func send(_ port: Int, _ chunks: [String]) async throws {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: port).get()
        for c in chunks {
            try await channel.writeAndFlush(ByteBuffer(string: c)).get()
        }
        try await channel.close().get()
    }

    @Test func pairsLinesPerConnectionAndSurvivesBadInput() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir, configure: { $0.limits.maxLineBytes = 4096 })
        let port = Port()
        let listener = AuditSocketListener(state: state, host: "127.0.0.1", port: 0, format: .openbao, instance: "sock",
                                           logger: Logger(label: "test"), onBound: { port.set($0) })
        let group = ServiceGroup(services: [listener], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var waited = 0
            while port.get() == nil && waited < 500 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
            let p = try #require(port.get())
            // A request and its response split across writes (mid-line), then garbage, an
            // over-long line and a second pair: the good records all arrive.
            let text = ServeTests.pairs
            let cut = text.index(text.startIndex, offsetBy: 700)
            try await Self.send(p, [String(text[..<cut]), String(text[cut...]), "{oops\n", String(repeating: "z", count: 9000) + "\n",
                                    vaultPair(id: "r3", path: "secret/data/x", name: "carol")])
            // Another connection at the same time does not disturb it.
            try await Self.send(p, [vaultPair(id: "r4", path: "secret/data/y", name: "dave")])
            var tries = 0
            while !state.metrics.exposition().contains("custos_events_accepted_total{source=\"openbao\"} 4") && tries < 500 { try await Task.sleep(for: .milliseconds(10)); tries += 1 }
            #expect(state.store.trail.size == 4)
            let metrics = state.metrics.exposition()
            #expect(metrics.contains("custos_events_accepted_total{source=\"openbao\"} 4"))
            #expect(metrics.contains("custos_events_rejected_total{source=\"openbao\"} 2"))
            // The same records again (a second device, a reconnect): duplicates, nothing added.
            try await Self.send(p, [ServeTests.pairs])
            tries = 0
            while !state.metrics.exposition().contains("custos_events_duplicate_total 2") && tries < 500 { try await Task.sleep(for: .milliseconds(10)); tries += 1 }
            #expect(state.store.trail.size == 4)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(Set(events.map { $0.event.identity.name ?? "" }) == ["alice", "bob", "carol", "dave"])
        #expect(events.allSatisfy { $0.event.source.kind == "openbao" && $0.event.source.instance == "sock" })
        #expect(events.first { $0.event.identity.name == "bob" }?.event.outcome == .denied)
        #expect(events.filter { $0.event.identity.name != "bob" }.allSatisfy { $0.event.outcome == .success })
    }

    @Test func lineFramerBoundsMemoryAndReportsLongLines() {
        var f = LineFramer(maxLine: 8)
        var got: [String?] = []
        for chunk in ["abc\nde", "f\n", "0123456789", "abc\nok\n", "12345678\n", "123456789\n"] {
            var b = ByteBuffer(string: chunk)
            f.feed(&b) { got.append($0.map { String(decoding: $0, as: UTF8.self) }) }
            #expect(b.readableBytes == 0)
        }
        #expect(got == ["abc", "def", nil, "ok", "12345678", nil])
    }
    /// A socket device keeps its connection open: a graceful shutdown must still end (what
    /// was received is committed), and a request still waiting for its response is not
    /// recorded as "no response logged" (its response comes later, on the next connection
    /// or from the file device).
    @Test func gracefulShutdownWithAnOpenDeviceConnection() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        let port = Port()
        let listener = AuditSocketListener(state: state, host: "127.0.0.1", port: 0, format: .openbao, instance: "sock",
                                           logger: Logger(label: "test"), onBound: { port.set($0) })
        let group = ServiceGroup(services: [listener], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            var waited = 0
            while port.get() == nil && waited < 500 { try await Task.sleep(for: .milliseconds(10)); waited += 1 }
            let p = try #require(port.get())
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(host: "127.0.0.1", port: p).get()
            let r2 = vaultPair(id: "r2", path: "secret/data/y", name: "bob")
            try await channel.writeAndFlush(ByteBuffer(string: vaultPair(id: "r1", path: "secret/data/x", name: "alice")
                                                       + String(r2.prefix(through: r2.firstIndex(of: "\n")!)))).get()
            var tries = 0
            while state.store.trail.size < 1 && tries < 3000 { try await Task.sleep(for: .milliseconds(10)); tries += 1 }
            // Without the fix the server waits for the device to hang up: close it after 60 s
            // so that the test fails instead of hanging.
            let closer = Task { try? await Task.sleep(for: .seconds(60)); try? await channel.close().get() }
            let stop = ContinuousClock.now
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            #expect(ContinuousClock.now - stop < .seconds(30), "the listener waited for the device to disconnect")
            closer.cancel()
            try? await channel.close().get()
        }
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" } == ["alice"])
    }

    /// `listen: unix:PATH` (the device's `socket_type = "unix"`): the socket file has its mode
    /// before anyone can connect, records arrive as over TCP, a second listener or a file that
    /// is not a socket is refused, a stale socket is replaced, and the file goes at shutdown.
    @Test func unixDomainSocket() async throws {
        let dir = TempDir()
        let (state, _) = try ServeTests.make(dir)
        let path = dir.path + "/audit.sock"
        let bound = Port()
        func listener(_ mode: Int, _ onBound: (@Sendable (Int) -> Void)? = nil) -> AuditSocketListener {
            AuditSocketListener(state: state, host: "127.0.0.1", port: 0, format: .openbao, instance: "unix",
                                unixPath: path, unixMode: mode, logger: Logger(label: "test"), onBound: onBound)
        }
        // A regular file where the socket should go is not replaced.
        try Data("keep".utf8).write(to: URL(fileURLWithPath: path))
        await #expect(throws: ServeError.self) { try await listener(0o600).run() }
        do { try await listener(0o600).run() } catch { #expect("\(error)".contains("exists and is not a socket"), "\(error)") }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "keep")
        try FileManager.default.removeItem(atPath: path)
        // A stale socket (its process is gone) is replaced.
        Self.leaveStaleSocket(path)
        #expect(FileManager.default.fileExists(atPath: path))

        let group = ServiceGroup(services: [listener(0o660, { bound.set($0) })], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            for _ in 0..<3000 where bound.get() == nil { try await Task.sleep(for: .milliseconds(10)) }
            #expect(bound.get() != nil)
            var st = stat()
            #expect(lstat(path, &st) == 0)
            #expect(st.st_mode & S_IFMT == S_IFSOCK)
            #expect(st.st_mode & 0o777 == 0o660)
            #expect(!FileManager.default.fileExists(atPath: path + ".new"))
            // A second listener on the same path is refused while this one runs.
            do { try await listener(0o600).run(); Issue.record("a second listener took the socket") } catch {
                #expect("\(error)".contains("another process is listening"), "\(error)")
            }
            let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton).connect(unixDomainSocketPath: path).get()
            try await channel.writeAndFlush(ByteBuffer(string: vaultPair(id: "u1", path: "secret/data/u", name: "uma")
                                                       + vaultPair(id: "u2", path: "secret/data/v", name: "vic", error: "permission denied"))).get()
            try await channel.close().get()
            for _ in 0..<3000 where state.store.trail.size < 2 { try await Task.sleep(for: .milliseconds(10)) }
            #expect(state.store.trail.size == 2)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
        #expect(!FileManager.default.fileExists(atPath: path), "the socket file is removed at shutdown")
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" }.sorted() == ["uma", "vic"])
        #expect(events.allSatisfy { $0.event.source.kind == "openbao" && $0.event.source.instance == "unix" })
        #expect(events.first { $0.event.identity.name == "vic" }?.event.outcome == .denied)
    }

    /// Binds a Unix socket at `path` and closes it without removing the file, as a process
    /// that died would.
    static func leaveStaleSocket(_ path: String) {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
            raw[path.utf8.count] = 0
        }
        _ = withUnsafePointer(to: &addr) { p in p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        close(fd)
    }

    @Test func unixSocketConfig() throws {
        let c = try ServeConfig.parse(yaml: "audit_socket: { listen: \"unix:run/audit.sock\", unix_mode: \"0660\" }\n", baseDirectory: "/srv/custos")
        #expect(c.auditSocket?.unixPath == "/srv/custos/run/audit.sock")
        #expect(c.auditSocket?.unixMode == 0o660)
        #expect(try ServeConfig.parse(yaml: "audit_socket: { listen: unix:/run/custos/a.sock }\n", baseDirectory: "/").auditSocket?.unixMode == 0o600)
        #expect(try ServeConfig.parse(yaml: "audit_socket: { listen: 127.0.0.1:9 }\n", baseDirectory: "/").auditSocket?.unixPath == nil)
        func problems(_ yaml: String) -> String {
            do { _ = try ServeConfig.parse(yaml: yaml, baseDirectory: "/"); return "" } catch { return error.problems.map(\.description).joined(separator: "\n") }
        }
        #expect(problems("audit_socket: { listen: \"unix:\" }\n").contains("expected unix:PATH"))
        #expect(problems("audit_socket: { listen: \"unix:/\(String(repeating: "a", count: 110))\" }\n").contains("at most 103"))
        #expect(problems("audit_socket: { listen: nowhere }\n").contains("expected HOST:PORT or unix:PATH"))
        for bad in ["0666", "0644", "0400", "9", "rw"] {
            #expect(problems("audit_socket: { listen: unix:/a.sock, unix_mode: \"\(bad)\" }\n").contains("audit_socket.unix_mode"), "\(bad)")
        }
    }
}
