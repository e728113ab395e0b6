import CustosCore
import Foundation
import Testing

// MARK: - Helpers shared by the Merkle and tile tests


enum TestTree {
    static let maxSize = 70_000

    /// Leaf hashes of random entries, fixed by seed.
    static let leaves: [MerkleHash] = {
        var rng = SeededRNG(seed: 0xC057_05)
        return (0..<maxSize).map { _ in
            var v = rng.next()
            return withUnsafeBytes(of: &v) { Merkle.leafHash($0) }
        }
    }()

    /// pyramid[l][i] = hash of the perfect subtree over leaves [i << l, (i+1) << l),
    /// built straight from the definition. Complete nodes are the same in every prefix of the tree.
    static let pyramid: [[MerkleHash]] = {
        var levels = [leaves]
        while levels.last!.count >= 2 {
            let cur = levels.last!
            levels.append(stride(from: 0, to: cur.count - 1, by: 2).map { Merkle.nodeHash(cur[$0], cur[$0 + 1]) })
        }
        return levels
    }()

    /// Tiles of the whole 70,000-leaf tree; a partial tile of a smaller tree is a prefix of
    /// the corresponding tile here.
    static let bigTiles: [TileRef: [MerkleHash]] = TileMath.buildTiles(leafHashes: leaves)

    /// RFC 9162 MTH by direct recursion on the leaf hashes.
    static func naiveMTH(_ l: ArraySlice<MerkleHash>) -> MerkleHash {
        if l.isEmpty { return Merkle.emptyRoot }
        if l.count == 1 { return l.first! }
        var k = 1
        while k * 2 < l.count { k *= 2 }
        return Merkle.nodeHash(naiveMTH(l.prefix(k)), naiveMTH(l.dropFirst(k)))
    }

    struct OutsideTree: Error { var level: Int; var index: UInt64; var size: UInt64 }

    /// A node source over the pyramid that refuses anything but complete subtrees inside `size`.
    static func naiveNode(size: UInt64) -> Merkle.NodeSource {
        { level, index in
            guard level >= 0, level < pyramid.count, (index + 1) << UInt64(level) <= size else {
                throw OutsideTree(level: level, index: index, size: size)
            }
            return pyramid[level][Int(index)]
        }
    }

    struct MissingTile: Error { var ref: TileRef }

    /// A tile reader for a tree of `size`, serving tiles derived from `bigTiles`; it fails for
    /// any tile the tree of `size` does not have.
    static func tileReader(size: UInt64, tiles: [TileRef: [MerkleHash]]? = nil) -> TileNodeReader {
        let valid = Set(TileMath.tiles(forTreeSize: size))
        return TileNodeReader(treeSize: size) { ref in
            guard valid.contains(ref) else { throw MissingTile(ref: ref) }
            if let tiles {
                guard let t = tiles[ref] else { throw MissingTile(ref: ref) }
                return t
            }
            let full = TileRef(level: ref.level, index: ref.index)
            let source = bigTiles[full]
                ?? bigTiles.first { $0.key.level == ref.level && $0.key.index == ref.index }?.value
            guard let source, source.count >= ref.width else { throw MissingTile(ref: ref) }
            return Array(source.prefix(ref.width))
        }
    }

    /// Roots of the prefixes of the given sizes, via the incremental builder.
    static func roots(at sizes: Set<UInt64>) -> [UInt64: MerkleHash] {
        var out: [UInt64: MerkleHash] = [:]
        var range = CompactRange()
        if sizes.contains(0) { out[0] = range.root() }
        let maxNeeded = sizes.max() ?? 0
        for leaf in leaves.prefix(Int(maxNeeded)) {
            range.append(leaf)
            if sizes.contains(range.size) { out[range.size] = range.root() }
        }
        return out
    }
}

func flipped(_ h: MerkleHash, bit: Int) -> MerkleHash {
    var s = h.storage
    s[bit / 8] ^= UInt8(1) << UInt8(bit % 8)
    return MerkleHash(storage: s)
}

// MARK: - Fixtures (transparency-dev/merkle testdata)

struct InclusionProbe: Decodable {
    var leafIdx: UInt64
    var treeSize: UInt64
    var root: Data?
    var leafHash: Data?
    var proof: [Data]?
    var desc: String
    var wantErr: Bool
}

struct ConsistencyProbe: Decodable {
    var size1: UInt64
    var size2: UInt64
    var root1: Data?
    var root2: Data?
    var proof: [Data]?
    var desc: String
    var wantErr: Bool
}

