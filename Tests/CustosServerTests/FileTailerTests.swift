import CustosAlerting
import CustosCore
@testable import CustosServer
import CustosStore
import Foundation
import Logging
import ServiceLifecycle
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The file tail (`file_tail:`): appends, partial lines, rotation, truncation, restarts and
/// a crash between a commit and the offset write, on real files.
@Suite struct FileTailerTests {
    struct Crash: Error {}

    final class Once: @unchecked Sendable {
        private let lock = NSLock()
        private var done = false
        /// True the first time only.
        func first() -> Bool { lock.withLock { defer { done = true }; return !done } }
    }

    /// A log directory beside a data directory.
    final class Setup {
        let data = TempDir()
        let logs = TempDir()
        var log: String { logs.path + "/audit.log" }
        /// A server state on `data` (as after a restart when called again: the previous one's
        /// commit thread may hold the directory lock for a moment longer).
        func state() throws -> ServeState {
            var tries = 0
            while true {
                do { return try ServeTests.make(data, configure: { $0.limits.maxLineBytes = 4096 }).0 } catch {
                    tries += 1
                    if tries > 200 { throw error }
                    usleep(10_000)
                }
            }
        }
        func source(_ format: WireFormat = .openbao) -> FileTailer.Source {
            var s = FileTailer.Source(path: log)
            s.format = format
            s.instance = "bao"
            s.pollIntervalMs = 20
            return s
        }
        var offsetsFile: String { FileTailer.offsetsFile(directory: FileTailer.defaultOffsetsDirectory(data: data.path), path: log) }
        func saved() -> TailOffset? { TailOffset.load(offsetsFile) }
    }

    static func append(_ path: String, _ text: String) throws {
        if !FileManager.default.fileExists(atPath: path) { _ = FileManager.default.createFile(atPath: path, contents: nil) }
        let h = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try h.seekToEnd()
        try h.write(contentsOf: Data(text.utf8))
        try h.close()
    }

    static func size(_ path: String) -> Int64 {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : -1
    }
    static func inode(_ path: String) -> UInt64 {
        var st = stat()
        return stat(path, &st) == 0 ? UInt64(st.st_ino) : 0
    }

