import CustosCore
@testable import CustosServer
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import CustosTrail
import NIOCore
import Testing

/// An in-memory log: leaves, signed checkpoints and RFC 9162 consistency proofs.
struct TestLog {
    let signer: NoteSigner
    var leaves: [MerkleHash] = []

    init(origin: String = "log.example/prod", signer: NoteSigner? = nil, entries: Int = 0, tag: String = "a") throws {
        self.signer = try signer ?? NoteSigner.generate(name: origin)
        append(entries, tag: tag)
    }

    mutating func append(_ n: Int, tag: String = "a") {
        for _ in 0..<n { leaves.append(Merkle.leafHash(Array("\(tag)-\(leaves.count)".utf8))) }
    }

    func node(_ level: Int, _ index: UInt64) -> MerkleHash {
        if level == 0 { return leaves[Int(index)] }
        return Merkle.nodeHash(node(level - 1, 2 * index), node(level - 1, 2 * index + 1))
    }

    func root(_ size: UInt64) -> MerkleHash { try! Merkle.rootHash(size: size, node: node) }

    func note(_ size: UInt64) throws -> String {
        try signer.sign(Checkpoint(origin: signer.name, size: size, rootHash: root(size)).text)
    }

    func proof(_ old: UInt64, _ size: UInt64) -> [MerkleHash] {
        old == 0 || old == size ? [] : try! Merkle.consistencyProof(size1: old, size2: size, node: node)
    }

    /// An add-checkpoint body.
    func body(old: UInt64, size: UInt64, proof: [MerkleHash]? = nil) throws -> [UInt8] {
        var s = "old \(old)\n"
        for h in proof ?? self.proof(old, size) { s += h.base64 + "\n" }
        return Array((s + "\n" + (try note(size))).utf8)
    }
}

@Suite("Witness (c2sp.org/tlog-witness add-checkpoint)")
struct WitnessTests {
    let dir = TempDir()
    let signer = try! CosignatureSigner.generate(name: "witness.example/w1")

    func witness(_ log: TestLog, now: UInt64 = 1_700_000_000) throws -> Witness {
        try Witness(signer: signer, logs: [WitnessedLog(origin: log.signer.name, verifier: log.signer.verifier)],
                    stateDirectory: dir.path + "/state", now: { now })
    }

    /// 200, or the status of the `WitnessError` thrown (-1 for any other error).
    func status(_ body: () throws -> String) -> Int {
        do { _ = try body(); return 200 } catch let e as WitnessError { return e.status } catch { return -1 }
    }

    @Test func firstCheckpointIsCosignedAndPersisted() throws {
        let log = try TestLog(entries: 5)
        let w = try witness(log)
        let lines = try w.addCheckpoint(try log.body(old: 0, size: 5))
        #expect(lines.hasPrefix("— witness.example/w1 ") && lines.hasSuffix("\n"))
        // The answer appended to the checkpoint is a valid cosignature at the witness's time.
        #expect(try signer.verifier.verify(try log.note(5) + lines) == 1_700_000_000)
        let stored = try #require(FileManager.default.contents(atPath: w.statePath(origin: log.signer.name)))
        #expect(try signer.verifier.verify([UInt8](stored)) == 1_700_000_000)
        #expect(w.statePath(origin: log.signer.name).hasSuffix("/" + Checkpoint.originHash("log.example/prod")))
    }