/// Proof elements must be 32 bytes each; nil otherwise.
func strictHashes(_ d: [Data]?) -> [MerkleHash]? {
    var out: [MerkleHash] = []
    for x in d ?? [] {
        guard let h = MerkleHash(bytes: [UInt8](x)) else { return nil }
        out.append(h)
    }
    return out
}

/// The fixtures carry some roots that are not 32 bytes long ("WrongRoot", "don't care 1").
/// `MerkleHash` cannot hold those; map each to a distinct stand-in hash so that equality
/// between roots is preserved (a verifier only compares roots).
func fixtureHash(_ d: Data?) -> MerkleHash {
    let bytes = [UInt8](d ?? Data())
    if let h = MerkleHash(bytes: bytes) { return h }
    return Merkle.leafHash([0xEE, 0x11] + bytes)
}

@Suite struct MerkleFixtureTests {
    static func fixtureFiles() throws -> [URL] {
        let base = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        let root = base.appendingPathComponent("merkle/testdata")
        let e = try #require(FileManager.default.enumerator(at: root, includingPropertiesForKeys: nil))
        return e.compactMap { $0 as? URL }.filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
    }

    @Test func allFixtures() throws {
        let files = try Self.fixtureFiles()
        var inclusion = 0, consistency = 0, happy = 0, rejected = 0, undecodable = 0
        for url in files {
            let data = try Data(contentsOf: url)
            let name = url.pathComponents.suffix(3).joined(separator: "/")
            if url.path.contains("/inclusion/") {
                inclusion += 1
                let p = try JSONDecoder().decode(InclusionProbe.self, from: data)
                guard let leaf = MerkleHash(bytes: [UInt8](p.leafHash ?? Data())),
                      let proof = strictHashes(p.proof)
                else {
                    // A leaf hash or proof element that is not 32 bytes cannot even be passed in.
                    #expect(p.wantErr, "\(name): \(p.desc) has a malformed hash but must verify")
                    rejected += 1; undecodable += 1
                    continue
                }
                let result = Result { () throws(MerkleError) in
                    try Merkle.verifyInclusion(index: p.leafIdx, size: p.treeSize,
                                               leafHash: leaf, proof: proof,
                                               root: fixtureHash(p.root))
                }
                switch result {
                case .success: #expect(!p.wantErr, "\(name): \(p.desc) verified but must fail")
                case .failure(let e): #expect(p.wantErr, "\(name): \(p.desc) failed: \(e)")
                }
                if p.wantErr { rejected += 1 } else { happy += 1 }
            } else if url.path.contains("/consistency/") {
                consistency += 1
                let p = try JSONDecoder().decode(ConsistencyProbe.self, from: data)
                guard let proof = strictHashes(p.proof) else {
                    #expect(p.wantErr, "\(name): \(p.desc) has a malformed hash but must verify")
                    rejected += 1; undecodable += 1
                    continue
                }
                let result = Result { () throws(MerkleError) in
                    try Merkle.verifyConsistency(size1: p.size1, size2: p.size2,
                                                 root1: fixtureHash(p.root1), root2: fixtureHash(p.root2),
                                                 proof: proof)
                }
                switch result {
                case .success: #expect(!p.wantErr, "\(name): \(p.desc) verified but must fail")
                case .failure(let e): #expect(p.wantErr, "\(name): \(p.desc) failed: \(e)")
                }
                if p.wantErr { rejected += 1 } else { happy += 1 }
            } else {
                Issue.record("unexpected fixture \(name)")
            }
        }
        #expect(files.count > 100)
        #expect(inclusion > 50)
        #expect(consistency > 50)
        #expect(happy >= 10)
        #expect(rejected > 100)
        #expect(undecodable < rejected / 4, "most rejections must come from the verifier itself")
    }

