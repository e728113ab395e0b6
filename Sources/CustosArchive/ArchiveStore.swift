import CustosCore
import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Where archived entry bundles go. Keys are relative paths (`tile/entries/000`,
/// `manifest/...`); each object is written once and protected against change.
public protocol ArchiveStore: Sendable {
    var description: String { get }
    /// Writes `bytes` under `key`, protected until `retainUntil`. Returns a note for the
    /// operator (e.g. that the file system does not support the immutable flag), or nil.
    func put(_ key: String, _ bytes: [UInt8], retainUntil: Date) async throws -> String?
    /// The object's bytes, or nil when there is none.
    func get(_ key: String) async throws -> [UInt8]?
    /// Why the object is not protected as `put` left it (nil: it is).
    func protectionProblem(_ key: String, retainUntil: Date, now: Date) async throws -> String?
}

public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A local directory: files written once, fsynced, then made read-only (mode 0444) and
/// immutable (`chattr +i`: FS_IOC_SETFLAGS with FS_IMMUTABLE_FL) where the file system and
/// the process's capabilities allow it (CAP_LINUX_IMMUTABLE; otherwise a note says so).
public struct LocalArchiveStore: ArchiveStore {
    public var root: String
    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }
    public var description: String { "local:\(root)" }

    func path(_ key: String) -> String { root + "/" + key }

    public func put(_ key: String, _ bytes: [UInt8], retainUntil: Date) async throws -> String? {
        let p = path(key)
        if let existing = FileManager.default.contents(atPath: p) {
            // Written by an earlier run that stopped before recording it: same bytes are fine.
            guard [UInt8](existing) == bytes else {
                throw ArchiveError("\(p) already exists with different contents; refusing to overwrite an archived file")
            }
            return nil
        }
        let dir = (p as NSString).deletingLastPathComponent
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw ArchiveError("cannot create \(dir): \(error)")
        }
        let tmp = p + ".tmp"
        unlink(tmp)
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ArchiveError("cannot create \(tmp): \(String(cString: strerror(errno)))") }
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + done, bytes.count - done) }
            if n < 0 { if errno == EINTR { continue }; close(fd); throw ArchiveError("cannot write \(tmp): \(String(cString: strerror(errno)))") }
            done += n
        }
        guard fsync(fd) == 0 else { close(fd); throw ArchiveError("cannot fsync \(tmp): \(String(cString: strerror(errno)))") }
        close(fd)
        guard chmod(tmp, 0o444) == 0, rename(tmp, p) == 0 else {
            throw ArchiveError("cannot finish \(p): \(String(cString: strerror(errno)))")
        }
        let dfd = open(dir, O_RDONLY | O_CLOEXEC)
        if dfd >= 0 { _ = fsync(dfd); close(dfd) }
        switch Self.setImmutable(p, true) {
        case .set: return nil
        case .unsupported(let why): return "immutable flag not set on \(description) files: \(why) (files are read-only, mode 0444)"
        }
    }

    public func get(_ key: String) async throws -> [UInt8]? {
        let p = path(key)
        guard FileManager.default.fileExists(atPath: p) else { return nil }
        guard let d = FileManager.default.contents(atPath: p) else { throw ArchiveError("cannot read \(p)") }
        return [UInt8](d)
    }

    public func protectionProblem(_ key: String, retainUntil: Date, now: Date) async throws -> String? {
        var st = stat()
        guard stat(path(key), &st) == 0 else { return "cannot stat: \(String(cString: strerror(errno)))" }
        if st.st_mode & 0o222 != 0 { return "is writable (mode \(String(st.st_mode & 0o777, radix: 8))); archived files must be read-only" }
        return nil
    }

    public enum Immutable: Equatable, Sendable { case set, unsupported(String) }

    /// Sets or clears FS_IMMUTABLE_FL (what `chattr +i`/`-i` does).
    @discardableResult
    public static func setImmutable(_ path: String, _ on: Bool) -> Immutable {
        #if os(Linux)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return .unsupported("cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var flags: Int = 0
        guard c_ioctl(fd, fsIocGetFlags, &flags) == 0 else { return .unsupported("FS_IOC_GETFLAGS: \(String(cString: strerror(errno)))") }
        var f = Int32(truncatingIfNeeded: flags)
        f = on ? (f | fsImmutableFl) : (f & ~fsImmutableFl)
        var newFlags = Int(f)
        guard c_ioctl(fd, fsIocSetFlags, &newFlags) == 0 else { return .unsupported("FS_IOC_SETFLAGS: \(String(cString: strerror(errno)))") }
        return .set
        #else
        return .unsupported("not Linux")
        #endif
    }

    /// Whether FS_IMMUTABLE_FL is set on `path` (nil when it cannot be read).
    public static func isImmutable(_ path: String) -> Bool? {
        #if os(Linux)
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var flags: Int = 0
        guard c_ioctl(fd, fsIocGetFlags, &flags) == 0 else { return nil }
        return Int32(truncatingIfNeeded: flags) & fsImmutableFl != 0
        #else
        return nil
        #endif
    }
}

