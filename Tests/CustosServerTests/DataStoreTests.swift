import CustosCore
@testable import CustosServer
import CustosStore
import CustosTrail
import Foundation
import Testing

final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "custos-server-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func write(_ name: String, _ text: String) -> String {
        let p = path + "/" + name
        _ = FileManager.default.createFile(atPath: p, contents: Data(text.utf8))
        return p
    }
}

func ev(_ i: Int) -> AccessEvent {
    AccessEvent(id: EventID.make(instance: "s", key: "q\(i)"), time: EventTime(seconds: 1_760_000_000 + Int64(i), digits: 0),
                source: .init(kind: "vault", instance: "s"), action: .read, outcome: .success,
                secret: .init(store: "secret/", path: "secret/data/x\(i)"), identity: .init(name: "n\(i % 3)", kind: .service),
                requestID: "q\(i)")
}

/// A Vault audit request/response pair as the file device writes it.
func vaultPair(id: String, path: String, name: String, error: String? = nil, time: String = "2026-01-02T03:04:05.123456789Z") -> String {
    let err = error.map { ",\"error\":\"\($0)\"" } ?? ""
    let auth = "{\"display_name\":\"\(name)\",\"policies\":[\"default\"],\"token_type\":\"service\"}"
    let req = "{\"id\":\"\(id)\",\"operation\":\"read\",\"mount_point\":\"secret/\",\"path\":\"\(path)\",\"remote_address\":\"192.0.2.7\",\"remote_port\":5555,\"data\":{\"k\":\"hmac-sha256:00\"}}"
    return """
        {"time":"\(time)","type":"request","auth":\(auth),"request":\(req)\(err)}
        {"time":"\(time)","type":"response","auth":\(auth),"request":\(req),"response":{"data":{"password":"hmac-sha256:11"}}\(err)}

        """
}

@Suite struct DataStoreTests {
    @Test func createsKeyOnFirstUseAndAppends() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            #expect(store.createdSigner?.name == "t.example/log")
            let r = try store.append((0..<10).map(ev))
            #expect(r.accepted == 10 && r.duplicates == 0 && r.range == 0..<10)
            #expect(try store.index.indexedSize() == 10)
            // One writer per data directory.
            #expect(throws: IngestError.self) { try DataStore(directory: dir.path) }
        }
        let again = try DataStore(directory: dir.path)
        #expect(again.createdSigner == nil)
        #expect(again.trail.size == 10)
    }

    @Test func duplicatesAreDroppedWithinAndAcrossBatchesAndRuns() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            let r1 = try store.append([ev(1), ev(2), ev(1)])
            #expect(r1.accepted == 2 && r1.duplicates == 1 && r1.indices == [0, 1, nil])
            let r2 = try store.append([ev(2), ev(3)])
            #expect(r2.accepted == 1 && r2.indices == [nil, 2])
        }
        let reopened = try DataStore(directory: dir.path)
        let r3 = try reopened.append([ev(1), ev(2), ev(3), ev(4)])
        #expect(r3.accepted == 1 && r3.duplicates == 3)
        #expect(reopened.trail.size == 4)
    }

    @Test func indexCatchesUpWithTheTrail() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            try store.append((0..<300).map(ev))
        }
        // Lose the index entirely: it is rebuilt from the trail on open.
        let layout = TrailLayout(dataDirectory: dir.path)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: layout.indexPath + suffix) }
        let store = try DataStore(directory: dir.path)
        #expect(try store.index.indexedSize() == 300)
        #expect(try store.events(EventQuery()).map(\.event) == (0..<300).map(ev))
        // And duplicates are still recognised after the rebuild.
        #expect(try store.append([ev(5)]).duplicates == 1)
    }

    @Test func trailAheadOfIndexAfterACrashIsCaughtUp() throws {
        let dir = TempDir()
        let layout = TrailLayout(dataDirectory: dir.path)
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            try store.append((0..<50).map(ev))
        }
        // Simulate a crash after the trail commit but before the index update.
        let signer = try TrailKeys.load(layout: layout)
        let w = try TrailWriter.open(layout: layout, signer: signer)
        try w.append((50..<80).map { ev($0).canonicalJSON() })
        let store = try DataStore(directory: dir.path)
        #expect(try store.index.indexedSize() == 80)
        #expect(try store.index.count(EventQuery()) == 80)
    }

    @Test func indexRebuildsWithoutTheSigningKeyAndQueriesSeeLag() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            try store.append((0..<30).map(ev))
        }
        let layout = TrailLayout(dataDirectory: dir.path)
        // An auditor's copy: no signing key.
        try FileManager.default.removeItem(atPath: layout.signingKeyPath)
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: layout.indexPath + suffix) }
        #expect(try EventReader.rebuildIndex(directory: dir.path) == 30)
        let reader = try EventReader(directory: dir.path)
        #expect(reader.lag == 0)
        var q = EventQuery(); q.identity = "n1"
        #expect(try reader.events(q).map(\.index) == (0..<30).filter { $0 % 3 == 1 }.map(UInt64.init))
        #expect(try reader.events(q).map(\.event) == (0..<30).filter { $0 % 3 == 1 }.map(ev))
    }

    @Test func readerRefusesAnIndexAheadOfTheTrail() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        try store.append((0..<10).map(ev))
        try store.index.append([ev(99)], firstIndex: 10, origin: "t.example/log")
        #expect(throws: IndexError.self) { try EventReader(directory: dir.path) }
    }

    @Test func reindexRebuildsTheSameIndex() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        try store.append((0..<40).map(ev))
        let before = try store.events(EventQuery()).map(\.event)
        #expect(try store.reindex() == 40)
        #expect(try store.events(EventQuery()).map(\.event) == before)
    }
}