    /// The happy-path vectors are RFC 6962's reference tree; our generator must reproduce them.
    @Test func generatorReproducesFixtureProofs() throws {
        // The 8 leaves of the RFC 6962 / transparency-dev reference tree.
        let entries: [[UInt8]] = [
            [], [0x00], [0x10], [0x20, 0x21], [0x30, 0x31], [0x40, 0x41, 0x42, 0x43],
            [0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            [0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f],
        ]
        let leaves = entries.map { Merkle.leafHash($0) }
        var levels = [leaves]
        while levels.last!.count >= 2 {
            let c = levels.last!
            levels.append(stride(from: 0, to: c.count - 1, by: 2).map { Merkle.nodeHash(c[$0], c[$0 + 1]) })
        }
        let node: Merkle.NodeSource = { l, i in levels[l][Int(i)] }
        var checked = 0
        for url in try Self.fixtureFiles() where url.lastPathComponent == "happy-path.json" {
            let data = try Data(contentsOf: url)
            if url.path.contains("/inclusion/") {
                let p = try JSONDecoder().decode(InclusionProbe.self, from: data)
                guard p.treeSize <= 8 else { continue }
                #expect(fixtureHash(p.leafHash) == leaves[Int(p.leafIdx)])
                let proof = try Merkle.inclusionProof(index: p.leafIdx, size: p.treeSize, node: node)
                #expect(proof == (p.proof ?? []).map { fixtureHash($0) })
                #expect(try Merkle.rootHash(size: p.treeSize, node: node) == fixtureHash(p.root))
                checked += 1
            } else {
                let p = try JSONDecoder().decode(ConsistencyProbe.self, from: data)
                guard p.size2 <= 8 else { continue }
                let proof = try Merkle.consistencyProof(size1: p.size1, size2: p.size2, node: node)
                #expect(proof == (p.proof ?? []).map { fixtureHash($0) })
                checked += 1
            }
        }
        #expect(checked >= 8)
    }
}

// MARK: - Hashing and the incremental builder

@Suite struct MerkleHashingTests {
    @Test func knownHashes() {
        #expect(Merkle.emptyRoot.hex == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        // RFC 6962 test vector: leaf hash of the empty entry.
        #expect(Merkle.leafHash([]).hex == "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
        let a = Merkle.leafHash([1, 2, 3])
        let viaPointer = [UInt8]([1, 2, 3]).withUnsafeBytes { Merkle.leafHash($0) }
        #expect(a == viaPointer)
        #expect(Merkle.nodeHash(a, viaPointer) != Merkle.nodeHash(viaPointer, flipped(a, bit: 0)))
    }

    @Test func compactRangeMatchesNaiveRoot() throws {
        var range = CompactRange()
        #expect(range.root() == Merkle.emptyRoot)
        for s in 1...400 {
            range.append(TestTree.leaves[s - 1])
            #expect(range.size == UInt64(s))
            #expect(range.hashes.count == s.nonzeroBitCount)
            let naive = TestTree.naiveMTH(TestTree.leaves[0..<s])
            #expect(range.root() == naive, "size \(s)")
            #expect(try Merkle.rootHash(size: UInt64(s), node: TestTree.naiveNode(size: UInt64(s))) == naive)
        }
        let restored = try #require(CompactRange(size: range.size, hashes: range.hashes))
        #expect(restored == range)
        #expect(CompactRange(size: 3, hashes: [Merkle.emptyRoot]) == nil)
    }

    @Test func subtreeRootForArbitraryRanges() throws {
        var rng = SeededRNG(seed: 7)
        let node = TestTree.naiveNode(size: 5000)
        for _ in 0..<200 {
            let a = UInt64.random(in: 0..<5000, using: &rng)
            let b = UInt64.random(in: (a + 1)...5000, using: &rng)
            let naive = TestTree.naiveMTH(TestTree.leaves[Int(a)..<Int(b)])
            #expect(try Merkle.subtreeRoot(start: a, end: b, node: node) == naive, "[\(a), \(b))")
        }
        #expect(throws: MerkleError.self) { try Merkle.subtreeRoot(start: 5, end: 5, node: node) }
    }
}

// MARK: - Randomized proof round trips

@Suite struct MerkleProofRoundTripTests {
    /// Sizes: every size 1...300, plus random sizes up to 70,000 (and some edges).
    static let bigSizes: [UInt64] = {
        var rng = SeededRNG(seed: 42)
        var s: [UInt64] = [511, 512, 513, 65_535, 65_536, 65_537, 70_000]
        for _ in 0..<8 { s.append(UInt64.random(in: 301...70_000, using: &rng)) }
        return s
    }()

    func indices(size: UInt64, rng: inout SeededRNG) -> [UInt64] {
        if size <= 16 { return Array(0..<size) }
        var out: Set<UInt64> = [0, size - 1, size / 2]
        for _ in 0..<4 { out.insert(UInt64.random(in: 0..<size, using: &rng)) }
        return out.sorted()
    }

