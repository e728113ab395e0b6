import CustosCore

/// Reads a trail on disk: its checkpoint (signature checked), entries and inclusion proofs.
public struct TrailReader: Sendable {
    public var layout: TrailLayout
    public let checkpoint: SignedCheckpoint
    /// Entries below this index were pruned (`TrailPruning`); 0 when nothing was.
    public let minimumIndex: UInt64

    /// Opens the trail, checking its checkpoint against `verifier`.
    public init(layout: TrailLayout, verifier: NoteVerifier) throws {
        self.layout = layout
        guard let note = try FileIO.readFile(layout.checkpointPath, limit: 1 << 20) else {
            throw TrailError(.notInitialized, "no trail at \(layout.trailDirectory) (no checkpoint)")
        }
        do {
            checkpoint = try SignedCheckpoint.open(note, verifier: verifier)
        } catch {
            throw TrailError(.damaged, "\(layout.checkpointPath) does not verify with key \(verifier.name): \(error)")
        }
        minimumIndex = try TrailPruning.minimumIndex(layout: layout, verifier: verifier)
    }

    public var size: UInt64 { checkpoint.checkpoint.size }

    /// Calls `body` with each entry in `range` (clamped to the checkpoint and to the
    /// minimum index: pruned entries are skipped) in order.
    public func forEachEntry(in range: Range<UInt64>, _ body: (UInt64, UnsafeRawBufferPointer) throws -> Void) throws {
        let end = min(range.upperBound, size)
        var i = max(range.lowerBound, minimumIndex)
        while i < end {
            let bundleIndex = i >> 8
            let width = (bundleIndex + 1) * 256 <= size ? 256 : Int(size & 255)
            let path = layout.bundlePath(index: bundleIndex, width: width)
            guard let bytes = try FileIO.readFile(path) else {
                throw TrailError(.damaged, "\(path) is missing")
            }
            try bytes.withUnsafeBytes { raw in
                var pos = 0
                var n: UInt64 = 0
                while n < UInt64(width) {
                    guard pos + 2 <= raw.count else { throw TrailError(.damaged, "\(path) is truncated") }
                    let len = Int(raw[pos]) << 8 | Int(raw[pos + 1])
                    pos += 2
                    guard pos + len <= raw.count else { throw TrailError(.damaged, "\(path) is truncated") }
                    let index = bundleIndex * 256 + n
                    if index >= i && index < end {
                        try body(index, UnsafeRawBufferPointer(rebasing: raw[pos..<(pos + len)]))
                    }
                    pos += len
                    n += 1
                }
            }
            i = (bundleIndex + 1) * 256
        }
    }

    public func entry(at index: UInt64) throws -> [UInt8] {
        guard index < size else {
            throw TrailError(.invalidArgument, "index \(index) is outside the trail (size \(size))")
        }
        guard index >= minimumIndex else {
            throw TrailError(.invalidArgument, "entry \(index) was pruned (the trail keeps entries from \(minimumIndex) on; see the archive)")
        }
        var out: [UInt8] = []
        try forEachEntry(in: index..<(index + 1)) { _, e in out = Array(e) }
        return out
    }

    /// A C2SP tlog-proof for entry `index` against the current checkpoint, with the entry
    /// itself in the `extra` line so that the proof can be checked offline.
    public func proof(index: UInt64) throws -> TlogProof {
        let entry = try entry(at: index)
        let reader = TileNodeReader(treeSize: size) { ref in
            let path = layout.tilePath(level: ref.level, index: ref.index, width: ref.width)
            guard let bytes = try FileIO.readFile(path), bytes.count == ref.width * 32 else {
                throw TrailError(.damaged, "\(path) is missing or has the wrong size")
            }
            return (0..<ref.width).map { MerkleHash(bytes: bytes[($0 * 32)..<($0 * 32 + 32)])! }
        }
        let hashes = try Merkle.inclusionProof(index: index, size: size, node: reader.node)
        let proof = TlogProof(extra: entry, index: index, proof: hashes, checkpoint: checkpoint.note)
        // Never hand out a proof that does not verify.
        try Merkle.verifyInclusion(index: index, size: size, leafHash: Merkle.leafHash(entry), proof: hashes,
                                   root: checkpoint.checkpoint.rootHash)
        return proof
    }
}