@Suite struct IngestorTests {
    @Test func ingestsPairsCountsAndDeduplicates() throws {
        let dir = TempDir()
        let log = dir.write("audit.log",
            vaultPair(id: "a", path: "secret/data/prod/db", name: "approle")
            + vaultPair(id: "b", path: "secret/data/dev/db", name: "userpass-bob", error: "1 error occurred:\\n\\t* permission denied\\n\\n")
            + "not json at all\n"
            + "{\"time\":\"2026-01-02T03:04:05Z\",\"type\":\"request\",\"request\":{\"id\":\"c\",\"path\":\"sys/internal/ui/mounts/secret\",\"operation\":\"read\"}}\n"
            + "{\"time\":\"2026-01-02T03:04:05Z\",\"type\":\"response\",\"request\":{\"id\":\"c\",\"path\":\"sys/internal/ui/mounts/secret\",\"operation\":\"read\"}}\n")
        let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        let ing = Ingestor(store: store, format: .openbao, instance: "prod-bao", batchSize: 1)
        try ing.ingest(path: log)
        let s = try ing.finish()
        #expect(s.lines == 7)
        #expect(s.accepted == 2)
        #expect(s.ignored == 1)
        #expect(s.rejected == 1)
        #expect(s.rejections.first?.rejection.line == 5)
        let rows = try store.events(EventQuery())
        #expect(rows.map(\.event.outcome) == [.success, .denied])
        #expect(rows.map(\.event.source.kind) == ["openbao", "openbao"])
        #expect(rows[1].event.identity.kind == .human)

        let ing2 = Ingestor(store: store, format: .openbao, instance: "prod-bao")
        try ing2.ingest(path: log)
        let s2 = try ing2.finish()
        #expect(s2.accepted == 0 && s2.duplicates == 2)
        #expect(store.trail.size == 2)
    }

    /// `--format custos`: custos.event/v1 lines (e.g. what `query --format json` printed, or
    /// another Custos) in any key order are stored as they are; bad lines are rejected with
    /// their number; blank lines are skipped; the same events again are duplicates.
    @Test func ingestsCustosEventLines() throws {
        let dir = TempDir()
        let first = ev(1), second = ev(2)
        // Keys in reverse order: stored in canonical form all the same.
        let reversed = try JSONSerialization.jsonObject(with: Data(second.canonicalJSON()))
        let shuffled = try JSONSerialization.data(withJSONObject: reversed, options: [.withoutEscapingSlashes])
        let log = dir.write("events.ndjson",
            String(decoding: first.canonicalJSON(), as: UTF8.self) + "\n\n"
            + String(decoding: shuffled, as: UTF8.self) + "\n"
            + "{\"schema\":\"custos.event/v1\",\"id\":\"x\"}\n"
            + "[1,2]\n")
        let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        let ing = Ingestor(store: store, format: .custos, instance: "ignored")
        try ing.ingest(path: log)
        let s = try ing.finish()
        #expect(s.accepted == 2)
        #expect(s.rejected == 2)
        #expect(s.rejections.map(\.rejection.line) == [4, 5])
        #expect(s.rejections.allSatisfy { $0.rejection.reason.contains("not a custos.event/v1 object") })
        let rows = try store.events(EventQuery())
        #expect(rows.map(\.event) == [first, second])
        let again = Ingestor(store: store, format: .custos, instance: "ignored")
        try again.ingest(path: log)
        let s2 = try again.finish()
        #expect(s2.accepted == 0 && s2.duplicates == 2)
    }

