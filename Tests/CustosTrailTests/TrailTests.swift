import CustosCore
@testable import CustosTrail
import Foundation
import Testing

/// A fresh temporary data directory per test.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "custos-trail-" + UUID().uuidString
        try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
}

func sampleEvent(_ i: Int) -> AccessEvent {
    AccessEvent(
        id: EventID.make(instance: "t", key: "req-\(i)"),
        time: EventTime(seconds: 1_700_000_000 + Int64(i), nanos: Int32(i % 1_000_000_000), digits: 9),
        source: .init(kind: "openbao", instance: "t"), action: i % 3 == 0 ? .read : .list,
        outcome: i % 7 == 0 ? .denied : .success, reason: i % 7 == 0 ? "permission denied" : nil,
        secret: .init(store: "secret/", path: "secret/data/app\(i % 10)/db", environment: i % 2 == 0 ? "prod" : "dev"),
        identity: .init(id: "entity-\(i % 5)", name: "svc-\(i % 5)", kind: .service, method: "approle", policies: ["default"]),
        origin: .init(ip: "10.0.0.\(i % 250)", port: 40000 + i % 1000), requestID: "req-\(i)")
}

func entries(_ range: Range<Int>) -> [[UInt8]] { range.map { sampleEvent($0).canonicalJSON() } }

func referenceRoot(_ all: [[UInt8]]) -> MerkleHash {
    var c = CompactRange()
    for e in all { c.append(Merkle.leafHash(e)) }
    return c.root()
}

struct Fixture {
    let dir = TempDir()
    var layout: TrailLayout { TrailLayout(dataDirectory: dir.path) }
    let signer: NoteSigner
    init() throws {
        signer = try TrailKeys.generate(layout: TrailLayout(dataDirectory: dir.path), origin: "test.example/trail")
    }
    func writer() throws -> TrailWriter { try TrailWriter.open(layout: layout, signer: signer) }
    func verify() throws -> TrailVerifier.Report {
        TrailVerifier(layout: layout, verifier: try NoteVerifier(vkey: signer.vkey)).verify()
    }
    func path(_ rel: String) -> String { dir.path + "/" + rel }
}