    func firstSizes(size2: UInt64, rng: inout SeededRNG) -> [UInt64] {
        if size2 <= 12 { return Array(1...size2) }
        var out: Set<UInt64> = [1, size2 - 1, size2]
        var p: UInt64 = 1
        while p < size2 { if rng.next() % 3 == 0 { out.insert(p) }; p <<= 1 }
        for _ in 0..<4 { out.insert(UInt64.random(in: 1...size2, using: &rng)) }
        return out.sorted()
    }

    func checkInclusion(size: UInt64, index: UInt64, root: MerkleHash, reader: TileNodeReader) throws {
        let leaf = TestTree.leaves[Int(index)]
        let proof = try Merkle.inclusionProof(index: index, size: size, node: TestTree.naiveNode(size: size))
        let tiled = try Merkle.inclusionProof(index: index, size: size, node: reader.node)
        #expect(proof == tiled, "size \(size) index \(index): tiled proof differs")
        #expect(proof.count == Merkle.inclusionProofLength(index: index, size: size))
        #expect(throws: Never.self) {
            try Merkle.verifyInclusion(index: index, size: size, leafHash: leaf, proof: proof, root: root)
        }
        #expect(try Merkle.rootFromInclusionProof(index: index, size: size, leafHash: leaf, proof: proof) == root)