#if os(Linux)
// _IOR('f', 1, long) and _IOW('f', 2, long) on 64-bit Linux; the kernel reads and writes an int.
private let fsIocGetFlags: UInt = 0x8008_6601
private let fsIocSetFlags: UInt = 0x4008_6602
private let fsImmutableFl: Int32 = 0x10
// ioctl(2) is variadic in C; its third argument is one pointer here.
@_silgen_name("ioctl")
private func c_ioctl(_ fd: Int32, _ request: UInt, _ arg: UnsafeMutableRawPointer) -> Int32
#endif

/// S3-compatible object storage: every object PUT with Object Lock in COMPLIANCE mode
/// (nobody, the root account included, can delete or overwrite it before the date), and
/// checked by reading back its retention (`GET ?retention`).
public struct S3ArchiveStore: ArchiveStore {
    public var client: S3Client
    public var bucket: String
    public var prefix: String
    public init(client: S3Client, bucket: String, prefix: String) {
        self.client = client; self.bucket = bucket
        var p = prefix
        while p.hasPrefix("/") { p.removeFirst() }
        while p.hasSuffix("/") { p.removeLast() }
        self.prefix = p
    }
    public var description: String { "s3://\(bucket)" + (prefix.isEmpty ? "" : "/\(prefix)") }
    func key(_ k: String) -> String { prefix.isEmpty ? k : prefix + "/" + k }

    public func put(_ k: String, _ bytes: [UInt8], retainUntil: Date) async throws -> String? {
        try await client.putLocked(bucket: bucket, key: key(k), body: bytes, retainUntil: retainUntil)
        return nil
    }
    public func get(_ k: String) async throws -> [UInt8]? {
        try await client.get(bucket: bucket, key: key(k))
    }
    public func protectionProblem(_ k: String, retainUntil: Date, now: Date) async throws -> String? {
        guard let r = try await client.retention(bucket: bucket, key: key(k)) else {
            return "has no Object Lock retention"
        }
        guard r.mode == "COMPLIANCE" else { return "Object Lock mode is \(r.mode), not COMPLIANCE" }
        guard let until = r.until else { return "Object Lock retention has no RetainUntilDate" }
        if until < retainUntil.addingTimeInterval(-1) {
            return "Object Lock retains until \(S3Client.iso8601(until)), earlier than the \(S3Client.iso8601(retainUntil)) it was archived with"
        }
        if until <= now { return "Object Lock retention ended \(S3Client.iso8601(until))" }
        return nil
    }
}

/// `local:PATH` or `s3://bucket/prefix`.
public enum ArchiveTarget {
    public static func open(_ spec: String, endpoint: String?, region: String?) throws -> any ArchiveStore {
        if spec.hasPrefix("local:") {
            let p = String(spec.dropFirst(6))
            guard !p.isEmpty else { throw ArchiveError("--to local:PATH needs a path") }
            let abs = p.hasPrefix("/") ? p : FileManager.default.currentDirectoryPath + "/" + p
            return LocalArchiveStore(root: abs)
        }
        if spec.hasPrefix("s3://") {
            let rest = spec.dropFirst(5)
            let bucket = String(rest.prefix { $0 != "/" })
            guard !bucket.isEmpty else { throw ArchiveError("--to s3://BUCKET/PREFIX needs a bucket") }
            let prefix = String(rest.dropFirst(bucket.count))
            let client: S3Client
            do { client = try S3Client.fromEnvironment(endpoint: endpoint, region: region) } catch { throw ArchiveError("\(error)") }
            return S3ArchiveStore(client: client, bucket: bucket, prefix: prefix)
        }
        throw ArchiveError("--to must be local:PATH or s3://BUCKET/PREFIX (got \(spec.prefix(200)))")
    }
}
