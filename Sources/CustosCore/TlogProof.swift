/// Why a `c2sp.org/tlog-proof@v1` text was rejected. `line` is 1-based.
public struct TlogProofError: Error, Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var reason: String

    public init(line: Int, reason: String) {
        self.line = line
        self.reason = reason
    }

    public var description: String { "tlog-proof line \(line): \(reason)" }
}

/// A C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): index, inclusion proof and the signed
/// checkpoint, verbatim. Signatures are not checked here.
public struct TlogProof: Sendable, Equatable {
    public static let header = "c2sp.org/tlog-proof@v1"

    /// Opaque, unauthenticated extra data (the `extra` line), if present.
    public var extra: [UInt8]?
    /// Zero-based index of the entry in the log.
    public var index: UInt64
    /// Inclusion proof from the leaf's sibling up to the root's child.
    public var proof: [MerkleHash]
    /// The signed checkpoint note, verbatim, including its signature lines and final newline.
    public var checkpoint: String

    public init(extra: [UInt8]? = nil, index: UInt64, proof: [MerkleHash], checkpoint: String) {
        self.extra = extra
        self.index = index
        self.proof = proof
        self.checkpoint = checkpoint
    }

    public func formatted() -> String {
        var s = Self.header + "\n"
        if let extra { s += "extra " + Base64.encode(extra) + "\n" }
        s += "index \(index)\n"
        for h in proof { s += h.base64 + "\n" }
        s += "\n"
        s += checkpoint
        return s
    }

    /// Strict parser. The checkpoint is everything after the first empty line; it must be
    /// non-empty and end with a newline, as every note does.
    public static func parse(_ text: String) throws(TlogProofError) -> TlogProof {
        let bytes = Array(text.utf8)
        var pos = 0
        var lineNo = 0

        /// The next line without its "\n", or nil at the end of the text without a newline.
        func nextLine() throws(TlogProofError) -> Substring {
            lineNo += 1
            guard let nl = bytes[pos...].firstIndex(of: UInt8(ascii: "\n")) else {
                throw TlogProofError(line: lineNo,
                    reason: pos == bytes.count ? "unexpected end of proof" : "line is not terminated by a newline")
            }
            let line = String(decoding: bytes[pos..<nl], as: UTF8.self)
            pos = nl + 1
            return Substring(line)
        }

        let first = try nextLine()
        guard first == header else {
            throw TlogProofError(line: lineNo, reason: "expected header \"\(header)\"")
        }

        var line = try nextLine()
        var extra: [UInt8]?
        if line.hasPrefix("extra ") {
            guard let e = Base64.decode(line.dropFirst(6)) else {
                throw TlogProofError(line: lineNo, reason: "extra data is not valid base64")
            }
            extra = e
            line = try nextLine()
        }

        guard line.hasPrefix("index ") else {
            throw TlogProofError(line: lineNo, reason: "expected \"index <n>\"")
        }
        guard let index = TilePath.parseDecimal(line.dropFirst(6), max: UInt64.max) else {
            throw TlogProofError(line: lineNo,
                reason: "index must be a decimal integer without sign or leading zeros that fits in 64 bits")
        }

        var proof: [MerkleHash] = []
        while true {
            line = try nextLine()
            if line.isEmpty { break }
            guard let h = MerkleHash(base64: line) else {
                throw TlogProofError(line: lineNo,
                    reason: "proof line is not the base64 of a 32-byte hash (or the empty line before the checkpoint is missing)")
            }
            proof.append(h)
        }
        guard proof.count <= 64 else {
            throw TlogProofError(line: lineNo, reason: "inclusion proof has \(proof.count) hashes; at most 64 are possible")
        }

        let rest = bytes[pos...]
        guard !rest.isEmpty else {
            throw TlogProofError(line: lineNo + 1, reason: "missing checkpoint after the empty line")
        }
        guard rest.last == UInt8(ascii: "\n") else {
            throw TlogProofError(line: lineNo + 1 + rest.filter { $0 == UInt8(ascii: "\n") }.count,
                reason: "checkpoint does not end with a newline")
        }
        guard rest.first != UInt8(ascii: "\n") else {
            throw TlogProofError(line: lineNo + 1, reason: "unexpected second empty line before the checkpoint")
        }
        let checkpoint = String(decoding: rest, as: UTF8.self)
        return TlogProof(extra: extra, index: index, proof: proof, checkpoint: checkpoint)
    }
}