@Suite struct TrailWriterTests {
    /// `FileIO.removeTree` (superseded partial tiles) removes a file, a directory with files
    /// and one nested deeper, and is quiet about a path that is not there.
    @Test func removeTreeRemovesFilesAndDirectories() throws {
        let dir = TempDir()
        let fm = FileManager.default
        let tree = dir.path + "/000.p"
        try fm.createDirectory(atPath: tree + "/deeper", withIntermediateDirectories: true)
        for name in ["1", "17", "255", "deeper/2"] { #expect(fm.createFile(atPath: tree + "/" + name, contents: Data([1, 2]))) }
        #expect(fm.createFile(atPath: dir.path + "/alone", contents: Data([3])))
        #expect(fm.createFile(atPath: dir.path + "/000.p.kept", contents: Data([4])))
        FileIO.removeTree(tree)
        FileIO.removeTree(dir.path + "/alone")
        FileIO.removeTree(dir.path + "/missing")
        #expect(!fm.fileExists(atPath: tree) && !fm.fileExists(atPath: dir.path + "/alone"))
        #expect(try fm.contentsOfDirectory(atPath: dir.path) == ["000.p.kept"])
    }

    @Test func emptyTrailVerifies() throws {
        let f = try Fixture()
        let w = try f.writer()
        #expect(w.size == 0)
        let r = try f.verify()
        #expect(r.isValid, "\(r.problems)")
        #expect(r.root == Merkle.emptyRoot)
    }

    @Test(arguments: [1, 255, 256, 257, 511, 513, 1000])
    func appendsMatchReferenceTree(total: Int) throws {
        let f = try Fixture()
        let w = try f.writer()
        let all = entries(0..<total)
        var i = 0
        var step = 1
        while i < all.count {
            let n = min(step, all.count - i)
            let r = try w.append(Array(all[i..<(i + n)]))
            #expect(r == UInt64(i)..<UInt64(i + n))
            i += n
            step = step * 3 + 1
        }
        #expect(w.checkpoint.checkpoint.rootHash == referenceRoot(all))
        let rep = try f.verify()
        #expect(rep.isValid, "\(rep.problems)")
        #expect(rep.size == UInt64(total))
        // Tiles on disk are byte for byte the ones the spec defines.
        let tiles = TileMath.buildTiles(leafHashes: all.map { Merkle.leafHash($0) })
        for ref in TileMath.tiles(forTreeSize: UInt64(total)) {
            let bytes = try #require(FileManager.default.contents(atPath: f.layout.tilePath(level: ref.level, index: ref.index, width: ref.width)))
            #expect([UInt8](bytes) == tiles[ref]!.flatMap(\.bytes))
        }
    }

    @Test func largeTreeWithThreeTileLevels() throws {
        // 256*256 + 300 entries: full level-1 tile, partial level-2 tile.
        let f = try Fixture()
        let w = try f.writer()
        let total = 65_536 + 300
        let all = entries(0..<total)
        var i = 0
        while i < total { let n = min(20_000, total - i); try w.append(Array(all[i..<(i + n)])); i += n }
        #expect(w.checkpoint.checkpoint.rootHash == referenceRoot(all))
        #expect(FileManager.default.fileExists(atPath: f.path("trail/tile/1/000")))
        #expect(FileManager.default.fileExists(atPath: f.path("trail/tile/2/000.p/1")))
        #expect(!FileManager.default.fileExists(atPath: f.path("trail/tile/0/000.p")), "superseded partial tiles are removed")
        let rep = try f.verify()
        #expect(rep.isValid, "\(rep.problems.prefix(3))")
        // Inclusion proofs from the tiles verify against the checkpoint.
        let reader = try TrailReader(layout: f.layout, verifier: NoteVerifier(vkey: f.signer.vkey))
        for idx: UInt64 in [0, 255, 256, 65_535, 65_536, UInt64(total - 1)] {
            let p = try reader.proof(index: idx)
            #expect(p.extra == all[Int(idx)])
            try Merkle.verifyInclusion(index: idx, size: UInt64(total), leafHash: Merkle.leafHash(all[Int(idx)]),
                                       proof: p.proof, root: w.checkpoint.checkpoint.rootHash)
            #expect(try TlogProof.parse(p.formatted()) == p)
        }
    }

    /// Pipelined commits: a group prepared on the tip while the one before it is not yet
    /// complete; after each `complete` the trail verifies at that size (the next group's files
    /// already written beside it), and the last checkpoint has the tree of all entries.
    @Test func preparedCommitsCompleteInOrderAndVerifyAtEachStep() throws {
        let f = try Fixture()
        let w = try f.writer()
        let all = entries(0..<1_500)
        func prepare(_ r: Range<Int>) throws -> TrailWriter.Prepared { try w.prepare(Array(all[r])) }
        try w.append(Array(all[0..<100]))
        let a = try prepare(100..<300)       // completes the first bundle and level-0 tile
        let b = try prepare(300..<900)       // more full tiles, a new partial bundle
        #expect(a.range == 100..<300 && b.range == 300..<900)
        #expect(w.size == 100 && w.tipSize == 900)
        var rep = try f.verify()
        #expect(rep.isValid && rep.size == 100, "\(rep.problems.prefix(3))")
        try w.complete([a])
        #expect(w.size == 300)
        rep = try f.verify()
        #expect(rep.isValid && rep.size == 300, "\(rep.problems.prefix(3))")
        #expect(w.checkpoint.checkpoint.rootHash == referenceRoot(Array(all[0..<300])))
        try w.complete([b])
        #expect(w.size == 900 && w.checkpoint.checkpoint.rootHash == referenceRoot(Array(all[0..<900])))
        // Two prepared groups completed together: one sync, one checkpoint.
        let c = try prepare(900..<1_000), d = try prepare(1_000..<1_400)
        try w.complete([c, d])
        #expect(w.size == 1_400 && w.checkpoint.checkpoint.rootHash == referenceRoot(Array(all[0..<1_400])))
        rep = try f.verify()
        #expect(rep.isValid && rep.size == 1_400, "\(rep.problems.prefix(3))")
        #expect(!FileManager.default.fileExists(atPath: f.path("trail/tile/0/000.p")), "superseded partial tiles are removed")
    }

    /// A crash after a group was prepared but before it completed: the trail reopens at the
    /// last checkpoint, verifies, and the next append writes over the orphaned files.
    @Test func aPreparedCommitThatNeverCompletesIsHarmless() throws {
        let f = try Fixture()
        let all = entries(0..<1_000)
        do {
            let w = try f.writer()
            try w.append(Array(all[0..<200]))
            let p = try w.prepare(Array(all[200..<700]))
            #expect(p.range == 200..<700)
            #expect(FileManager.default.fileExists(atPath: f.path("trail/tile/entries/001")), "the prepared group's files are written")
            w.abandon()
            #expect(throws: TrailError.self) { try w.complete([p]) }
        }
        var rep = try f.verify()
        #expect(rep.isValid && rep.size == 200, "\(rep.problems.prefix(3))")
        let w = try f.writer()
        #expect(w.size == 200 && w.tipSize == 200)
        try w.append(Array(all[200..<1_000]))
        rep = try f.verify()
        #expect(rep.isValid && rep.size == 1_000, "\(rep.problems.prefix(3))")
        #expect(w.checkpoint.checkpoint.rootHash == referenceRoot(all))
    }

    @Test func reopenContinuesTheSameTree() throws {
        let f = try Fixture()
        let all = entries(0..<700)
        try f.writer().append(Array(all[0..<300]))
        try f.writer().append(Array(all[300..<301]))
        let w = try f.writer()
        #expect(w.size == 301)
        try w.append(Array(all[301..<700]))
        #expect(w.checkpoint.checkpoint.rootHash == referenceRoot(all))
        let rep = try f.verify()
        #expect(rep.isValid, "\(rep.problems)")
        #expect(rep.checkpointsChecked == 4)
    }

    @Test func refusesOversizedAndEmptyEntries() throws {
        let f = try Fixture()
        let w = try f.writer()
        #expect(throws: TrailError.self) { try w.append([[UInt8](repeating: 0x41, count: 65_536)]) }
        #expect(throws: TrailError.self) { try w.append([[]]) }
        // The writer is still usable: nothing was written.
        try w.append(entries(0..<3))
        #expect(try f.verify().isValid)
    }

    @Test func refusesAnotherKeysTrail() throws {
        let f = try Fixture()
        try f.writer().append(entries(0..<3))
        let other = try NoteSigner.generate(name: "test.example/trail")
        #expect(throws: TrailError.self) { try TrailWriter.open(layout: f.layout, signer: other) }
    }

    @Test func deletedTrailIsNotSilentlyRestarted() throws {
        let f = try Fixture()
        try f.writer().append(entries(0..<300))
        try FileManager.default.removeItem(atPath: f.layout.trailDirectory)
        #expect(throws: TrailError.self) { try f.writer() }
    }

    @Test func lostKeyIsNotSilentlyReplaced() throws {
        let f = try Fixture()
        try f.writer().append(entries(0..<3))
        try FileManager.default.removeItem(atPath: f.layout.signingKeyPath)
        #expect(throws: TrailError.self) { try TrailKeys.loadOrGenerate(layout: f.layout, origin: "test.example/trail") }
        #expect(FileManager.default.contents(atPath: f.layout.verifierKeyPath).map { String(decoding: $0, as: UTF8.self) } == f.signer.vkey + "\n")
    }

    @Test func alteredPartialBundleIsRefusedOnOpen() throws {
        let f = try Fixture()
        try f.writer().append(entries(0..<300))
        let path = f.path("trail/tile/entries/001.p/44")
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        bytes[10] ^= 0x01
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        #expect(throws: TrailError.self) { try f.writer() }
    }

    @Test func upperPartialTilesAreNotRewrittenWhenUnchanged() throws {
        // 300 entries: level-1 partial tile of width 1. Appending 10 more leaves it as is; a
        // commit must not truncate and rewrite the file the current checkpoint depends on.
        let f = try Fixture()
        let w = try f.writer()
        try w.append(entries(0..<300))
        let path = f.path("trail/tile/1/000.p/1")
        let before = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        Thread.sleep(forTimeInterval: 0.02)
        try w.append(entries(300..<310))
        let after = try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date
        #expect(before == after)
        #expect(try f.verify().isValid)
    }

    /// A commit syncs every file system it wrote to: `checkpoints/` mounted apart from
    /// `trail/` gets its own syncfs (the checkpoint's history copy is written before the sync
    /// and only renamed after it). Paths on one device count once; /proc is another device.
    @Test func aCommitSyncsEachFileSystemItWroteTo() throws {
        let f = try Fixture()
        try f.writer().append(entries(0..<3))
        let trail = f.layout.trailDirectory, history = f.layout.historyDirectory
        #expect(try FileIO.fileSystemRoots([trail, history]) == [trail])
        #expect(try FileIO.fileSystemRoots([trail, "/proc", history, "/proc/self"]) == [trail, "/proc"])
        #expect(try FileIO.fileSystemRoots(["/proc", trail]) == ["/proc", trail])
        #expect(throws: TrailError.self) { try FileIO.fileSystemRoots([trail, f.path("nowhere")]) }
        do { _ = try FileIO.fileSystemRoots([f.path("nowhere")]) } catch {
            #expect("\(error)".contains(f.path("nowhere")), "\(error)")
        }
    }

    @Test func keyFileIsPrivateAndNeverReplaced() throws {
        let f = try Fixture()
        let attrs = try FileManager.default.attributesOfItem(atPath: f.layout.signingKeyPath)
        #expect((attrs[.posixPermissions] as? Int) == 0o600)
        #expect(throws: TrailError.self) { try TrailKeys.generate(layout: f.layout, origin: "x.example/y") }
        #expect(try TrailKeys.load(layout: f.layout).vkey == f.signer.vkey)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: f.layout.signingKeyPath)
        #expect(throws: TrailError.self) { try TrailKeys.load(layout: f.layout) }
    }
}

@Suite struct CrashRecoveryTests {
    struct Crash: Error {}