    @Test func growsWithConsistencyProofs() throws {
        var log = try TestLog(entries: 3)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 3))
        for _ in 0..<20 {
            let old = UInt64(log.leaves.count)
            log.append(Int.random(in: 1...40))
            _ = try w.addCheckpoint(try log.body(old: old, size: UInt64(log.leaves.count)))
        }
        // The same checkpoint again: cosigned again (nothing to prove).
        let n = UInt64(log.leaves.count)
        #expect(status { try w.addCheckpoint(try! log.body(old: n, size: n)) } == 200)
    }

    @Test func unknownOriginIs404() throws {
        let log = try TestLog(entries: 2)
        let other = try TestLog(origin: "log.example/other", entries: 2)
        let w = try witness(log)
        #expect(status { try w.addCheckpoint(try! other.body(old: 0, size: 2)) } == 404)
    }

    @Test func untrustedOrBadSignatureIs403() throws {
        let log = try TestLog(entries: 4)
        let w = try witness(log)
        // Same origin, another key: no signature from the trusted key.
        let impostor = try TestLog(origin: log.signer.name, entries: 4)
        #expect(status { try w.addCheckpoint(try! impostor.body(old: 0, size: 4)) } == 403)
        // The trusted key's name and ID, a signature that does not verify.
        var bytes = try log.body(old: 0, size: 4)
        let sigStart = bytes.count - 10
        bytes[sigStart] = bytes[sigStart] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        #expect(status { try w.addCheckpoint(bytes) } == 403)
        #expect(!FileManager.default.fileExists(atPath: w.statePath(origin: log.signer.name)))
    }

    /// Mutated add-checkpoint bodies (bit flips, bytes set, cut, inserted, deleted): each is
    /// answered with a client error (400, 403, 404, 409 or 422), never a server error, or is
    /// a valid request whose cosignature verifies over the log's own checkpoint.
    @Test func fuzzMutations() throws {
        var log = try TestLog(entries: 2)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 2))
        log.append(3)
        let original = try log.body(old: 2, size: 5)
        let real = try log.note(5)
        var rng = SeededRandom(state: 0x3177_4E55)
        let interesting: [UInt8] = [0x00, 0x09, 0x0A, 0x20, 0x2B, 0x2F, 0x3D, 0x30, 0x39, 0x41, 0x7F, 0x80, 0xC0, 0xE2, 0xFF]
        var statuses: [Int: Int] = [:]
        for _ in 0..<1_500 {
            var b = original
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                guard !b.isEmpty else { break }
                let i = Int(rng.next() % UInt64(b.count))
                switch rng.next() % 5 {
                case 0: b[i] ^= UInt8(1 << (rng.next() % 8))
                case 1: b[i] = interesting[Int(rng.next() % UInt64(interesting.count))]
                case 2: b.removeSubrange(i...)
                case 3: b.insert(interesting[Int(rng.next() % UInt64(interesting.count))], at: i)
                default: b.remove(at: i)
                }
            }
            if b == original { continue }
            do {
                let lines = try w.addCheckpoint(b)
                statuses[200, default: 0] += 1
                #expect(try signer.verifier.verify(real + lines) == 1_700_000_000, "cosigned something other than the log's checkpoint")
            } catch let e as WitnessError {
                statuses[e.status, default: 0] += 1
                #expect([400, 403, 404, 409, 422].contains(e.status), "\(e.status): \(e.message)")
                #expect(!e.message.isEmpty)
            } catch {
                Issue.record("not a WitnessError: \(error)")
            }
        }
        #expect(statuses.values.reduce(0, +) > 1_400)
        #expect(statuses[400, default: 0] > 100 && statuses[403, default: 0] > 0, "\(statuses)")
        // The state only moved forward: the real request now finds size 5 cosigned (or cosigns it).
        #expect(status { try w.addCheckpoint(original) } != 500)
    }

    @Test func malformedRequestsAre400() throws {
        let log = try TestLog(entries: 4)
        let w = try witness(log)
        let note = try log.note(4)
        let bad: [String] = [
            "",
            "old 0\n",                                  // no empty line, no checkpoint
            "old 0\n\n",                                // no checkpoint
            "old 00\n\n" + note,                        // leading zero
            "old -1\n\n" + note,
            "old 1\nnot base64!\n\n" + note,            // bad proof line
            "new 0\n\n" + note,
            "old 0\n\n" + "log.example/prod\n4\n\n— x AAAA\n",   // not a checkpoint
            "old 5\n\n" + note,                         // old size larger than the checkpoint
        ]
        for b in bad { #expect(status { try w.addCheckpoint(Array(b.utf8)) } == 400, "\(b.prefix(30))") }
        let tooMany = "old 1\n" + String(repeating: Merkle.emptyRoot.base64 + "\n", count: 64) + "\n" + note
        #expect(status { try w.addCheckpoint(Array(tooMany.utf8)) } == 400)
        #expect(status { try w.addCheckpoint([UInt8](repeating: 0x41, count: Witness.maxBodyBytes + 1)) } == 413)
    }

    @Test func oldSizeNotTheCosignedOneIs409WithTheSize() throws {
        var log = try TestLog(entries: 5)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 5))
        log.append(3)
        do {
            _ = try w.addCheckpoint(try log.body(old: 0, size: 8))
            Issue.record("expected 409")
        } catch let e as WitnessError {
            #expect(e.status == 409)
            #expect(e.cosignedSize == 5)
        }
        do {
            _ = try w.addCheckpoint(try log.body(old: 6, size: 8))
            Issue.record("expected 409")
        } catch let e as WitnessError {
            #expect(e.cosignedSize == 5)
        }
        // From the size it returned, the request goes through.
        #expect(status { try w.addCheckpoint(try! log.body(old: 5, size: 8)) } == 200)
    }

    @Test func badProofsAre422() throws {
        var log = try TestLog(entries: 5)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 5))
        log.append(7)
        var proof = log.proof(5, 12)
        proof[0] = Merkle.emptyRoot
        #expect(status { try w.addCheckpoint(try! log.body(old: 5, size: 12, proof: proof)) } == 422)
        #expect(status { try w.addCheckpoint(try! log.body(old: 5, size: 12, proof: Array(log.proof(5, 12).dropLast()))) } == 422)
        // Old size 0 takes no proof.
        let fresh = try TestLog(origin: "log.example/fresh", entries: 3)
        let w2 = try Witness(signer: signer, logs: [WitnessedLog(origin: fresh.signer.name, verifier: fresh.signer.verifier)],
                             stateDirectory: dir.path + "/state2")
        #expect(status { try w2.addCheckpoint(try! fresh.body(old: 0, size: 3, proof: [Merkle.emptyRoot])) } == 422)
        // Size 0 with a root that is not the empty tree's.
        let zero = Array(("old 0\n\n" + (try fresh.signer.sign(Checkpoint(origin: fresh.signer.name, size: 0, rootHash: fresh.root(3)).text))).utf8)
        #expect(status { try w2.addCheckpoint(zero) } == 422)
        let emptyOK = Array(("old 0\n\n" + (try fresh.signer.sign(Checkpoint(origin: fresh.signer.name, size: 0, rootHash: Merkle.emptyRoot).text))).utf8)
        #expect(status { try w2.addCheckpoint(emptyOK) } == 200)
    }

    @Test func rolledBackLogIsRefused() throws {
        var log = try TestLog(entries: 5)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 5))
        log.append(5)
        _ = try w.addCheckpoint(try log.body(old: 5, size: 10))
        // The log now claims size 5 again: with its real old size, or the witness's.
        #expect(status { try w.addCheckpoint(try! log.body(old: 5, size: 5)) } == 409)
        #expect(status { try w.addCheckpoint(try! log.body(old: 10, size: 5, proof: [])) } == 400)
        #expect(status { try w.addCheckpoint(try! log.body(old: 0, size: 5)) } == 409)
        // The witness still holds size 10.
        #expect(try Checkpoint.parse(text: SignedNote.open(try #require(try w.cosignedCheckpoint(origin: log.signer.name)),
                                                            verifiers: [log.signer.verifier]).text).size == 10)
    }

    @Test func forkAtTheSameSizeIsRefused() throws {
        let log = try TestLog(entries: 8)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 8))
        // Same key, same size, other entries: another root.
        let fork = try TestLog(signer: log.signer, entries: 8, tag: "b")
        #expect(fork.root(8) != log.root(8))
        #expect(status { try w.addCheckpoint(try! fork.body(old: 8, size: 8)) } == 422)
    }

    @Test func largerTreeThatDoesNotExtendTheCosignedOneIsRefused() throws {
        let log = try TestLog(entries: 8)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 8))
        // A tree of 13 whose first 8 leaves differ, with its own (internally valid) proof.
        var fork = try TestLog(signer: log.signer, entries: 8, tag: "b")
        fork.append(5, tag: "c")
        #expect(status { try w.addCheckpoint(try! fork.body(old: 8, size: 13)) } == 422)
        // Nor with a proof borrowed from the honest log grown to 13.
        var honest = log
        honest.append(5, tag: "c")
        #expect(status { try w.addCheckpoint(try! fork.body(old: 8, size: 13, proof: honest.proof(8, 13))) } == 422)
        // The honest extension is still accepted.
        #expect(status { try w.addCheckpoint(try! honest.body(old: 8, size: 13)) } == 200)
    }

    @Test func stateSurvivesRestart() throws {
        var log = try TestLog(entries: 6)
        do {
            let w = try witness(log)
            _ = try w.addCheckpoint(try log.body(old: 0, size: 6))
        }
        let again = try witness(log)
        do {
            _ = try again.addCheckpoint(try log.body(old: 0, size: 6))
            Issue.record("expected 409")
        } catch let e as WitnessError {
            #expect(e.status == 409 && e.cosignedSize == 6)
        }
        let fork = try TestLog(signer: log.signer, entries: 6, tag: "b")
        #expect(status { try again.addCheckpoint(try! fork.body(old: 6, size: 6)) } == 422)
        log.append(2)
        #expect(status { try again.addCheckpoint(try! log.body(old: 6, size: 8)) } == 200)
    }

    @Test func damagedStateStopsCosigningInsteadOfStartingOver() throws {
        let log = try TestLog(entries: 6)
        let w = try witness(log)
        _ = try w.addCheckpoint(try log.body(old: 0, size: 6))
        try Data("garbage\n".utf8).write(to: URL(fileURLWithPath: w.statePath(origin: log.signer.name)))
        let restarted = try witness(log)
        #expect(status { try restarted.addCheckpoint(try! log.body(old: 0, size: 6)) } == 500)
    }

    @Test func httpStatusesAndConflictBody() async throws {
        var log = try TestLog(entries: 4)
        let w = try witness(log)
        let first = try log.body(old: 0, size: 4)
        log.append(1)
        let stale = try log.body(old: 0, size: 5)
        let hash = Checkpoint.originHash(log.signer.name)
        let app = Application(router: buildWitnessRouter(witness: w))
        try await app.test(.router) { client in
            try await client.execute(uri: "/add-checkpoint", method: .post, body: ByteBuffer(bytes: first)) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).hasPrefix("— witness.example/w1 "))
            }
            try await client.execute(uri: "/add-checkpoint", method: .post, body: ByteBuffer(bytes: stale)) { r in
                #expect(r.status == .conflict)
                #expect(r.headers[.contentType] == "text/x.tlog.size")
                #expect(String(buffer: r.body) == "4\n")
            }
            try await client.execute(uri: "/add-checkpoint", method: .post, body: ByteBuffer(string: "old x\n")) { r in
                #expect(r.status == .badRequest)
            }
            try await client.execute(uri: "/\(hash)/checkpoint", method: .get) { r in
                #expect(r.status == .ok)
                #expect(String(buffer: r.body).contains("\n4\n"))
            }
            try await client.execute(uri: "/\(Checkpoint.originHash("nope"))/checkpoint", method: .get) { r in
                #expect(r.status == .notFound)
            }
        }
    }

    @Test func configParses() throws {
        let log = try TestLog(entries: 1)
        let c = try WitnessConfig.parse(yaml: """
            listen: 127.0.0.1:7390
            state: st
            key: k/witness.key
            logs:
              - origin: \(log.signer.name)
                vkey: \(log.signer.vkey)
            """, baseDirectory: "/etc/w")
        #expect(c.port == 7390 && c.state == "/etc/w/st" && c.key == "/etc/w/k/witness.key")
        #expect(c.logs == [WitnessedLog(origin: log.signer.name, verifier: log.signer.verifier)])
        #expect(throws: ConfigProblems.self) { try WitnessConfig.parse(yaml: "listen: nowhere\n", baseDirectory: "/") }
        #expect(throws: ConfigProblems.self) {
            try WitnessConfig.parse(yaml: "logs:\n  - origin: a\n    vkey: not-a-key\n", baseDirectory: "/")
        }
    }

    @Test func serveConfigWitnesses() throws {
        let v = signer.vkey
        let c = try ServeConfig.parse(yaml: "witnesses:\n  - url: http://127.0.0.1:7380/\n    vkey: \(v)\n", baseDirectory: "/")
        #expect(c.witnesses == [ServeConfig.WitnessTarget(url: "http://127.0.0.1:7380", verifier: signer.verifier)])
        #expect(throws: ConfigProblems.self) { try ServeConfig.parse(yaml: "witnesses:\n  - url: ftp://x\n    vkey: \(v)\n", baseDirectory: "/") }
        #expect(throws: ConfigProblems.self) { try ServeConfig.parse(yaml: "witnesses:\n  - url: http://x\n", baseDirectory: "/") }
        // A URL with credentials is refused, and the message does not repeat them.
        do {
            _ = try ServeConfig.parse(yaml: "witnesses:\n  - url: http://w:hunter2@127.0.0.1:7380\n    vkey: \(v)\n", baseDirectory: "/")
            Issue.record("a witness URL with a password was accepted")
        } catch {
            #expect("\(error)".contains("a user or password in the URL is not allowed"), "\(error)")
            #expect(!"\(error)".contains("hunter2"), "\(error)")
        }
    }
}

