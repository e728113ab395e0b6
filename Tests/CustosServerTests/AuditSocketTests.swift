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
        let started = ContinuousClock.now
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
            while state.store.trail.size < 1 && tries < 500 { try await Task.sleep(for: .milliseconds(10)); tries += 1 }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            try? await channel.close().get()
        }
        #expect(ContinuousClock.now - started < .seconds(10))
        let events = try EventReader(directory: dir.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" } == ["alice"])
    }
}
