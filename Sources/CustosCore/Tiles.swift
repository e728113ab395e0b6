/// One C2SP tlog-tiles resource: a Merkle tile `tile/<L>/<N>[.p/<W>]` or an entry bundle
/// `tile/entries/<N>[.p/<W>]`.
public struct TileRef: Hashable, Sendable, CustomStringConvertible {
    /// Tile level 0...63, or -1 for an entry bundle.
    public var level: Int
    /// Index of the tile within its level.
    public var index: UInt64
    /// Number of hashes (or entries): 256 for a full tile, 1...255 for a partial one.
    public var width: Int

    public init(level: Int, index: UInt64, width: Int = TileMath.width) {
        self.level = level
        self.index = index
        self.width = width
    }

    /// The entry bundle `tile/entries/<N>[.p/<W>]`.
    public static func entries(index: UInt64, width: Int = TileMath.width) -> TileRef {
        TileRef(level: -1, index: index, width: width)
    }

    public var isEntries: Bool { level < 0 }
    public var isPartial: Bool { width < TileMath.width }

    /// The resource path relative to the log prefix.
    public var path: String {
        isEntries ? TilePath.entries(index: index, width: width)
                  : TilePath.tile(level: level, index: index, width: width)
    }

    public var description: String { path }
}

/// Path encoding and strict parsing for tlog tiles.
public enum TilePath {
    /// `1234067` → `x001/x234/067`; `5` → `005`.
    public static func encodeIndex(_ n: UInt64) -> String {
        func three(_ v: UInt64) -> String {
            let s = String(v)
            return String(repeating: "0", count: 3 - s.count) + s
        }
        var n = n
        var out = three(n % 1000)
        while n >= 1000 {
            n /= 1000
            out = "x" + three(n % 1000) + "/" + out
        }
        return out
    }

    static func suffix(_ width: Int) -> String {
        width == TileMath.width ? "" : ".p/\(width)"
    }

    /// `tile/<L>/<N>` for a full tile (width 256), `tile/<L>/<N>.p/<W>` otherwise.
    public static func tile(level: Int, index: UInt64, width: Int) -> String {
        "tile/\(level)/\(encodeIndex(index))\(suffix(width))"
    }

    /// `tile/entries/<N>` for a full bundle, `tile/entries/<N>.p/<W>` otherwise.
    public static func entries(index: UInt64, width: Int) -> String {
        "tile/entries/\(encodeIndex(index))\(suffix(width))"
    }

    /// Parses a decimal with no sign, no leading zeros (except "0" itself), that fits `limit`.
    static func parseDecimal(_ s: Substring, max limit: UInt64) -> UInt64? {
        let u = s.utf8
        guard let first = u.first, !(first == UInt8(ascii: "0") && u.count > 1) else { return nil }
        var v: UInt64 = 0
        for c in u {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            let (m, o1) = v.multipliedReportingOverflow(by: 10)
            let (a, o2) = m.addingReportingOverflow(UInt64(c - UInt8(ascii: "0")))
            guard !o1, !o2, a <= limit else { return nil }
            v = a
        }
        return v
    }

    /// Exactly three ASCII digits.
    static func threeDigits(_ s: Substring) -> UInt64? {
        let u = Array(s.utf8)
        guard u.count == 3 else { return nil }
        var v: UInt64 = 0
        for c in u {
            guard c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") else { return nil }
            v = v * 10 + UInt64(c - UInt8(ascii: "0"))
        }
        return v
    }