    static func until(_ what: String, _ cond: () throws -> Bool) async throws {
        for _ in 0..<1000 {
            if try cond() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("timed out waiting for \(what)")
    }

    static func metric(_ state: ServeState, _ name: String) -> Int? {
        let line = state.metrics.exposition().split(separator: "\n").first { $0.hasPrefix(name + "{") }
        return line.flatMap { Int($0.split(separator: " ").last ?? "") }
    }

    /// Runs a tailer over `state` while `body` runs, then stops it gracefully.
    static func withTailer(_ state: ServeState, _ sources: [FileTailer.Source], _ body: () async throws -> Void) async throws {
        let tailer = FileTailer(state: state, sources: sources, logger: Logger(label: "test"))
        let group = ServiceGroup(services: [tailer], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            do { try await body() } catch {
                await group.triggerGracefulShutdown()
                try await tasks.waitForAll()
                throw error
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func followsAppendsAndWaitsForCompleteLines() async throws {
        let s = Setup()
        let state = try s.state()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice"))
        let r2 = vaultPair(id: "r2", path: "secret/data/b", name: "bob")
        let r2Request = String(r2.prefix(through: r2.firstIndex(of: "\n")!))
        let r2Response = String(r2.dropFirst(r2Request.count))
        let beforeR2 = Self.size(s.log)
        // r2's request line and half of its response line: r1 only.
        try Self.append(s.log, r2Request + r2Response.prefix(100))
        try await Self.withTailer(state, [s.source()]) {
            try await Self.until("r1") { state.store.trail.size == 1 }
            try await Task.sleep(for: .milliseconds(100))
            #expect(state.store.trail.size == 1)
            // The offset is at the incomplete line (r2's request line is read: its response
            // alone makes the event).
            try await Self.until("offset saved") { s.saved()?.offset == beforeR2 + Int64(r2Request.utf8.count) }
            try Self.append(s.log, String(r2Response.dropFirst(100)))
            try await Self.until("r2") { state.store.trail.size == 2 }
            try await Self.until("offset at the end") { s.saved()?.offset == Self.size(s.log) }
            #expect(s.saved()?.inode == Self.inode(s.log))
            #expect(Self.metric(state, "custos_file_tail_events_accepted_total") == 2)
            try await Self.until("offset metric") { Self.metric(state, "custos_file_tail_offset_bytes") == Int(Self.size(s.log)) }
            try await Self.until("lag 0") { Self.metric(state, "custos_file_tail_lag_bytes") == 0 }
        }
        let events = try EventReader(directory: s.data.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" }.sorted() == ["alice", "bob"])
        #expect(events.allSatisfy { $0.event.source.kind == "openbao" && $0.event.source.instance == "bao" })
        #expect(state.metrics.exposition().contains("custos_events_accepted_total{source=\"openbao\"} 2"))
    }

    /// A file that grows all the time (a busy audit device) is read once per poll interval,
    /// not once per record: one commit per interval.
    @Test func aBusyFileCostsOneCommitPerPollInterval() async throws {
        let s = Setup()
        let state = try s.state()
        var source = s.source()
        source.pollIntervalMs = 200
        try await Self.withTailer(state, [source]) {
            let start = ContinuousClock.now
            let n = 100
            for i in 1...n {
                try Self.append(s.log, vaultPair(id: "busy-\(i)", path: "secret/data/a", name: "alice"))
                try await Task.sleep(for: .milliseconds(5))
            }
            try await Self.until("all \(n)") { state.store.trail.size == UInt64(n) }
            let elapsed = ContinuousClock.now - start
            let commits = state.committer.commits
            // At most one commit per 200 ms poll (plus slack), however slow the machine;
            // one per record would be ~100.
            let bound = Int(elapsed / .milliseconds(200)) + 3
            #expect(commits <= bound, "\(commits) commits for \(n) records in \(elapsed)")
            #expect(commits < n / 2)
        }
    }

    @Test func rotationByRenameFinishesTheOldFileFirst() async throws {
        let s = Setup()
        let state = try s.state()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice"))
        try await Self.withTailer(state, [s.source()]) {
            try await Self.until("r1") { state.store.trail.size == 1 }
            // logrotate's `create`: rename, the writer still appends to the old file (until it
            // reopens), a new file appears at the path.
            try FileManager.default.moveItem(atPath: s.log, toPath: s.log + ".1")
            try Self.append(s.log + ".1", vaultPair(id: "r2", path: "secret/data/b", name: "bob"))
            try Self.append(s.log, vaultPair(id: "r3", path: "secret/data/c", name: "carol"))
            try await Self.until("r2 and r3") { state.store.trail.size == 3 }
            try await Self.until("offset in the new file") { s.saved()?.inode == Self.inode(s.log) && s.saved()?.offset == Self.size(s.log) }
            try Self.append(s.log, vaultPair(id: "r4", path: "secret/data/d", name: "dave"))
            try await Self.until("r4") { state.store.trail.size == 4 }
            #expect(Self.metric(state, "custos_file_tail_rotations_total") == 1)
        }
        let events = try EventReader(directory: s.data.path).events(EventQuery())
        // In trail order: the old file's r2 before the new file's r3.
        #expect(events.map { $0.event.identity.name ?? "" } == ["alice", "bob", "carol", "dave"])
    }

    @Test func copytruncateReadsFromTheStart() async throws {
        let s = Setup()
        let state = try s.state()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice"))
        try await Self.withTailer(state, [s.source()]) {
            try await Self.until("r1") { state.store.trail.size == 1 }
            // Truncated and written again before the next poll, longer than before: only
            // the changed first bytes tell.
            let fd = open(s.log, O_WRONLY | O_TRUNC)
            #expect(fd >= 0)
            close(fd)
            try Self.append(s.log, vaultPair(id: "r2", path: "secret/data/a-much-longer-path/to/be/sure", name: "bob"))
            try await Self.until("r2") { state.store.trail.size == 2 }
            // Truncated to less than what was read.
            let fd2 = open(s.log, O_WRONLY | O_TRUNC)
            close(fd2)
            try await Task.sleep(for: .milliseconds(100))
            try Self.append(s.log, vaultPair(id: "r3", path: "s/c", name: "carol"))
            try await Self.until("r3") { state.store.trail.size == 3 }
            #expect(Self.metric(state, "custos_file_tail_truncations_total") == 2)
            try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
        }
    }

    /// Truncated and rewritten (longer) right after a commit, before the offset is saved:
    /// the first bytes kept are those that were read, so the change is still noticed.
    @Test func truncationBetweenCommitAndOffsetWriteIsNoticed() async throws {
        let s = Setup()
        let state = try s.state()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice"))
        let log = s.log
        let once = Once()
        let tailer = FileTailer(state: state, sources: [s.source()], logger: Logger(label: "test"), afterCommit: { _ in
            guard once.first() else { return }
            let fd = open(log, O_WRONLY | O_TRUNC)
            close(fd)
            try Self.append(log, vaultPair(id: "r2", path: "secret/data/a-much-longer-path/to/be/sure", name: "bob"))
        })
        let group = ServiceGroup(services: [tailer], gracefulShutdownSignals: [], logger: Logger(label: "test"))
        try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await group.run() }
            try await Self.until("r1, r2") { state.store.trail.size == 2 }
            try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
            #expect(Self.metric(state, "custos_file_tail_truncations_total") == 1)
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
        }
    }

    @Test func restartResumesWithoutDuplicatesOrGapsAlsoAfterRotation() async throws {
        let s = Setup()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice") + vaultPair(id: "r2", path: "secret/data/b", name: "bob"))
        do {
            let state = try s.state()
            try await Self.withTailer(state, [s.source()]) {
                try await Self.until("r1, r2") { state.store.trail.size == 2 }
                try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
            }
        }
        // While stopped: more lines, then a rotation, then a line in the new file.
        try Self.append(s.log, vaultPair(id: "r3", path: "secret/data/c", name: "carol"))
        do {
            let state = try s.state()
            try await Self.withTailer(state, [s.source()]) {
                try await Self.until("r3") { state.store.trail.size == 3 }
                try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
            }
            #expect(Self.metric(state, "custos_file_tail_events_duplicate_total") == 0, "resumed at the saved offset, read nothing twice")
        }
        try Self.append(s.log, vaultPair(id: "r4", path: "secret/data/d", name: "dave"))
        try FileManager.default.moveItem(atPath: s.log, toPath: s.log + ".1")
        try Self.append(s.log, vaultPair(id: "r5", path: "secret/data/e", name: "erin"))
        do {
            let state = try s.state()
            try await Self.withTailer(state, [s.source()]) {
                try await Self.until("r4, r5") { state.store.trail.size == 5 }
                try await Self.until("offset in the new file") { s.saved()?.inode == Self.inode(s.log) && s.saved()?.offset == Self.size(s.log) }
            }
            #expect(Self.metric(state, "custos_file_tail_events_duplicate_total") == 0)
        }
        // The offsets file names a file that is gone and a new one is at the path: from its start.
        try FileManager.default.removeItem(atPath: s.log + ".1")
        try FileManager.default.moveItem(atPath: s.log, toPath: s.log + ".old")
        try Self.append(s.log, vaultPair(id: "r6", path: "secret/data/f", name: "frank"))
        try FileManager.default.removeItem(atPath: s.log + ".old")
        do {
            let state = try s.state()
            try await Self.withTailer(state, [s.source()]) {
                try await Self.until("r6") { state.store.trail.size == 6 }
            }
        }
        let events = try EventReader(directory: s.data.path).events(EventQuery())
        #expect(events.map { $0.event.identity.name ?? "" } == ["alice", "bob", "carol", "dave", "erin", "frank"])
    }

    /// A crash after the commit and before the offset write: the lines are read again on
    /// restart and their events are recognised as duplicates (also a record without a
    /// request id, keyed by its line); nothing is stored twice, nothing is missing.
    @Test func crashBetweenCommitAndOffsetWriteGivesNoDuplicates() async throws {
        let s = Setup()
        let idless = #"{"time":"2026-01-02T03:04:06Z","type":"response","auth":{"display_name":"root","policies":["root"],"token_type":"service"},"request":{"operation":"update","mount_point":"secret/","path":"secret/data/setup"},"response":{}}"# + "\n"
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice") + idless + vaultPair(id: "r2", path: "secret/data/b", name: "bob"))
        do {
            let state = try s.state()
            let tailer = FileTailer(state: state, sources: [s.source()], logger: Logger(label: "test"), afterCommit: { _ in throw Crash() })
            await #expect(throws: Crash.self) { try await tailer.run() }
            #expect(state.store.trail.size == 3, "committed")
            #expect(s.saved() == nil, "but no offset written")
        }
        do {
            let state = try s.state()
            try await Self.withTailer(state, [s.source()]) {
                try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
            }
            #expect(state.store.trail.size == 3)
            #expect(Self.metric(state, "custos_file_tail_events_duplicate_total") == 3)
            #expect(Self.metric(state, "custos_file_tail_events_accepted_total") == 0)
        }
        let events = try EventReader(directory: s.data.path).events(EventQuery())
        #expect(events.count == 3)
        #expect(Set(events.map(\.event.id)).count == 3)
    }

    @Test func overLongAndMalformedLinesAreSkippedAndCounted() async throws {
        let s = Setup()
        let state = try s.state()
        try Self.append(s.log, vaultPair(id: "r1", path: "secret/data/a", name: "alice") + String(repeating: "x", count: 10_000) + "\n{oops\n"
                        + vaultPair(id: "r2", path: "secret/data/b", name: "bob"))
        try await Self.withTailer(state, [s.source()]) {
            try await Self.until("r1, r2") { state.store.trail.size == 2 }
            // An over-long line still being written is not held whole.
            try Self.append(s.log, String(repeating: "y", count: 9000))
            try await Task.sleep(for: .milliseconds(100))
            try Self.append(s.log, "y\n" + vaultPair(id: "r3", path: "secret/data/c", name: "carol"))
            try await Self.until("r3") { state.store.trail.size == 3 }
            #expect(Self.metric(state, "custos_file_tail_lines_rejected_total") == 3)
            try await Self.until("offset") { s.saved()?.offset == Self.size(s.log) }
        }
    }

    @Test func custosEventLinesAndAFileThatAppearsLater() async throws {
        let s = Setup()
        let state = try s.state()
        try await Self.withTailer(state, [s.source(.auto)]) {
            try await Task.sleep(for: .milliseconds(100))
            try Self.append(s.log, String(decoding: ev(1).canonicalJSON(), as: UTF8.self) + "\n" + vaultPair(id: "r1", path: "secret/data/a", name: "alice"))
            try await Self.until("both") { state.store.trail.size == 2 }
        }
    }

    @Test func config() throws {
        let c = try ServeConfig.parse(yaml: """
            file_tail:
              - { path: /var/log/openbao/audit.log, format: openbao, instance: bao-1 }
              - { path: logs/other.log, poll_interval_ms: 500, format: auto }
            """, baseDirectory: "/etc/custos")
        #expect(c.fileTail.map(\.path) == ["/var/log/openbao/audit.log", "/etc/custos/logs/other.log"])
        #expect(c.fileTail.map(\.instance) == ["bao-1", "default"])
        #expect(c.fileTail.map(\.format) == [.openbao, .auto])
        #expect(c.fileTail.map(\.pollIntervalMs) == [250, 500])
        let one = try ServeConfig.parse(yaml: "file_tail: { path: /a.log }", baseDirectory: "/")
        #expect(one.fileTail.map(\.path) == ["/a.log"])
        do {
            _ = try ServeConfig.parse(yaml: """
                file_tail:
                  - { format: jsonl }
                  - { path: /a.log, poll_interval_ms: 5, colour: red }
                  - { path: /a.log, instance: "" }
                """, baseDirectory: "/")
            Issue.record("accepted a bad file_tail")
        } catch {
            let text = error.problems.map(\.description)
            #expect(text.contains { $0.hasPrefix("file_tail[0].path") && $0.contains("is required") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("file_tail[0].format") && $0.contains("expected vault, openbao, custos or auto") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("file_tail[1].poll_interval_ms") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("file_tail[1].colour") && $0.contains("unknown key") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("file_tail[2].path") && $0.contains("already followed by file_tail[1]") }, "\(text)")
            #expect(text.contains { $0.hasPrefix("file_tail[2].instance") }, "\(text)")
        }
    }
}
