import Crypto
import CustosCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What an API token may do. Least privilege: each role reaches only its own endpoints.
public enum Role: String, Sendable, CaseIterable {
    /// Append events (`POST /v1/ingest`); reads nothing.
    case ingest
    /// Read: events, alerts, the trail's tiles and checkpoint, metrics.
    case auditor
    /// Silences (and, later, configuration); reads metrics.
    case admin
}

/// API tokens, kept as SHA-256 hashes only (`<data>/keys/tokens`, mode 0600, one per line:
/// `sha256:<hex> <role> <name>`). A presented token is hashed and compared with every stored
/// hash in constant time, so neither timing nor the file reveals a token.
public struct TokenStore: Sendable {
    public struct Entry: Sendable, Equatable {
        public var hash: [UInt8]
        public var role: Role
        public var name: String
    }
    public private(set) var entries: [Entry]

    public static func defaultPath(data: String) -> String { data + "/keys/tokens" }
    public static let prefix = "custos_"

    public init(entries: [Entry] = []) { self.entries = entries }

    /// The role of `token`, or nil. Every entry is compared (no early exit).
    public func role(of token: String) -> (Role, String)? {
        let h = Array(SHA256.hash(data: Array(token.utf8)))
        var found: Entry?
        for e in entries {
            if Self.constantTimeEqual(e.hash, h) && found == nil { found = e }
        }
        return found.map { ($0.role, $0.name) }
    }

    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var diff: UInt8 = 0
        for i in 0..<a.count { diff |= a[i] ^ b[i] }
        return diff == 0
    }

    /// A new random token (256 bits, base64url): shown once, never stored.
    public static func generate() -> String {
        var g = SystemRandomNumberGenerator()
        let bytes = (0..<32).map { _ in UInt8.random(in: 0...255, using: &g) }
        let b64 = Data(bytes).base64EncodedString().replacingOccurrences(of: "+", with: "-")
            .replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
        return prefix + b64
    }

    public static func entry(token: String, role: Role, name: String) -> Entry {
        Entry(hash: Array(SHA256.hash(data: Array(token.utf8))), role: role, name: name)
    }

    /// Reads a tokens file. Errors name the line, never its content.
    public static func load(path: String) throws -> TokenStore {
        guard let data = FileManager.default.contents(atPath: path) else { return TokenStore() }
        var st = stat()
        if stat(path, &st) == 0, st.st_mode & 0o077 != 0 {
            throw IngestError("\(path) is readable by group or others (mode \(String(st.st_mode & 0o777, radix: 8))); chmod 600 it")
        }
        var out: [Entry] = []
        for (n, line) in String(decoding: data, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let t = line.trimmingCharacters(in: .whitespaces)
            if t.isEmpty || t.hasPrefix("#") { continue }
            let parts = t.split(separator: " ", maxSplits: 2).map(String.init)
            guard parts.count == 3, parts[0].hasPrefix("sha256:"), let hash = Hex.decode(parts[0].dropFirst(7)), hash.count == 32,
                  let role = Role(rawValue: parts[1]) else {
                throw IngestError("\(path):\(n + 1): expected `sha256:<64 hex> <\(Role.allCases.map(\.rawValue).joined(separator: "|"))> <name>`")
            }
            out.append(Entry(hash: hash, role: role, name: parts[2]))
        }
        return TokenStore(entries: out)
    }

    /// Appends an entry to the tokens file (created with mode 0600).
    public static func append(_ e: Entry, path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw IngestError("cannot open \(path): \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        let line = Array("sha256:\(Hex.encode(e.hash)) \(e.role.rawValue) \(e.name)\n".utf8)
        let n = line.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard n == line.count, fsync(fd) == 0 else { throw IngestError("cannot write \(path): \(String(cString: strerror(errno)))") }
    }
}
