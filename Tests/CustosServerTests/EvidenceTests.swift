import CustosCore
@testable import CustosServer
import CustosStore
import CustosTrail
import Foundation
import HTTPTypes
import HummingbirdTesting
import Hummingbird
import NIOCore
import Testing

/// An access at `day` days and `second` seconds after 2026-07-01T00:00:00Z.
func access(_ key: String, day: Int, second: Int = 0, path: String, env: String, name: String, kind: IdentityKind,
            outcome: Outcome = .success) -> AccessEvent {
    AccessEvent(id: EventID.make(instance: "ev", key: key), time: EventTime(seconds: 1_782_864_000 + Int64(day) * 86_400 + Int64(second), digits: 0),
                source: .init(kind: "openbao", instance: "ev"), action: .read, outcome: outcome,
                secret: .init(store: "secret/", path: path, environment: env), identity: .init(name: name, kind: kind),
                origin: .init(ip: "192.0.2.10"), requestID: key)
}

@Suite struct EvidenceTests {
    static let period: (EventTime, EventTime) = (EventTime(rfc3339: "2026-07-10T00:00:00Z")!, EventTime(rfc3339: "2026-07-20T00:00:00Z")!)

    /// Three commits: before the period, inside it, after it. Humans read only staging
    /// secrets; a service reads production ones.
    func populate(_ store: DataStore) throws {
        for (batch, days) in [(0, 0..<5), (1, 10..<15), (2, 25..<28)] {
            var events: [AccessEvent] = []
            for d in days {
                events.append(access("svc-\(batch)-\(d)", day: d, path: "secret/data/prod/db", env: "prod", name: "billing-api", kind: .service))
                events.append(access("hum-\(batch)-\(d)", day: d, second: 60, path: "secret/data/staging/db", env: "staging", name: "alice", kind: .human))
                events.append(access("den-\(batch)-\(d)", day: d, second: 90, path: "secret/data/prod/db", env: "prod", name: "bob", kind: .human, outcome: .denied))
            }
            _ = try store.append(events)
        }
    }

    func humanProdReads() -> EventQuery {
        var q = EventQuery()
        q.secret = "secret/data/prod/*"
        q.kinds = [.human]
        q.outcomes = [.success]
        q.from = Self.period.0
        q.to = Self.period.1
        return q
    }

