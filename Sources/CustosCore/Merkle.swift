import Crypto
#if canImport(CCryptoBoringSSL)
import CCryptoBoringSSL
#endif

/// Why a Merkle proof was rejected, or why a proof could not be built.
public struct MerkleError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable kind of failure.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }

        /// The leaf index is not below the tree size.
        public static let indexOutOfRange = Code(rawValue: "index_out_of_range")
        /// The proof has more or fewer hashes than the sizes require.
        public static let wrongProofLength = Code(rawValue: "wrong_proof_length")
        /// The recomputed root differs from the expected one.
        public static let rootMismatch = Code(rawValue: "root_mismatch")
        /// The older tree is larger than the newer one.
        public static let sizesOutOfOrder = Code(rawValue: "sizes_out_of_order")
        /// A proof was given where none is allowed (equal sizes), or a consistency check from an empty tree.
        public static let unexpectedProof = Code(rawValue: "unexpected_proof")
        /// Consistency from size 0 to a non-empty tree proves nothing and is refused.
        public static let emptyTree = Code(rawValue: "empty_tree")
        /// A range or node request that does not lie inside the tree.
        public static let invalidRange = Code(rawValue: "invalid_range")

        public var description: String { rawValue }
    }

    public var code: Code
    /// A human-readable explanation, with the numbers involved.
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(code): \(reason)" }
}

/// RFC 9162 §2.1 Merkle tree hashing (SHA-256), proof verification and proof generation.
public enum Merkle {
    /// `node(level, index)` is the hash of the perfect subtree over leaves
    /// `[index << level, (index + 1) << level)`. Only complete subtrees inside the tree are requested.
    public typealias NodeSource = (_ level: Int, _ index: UInt64) throws -> MerkleHash

    /// MTH({}) = SHA-256 of the empty string.
    public static let emptyRoot: MerkleHash = MerkleHash(digest: SHA256().finalize())

    // MARK: Hashing

    /// SHA-256(0x00 || entry). Two hasher updates, no intermediate buffer.
    public static func leafHash(_ entry: UnsafeRawBufferPointer) -> MerkleHash {
        #if canImport(CCryptoBoringSSL)
        // BoringSSL (swift-crypto's backend here) on a stack context: `SHA256()` allocates a
        // context object per hash, which cost more than hashing a typical entry.
        var ctx = SHA256_CTX()
        var out = MerkleHash(storage: .init())
        var prefix: UInt8 = 0
        _ = CCryptoBoringSSL_SHA256_Init(&ctx)
        _ = CCryptoBoringSSL_SHA256_Update(&ctx, &prefix, 1)
        if let base = entry.baseAddress { _ = CCryptoBoringSSL_SHA256_Update(&ctx, base, entry.count) }
        Swift.withUnsafeMutableBytes(of: &out.storage) {
            _ = CCryptoBoringSSL_SHA256_Final($0.baseAddress!.assumingMemoryBound(to: UInt8.self), &ctx)
        }
        return out
        #else
        var hasher = SHA256()
        var prefix: UInt8 = 0
        withUnsafeBytes(of: &prefix) { hasher.update(bufferPointer: $0) }
        hasher.update(bufferPointer: entry)
        return MerkleHash(digest: hasher.finalize())
        #endif
    }

    /// SHA-256(0x00 || entry).
    public static func leafHash(_ entry: [UInt8]) -> MerkleHash {
        entry.withUnsafeBytes { leafHash($0) }
    }

