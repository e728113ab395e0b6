import Crypto

/// A SHA-256 Merkle tree hash (RFC 9162 §2.1), 32 bytes held inline.
public struct MerkleHash: Hashable, Sendable, CustomStringConvertible {
    public var storage: SIMD32<UInt8>

    public init(storage: SIMD32<UInt8>) { self.storage = storage }

    /// Exactly 32 bytes, or nil.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == 32 else { return nil }
        var s = SIMD32<UInt8>()
        var i = 0
        for b in bytes { s[i] = b; i += 1 }
        self.storage = s
    }

    init(digest: SHA256.Digest) {
        var s = SIMD32<UInt8>()
        digest.withUnsafeBytes { raw in
            withUnsafeMutableBytes(of: &s) { $0.copyMemory(from: raw) }
        }
        self.storage = s
    }

    public var bytes: [UInt8] { Swift.withUnsafeBytes(of: storage) { Array($0) } }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try Swift.withUnsafeBytes(of: storage, body)
    }

    /// Standard base64 (RFC 4648 §4), as checkpoints and proofs print hashes.
    public var base64: String { Base64.encode(bytes) }

    public init?(base64: some StringProtocol) {
        guard let b = Base64.decode(base64), let h = MerkleHash(bytes: b) else { return nil }
        self = h
    }

    public var hex: String { Hex.encode(bytes) }
    public var description: String { hex }
}