    @Test func provesZeroThenOneWithTheEventAndTheProofs() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
        try populate(store)
        let verifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)

        let zero = try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads())
        #expect(zero.count == 0 && zero.matches.isEmpty && zero.indexCount == 0)
        #expect(zero.entriesScanned == 39 && zero.eventsScanned == 39)
        #expect(zero.scannedRoot == store.trail.checkpoint.checkpoint.rootHash)
        // Before: the commit of the 15 entries that precede the period; after: the first
        // commit holding an entry past its end (here the current one).
        #expect(zero.before?.checkpoint.size == 15)
        #expect(zero.after.checkpoint.size == 39 && zero.head.checkpoint.size == 39)
        #expect(zero.consistency.map { [$0.from, $0.to] } == [[15, 39]])
        let zeroDoc = zero.json(generatedBy: "auditor@test")
        let checked = try EvidenceCheck.check(zeroDoc, verifier: verifier)
        #expect(checked.count == 0)
        #expect(zero.statement.contains("no event matches"))

        // Denied reads are not reads: asking for them finds Bob's 5 in the period.
        var denied = humanProdReads()
        denied.outcomes = [.denied]
        let d = try Evidence.run(directory: dir.path, verifier: verifier, query: denied)
        #expect(d.count == 5 && d.matches.allSatisfy { $0.event.identity.name == "bob" })

        // One human read inside the period, recorded late (after the period ended): counted.
        let late = access("late-1", day: 12, second: 5, path: "secret/data/prod/payments", env: "prod", name: "mallory", kind: .human)
        _ = try store.append([late])
        let one = try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads())
        #expect(one.count == 1 && one.indexCount == 1)
        #expect(one.matches.map(\.index) == [39] && one.matches.first?.event.id == late.id)
        #expect(one.before?.checkpoint.size == 15 && one.after.checkpoint.size == 39 && one.head.checkpoint.size == 40)
        #expect(one.consistency.map { [$0.from, $0.to] } == [[15, 39], [39, 40]])
        #expect(try EvidenceCheck.check(one.json(generatedBy: "a"), verifier: verifier).count == 1)
    }

    @Test func theOfflineCheckRefusesEveryAlteration() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
        try populate(store)
        _ = try store.append([access("late-1", day: 12, second: 5, path: "secret/data/prod/payments", env: "prod", name: "mallory", kind: .human)])
        let verifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)
        let doc = try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads()).json(generatedBy: "a")
        _ = try EvidenceCheck.check(doc, verifier: verifier)

        func edit(_ change: (inout [String: Any]) -> Void) -> [UInt8] {
            var o = try! JSONSerialization.jsonObject(with: Data(doc)) as! [String: Any]
            change(&o)
            return Array(try! JSONSerialization.data(withJSONObject: o))
        }
        func refused(_ bytes: [UInt8], _ needle: String, sourceLocation: SourceLocation = #_sourceLocation) {
            do {
                _ = try EvidenceCheck.check(bytes, verifier: verifier)
                Issue.record("accepted an altered document (\(needle))", sourceLocation: sourceLocation)
            } catch {
                #expect("\(error)".contains(needle), "\(error)", sourceLocation: sourceLocation)
            }
        }
        // Another log's key.
        let other = try NoteVerifier(vkey: NoteSigner.generate(name: "evidence.test/log").vkey)
        #expect(throws: EvidenceError.self) { try EvidenceCheck.check(doc, verifier: other) }
        // The event left out (count says 1).
        refused(edit { $0["events"] = [] as [Any] }, "count is 1 but 0 events")
        // Count lowered to zero with the list emptied: the scan root still proves the log, but
        // the index count (kept in the document) disagrees.
        refused(edit { $0["events"] = [] as [Any]; $0["count"] = 0 }, "the index counted 1")
        // A consistency proof hash replaced.
        refused(edit { o in
            var c = o["consistency"] as! [[String: Any]]
            var p = c[0]["proof"] as! [String]
            p[0] = MerkleHash(bytes: [UInt8](repeating: 7, count: 32))!.base64
            c[0]["proof"] = p
            o["consistency"] = c
        }, "does not verify")
        // The event's entry rewritten (another secret).
        refused(edit { o in
            var e = o["events"] as! [[String: Any]]
            e[0]["entry"] = (e[0]["entry"] as! String).replacingOccurrences(of: "payments", with: "paymentz")
            o["events"] = e
        }, "is not in the log")
        // The period widened after the fact: the listed event still matches, so the check must
        // rest on the signed data; the scan root must stay the head's.
        refused(edit { o in
            var s = o["scan"] as! [String: Any]
            s["entries"] = 39
            o["scan"] = s
        }, "not the head checkpoint")
        // Garbage.
        #expect(throws: EvidenceError.self) { try EvidenceCheck.check(Array("[1,2".utf8), verifier: verifier) }
    }

    @Test func aTrailAlteredOnDiskIsReportedNotCounted() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
            try populate(store)
        }
        // Rewrite one entry in place (same length): the scan's root no longer matches.
        let layout = TrailLayout(dataDirectory: dir.path)
        let bundle = layout.bundlePath(index: 0, width: 39)
        var bytes = try #require(FileManager.default.contents(atPath: bundle))
        let needle = Data("staging".utf8)
        let r = try #require(bytes.range(of: needle))
        bytes.replaceSubrange(r, with: Data("stagin9".utf8))
        try bytes.write(to: URL(fileURLWithPath: bundle))
        let verifier = try NoteVerifier(vkey: String(contentsOfFile: layout.verifierKeyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect { try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads()) } throws: { "\($0)".contains("altered") }
    }

    /// A trail rolled back to an earlier signed checkpoint, with the later checkpoints still
    /// kept: no count (before, a kept checkpoint larger than the head was simply skipped, and
    /// the rolled-back trail gave a smaller count that `evidence check` accepted).
    @Test func aRolledBackTrailIsRefusedNotCounted() throws {
        let dir = TempDir()
        do {
            let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
            try populate(store)
        }
        let layout = TrailLayout(dataDirectory: dir.path)
        let verifier = try NoteVerifier(vkey: String(contentsOfFile: layout.verifierKeyPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads()).head.checkpoint.size == 39)
        // The checkpoint after the first batch (15 entries) put back in place.
        try FileManager.default.removeItem(atPath: layout.checkpointPath)
        try FileManager.default.copyItem(atPath: layout.historyPath(size: 15), toPath: layout.checkpointPath)
        #expect { try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads()) } throws: {
            "\($0)".contains("a checkpoint of size 39 is kept") && "\($0)".contains("rolled back")
        }
    }

    @Test func aPeriodIsRequired() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
        var q = humanProdReads()
        q.to = nil
        #expect(throws: EvidenceError.self) { try Evidence.run(directory: dir.path, verifier: NoteVerifier(vkey: store.trail.checkpointVerifierKey), query: q) }
    }
}