    /// SHA-256(0x01 || left || right).
    public static func nodeHash(_ left: MerkleHash, _ right: MerkleHash) -> MerkleHash {
        #if canImport(CCryptoBoringSSL)
        // 0x01 || left || right is 65 bytes: two SHA-256 blocks, padded here and compressed
        // from the initial state, without a hashing context.
        var blocks = (SIMD64<UInt8>(), SIMD64<UInt8>())
        var state: (UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32, UInt32) = (
            0x6a09_e667, 0xbb67_ae85, 0x3c6e_f372, 0xa54f_f53a, 0x510e_527f, 0x9b05_688c, 0x1f83_d9ab, 0x5be0_cd19)
        Swift.withUnsafeMutableBytes(of: &blocks) { b in
            b[0] = 1
            Swift.withUnsafeBytes(of: left.storage) { UnsafeMutableRawBufferPointer(rebasing: b[1..<33]).copyMemory(from: $0) }
            Swift.withUnsafeBytes(of: right.storage) { UnsafeMutableRawBufferPointer(rebasing: b[33..<65]).copyMemory(from: $0) }
            b[65] = 0x80
            b[126] = 0x02  // message length: 65 * 8 = 520 bits, big-endian in the last 8 bytes
            b[127] = 0x08
            Swift.withUnsafeMutableBytes(of: &state) { s in
                CCryptoBoringSSL_SHA256_TransformBlocks(s.baseAddress!.assumingMemoryBound(to: UInt32.self),
                                                        b.baseAddress!.assumingMemoryBound(to: UInt8.self), 2)
            }
        }
        var out = SIMD32<UInt8>()
        Swift.withUnsafeMutableBytes(of: &out) { o in
            Swift.withUnsafeBytes(of: state) { s in
                for k in 0..<8 { o.storeBytes(of: s.load(fromByteOffset: k * 4, as: UInt32.self).bigEndian, toByteOffset: k * 4, as: UInt32.self) }
            }
        }
        return MerkleHash(storage: out)
        #else
        return withUnsafeTemporaryAllocation(byteCount: 65, alignment: 1) { buf in
            buf[0] = 1
            left.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[1..<33]).copyMemory(from: $0) }
            right.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buf[33..<65]).copyMemory(from: $0) }
            var hasher = SHA256()
            hasher.update(bufferPointer: UnsafeRawBufferPointer(buf))
            return MerkleHash(digest: hasher.finalize())
        }
        #endif
    }

    // MARK: Proof-size arithmetic

    /// Bit length of `x` (0 for 0).
    @inline(__always)
    static func bitLength(_ x: UInt64) -> Int { 64 - x.leadingZeroBitCount }

    /// Splits an inclusion proof for `index` in a tree of `size` into the "inner" part
    /// (below the point where the path leaves the perfect subtrees shared with size-1)
    /// and the "border" part (the right-border hashes).
    static func decompose(index: UInt64, size: UInt64) -> (inner: Int, border: Int) {
        let inner = bitLength(index ^ (size - 1))
        let border = (index >> UInt64(inner)).nonzeroBitCount
        return (inner, border)
    }

    static func chainInner(_ seed: MerkleHash, _ proof: ArraySlice<MerkleHash>, _ index: UInt64) -> MerkleHash {
        var h = seed
        for (i, p) in proof.enumerated() {
            if (index >> UInt64(i)) & 1 == 0 { h = nodeHash(h, p) } else { h = nodeHash(p, h) }
        }
        return h
    }

    static func chainInnerRight(_ seed: MerkleHash, _ proof: ArraySlice<MerkleHash>, _ index: UInt64) -> MerkleHash {
        var h = seed
        for (i, p) in proof.enumerated() where (index >> UInt64(i)) & 1 == 1 {
            h = nodeHash(p, h)
        }
        return h
    }

    static func chainBorderRight(_ seed: MerkleHash, _ proof: ArraySlice<MerkleHash>) -> MerkleHash {
        var h = seed
        for p in proof { h = nodeHash(p, h) }
        return h
    }

    /// The number of hashes in an inclusion proof for `index` in a tree of `size` (requires index < size).
    public static func inclusionProofLength(index: UInt64, size: UInt64) -> Int {
        let (inner, border) = decompose(index: index, size: size)
        return inner + border
    }

    // MARK: Verification

    /// RFC 9162 §2.1.3.2: the root implied by an inclusion proof. Throws for out-of-range
    /// indices and proofs of the wrong length; the caller must compare the result to a trusted root.
    public static func rootFromInclusionProof(
        index: UInt64, size: UInt64, leafHash: MerkleHash, proof: [MerkleHash]
    ) throws(MerkleError) -> MerkleHash {
        guard index < size else {
            throw MerkleError(.indexOutOfRange, "leaf index \(index) is not below tree size \(size)")
        }
        let (inner, border) = decompose(index: index, size: size)
        guard proof.count == inner + border else {
            throw MerkleError(.wrongProofLength,
                "inclusion proof for index \(index) in tree size \(size) must have \(inner + border) hashes, got \(proof.count)")
        }
        let h = chainInner(leafHash, proof[..<inner], index)
        return chainBorderRight(h, proof[inner...])
    }

    /// Verifies that `leafHash` is at `index` in the tree of `size` with root `root`.
    public static func verifyInclusion(
        index: UInt64, size: UInt64, leafHash: MerkleHash, proof: [MerkleHash], root: MerkleHash
    ) throws(MerkleError) {
        let computed = try rootFromInclusionProof(index: index, size: size, leafHash: leafHash, proof: proof)
        guard computed == root else {
            throw MerkleError(.rootMismatch,
                "inclusion proof for index \(index) in tree size \(size) leads to root \(computed.base64), expected \(root.base64)")
        }
    }

    /// RFC 9162 §2.1.4.2: verifies that the tree of `size2` with `root2` extends the tree of
    /// `size1` with `root1`.
    ///
    /// Edge cases (matching the transparency-dev test vectors): equal sizes require an empty
    /// proof and equal roots; size 0 is only consistent with size 0 (both roots the empty root,
    /// empty proof); a check from size 0 to a non-empty tree is refused as meaningless.
    public static func verifyConsistency(
        size1: UInt64, size2: UInt64, root1: MerkleHash, root2: MerkleHash, proof: [MerkleHash]
    ) throws(MerkleError) {
        guard size1 <= size2 else {
            throw MerkleError(.sizesOutOfOrder, "size1 \(size1) is greater than size2 \(size2)")
        }
        if size1 == size2 {
            guard proof.isEmpty else {
                throw MerkleError(.unexpectedProof,
                    "sizes are equal (\(size1)) so the proof must be empty, got \(proof.count) hashes")
            }
            if size1 == 0 {
                guard root1 == emptyRoot, root2 == emptyRoot else {
                    throw MerkleError(.rootMismatch, "a tree of size 0 must have the empty root")
                }
                return
            }
            guard root1 == root2 else {
                throw MerkleError(.rootMismatch,
                    "sizes are equal (\(size1)) but roots differ: \(root1.base64) vs \(root2.base64)")
            }
            return
        }
        guard size1 > 0 else {
            throw MerkleError(.emptyTree,
                "consistency from an empty tree to size \(size2) proves nothing; handle size 0 before verifying")
        }
        guard !proof.isEmpty else {
            throw MerkleError(.wrongProofLength, "consistency proof from \(size1) to \(size2) must not be empty")
        }
        var (inner, border) = decompose(index: size1 - 1, size: size2)
        let shift = size1.trailingZeroBitCount
        inner -= shift  // shift < inner because size1 < size2.

        // The proof starts with the hash of the perfect subtree of 2^shift leaves ending at size1,
        // unless size1 is exactly that subtree, whose hash is root1.
        let seed: MerkleHash
        let start: Int
        if size1 == UInt64(1) << UInt64(shift) {
            seed = root1; start = 0
        } else {
            seed = proof[0]; start = 1
        }
        guard proof.count == start + inner + border else {
            throw MerkleError(.wrongProofLength,
                "consistency proof from \(size1) to \(size2) must have \(start + inner + border) hashes, got \(proof.count)")
        }
        let rest = proof[start...]
        let innerPart = rest.prefix(inner)
        let borderPart = rest.dropFirst(inner)
        let mask = (size1 - 1) >> UInt64(shift)

        let hash1 = chainBorderRight(chainInnerRight(seed, innerPart, mask), borderPart)
        guard hash1 == root1 else {
            throw MerkleError(.rootMismatch,
                "consistency proof from \(size1) to \(size2) leads to first root \(hash1.base64), expected \(root1.base64)")
        }
        let hash2 = chainBorderRight(chainInner(seed, innerPart, mask), borderPart)
        guard hash2 == root2 else {
            throw MerkleError(.rootMismatch,
                "consistency proof from \(size1) to \(size2) leads to second root \(hash2.base64), expected \(root2.base64)")
        }
    }

    // MARK: Generation from a node source

    /// Largest power of two strictly below `n` (n >= 2).
    @inline(__always)
    static func splitPoint(_ n: UInt64) -> UInt64 {
        UInt64(1) << UInt64(bitLength(n - 1) - 1)
    }

    /// MTH(D[start:end]) for any non-empty range, using perfect aligned subtrees from `node`
    /// wherever the RFC 9162 split produces them (always, for the ranges that proofs use;
    /// unaligned ranges fall back to smaller nodes, down to leaves).
    public static func subtreeRoot(start: UInt64, end: UInt64, node: NodeSource) throws -> MerkleHash {
        guard start < end else {
            throw MerkleError(.invalidRange, "subtree range [\(start), \(end)) is empty")
        }
        return try mth(start, end, node)
    }

    static func mth(_ start: UInt64, _ end: UInt64, _ node: NodeSource) throws -> MerkleHash {
        let n = end - start
        if n & (n - 1) == 0 && start & (n - 1) == 0 {
            let level = n.trailingZeroBitCount
            return try node(level, start >> UInt64(level))
        }
        let k = splitPoint(n)
        return nodeHash(try mth(start, start + k, node), try mth(start + k, end, node))
    }

    /// MTH of the first `size` leaves (the empty root for 0).
    public static func rootHash(size: UInt64, node: NodeSource) throws -> MerkleHash {
        size == 0 ? emptyRoot : try mth(0, size, node)
    }

    /// RFC 9162 §2.1.3.1 inclusion proof for `index` in the tree of `size`.
    public static func inclusionProof(index: UInt64, size: UInt64, node: NodeSource) throws -> [MerkleHash] {
        guard index < size else {
            throw MerkleError(.indexOutOfRange, "leaf index \(index) is not below tree size \(size)")
        }
        var proof: [MerkleHash] = []
        proof.reserveCapacity(bitLength(size) + 1)
        // Walk down from the root; siblings are collected top-down, then reversed.
        var start: UInt64 = 0, end = size
        while end - start > 1 {
            let k = splitPoint(end - start)
            if index < start + k {
                proof.append(try mth(start + k, end, node))
                end = start + k
            } else {
                proof.append(try mth(start, start + k, node))
                start += k
            }
        }
        proof.reverse()
        return proof
    }

    /// RFC 9162 §2.1.4.1 consistency proof from `size1` to `size2` (empty when size1 is 0 or equal to size2).
    public static func consistencyProof(size1: UInt64, size2: UInt64, node: NodeSource) throws -> [MerkleHash] {
        guard size1 <= size2 else {
            throw MerkleError(.sizesOutOfOrder, "size1 \(size1) is greater than size2 \(size2)")
        }
        if size1 == 0 || size1 == size2 { return [] }
        var proof: [MerkleHash] = []
        var start: UInt64 = 0, end = size2, m = size1
        var completeSubtree = true
        while true {
            let n = end - start
            if m == n {
                if !completeSubtree { proof.append(try mth(start, end, node)) }
                break
            }
            let k = splitPoint(n)
            if m <= k {
                proof.append(try mth(start + k, end, node))
                end = start + k
            } else {
                proof.append(try mth(start, start + k, node))
                start += k
                m -= k
                completeSubtree = false
            }
        }
        proof.reverse()
        return proof
    }
}