/// `custos serve`'s side: the submitter against a live witness over HTTP.
@Suite("Witness submitter")
struct WitnessSubmitterTests {
    @Test func submitsCollectsAndFollows409() async throws {
        let dir = TempDir()
        let signer = try CosignatureSigner.generate(name: "witness.example/sub")
        // Used from the test client's closure only, one step at a time.
        nonisolated(unsafe) let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        let logVerifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)
        let w = try Witness(signer: signer, logs: [WitnessedLog(origin: "t.example/log", verifier: logVerifier)],
                            stateDirectory: dir.path + "/wstate")
        let app = Application(router: buildWitnessRouter(witness: w), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let port = try #require(client.port)
            let target = ServeConfig.WitnessTarget(url: "http://127.0.0.1:\(port)", verifier: signer.verifier)
            let sub = WitnessSubmitter(witnesses: [target], layout: store.layout, verifier: logVerifier, logger: Logger(label: "test"))
            func checkpoint() throws -> SignedCheckpoint { try TrailReader(layout: store.layout, verifier: logVerifier).checkpoint }

            _ = try store.append((0..<300).map(ev))
            var p = await sub.round(try checkpoint(), [WitnessSubmitter.Progress()])
            #expect(p[0].cosignedSize == 300 && p[0].failures == 0)
            _ = try store.append((300..<777).map(ev))
            p = await sub.round(try checkpoint(), p)
            #expect(p[0].cosignedSize == 777 && p[0].knownSize == 777)

            // The served checkpoint carries the cosignature.
            let note = CosignatureStore.attach(note: Array(try checkpoint().note.utf8), data: store.layout.dataDirectory)
            #expect(try signer.verifier.verify(note) > 0)
            _ = try SignedCheckpoint.open(note, verifier: logVerifier)
            // A restarted submitter remembers what the witness cosigned.
            #expect(sub.lastCosignedSize(by: signer.verifier) == 777)

            // A submitter that believes the witness is at 0: 409, then from 777 with a proof.
            _ = try store.append((777..<1000).map(ev))
            let fresh = await sub.round(try checkpoint(), [WitnessSubmitter.Progress()])
            #expect(fresh[0].cosignedSize == 1000 && fresh[0].failures == 0)
        }
    }

    @Test func aRolledBackTrailGetsNoCosignature() async throws {
        let dir = TempDir()
        let signer = try CosignatureSigner.generate(name: "witness.example/rb")
        nonisolated(unsafe) let store = try DataStore(directory: dir.path + "/a", origin: "t.example/log")
        _ = try store.append((0..<40).map(ev))
        let logVerifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)
        // The same key over a trail with fewer entries (what a restore from an old backup or a
        // rewrite by the key holder looks like to the witness).
        try FileManager.default.createDirectory(atPath: dir.path + "/b", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir.path + "/a/keys", toPath: dir.path + "/b/keys")
        nonisolated(unsafe) let older = try DataStore(directory: dir.path + "/b")
        _ = try older.append((100..<110).map(ev))
        let w = try Witness(signer: signer, logs: [WitnessedLog(origin: "t.example/log", verifier: logVerifier)],
                            stateDirectory: dir.path + "/wstate")
        let app = Application(router: buildWitnessRouter(witness: w), configuration: .init(address: .hostname("127.0.0.1", port: 0)))
        try await app.test(.live) { client in
            let target = ServeConfig.WitnessTarget(url: "http://127.0.0.1:\(try #require(client.port))", verifier: signer.verifier)
            let a = WitnessSubmitter(witnesses: [target], layout: store.layout, verifier: logVerifier, logger: Logger(label: "a"))
            var p = await a.round(try TrailReader(layout: store.layout, verifier: logVerifier).checkpoint, [WitnessSubmitter.Progress()])
            #expect(p[0].cosignedSize == 40)
            let b = WitnessSubmitter(witnesses: [target], layout: older.layout, verifier: logVerifier, logger: Logger(label: "b"))
            let cp = try TrailReader(layout: older.layout, verifier: logVerifier).checkpoint
            #expect(cp.checkpoint.size == 10)
            // From 0: 409 (the witness is at 40), then 40 > 10: refused before sending anything.
            p = await b.round(cp, [WitnessSubmitter.Progress()])
            #expect(p[0].cosignedSize == nil && p[0].failures == 1)
            // Starting from the witness's size fails the same way (the witness would answer 400).
            p = await b.round(cp, [WitnessSubmitter.Progress(knownSize: 40)])
            #expect(p[0].cosignedSize == nil && p[0].failures == 1)
            #expect(CosignatureStore.lines(data: older.layout.dataDirectory, size: 10).isEmpty)
        }
    }

    @Test func unreachableWitnessIsRetriedLater() async throws {
        let dir = TempDir()
        let signer = try CosignatureSigner.generate(name: "witness.example/gone")
        let store = try DataStore(directory: dir.path + "/data", origin: "t.example/log")
        let logVerifier = try NoteVerifier(vkey: store.trail.checkpointVerifierKey)
        _ = try store.append((0..<3).map(ev))
        let target = ServeConfig.WitnessTarget(url: "http://127.0.0.1:1", verifier: signer.verifier)
        let sub = WitnessSubmitter(witnesses: [target], layout: store.layout, verifier: logVerifier, logger: Logger(label: "test"),
                                   timeout: .seconds(2))
        let cp = try TrailReader(layout: store.layout, verifier: logVerifier).checkpoint
        let start = ContinuousClock.now
        let p = await sub.round(cp, [WitnessSubmitter.Progress()])
        // The next try waits 2 s after the failure (compared with the start, not with now: a
        // loaded machine can take longer than that to get here).
        #expect(p[0].cosignedSize == nil && p[0].failures == 1 && p[0].notBefore >= start + .seconds(2))
    }
}
