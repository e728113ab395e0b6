import CustosCore
import Testing

@Suite struct TilePathTests {
    @Test func encodeIndex() {
        #expect(TilePath.encodeIndex(0) == "000")
        #expect(TilePath.encodeIndex(5) == "005")
        #expect(TilePath.encodeIndex(999) == "999")
        #expect(TilePath.encodeIndex(1000) == "x001/000")
        #expect(TilePath.encodeIndex(1_234_067) == "x001/x234/067")
        #expect(TilePath.encodeIndex(UInt64.max) == "x018/x446/x744/x073/x709/x551/615")
    }

    @Test func paths() {
        #expect(TilePath.tile(level: 0, index: 1_234_067, width: 256) == "tile/0/x001/x234/067")
        #expect(TilePath.tile(level: 1, index: 1, width: 17) == "tile/1/001.p/17")
        #expect(TilePath.entries(index: 273, width: 112) == "tile/entries/273.p/112")
        #expect(TilePath.entries(index: 3, width: 256) == "tile/entries/003")
        #expect(TileRef(level: 2, index: 0, width: 1).path == "tile/2/000.p/1")
        #expect(TileRef.entries(index: 1000).path == "tile/entries/x001/000")
    }

    @Test func parseRoundTrips() {
        var rng = SeededRNG(seed: 99)
        for _ in 0..<500 {
            let index: UInt64 = switch rng.next() % 4 {
            case 0: rng.next() % 1000
            case 1: rng.next() % 1_000_000_000
            case 2: rng.next()
            default: UInt64.max - rng.next() % 10
            }
            let width = rng.next() % 3 == 0 ? 256 : Int(1 + rng.next() % 255)
            let ref = rng.next() % 5 == 0
                ? TileRef.entries(index: index, width: width)
                : TileRef(level: Int(rng.next() % 64), index: index, width: width)
            #expect(TilePath.parse(ref.path) == ref, "\(ref.path)")
        }
        let e = TilePath.parse("tile/entries/x001/x234/067.p/8")
        #expect(e == TileRef.entries(index: 1_234_067, width: 8))
        #expect(e?.isEntries == true)
        #expect(e?.isPartial == true)
        #expect(TilePath.parse("tile/63/000") == TileRef(level: 63, index: 0))
    }

    @Test(arguments: [
        "", "tile", "tile/", "tile/0", "tile/0/", "tiles/0/000", "/tile/0/000", "tile/0/000/",
        "tile/00/000", "tile/01/000", "tile/64/000", "tile/-1/000", "tile/+1/000", "tile/a/000",
        "tile/0/00", "tile/0/0000", "tile/0/1", "tile/0/x000", "tile/0/x001", "tile/0/001/002",
        "tile/0/x000/001", "tile/0/y001/002", "tile/0/X001/002", "tile/0/xx01/002", "tile/0/x01/002",
        "tile/0/000.p", "tile/0/000.p/", "tile/0/000.p/0", "tile/0/000.p/256", "tile/0/000.p/01",
        "tile/0/000.p/300", "tile/0/000.p/-1", "tile/0/000.q/5", "tile/0/000.p/5/6", "tile/0/000p/5",
        "tile/0/x001.p/000", "tile/entries", "tile/entries/", "tile/entries/0", "tile/entries/000.p/0",
        "tile/entry/000", "tile/data/000", "tile/0/０００", "tile/0/00a",
        "tile/0/x018/x446/x744/x073/x709/x551/616", "tile/0/x001/x018/x446/x744/x073/x709/x551/615",
    ])
    func parseRejects(_ path: String) {
        #expect(TilePath.parse(path) == nil)
    }
}