@Suite struct InvestigationLogTests {
    func record(_ n: Int) -> InvestigationRecord {
        InvestigationRecord(time: EventTime(seconds: 1_782_864_000 + Int64(n), digits: 0), actor: "alice@host", channel: "cli",
                            action: .query, parameters: ["secret": "secret/data/prod/*", "kind": "human"], resultCount: n)
    }

    @Test func recordsDirectlyOrSpoolsWhileAnotherProcessWritesAndIsAbsorbedOnce() throws {
        let dir = TempDir()
        do { _ = try DataStore(directory: dir.path, origin: "inv.test/log") }
        // Nobody holds the directory: straight into the trail, and indexed.
        #expect(try InvestigationLog.record(record(1), directory: dir.path) == .trail(0))
        do {
            let store = try DataStore(directory: dir.path)
            #expect(store.trail.size == 1)
            #expect(try store.index.entries(schema: InvestigationRecord.schema) == [0])
            // While the store holds the directory, records wait in the spool (durable files).
            guard case .spooled(let path) = try InvestigationLog.record(record(2), directory: dir.path) else {
                Issue.record("expected the spool"); return
            }
            #expect(FileManager.default.fileExists(atPath: path))
            _ = try InvestigationLog.record(record(3), directory: dir.path)
            // The writer absorbs them, in time order.
            #expect(try store.absorbInvestigationSpool() == 2)
            #expect(store.trail.size == 3)
            #expect(!FileManager.default.fileExists(atPath: path))
            // A crash between the append and the removal of the files: the next absorb sees the
            // records already in the trail and does not append them again.
            _ = try InvestigationLog.record(record(4), directory: dir.path)
            let spooled = InvestigationLog.pending(store.layout)
            try store.appendEntries(spooled.map(\.entry))
            #expect(try store.absorbInvestigationSpool() == 0)
            #expect(store.trail.size == 4 && InvestigationLog.pending(store.layout).isEmpty)
            // Something that is not a record is set aside, not appended.
            let junk = InvestigationLog.spoolDirectory(store.layout) + "/00000000000000000001-x.json"
            try Data("{\"schema\":\"custos.event/v1\"}".utf8).write(to: URL(fileURLWithPath: junk))
            #expect(try store.absorbInvestigationSpool() == 0)
            #expect(FileManager.default.fileExists(atPath: dir.path + "/spool/rejected/00000000000000000001-x.json"))
        }
        // What the trail holds decodes back to the records.
        let reader = try EventReader(directory: dir.path)
        let ids = try EventReader.entries(try reader.index.entries(schema: InvestigationRecord.schema), from: reader.trail).compactMap {
            if case .investigation(let r) = $0.entry { return r.resultCount } else { return nil }
        }
        #expect(ids == [1, 2, 3, 4])
        #expect(TrailVerifier(layout: TrailLayout(dataDirectory: dir.path),
                              verifier: try NoteVerifier(vkey: String(contentsOfFile: dir.path + "/keys/trail.vkey", encoding: .utf8)
                                  .trimmingCharacters(in: .whitespacesAndNewlines))).verify().problems.isEmpty)
    }

    @Test func recordsRoundTripInCanonicalForm() throws {
        var r = record(7)
        r.incident = "inc-1"
        let bytes = r.canonicalJSON()
        #expect(try TrailEntry.decode(bytes) == .investigation(r))
        #expect(bytes.withUnsafeBytes { EntryCheck.canonicalProblem($0) } == nil)
        // Reordered keys are not canonical.
        let text = String(decoding: bytes, as: UTF8.self).replacingOccurrences(of: "{\"action\":\"query\",", with: "{") .dropLast() + ",\"action\":\"query\"}"
        #expect(throws: (any Error).self) { try TrailEntry.decode(Array(text.utf8)) }
    }
}