    /// Strict parser: accepts only the canonical path of a tile or entry bundle (the one
    /// `TileRef.path` would print), so every resource has exactly one accepted spelling.
    public static func parse(_ path: String) -> TileRef? {
        var parts = path.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count >= 3, parts[0] == "tile" else { return nil }
        let level: Int
        if parts[1] == "entries" {
            level = -1
        } else {
            guard let l = parseDecimal(parts[1], max: 63) else { return nil }
            level = Int(l)
        }
        var width = TileMath.width
        if let last = parts.last, parts.count >= 4, parts[parts.count - 2].hasSuffix(".p") {
            guard let w = parseDecimal(last, max: 255), w >= 1 else { return nil }
            width = Int(w)
            parts.removeLast()
            let p = parts[parts.count - 1]
            parts[parts.count - 1] = p.dropLast(2)
        }
        let groups = parts[2...]
        guard !groups.isEmpty, groups.count <= 7 else { return nil }
        var index: UInt64 = 0
        for (i, g) in zip(groups.indices, groups) {
            let isLast = i == groups.endIndex - 1
            var digits = g
            if !isLast {
                guard digits.first == "x" else { return nil }
                digits = digits.dropFirst()
            }
            guard let v = threeDigits(digits) else { return nil }
            let (m, o1) = index.multipliedReportingOverflow(by: 1000)
            let (a, o2) = m.addingReportingOverflow(v)
            guard !o1, !o2 else { return nil }
            index = a
        }
        let ref = TileRef(level: level, index: index, width: width)
        // Canonical form only (rejects e.g. leading "x000/" groups).
        guard ref.path == path else { return nil }
        return ref
    }
}

/// Tile arithmetic for C2SP tlog-tiles (tiles of height 8, width 256).
public enum TileMath {
    public static let height = 8
    public static let width = 256

    /// Number of hashes at tile level `level` in a tree of `size` leaves
    /// (`floor(size / 256**level)`), 0 past the top.
    static func hashCount(level: Int, size: UInt64) -> UInt64 {
        let shift = height * level
        return shift >= 64 ? 0 : size >> UInt64(shift)
    }

    /// Width of the partial tile at `level` for a tree of `size` (0 if that level has none).
    public static func partialWidth(level: Int, size: UInt64) -> Int {
        Int(hashCount(level: level, size: size) % UInt64(width))
    }

    /// Every tile (full and partial) a tree of `size` has, level by level, lowest first.
    public static func tiles(forTreeSize size: UInt64) -> [TileRef] {
        var out: [TileRef] = []
        var level = 0
        while true {
            let n = hashCount(level: level, size: size)
            if n == 0 { break }
            let full = n / UInt64(width)
            for i in 0..<full { out.append(TileRef(level: level, index: i)) }
            let w = Int(n % UInt64(width))
            if w > 0 { out.append(TileRef(level: level, index: full, width: w)) }
            level += 1
        }
        return out
    }

    /// Every entry bundle (full and partial) a tree of `size` has.
    public static func entryBundles(forTreeSize size: UInt64) -> [TileRef] {
        let full = size / UInt64(width)
        var out = (0..<full).map { TileRef.entries(index: $0) }
        let w = Int(size % UInt64(width))
        if w > 0 { out.append(.entries(index: full, width: w)) }
        return out
    }

    /// The tile at `level` holding hash number `hashIndex` of that level, with the width
    /// it has in a tree of `size`; nil if the tree has no such hash.
    public static func tile(level: Int, containing hashIndex: UInt64, treeSize size: UInt64) -> TileRef? {
        let n = hashCount(level: level, size: size)
        guard hashIndex < n else { return nil }
        let t = hashIndex / UInt64(width)
        let full = n / UInt64(width)
        return TileRef(level: level, index: t, width: t < full ? width : Int(n % UInt64(width)))
    }

    /// The exact contents of every tile of the tree whose leaf hashes are `leafHashes`
    /// (for tests and verification; writers build tiles incrementally).
    public static func buildTiles(leafHashes: [MerkleHash]) -> [TileRef: [MerkleHash]] {
        var out: [TileRef: [MerkleHash]] = [:]
        var current = leafHashes  // complete nodes at Merkle level 8 * tileLevel
        var tileLevel = 0
        while !current.isEmpty {
            var start = 0
            var t: UInt64 = 0
            while start < current.count {
                let end = min(start + width, current.count)
                out[TileRef(level: tileLevel, index: t, width: end - start)] = Array(current[start..<end])
                start = end
                t += 1
            }
            for _ in 0..<height {
                var next: [MerkleHash] = []
                next.reserveCapacity(current.count / 2)
                var i = 0
                while i + 1 < current.count {
                    next.append(Merkle.nodeHash(current[i], current[i + 1]))
                    i += 2
                }
                current = next
            }
            tileLevel += 1
        }
        return out
    }