    @Test func sameRequestFromAnotherInstanceIsAnotherEvent() throws {
        let dir = TempDir()
        let log = dir.write("a.log", vaultPair(id: "same", path: "secret/data/x", name: "approle"))
        let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        for inst in ["one", "two", "one"] {
            let ing = Ingestor(store: store, format: .vault, instance: inst)
            try ing.ingest(path: log)
            _ = try ing.finish()
        }
        #expect(store.trail.size == 2)
    }

    @Test func lineReaderHandlesChunkBoundariesCRLFAndOverlongLines() throws {
        let dir = TempDir()
        var text = ""
        for i in 0..<200 { text += String(repeating: "x", count: i % 37) + "\(i)\r\n" }
        text += String(repeating: "y", count: 5000) + "\n"   // over the limit below
        text += "last-without-newline"
        let path = dir.write("lines.txt", text)
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var lines: [String] = []
        var tooLong = 0
        try LineReader.forEachLine(fd: fd, maxLine: 1000, chunk: 64) { line, long in
            if long { tooLong += 1; lines.append("<too long>") } else { lines.append(String(decoding: line, as: UTF8.self)) }
        }
        #expect(lines.count == 202)
        #expect(tooLong == 1)
        #expect(lines[0] == "0\r")
        #expect(lines[199] == String(repeating: "x", count: 199 % 37) + "199\r")
        #expect(lines[200] == "<too long>")
        #expect(lines[201] == "last-without-newline")
    }

    @Test func overlongLineIsRejectedAndTheRestIngested() throws {
        let dir = TempDir()
        let big = "{\"time\":\"" + String(repeating: "A", count: VaultAuditDecoder.maxLineBytes + 10) + "\"}\n"
        let log = dir.write("big.log", vaultPair(id: "1", path: "secret/data/a", name: "approle") + big + vaultPair(id: "2", path: "secret/data/b", name: "approle"))
        let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        let ing = Ingestor(store: store, format: .vault, instance: "i")
        try ing.ingest(path: log)
        let s = try ing.finish()
        #expect(s.accepted == 2)
        #expect(s.rejected == 1)
        #expect(s.rejections.first?.rejection.line == 3)
        #expect(s.rejections.first?.rejection.reason.contains("longer than") == true)
    }
}