@Suite struct EvidencePackTests {
    @Test func packHoldsTheReportTheDataAndTheProofsAndChecksOut() throws {
        let dir = TempDir()
        // Four denials of one secret raise a failed_threshold alert (SLA 1h) on 2026-01-02.
        try IngestDetectionTests.run(dir, "a.log", IngestDetectionTests.denials([(0, 0), (1, 0), (2, 0), (3, 0)], prefix: "a"))
        let raised = try #require(try IngestDetectionTests.alerts(dir).first?.alert)
        do {
            let store = try DataStore(directory: dir.path)
            // A successful read by a human of a production secret, and the owner notified within the SLA.
            _ = try store.append([access("h1", day: 0, path: "secret/data/prod/db", env: "prod", name: "alice", kind: .human)].map { e in
                var e = e
                e.time = EventTime(rfc3339: "2026-01-02T03:30:00Z")!
                return e
            })
            try store.appendEntries([.delivery(DeliveryRecord(alertID: raised.id, owner: "sec", targetKind: "webhook", endpoint: "http://127.0.0.1:9",
                                                              delivered: true, attempts: 1, error: nil, notice: false,
                                                              time: EventTime(rfc3339: "2026-01-02T03:02:10Z")!))])
        }
        _ = try InvestigationLog.record(InvestigationRecord(time: EventTime(rfc3339: "2026-01-02T06:00:00Z")!, actor: "carol@audit", channel: "cli",
                                                            action: .query, parameters: ["kind": "human"], resultCount: 1), directory: dir.path)
        let verifier = try NoteVerifier(vkey: String(contentsOfFile: dir.path + "/keys/trail.vkey", encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines))
        let out = dir.path + "/pack-2026-01"
        var o = EvidencePack.Options(from: EventTime(rfc3339: "2026-01-01T00:00:00Z")!, to: EventTime(rfc3339: "2026-01-04T00:00:00Z")!, generatedBy: "carol@audit")
        o.now = EventTime(rfc3339: "2026-01-05T09:00:00Z")!
        let s = try EvidencePack.write(dataDirectory: dir.path, verifier: verifier, options: o, into: out)
        #expect(s.verified && s.events == 5 && s.denials == 4 && s.accesses == 1 && s.alerts == 1 && s.investigations == 1)
        #expect(s.humanProductionReads == 1)
        #expect(s.files == ["README.txt", "alerts.csv", "alerts.ndjson", "checkpoints/after", "checkpoints/before", "checkpoints/head",
                            "events.csv", "events.ndjson", "evidence.json", "incidents.csv", "incidents.json", "index.html", "investigations.csv", "trail.vkey", "verification.txt"])

        func read(_ name: String) throws -> String { try String(contentsOfFile: out + "/" + name, encoding: .utf8) }
        // The report: the verdict, charts as SVG bars, the production access, the SLA verdict, no scripts.
        let html = try read("index.html")
        #expect(html.contains("id=\"verdict\"") && html.contains("The trail verified"))
        #expect(html.contains("<svg id=\"activity-chart\"") && html.contains("class=\"bar-access\"") && html.contains("class=\"bar-denied\"") && html.contains("class=\"bar-alert\""))
        #expect(html.contains("<td>alice</td><td>human</td><td><code>secret/data/prod/db</code></td><td class=\"num\">1</td>"))
        #expect(html.contains("failed_threshold") && html.contains("<span class=\"ok\">yes</span>"))
        #expect(html.contains("carol@audit") && html.contains("CC7.2"))
        #expect(!html.lowercased().contains("<script") && html.contains("default-src 'none'"))
        // The data.
        #expect(try read("events.csv").split(separator: "\n").count == 6)
        #expect(try read("events.ndjson").split(separator: "\n").map { $0.contains("\"schema\":\"custos.event/v1\"") && $0.contains("\"index\":") } == Array(repeating: true, count: 5))
        #expect(try read("alerts.csv").contains(",yes,"))
        // The proofs check out offline with the key alone.
        #expect(try EvidenceCheck.check(Array(try read("evidence.json").utf8), verifier: verifier).count == 1)
        #expect(try read("verification.txt").contains("result: VALID"))
        #expect(try SignedCheckpoint.open(try read("checkpoints/head"), verifier: verifier).checkpoint.size > 0)
        // SHA256SUMS covers every file, and the zip holds the same bytes (checked by Python's zipfile).
        let sums = try read("SHA256SUMS").split(separator: "\n")
        #expect(sums.count == s.files.count)
        for line in sums {
            let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
            let bytes = [UInt8](try #require(FileManager.default.contents(atPath: out + "/" + parts[1].trimmingCharacters(in: .whitespaces))))
            #expect(Hex.encode(SHA256Bytes.of(bytes)) == parts[0])
        }
        let zip = try #require(s.zipPath)
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", """
            import sys, zipfile, hashlib
            z = zipfile.ZipFile(sys.argv[1])
            assert z.testzip() is None
            for i in z.infolist():
                name = i.filename.split('/', 1)[1]
                assert hashlib.sha256(z.read(i)).hexdigest() == hashlib.sha256(open(sys.argv[2] + '/' + name, 'rb').read()).hexdigest(), name
            print(len(z.infolist()))
            """, zip, out]
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        p.waitUntilExit()
        #expect(p.terminationStatus == 0)
        #expect(String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) == String(s.files.count + 1))
        // A second pack into the same folder is refused (nothing overwritten).
        #expect(throws: EvidenceError.self) { try EvidencePack.write(dataDirectory: dir.path, verifier: verifier, options: o, into: out) }

        // Rows deleted from the data directory's index (a database anyone with write access
        // can edit) do not vanish from a pack: its tables come from the trail.
        let edit = Process()
        edit.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        edit.arguments = ["python3", "-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('delete from events'); c.execute('delete from alerts'); c.commit()",
                          dir.path + "/index.sqlite"]
        try edit.run()
        edit.waitUntilExit()
        try #require(edit.terminationStatus == 0)
        #expect(try EventReader(directory: dir.path).index.query(EventQuery()).isEmpty, "the index was not edited")
        let again = try EvidencePack.write(dataDirectory: dir.path, verifier: verifier, options: o, into: dir.path + "/pack-2")
        #expect(again.events == 5 && again.alerts == 1 && again.humanProductionReads == 1, "\(again)")
        #expect(try String(contentsOfFile: dir.path + "/pack-2/events.csv", encoding: .utf8).split(separator: "\n").count == 6)
    }

    @Test func zipOfKnownContentMatchesItsCRCs() throws {
        #expect(CRC32.checksum(Array("123456789".utf8)) == 0xCBF4_3926)
        let z = try ZipWriter.stored([("a/x.txt", Array("hello\n".utf8))], modified: EventTime(rfc3339: "2026-01-05T09:00:00Z")!)
        // Local header, the data, one central record, the end record.
        #expect(z.count == 30 + 7 + 6 + 46 + 7 + 22)
        #expect(Array(z.prefix(4)) == [0x50, 0x4B, 0x03, 0x04])
        #expect(Array(z.suffix(22).prefix(4)) == [0x50, 0x4B, 0x05, 0x06])
        let (time, date) = ZipWriter.dosTime(EventTime(rfc3339: "2026-01-05T09:00:00Z")!)
        #expect(time == 9 << 11 && date == UInt16(46 << 9 | 1 << 5 | 5))
    }
}

@Suite struct EvidenceAPITests {
    @Test func theAPIAnswersTheSameDocumentAndRecordsTheRequest() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir)
        try EvidenceTests().populate(state.store)
        let dataPath = dir.path
        let vkey = state.store.trail.checkpointVerifierKey
        try await buildApplication(state: state).test(.live) { client in
            let auditor: HTTPFields = [.authorization: "Bearer \(t.auditor)"]
            try await client.execute(uri: "/v1/evidence?secret=secret/data/prod/*&kind=human&outcome=success&from=2026-07-10&to=2026-07-20",
                                     method: .get, headers: auditor) { r in
                #expect(r.status == .ok)
                let doc = Array(r.body.readableBytesView)
                let c = try EvidenceCheck.check(doc, verifier: NoteVerifier(vkey: vkey))
                #expect(c.count == 0)
                #expect((try JSONSerialization.jsonObject(with: Data(doc)) as? [String: Any])?["generated_by"] as? String == "a")
            }
            try await client.execute(uri: "/v1/evidence?kind=human", method: .get, headers: auditor) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/v1/evidence?from=2026-07-10&to=2026-07-20", method: .get,
                                     headers: [.authorization: "Bearer \(t.ingest)"]) { r in #expect(r.status == .forbidden) }
        }
        // The request is in the trail: who (the token's name), what, how many.
        let inv = try EventReader(directory: dataPath).investigations()
        #expect(inv.count == 1 && inv.first?.record.action == .evidence && inv.first?.record.actor == "a"
                && inv.first?.record.channel == "api:auditor" && inv.first?.record.parameters["kind"] == "human" && inv.first?.record.resultCount == 0)
    }
}

extension EvidenceAPITests {
    /// A look at the incidents through the API is recorded like any other query.
    @Test func incidentReadsAreRecorded() async throws {
        let dir = TempDir()
        let (state, t) = try ServeTests.make(dir)
        try EvidenceTests().populate(state.store)
        try await buildApplication(state: state).test(.live) { client in
            try await client.execute(uri: "/v1/incidents?state=all", method: .get, headers: [.authorization: "Bearer \(t.auditor)"]) { r in
                #expect(r.status == .ok)
            }
            try await client.execute(uri: "/v1/incidents/nosuch1", method: .get, headers: [.authorization: "Bearer \(t.auditor)"]) { r in
                #expect(r.status == .notFound)
            }
        }
        let inv = try EventReader(directory: dir.path).investigations()
        #expect(inv.count == 1, "a refused look (404) records nothing; the list is recorded once")
        #expect(inv.first?.record.action == .incident && inv.first?.record.channel == "api:auditor"
                && inv.first?.record.parameters["state"] == "all" && inv.first?.record.resultCount == 0)
    }
}

extension EvidenceTests {
    @Test func witnessCosignaturesRideAlongAndStillCheck() throws {
        let dir = TempDir()
        let store = try DataStore(directory: dir.path, origin: "evidence.test/log")
        try populate(store)
        let verifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)
        let witness = try CosignatureSigner.generate(name: "witness.test/w1")
        let head = store.trail.checkpoint
        let line = try witness.cosign(text: head.checkpoint.text, timestamp: 1_785_000_000)
        try FileManager.default.createDirectory(atPath: CosignatureStore.directory(data: dir.path), withIntermediateDirectories: true)
        try Data(line.utf8).write(to: URL(fileURLWithPath: CosignatureStore.path(data: dir.path, size: head.checkpoint.size)))
        let r = try Evidence.run(directory: dir.path, verifier: verifier, query: humanProdReads())
        #expect(r.head.note.contains(line))
        #expect(try witness.verifier.verify(r.head.note) == 1_785_000_000)
        #expect(r.before.map { !$0.note.contains("witness.test") } ?? false)
        #expect(try EvidenceCheck.check(r.json(generatedBy: "a"), verifier: verifier).count == 0)
    }
}