/// An incremental Merkle tree builder holding only the perfect subtrees on the right
/// border (a compact range starting at 0): O(log n) memory.
public struct CompactRange: Sendable, Hashable {
    /// Number of leaves appended.
    public private(set) var size: UInt64
    /// Roots of the perfect subtrees that make up the tree, largest (leftmost) first;
    /// one per set bit of `size`.
    public private(set) var hashes: [MerkleHash]

    public init() {
        size = 0
        hashes = []
    }

    /// Restores a range saved from `size` and `hashes`; nil if the counts disagree.
    public init?(size: UInt64, hashes: [MerkleHash]) {
        guard hashes.count == size.nonzeroBitCount else { return nil }
        self.size = size
        self.hashes = hashes
    }

    public mutating func append(_ leaf: MerkleHash) {
        var h = leaf
        var s = size
        while s & 1 == 1 {
            h = Merkle.nodeHash(hashes.removeLast(), h)
            s >>= 1
        }
        hashes.append(h)
        size += 1
    }

    /// MTH of every leaf appended so far (the empty root for none).
    public func root() -> MerkleHash {
        guard var r = hashes.last else { return Merkle.emptyRoot }
        for h in hashes.dropLast().reversed() { r = Merkle.nodeHash(h, r) }
        return r
    }
}