    /// Tile bytes: the concatenated 32-byte hashes.
    public static func encode(_ hashes: [MerkleHash]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(hashes.count * 32)
        for h in hashes { h.withUnsafeBytes { out.append(contentsOf: $0) } }
        return out
    }

    /// Splits tile bytes into hashes; nil unless the length is a positive multiple of 32
    /// of at most 256 hashes.
    public static func decode(_ bytes: some Collection<UInt8>) -> [MerkleHash]? {
        let b = Array(bytes)
        guard !b.isEmpty, b.count % 32 == 0, b.count / 32 <= width else { return nil }
        return stride(from: 0, to: b.count, by: 32).map { MerkleHash(bytes: b[$0..<$0 + 32])! }
    }
}

/// Answers `node(level, index)` for a tiled log of a given size, reading each tile at most
/// once and hashing the levels inside a tile on first use. Not thread-safe: use one reader
/// per task.
public final class TileNodeReader {
    public let treeSize: UInt64
    private let readTile: (TileRef) throws -> [MerkleHash]
    /// For each tile read, its internal levels: [0] is the tile's hashes, [k] the complete
    /// nodes k levels above them.
    private var cache: [TileRef: [[MerkleHash]]] = [:]

    /// `readTile` must return the tile's hashes, exactly `ref.width` of them.
    public init(treeSize: UInt64, readTile: @escaping (TileRef) throws -> [MerkleHash]) {
        self.treeSize = treeSize
        self.readTile = readTile
    }

    /// Number of distinct tiles fetched so far.
    public var tilesRead: Int { cache.count }

    /// The hash of the perfect subtree over leaves `[index << level, (index + 1) << level)`,
    /// which must lie inside the tree.
    public func node(level: Int, index: UInt64) throws -> MerkleHash {
        guard level >= 0, level < 64,
              index < (treeSize >> UInt64(level))
        else {
            throw MerkleError(.invalidRange,
                "node (level \(level), index \(index)) is not a complete subtree of a tree of size \(treeSize)")
        }
        let tileLevel = level / TileMath.height
        let sub = level % TileMath.height
        let first = index << UInt64(sub)  // first covered hash at Merkle level 8 * tileLevel
        guard let ref = TileMath.tile(level: tileLevel, containing: first, treeSize: treeSize) else {
            throw MerkleError(.invalidRange, "no tile holds node (level \(level), index \(index)) in tree size \(treeSize)")
        }
        let levels = try levels(of: ref)
        let offset = Int(first % UInt64(TileMath.width)) >> sub
        guard sub < levels.count, offset < levels[sub].count else {
            throw MerkleError(.invalidRange,
                "node (level \(level), index \(index)) is not complete in tile \(ref.path)")
        }
        return levels[sub][offset]
    }

    private func levels(of ref: TileRef) throws -> [[MerkleHash]] {
        if let l = cache[ref] { return l }
        let hashes = try readTile(ref)
        guard hashes.count == ref.width else {
            throw MerkleError(.invalidRange, "tile \(ref.path) has \(hashes.count) hashes, expected \(ref.width)")
        }
        var levels = [hashes]
        var cur = hashes
        while cur.count >= 2 {
            var next: [MerkleHash] = []
            next.reserveCapacity(cur.count / 2)
            var i = 0
            while i + 1 < cur.count {
                next.append(Merkle.nodeHash(cur[i], cur[i + 1]))
                i += 2
            }
            levels.append(next)
            cur = next
        }
        cache[ref] = levels
        return levels
    }
}