        func rejects(_ why: String, index i: UInt64 = index, leaf l: MerkleHash = leaf, proof p: [MerkleHash]) {
            #expect(throws: MerkleError.self, "size \(size) index \(index): \(why) accepted") {
                try Merkle.verifyInclusion(index: i, size: size, leafHash: l, proof: p, root: root)
            }
        }
        for (j, h) in proof.enumerated() {
            var bad = proof
            bad[j] = flipped(h, bit: (j * 37) % 256)
            rejects("flipped bit in element \(j)", proof: bad)
        }
        rejects("flipped leaf", leaf: flipped(leaf, bit: 3), proof: proof)
        rejects("index + 1", index: index + 1, proof: proof)
        if index > 0 { rejects("index - 1", index: index - 1, proof: proof) }
        rejects("index ^ 2", index: index ^ 2, proof: proof)
        rejects("index = size", index: size, proof: proof)
        rejects("appended element", proof: proof + [leaf])
        rejects("prepended element", proof: [leaf] + proof)
        if !proof.isEmpty {
            rejects("dropped last", proof: Array(proof.dropLast()))
            rejects("dropped first", proof: Array(proof.dropFirst()))
        }
        #expect(throws: MerkleError.self) {
            try Merkle.verifyInclusion(index: index, size: size, leafHash: leaf, proof: proof, root: flipped(root, bit: 200))
        }
    }

    func checkConsistency(size1: UInt64, size2: UInt64, roots: [UInt64: MerkleHash], reader: TileNodeReader) throws {
        let r1 = roots[size1]!, r2 = roots[size2]!
        let proof = try Merkle.consistencyProof(size1: size1, size2: size2, node: TestTree.naiveNode(size: size2))
        let tiled = try Merkle.consistencyProof(size1: size1, size2: size2, node: reader.node)
        #expect(proof == tiled, "\(size1)->\(size2): tiled proof differs")
        #expect(throws: Never.self) {
            try Merkle.verifyConsistency(size1: size1, size2: size2, root1: r1, root2: r2, proof: proof)
        }
        func rejects(_ why: String, size1 s1: UInt64 = size1, root1: MerkleHash = r1, root2: MerkleHash = r2,
                     proof p: [MerkleHash]) {
            #expect(throws: MerkleError.self, "\(size1)->\(size2): \(why) accepted") {
                try Merkle.verifyConsistency(size1: s1, size2: size2, root1: root1, root2: root2, proof: p)
            }
        }
        for (j, h) in proof.enumerated() {
            var bad = proof
            bad[j] = flipped(h, bit: (j * 53 + 1) % 256)
            rejects("flipped bit in element \(j)", proof: bad)
        }
        rejects("appended element", proof: proof + [r1])
        rejects("prepended element", proof: [r1] + proof)
        if !proof.isEmpty {
            rejects("dropped last", proof: Array(proof.dropLast()))
            rejects("dropped first", proof: Array(proof.dropFirst()))
        }
        rejects("size1 + 1", size1: size1 + 1, proof: proof)
        rejects("size1 - 1", size1: size1 - 1, proof: proof)
        rejects("wrong root1", root1: flipped(r1, bit: 9), proof: proof)
        if r1 != r2 {
            rejects("wrong root2", root2: flipped(r2, bit: 9), proof: proof)
            rejects("swapped roots", root1: r2, root2: r1, proof: proof)
        }
    }

    func roundTrip(sizes: [UInt64], seed: UInt64, tilesPerSize: Bool) throws {
        var rng = SeededRNG(seed: seed)
        var plan: [(size2: UInt64, indices: [UInt64], firsts: [UInt64])] = []
        var needed: Set<UInt64> = []
        for s in sizes {
            let idx = indices(size: s, rng: &rng)
            let firsts = firstSizes(size2: s, rng: &rng)
            plan.append((s, idx, firsts))
            needed.insert(s)
            needed.formUnion(firsts)
        }
        let roots = TestTree.roots(at: needed)
        for (size, idx, firsts) in plan {
            let root = roots[size]!
            let tiles = tilesPerSize ? TileMath.buildTiles(leafHashes: Array(TestTree.leaves.prefix(Int(size)))) : nil
            if let tiles {
                #expect(Set(tiles.keys) == Set(TileMath.tiles(forTreeSize: size)), "size \(size): tile set")
            }
            let reader = TestTree.tileReader(size: size, tiles: tiles)
            #expect(try Merkle.rootHash(size: size, node: reader.node) == root, "size \(size): tiled root")
            for i in idx { try checkInclusion(size: size, index: i, root: root, reader: reader) }
            for s1 in firsts { try checkConsistency(size1: s1, size2: size, roots: roots, reader: reader) }
        }
    }

    @Test func everySmallSize() throws {
        try roundTrip(sizes: Array(1...300), seed: 1, tilesPerSize: true)
    }

    @Test func randomLargeSizes() throws {
        try roundTrip(sizes: Self.bigSizes, seed: 2, tilesPerSize: false)
    }

    @Test func generationErrors() throws {
        let node = TestTree.naiveNode(size: 10)
        #expect(throws: MerkleError.self) { try Merkle.inclusionProof(index: 10, size: 10, node: node) }
        #expect(throws: MerkleError.self) { try Merkle.consistencyProof(size1: 11, size2: 10, node: node) }
        #expect(try Merkle.consistencyProof(size1: 0, size2: 10, node: node).isEmpty)
        #expect(try Merkle.consistencyProof(size1: 10, size2: 10, node: node).isEmpty)
        #expect(try Merkle.rootHash(size: 0, node: node) == Merkle.emptyRoot)
    }

    @Test func consistencyEdgeCases() {
        let a = TestTree.leaves[0], b = TestTree.leaves[1]
        let e = Merkle.emptyRoot
        func code(_ body: () throws -> Void) -> MerkleError.Code? {
            do { try body(); return nil } catch { return (error as? MerkleError)?.code ?? MerkleError.Code(rawValue: "other") }
        }
        #expect(code { try Merkle.verifyConsistency(size1: 0, size2: 0, root1: e, root2: e, proof: []) } == nil)
        #expect(code { try Merkle.verifyConsistency(size1: 0, size2: 0, root1: a, root2: a, proof: []) } == .rootMismatch)
        #expect(code { try Merkle.verifyConsistency(size1: 3, size2: 3, root1: a, root2: a, proof: []) } == nil)
        #expect(code { try Merkle.verifyConsistency(size1: 3, size2: 3, root1: a, root2: b, proof: []) } == .rootMismatch)
        #expect(code { try Merkle.verifyConsistency(size1: 3, size2: 3, root1: a, root2: a, proof: [a]) } == .unexpectedProof)
        #expect(code { try Merkle.verifyConsistency(size1: 4, size2: 3, root1: a, root2: a, proof: []) } == .sizesOutOfOrder)
        #expect(code { try Merkle.verifyConsistency(size1: 0, size2: 3, root1: e, root2: a, proof: []) } == .emptyTree)
        #expect(code { try Merkle.verifyConsistency(size1: 1, size2: 3, root1: a, root2: b, proof: []) } == .wrongProofLength)
        #expect(code { try Merkle.verifyInclusion(index: 3, size: 3, leafHash: a, proof: [], root: a) } == .indexOutOfRange)
        #expect(code { try Merkle.verifyInclusion(index: 0, size: 1, leafHash: a, proof: [], root: a) } == nil)
        #expect(code { try Merkle.verifyInclusion(index: 0, size: 1, leafHash: a, proof: [], root: b) } == .rootMismatch)
        #expect(code { try Merkle.verifyInclusion(index: 0, size: 2, leafHash: a, proof: [], root: b) } == .wrongProofLength)
    }
}
