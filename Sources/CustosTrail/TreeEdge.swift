import CustosCore
import Foundation

/// Tree arithmetic over tile levels: level L holds hashes of perfect subtrees of 256^L leaves.
enum TreeEdge {
    /// MTH of a power-of-two run of hashes that are themselves perfect subtree roots.
    static func perfectRoot(_ hashes: ArraySlice<MerkleHash>) -> MerkleHash {
        precondition(!hashes.isEmpty && hashes.count & (hashes.count - 1) == 0)
        return withUnsafeTemporaryAllocation(of: MerkleHash.self, capacity: hashes.count) { buf in
            var n = 0
            for h in hashes { buf.initializeElement(at: n, to: h); n += 1 }
            while n > 1 {
                var i = 0
                while i < n { buf[i / 2] = Merkle.nodeHash(buf[i], buf[i + 1]); i += 2 }
                n /= 2
            }
            return buf[0]
        }
    }

    /// The root of a tree given, per tile level, the hashes of its rightmost partial tile
    /// (`partials[L]` has floor(size / 256^L) mod 256 hashes).
    static func root(partials: [ArraySlice<MerkleHash>]) -> MerkleHash {
        var subtrees = [MerkleHash]()
        for level in stride(from: partials.count - 1, through: 0, by: -1) {
            let hashes = partials[level]
            var i = hashes.startIndex
            for bit in stride(from: 7, through: 0, by: -1) where hashes.count & (1 << bit) != 0 {
                subtrees.append(perfectRoot(hashes[i..<(i + (1 << bit))]))
                i += 1 << bit
            }
        }
        guard var acc = subtrees.last else { return Merkle.emptyRoot }
        for h in subtrees.dropLast().reversed() { acc = Merkle.nodeHash(h, acc) }
        return acc
    }

    /// Number of tile levels a tree of `size` has partial or full tiles at.
    static func levelCount(size: UInt64) -> Int {
        var n = 0
        var s = size
        while s > 0 { n += 1; s >>= 8 }
        return n
    }
}

/// Every hash of every tile level, computed from the leaves (used by verification).
struct TreeLevels {
    var levels: [[MerkleHash]]

    /// `parallelism` threads compute the first level up (the bulk of the node hashing).
    init(leaves: [MerkleHash], parallelism: Int = 1) {
        levels = [leaves]
        let groups = leaves.count / 256
        if parallelism > 1 && groups >= 64 {
            var up = [MerkleHash](repeating: MerkleHash(storage: .init()), count: groups)
            up.withUnsafeMutableBufferPointer { out in
                nonisolated(unsafe) let out = out
                let per = (groups + parallelism - 1) / parallelism
                DispatchQueue.concurrentPerform(iterations: parallelism) { w in
                    var g = w * per
                    while g < min(groups, (w + 1) * per) {
                        out[g] = TreeEdge.perfectRoot(leaves[(g * 256)..<(g * 256 + 256)])
                        g += 1
                    }
                }
            }
            levels.append(up)
        }
        while levels[levels.count - 1].count >= 256 {
            let below = levels[levels.count - 1]
            var up = [MerkleHash]()
            up.reserveCapacity(below.count / 256)
            var i = 0
            while i + 256 <= below.count { up.append(TreeEdge.perfectRoot(below[i..<(i + 256)])); i += 256 }
            levels.append(up)
        }
    }

    /// Hashes of tile (level, index) as a tree of `size` has it (full or partial).
    func tile(level: Int, index: UInt64, size: UInt64) -> ArraySlice<MerkleHash> {
        let count = UInt64(levels[level].count)
        let start = index * 256
        let end = min(start + 256, size >> (8 * UInt64(level)), count)
        return levels[level][Int(start)..<Int(end)]
    }

    /// Root of the prefix of `size` leaves.
    func root(size: UInt64) -> MerkleHash {
        var partials = [ArraySlice<MerkleHash>]()
        for level in 0..<TreeEdge.levelCount(size: size) {
            let end = size >> (8 * UInt64(level))
            let start = (end >> 8) << 8
            partials.append(levels[level][Int(start)..<Int(end)])
        }
        return TreeEdge.root(partials: partials)
    }
}