@Suite struct GroupCommitterTests {
    @Test func concurrentCallersShareCommitsAndEachGetsItsOwnResult() async throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let callers = 8
        let gate = DispatchSemaphore(value: 0)
        let first = Flag()
        // The first commit waits until every caller is queued, so the rest must be coalesced.
        let committer = GroupCommitter(store: store) { _ in
            if first.setOnce() { gate.wait() }
        }
        try await withThrowingTaskGroup(of: GroupCommitter.Result.self) { group in
            for c in 0..<callers {
                group.addTask { try await committer.append((0..<25).map { ev(c * 1000 + $0) } + [ev(0)]) }
            }
            while committer.waiting < callers { try await Task.sleep(nanoseconds: 1_000_000) }
            gate.signal()
            var accepted = 0, dups = 0
            for try await r in group {
                accepted += r.accepted
                dups += r.duplicates
                #expect(r.indices.count == 26)
            }
            #expect(accepted == callers * 25)
            #expect(accepted + dups == callers * 26)
        }
        #expect(store.trail.size == UInt64(callers * 25))
        #expect(committer.commits < callers, "commits were not grouped: \(committer.commits)")
        let report = TrailVerifier(layout: store.layout, verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey)).verify()
        #expect(report.isValid)
    }

    /// Groups staged while a sync runs are all made durable by the next one (one sync, one
    /// signed checkpoint); each caller still hears back with its own indices, in order, and
    /// the trail verifies.
    @Test func groupsStagedDuringASyncShareTheNextOne() async throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let gate = DispatchSemaphore(value: 0)
        let held = Flag()
        let covered = Counter()
        let committer = GroupCommitter(store: store, beforeSync: { groups in
            if held.setOnce() { gate.wait(); return }
            #expect(groups == 4, "the second sync covers \(groups) groups")
            _ = covered.next()
        })
        // Whatever happens below, the held sync goes on (so that the commit threads end).
        defer { gate.signal() }
        var calls: [Task<GroupCommitter.Result, any Error>] = []
        for c in 0..<5 {
            calls.append(Task { try await committer.append((0..<5).map { ev(c * 100 + $0) }) })
            // Each call is taken (and staged) alone, the first one held in its sync: the
            // next call comes after. A bound on the number of looks, not on wall-clock time:
            // in a full parallel run on 2 cores one look can come tens of seconds after the
            // last (CI once spent 37 s between two), and the bound only keeps a broken
            // committer from hanging the run.
            var looks = 0
            while !(held.isSet && committer.waiting == 0 && committer.stagedGroups == c) {
                looks += 1
                try #require(looks < 60_000, "call \(c) was not staged alone: \(committer.stagedGroups) groups staged")
                try await Task.sleep(nanoseconds: 1_000_000)
            }
        }
        #expect(committer.syncs == 0 && store.trail.size == 0, "nothing is durable while the first sync is held")
        gate.signal()
        for (c, call) in calls.enumerated() {
            let r = try await call.value
            #expect(r.accepted == 5 && r.range == UInt64(c * 5)..<UInt64(c * 5 + 5))
        }
        #expect(committer.commits == 5)
        #expect(committer.syncs == 2)
        #expect(covered.next() == 2, "one sync covered the four groups staged behind the first")
        try await committer.waitUntilIndexed()
        #expect(try store.index.indexedSize() == 25)
        #expect(store.trail.checkpoint.checkpoint.size == 25)
        let report = TrailVerifier(layout: store.layout, verifier: try NoteVerifier(vkey: store.trail.checkpointVerifierKey)).verify()
        #expect(report.isValid)
    }

    /// A caller hears back once its events are durable in the trail, without waiting for the
    /// index; `waitUntilIndexed` (what every read of `custos serve` does first) returns once
    /// the index holds everything acknowledged before it.
    @Test func answersComeAfterTheTrailAndReadsWaitForTheIndex() async throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let gate = DispatchSemaphore(value: 0)
        let committer = GroupCommitter(store: store, beforeIndex: { gate.wait() })
        let r = try await committer.append((0..<10).map { ev($0) })
        #expect(r.accepted == 10 && store.trail.size == 10)
        #expect(try store.index.indexedSize() == 0, "the answer waited for the index")
        let waited = Flag()
        let reader = Task {
            try await committer.waitUntilIndexed()
            #expect(waited.isSet, "the read did not wait for the index")
            return try store.index.indexedSize()
        }
        try await Task.sleep(for: .milliseconds(200))
        waited.setOnce()
        gate.signal()
        #expect(try await reader.value == 10)
        // Nothing pending: no wait at all.
        try await committer.waitUntilIndexed()
    }

    /// An index failure after the answer: the events stay durable and acknowledged, later
    /// ones too; reads are refused (no query may miss acknowledged events) and the index
    /// stays a prefix of the trail, caught up when the data directory is opened again.
    @Test func anIndexFailureStopsReadsNotTheTrail() async throws {
        struct Broken: Error {}
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "t.example/log")
            let calls = Counter()
            let committer = GroupCommitter(store: store, beforeIndex: { if calls.next() == 2 { throw Broken() } })
            _ = try await committer.append([ev(1)])
            try await committer.waitUntilIndexed()
            #expect(committer.indexFailure == nil)
            #expect(try await committer.append([ev(2), ev(3)]).accepted == 2)
            await #expect(throws: Broken.self) { try await committer.waitUntilIndexed() }
            #expect(committer.indexFailure is Broken)
            #expect(try await committer.append([ev(4)]).accepted == 1)
            await #expect(throws: Broken.self) { try await committer.waitUntilIndexed() }
            #expect(store.trail.size == 4)
            #expect(try store.index.indexedSize() == 1)
        }
        // Opened again (once the commit thread let go of the directory): caught up.
        var reopened: DataStore?
        for _ in 0..<100 where reopened == nil {
            reopened = try? DataStore(directory: dir.path)
            if reopened == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        #expect(try #require(reopened).index.indexedSize() == 4)
    }

    @Test func aFailedCommitFailsOnlyItsCallers() async throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let committer = GroupCommitter(store: store)
        let tooBig = AccessEvent(id: "big", time: EventTime(seconds: 0), source: .init(kind: "k", instance: "i"), action: .read,
                                 outcome: .success, secret: .init(path: String(repeating: "p", count: 70_000)), identity: .init(kind: .unknown))
        await #expect(throws: TrailError.self) { _ = try await committer.append([tooBig]) }
        let ok = try await committer.append([ev(1)])
        #expect(ok.accepted == 1)
    }

    /// Lingering submissions (a listener without per-record acks) share one commit; each is
    /// still committed after about `linger` when nothing else comes; a call without linger
    /// (an HTTP request waiting for its answer) or `maxBatch` events end the wait at once.
    /// Bounds are one-sided or loose: CI machines stall.
    @Test func lingeringSubmissionsShareACommitAndAnAcknowledgedCallDoesNotWait() async throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "t.example/log")
        let committer = GroupCommitter(store: store, linger: .milliseconds(300))
        let results = Results()
        let start = ContinuousClock.now
        for c in 0..<10 {
            committer.submit((0..<5).map { ev(c * 100 + $0) }, linger: true) { results.add($0, after: ContinuousClock.now - start) }
        }
        while results.count < 10 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(committer.commits == 1, "ten lingering submissions, \(committer.commits) commits")
        #expect(results.accepted == 50)
        // Nothing else came: not committed before the linger ended.
        #expect(results.latest >= .milliseconds(250), "\(results.latest)")

        // An acknowledged call ends the wait of lingering ones queued before it: with a
        // linger of a minute, both are answered long before it ends.
        let patient = GroupCommitter(store: store, linger: .seconds(60))
        let t0 = ContinuousClock.now
        let early = Results()
        patient.submit([ev(5000)], linger: true) { early.add($0, after: ContinuousClock.now - t0) }
        let r = try await patient.append([ev(5001)])
        #expect(r.accepted == 1)
        while early.count < 1 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(ContinuousClock.now - t0 < .seconds(30))
        #expect(early.accepted == 1)
        #expect(patient.commits == 1)
        #expect(store.trail.size == 52)

        // maxBatch lingering events end the wait too.
        let small = GroupCommitter(store: store, maxBatch: 20, linger: .seconds(60))
        let t1 = ContinuousClock.now
        let more = Results()
        for c in 0..<4 { small.submit((0..<5).map { ev(9000 + c * 10 + $0) }, linger: true) { more.add($0, after: ContinuousClock.now - t1) } }
        while more.count < 4 { try await Task.sleep(for: .milliseconds(5)) }
        #expect(ContinuousClock.now - t1 < .seconds(30))
        #expect(more.accepted == 20)
    }
}

final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0, acc = 0
    private var last: Duration = .zero
    func add(_ r: Result<GroupCommitter.Result, any Error>, after d: Duration) {
        lock.withLock {
            n += 1
            if case .success(let x) = r { acc += x.accepted }
            last = max(last, d)
        }
    }
    var count: Int { lock.withLock { n } }
    var accepted: Int { lock.withLock { acc } }
    var latest: Duration { lock.withLock { last } }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var set = false
    /// True exactly once.
    @discardableResult
    func setOnce() -> Bool { lock.withLock { if set { return false }; set = true; return true } }
    var isSet: Bool { lock.withLock { set } }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    /// 1 on the first call, then 2, …
    func next() -> Int { lock.withLock { n += 1; return n } }
}