@Suite struct TileMathTests {
    @Test func specExample70000() {
        let tiles = TileMath.tiles(forTreeSize: 70_000)
        let l0 = tiles.filter { $0.level == 0 }
        #expect(l0.filter { !$0.isPartial }.count == 273)
        #expect(l0.filter(\.isPartial).map(\.width) == [112])
        #expect(l0.last == TileRef(level: 0, index: 273, width: 112))
        let l1 = tiles.filter { $0.level == 1 }
        #expect(l1 == [TileRef(level: 1, index: 0), TileRef(level: 1, index: 1, width: 17)])
        #expect(tiles.filter { $0.level == 2 } == [TileRef(level: 2, index: 0, width: 1)])
        #expect(tiles.count == 273 + 1 + 1 + 1 + 1)
        #expect(TileMath.partialWidth(level: 0, size: 70_000) == 112)
        #expect(TileMath.partialWidth(level: 1, size: 70_000) == 17)
        #expect(TileMath.partialWidth(level: 2, size: 70_000) == 1)
        #expect(TileMath.partialWidth(level: 3, size: 70_000) == 0)
        let bundles = TileMath.entryBundles(forTreeSize: 70_000)
        #expect(bundles.count == 274)
        #expect(bundles.last == TileRef.entries(index: 273, width: 112))
    }

    @Test func specExample256() {
        #expect(TileMath.tiles(forTreeSize: 256) == [TileRef(level: 0, index: 0), TileRef(level: 1, index: 0, width: 1)])
        #expect(TileMath.tiles(forTreeSize: 0).isEmpty)
        #expect(TileMath.tiles(forTreeSize: 1) == [TileRef(level: 0, index: 0, width: 1)])
        #expect(TileMath.tiles(forTreeSize: 65_536).map(\.path).suffix(2) == ["tile/1/000", "tile/2/000.p/1"])
        #expect(TileMath.partialWidth(level: 7, size: UInt64.max) == 255)
        #expect(TileMath.partialWidth(level: 0, size: UInt64.max) == 255)
        #expect(TileMath.partialWidth(level: 8, size: UInt64.max) == 0)
    }

    @Test func buildTilesMatchesDefinition() throws {
        // 70,000 leaves: same tile set as the spec example; tile level L hash i = MTH of its 256^L leaves.
        let tiles = TestTree.bigTiles
        #expect(Set(tiles.keys) == Set(TileMath.tiles(forTreeSize: 70_000)))
        for (ref, hashes) in tiles {
            #expect(hashes.count == ref.width)
            let span = 1 << (8 * ref.level)
            for (k, h) in hashes.enumerated() where k % 37 == 0 || k == hashes.count - 1 {
                let i = Int(ref.index) * 256 + k
                let naive = ref.level == 0 ? TestTree.leaves[i]
                    : TestTree.pyramid[8 * ref.level][i]
                #expect(h == naive, "\(ref.path)[\(k)]")
                if ref.level == 1 && k == 3 {
                    #expect(h == TestTree.naiveMTH(TestTree.leaves[i * span..<(i + 1) * span]))
                }
            }
        }
        let bytes = TileMath.encode(tiles[TileRef(level: 1, index: 1, width: 17)]!)
        #expect(bytes.count == 17 * 32)
        #expect(TileMath.decode(bytes) == tiles[TileRef(level: 1, index: 1, width: 17)])
        #expect(TileMath.decode([UInt8](repeating: 0, count: 33)) == nil)
        #expect(TileMath.decode([UInt8]()) == nil)
        #expect(TileMath.decode([UInt8](repeating: 0, count: 257 * 32)) == nil)
    }

    @Test func readerReadsEachTileOnceAndRejectsOutsideNodes() throws {
        let size: UInt64 = 70_000
        let reader = TestTree.tileReader(size: size, tiles: TestTree.bigTiles)
        for level in 0..<17 {
            let count = size >> UInt64(level)
            for i in Set([0, count / 2, count - 1]) where count > 0 {
                #expect(try reader.node(level: level, index: i) == TestTree.pyramid[level][Int(i)], "(\(level), \(i))")
            }
            #expect(throws: MerkleError.self) { try reader.node(level: level, index: count) }
        }
        #expect(throws: MerkleError.self) { try reader.node(level: 17, index: 0) }
        #expect(throws: MerkleError.self) { try reader.node(level: -1, index: 0) }
        let before = reader.tilesRead
        _ = try Merkle.inclusionProof(index: 69_999, size: size, node: reader.node)
        _ = try Merkle.inclusionProof(index: 69_998, size: size, node: reader.node)
        #expect(reader.tilesRead <= before + 3)

        // A tile of the wrong width is refused.
        let bad = TileNodeReader(treeSize: 300) { ref in Array(TestTree.leaves.prefix(ref.width + 1)) }
        #expect(throws: MerkleError.self) { try bad.node(level: 0, index: 0) }
    }
}
