import Crypto
import Foundation

/// One leak found in a log. Never carries the secret's value: only its name, where it was
/// seen, how it was encoded, how much of it is there, and an HMAC-SHA256 fingerprint.
public struct Finding: Sendable, Hashable, Codable {
    /// The secret's name (`--secret-env NAME`, the key in a secrets file) or, for a
    /// generic detector, the detector's name (e.g. `aws-access-key-id`).
    public var secretName: String
    /// The secret's path in the secret store, when the secrets file gave one.
    public var secretPath: String?
    /// The generic detector that matched (nil for a known secret).
    public var detector: String?
    /// The encoding that matched: `raw`, `base64-std/offset0`…`offset2`, `base64-url/offsetN`,
    /// `hex-lower`, `hex-upper`, `percent`, `form`, `json-escaped`, `json-escaped-slash`,
    /// `shell-single`, `shell-double`, `shell-backslash`, `xml-escaped`, `html-escaped`,
    /// or `detector`.
    public var encoding: String
    /// The match runs over more than one line of the log (wrapped base64, a split value).
    public var splitLines: Bool
    /// Only part of the secret is there (at least 12 bytes of a high-entropy secret).
    public var truncated: Bool
    /// 1-based line and byte column of the first matched byte in the original log.
    public var line: Int
    public var column: Int
    /// Byte offset of the first matched byte in the original log, and the original bytes
    /// the match spans (including removed timestamps, escapes and newlines in between).
    public var offset: Int
    public var length: Int
    /// Bytes of the secret the match covers, and the secret's length.
    public var matchedBytes: Int
    public var totalBytes: Int
    /// `hmac-sha256:` + hex of HMAC-SHA256(fingerprint key, secret value).
    public var fingerprint: String

    /// `encoding` plus `+split-lines` / `+truncated` when they apply (e.g. `raw+split-lines`).
    public var variant: String {
        var v = encoding
        if splitLines { v += "+split-lines" }
        if truncated { v += "+truncated" }
        return v
    }

    public init(secretName: String, secretPath: String?, detector: String?, encoding: String, splitLines: Bool,
                truncated: Bool, line: Int, column: Int, offset: Int, length: Int, matchedBytes: Int,
                totalBytes: Int, fingerprint: String) {
        self.secretName = secretName; self.secretPath = secretPath; self.detector = detector
        self.encoding = encoding; self.splitLines = splitLines; self.truncated = truncated
        self.line = line; self.column = column; self.offset = offset; self.length = length
        self.matchedBytes = matchedBytes; self.totalBytes = totalBytes; self.fingerprint = fingerprint
    }
}

/// The key fingerprints are computed with. A stable key (from the environment) makes the
/// fingerprints of one secret equal across runs; a random one only within a run.
public struct FingerprintKey: Sendable {
    let key: SymmetricKey
    public let isRandom: Bool
    public init(bytes: [UInt8]) { key = SymmetricKey(data: bytes); isRandom = false }
    public static func random() -> FingerprintKey { FingerprintKey(SymmetricKey(size: .bits256)) }
    private init(_ k: SymmetricKey) { key = k; isRandom = true }

    public func fingerprint(_ value: [UInt8]) -> String {
        let mac = HMAC<SHA256>.authenticationCode(for: value, using: key)
        let hex: [UInt8] = Array("0123456789abcdef".utf8)
        var out = [UInt8](); out.reserveCapacity(64)
        for b in mac { out.append(hex[Int(b >> 4)]); out.append(hex[Int(b & 15)]) }
        return "hmac-sha256:" + String(decoding: out, as: UTF8.self)
    }
}