    /// A crash at any point of a commit leaves a trail that verifies as a prefix, and the
    /// next writer continues from it.
    @Test(arguments: TrailFaultPoint.allCases)
    func crashLeavesVerifiablePrefix(point: TrailFaultPoint) throws {
        let f = try Fixture()
        let all = entries(0..<900)
        try f.writer().append(Array(all[0..<250]))
        let w = try f.writer()
        w.faultHook = { if $0 == point { throw Crash() } }
        #expect(throws: Crash.self) { try w.append(Array(all[250..<600])) }
        // The failed writer refuses to go on from a state that may be stale.
        w.faultHook = nil
        #expect(throws: TrailError.self) { try w.append(Array(all[600..<601])) }

        let rep = try f.verify()
        #expect(rep.isValid, "after a crash at \(point): \(rep.problems)")
        #expect(rep.size == 250 || rep.size == 600)
        let w2 = try f.writer()
        #expect(w2.size == rep.size)
        try w2.append(Array(all[Int(w2.size)..<900]))
        #expect(w2.checkpoint.checkpoint.rootHash == referenceRoot(all))
        let rep2 = try f.verify()
        #expect(rep2.isValid, "\(rep2.problems)")
    }
}

@Suite struct TamperTests {
    /// A trail of 600 entries written in three commits (kept checkpoints 0, 100, 300, 600).
    func built() throws -> Fixture {
        let f = try Fixture()
        let w = try f.writer()
        let all = entries(0..<600)
        try w.append(Array(all[0..<100]))
        try w.append(Array(all[100..<300]))
        try w.append(Array(all[300..<600]))
        #expect(try f.verify().isValid)
        return f
    }

    func mutate(_ path: String, _ body: (inout [UInt8]) -> Void) throws {
        var bytes = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        body(&bytes)
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    func expectInvalid(_ f: Fixture, mentioning words: [String], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let rep = try f.verify()
        #expect(!rep.isValid, "tampering went unnoticed", sourceLocation: sourceLocation)
        let text = rep.problems.map(\.description).joined(separator: "\n")
        for w in words {
            #expect(text.contains(w), "expected '\(w)' in: \(text)", sourceLocation: sourceLocation)
        }
    }

    @Test func flippedByteInEveryBundlePositionIsCaught() throws {
        let f = try built()
        let path = f.path("trail/tile/entries/001")
        let original = [UInt8](try #require(FileManager.default.contents(atPath: path)))
        // A sample of positions across the bundle: length prefixes, keys, values.
        for pos in stride(from: 0, to: original.count, by: max(1, original.count / 97)) {
            try mutate(path) { $0[pos] ^= 0x01 }
            let rep = try f.verify()
            #expect(!rep.isValid, "flip at byte \(pos) went unnoticed")
            try Data(original).write(to: URL(fileURLWithPath: path))
        }
        #expect(try f.verify().isValid)
    }

    @Test func flippedByteInTiles() throws {
        let f = try built()
        try mutate(f.path("trail/tile/0/001")) { $0[100] ^= 0x80 }
        try expectInvalid(f, mentioning: ["trail/tile/0/001", "hash 3"])
        let g = try built()
        try mutate(g.path("trail/tile/1/000.p/2")) { $0[40] ^= 0x01 }
        try expectInvalid(g, mentioning: ["trail/tile/1/000.p/2"])
    }

    @Test func truncatedOrDeletedBundle() throws {
        let f = try built()
        try mutate(f.path("trail/tile/entries/000")) { $0.removeLast(10) }
        try expectInvalid(f, mentioning: ["trail/tile/entries/000", "truncated"])
        let g = try built()
        try FileManager.default.removeItem(atPath: g.path("trail/tile/entries/002.p/88"))
        try expectInvalid(g, mentioning: ["trail/tile/entries/002.p/88", "missing"])
    }

    @Test func trailingBytesInBundle() throws {
        let f = try built()
        try mutate(f.path("trail/tile/entries/002.p/88")) { $0.append(contentsOf: [0, 1, 0x7B]) }
        try expectInvalid(f, mentioning: ["trailing bytes"])
    }

    @Test func reorderedEntries() throws {
        let f = try built()
        let path = f.path("trail/tile/entries/000")
        try mutate(path) { bytes in
            // Swap the first two length-prefixed entries.
            let l0 = Int(bytes[0]) << 8 | Int(bytes[1])
            let e0 = Array(bytes[0..<(2 + l0)])
            let l1 = Int(bytes[2 + l0]) << 8 | Int(bytes[3 + l0])
            let e1 = Array(bytes[(2 + l0)..<(4 + l0 + l1)])
            bytes.replaceSubrange(0..<(4 + l0 + l1), with: e1 + e0)
        }
        try expectInvalid(f, mentioning: ["trail/tile/0/000", "root hash"])
    }

    @Test func nonCanonicalEntryIsRejected() throws {
        let f = try built()
        try mutate(f.path("trail/tile/entries/000")) { bytes in
            // Turn `{"action"` into `{ "action` minus one byte elsewhere: same length, not canonical.
            let l0 = Int(bytes[0]) << 8 | Int(bytes[1])
            var e = Array(bytes[2..<(2 + l0)])
            e.insert(0x20, at: 1)
            e.removeLast()
            e[e.count - 1] = 0x7D
            bytes.replaceSubrange(2..<(2 + l0), with: e)
        }
        try expectInvalid(f, mentioning: ["entry 0", "canonical"])
    }

    @Test func olderCheckpointPutBack() throws {
        let f = try built()
        let old = try #require(FileManager.default.contents(atPath: f.path("checkpoints/00000000000000000300")))
        try old.write(to: URL(fileURLWithPath: f.layout.checkpointPath))
        try expectInvalid(f, mentioning: ["rolled back", "size 600"])
        #expect(throws: TrailError.self) { try f.writer() }
    }

    @Test func forgedCheckpointFromAnotherKey() throws {
        let f = try built()
        let forger = try NoteSigner.generate(name: "test.example/trail")
        let cp = try SignedCheckpoint.sign(Checkpoint(origin: "test.example/trail", size: 600, rootHash: Merkle.emptyRoot), signer: forger)
        try Data(cp.note.utf8).write(to: URL(fileURLWithPath: f.layout.checkpointPath))
        try expectInvalid(f, mentioning: ["trail/checkpoint", "signature"])
    }

    @Test func forkedHistoryIsCaught() throws {
        // Someone holding the key signs a different tree of size 100 after the fact.
        let f = try built()
        let fake = try SignedCheckpoint.sign(Checkpoint(origin: "test.example/trail", size: 100, rootHash: Merkle.emptyRoot), signer: f.signer)
        try Data(fake.note.utf8).write(to: URL(fileURLWithPath: f.path("checkpoints/00000000000000000100")))
        try expectInvalid(f, mentioning: ["fork", "size 100"])
    }

    @Test func rewrittenTrailWithConsistentTilesIsCaughtByHistory() throws {
        // An operator with the key rewrites entry 5 and recomputes every tile and the
        // checkpoint: the trail is self-consistent, but the kept checkpoints expose it.
        let f = try built()
        let all = entries(0..<600)
        var forged = all
        var e = sampleEvent(5); e.identity.name = "someone-else"
        forged[5] = e.canonicalJSON()
        let dir2 = TempDir()
        let layout2 = TrailLayout(dataDirectory: dir2.path)
        try FileManager.default.createDirectory(atPath: layout2.keysDirectory, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: f.layout.signingKeyPath, toPath: layout2.signingKeyPath)
        let w2 = try TrailWriter.open(layout: layout2, signer: f.signer)
        try w2.append(forged)
        try FileManager.default.removeItem(atPath: f.layout.trailDirectory)
        try FileManager.default.copyItem(atPath: layout2.trailDirectory, toPath: f.layout.trailDirectory)
        try expectInvalid(f, mentioning: ["fork"])
    }
}
