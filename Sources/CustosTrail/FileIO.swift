#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Errors from the trail's storage. `description` says what and where; nothing secret ever
/// reaches it (entries are not quoted).
public struct TrailError: Error, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let raw: String
        public var description: String { raw }
        public static let io = Code(raw: "io")
        public static let notInitialized = Code(raw: "not-initialized")
        public static let damaged = Code(raw: "damaged")
        public static let key = Code(raw: "key")
        public static let entryTooLarge = Code(raw: "entry-too-large")
        public static let invalidArgument = Code(raw: "invalid-argument")
    }
    public var code: Code
    public var message: String
    public var file: String
    public var line: Int
    public init(_ code: Code, _ message: String, file: String = #fileID, line: Int = #line) {
        self.code = code; self.message = message; self.file = file; self.line = line
    }
    public var description: String { message }
    public var debugDescription: String { "TrailError(\(code)): \(message) [\(file):\(line)]" }
}

/// Minimal POSIX file helpers with explicit durability.
package enum FileIO {
    static func errnoText() -> String { String(cString: strerror(errno)) }

    package static func mkdirs(_ path: String) throws {
        var cur = path.hasPrefix("/") ? "" : "."
        for comp in path.split(separator: "/") {
            cur += "/" + comp
            if mkdir(cur, 0o755) != 0 && errno != EEXIST {
                throw TrailError(.io, "cannot create directory \(cur): \(errnoText())")
            }
        }
    }

    static func sysRead(_ fd: Int32, _ p: UnsafeMutableRawPointer, _ n: Int) -> Int { read(fd, p, n) }

    package static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    package static func readFile(_ path: String, limit: Int = 64 << 20) throws -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        if fd < 0 {
            if errno == ENOENT { return nil }
            throw TrailError(.io, "cannot open \(path): \(errnoText())")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw TrailError(.io, "cannot stat \(path): \(errnoText())") }
        let size = Int(st.st_size)
        guard size <= limit else { throw TrailError(.damaged, "\(path) is \(size) bytes, more than the \(limit) allowed") }
        var out = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + done, size - done) }
            if n < 0 { if errno == EINTR { continue }; throw TrailError(.io, "cannot read \(path): \(errnoText())") }
            if n == 0 { break }
            done += n
        }
        if done < size { out.removeLast(size - done) }
        return out
    }

    /// A read buffer kept across files (one per thread), so that reading many files of about
    /// the same size allocates and clears no memory per file.
    final class ReadBuffer {
        private var base: UnsafeMutableRawPointer?
        private var capacity = 0
        init() {}
        deinit { base?.deallocate() }

        /// The bytes of `path` (valid until the next call), or nil when it does not exist.
        /// Same errors and `limit` as `FileIO.readFile`.
        func read(_ path: String, limit: Int = 64 << 20) throws -> UnsafeRawBufferPointer? {
            let fd = open(path, O_RDONLY | O_CLOEXEC)
            if fd < 0 {
                if errno == ENOENT { return nil }
                throw TrailError(.io, "cannot open \(path): \(errnoText())")
            }
            defer { close(fd) }
            var st = stat()
            guard fstat(fd, &st) == 0 else { throw TrailError(.io, "cannot stat \(path): \(errnoText())") }
            let size = Int(st.st_size)
            guard size <= limit else { throw TrailError(.damaged, "\(path) is \(size) bytes, more than the \(limit) allowed") }
            if size > capacity || base == nil {
                base?.deallocate()
                capacity = max(size, 1)
                base = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            }
            let p = base!
            var done = 0
            while done < size {
                let n = FileIO.sysRead(fd, p + done, size - done)
                if n < 0 { if errno == EINTR { continue }; throw TrailError(.io, "cannot read \(path): \(errnoText())") }
                if n == 0 { break }
                done += n
            }
            return UnsafeRawBufferPointer(start: p, count: done)
        }
    }

    /// Writes (truncating) without syncing; the caller makes the batch durable.
    static func writeFile(_ path: String, _ bytes: UnsafeRawBufferPointer, mode: mode_t = 0o644, sync: Bool = false, exclusive: Bool = false) throws {
        var flags = O_WRONLY | O_CREAT | O_CLOEXEC
        flags |= exclusive ? O_EXCL : O_TRUNC
        let fd = open(path, flags, mode)
        if fd < 0 {
            if errno == ENOENT, let slash = path.lastIndex(of: "/") {
                try mkdirs(String(path[..<slash]))
                return try writeFile(path, bytes, mode: mode, sync: sync, exclusive: exclusive)
            }
            throw TrailError(.io, "cannot create \(path): \(errnoText())")
        }
        defer { close(fd) }
        var done = 0
        while done < bytes.count {
            let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
            if n < 0 { if errno == EINTR { continue }; throw TrailError(.io, "cannot write \(path): \(errnoText())") }
            done += n
        }
        if sync, fsync(fd) != 0 { throw TrailError(.io, "cannot fsync \(path): \(errnoText())") }
    }

    static func writeFile(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644, sync: Bool = false, exclusive: Bool = false) throws {
        try bytes.withUnsafeBytes { try writeFile(path, $0, mode: mode, sync: sync, exclusive: exclusive) }
    }

    package static func fsyncPath(_ path: String) throws {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw TrailError(.io, "cannot open \(path) to sync: \(errnoText())") }
        defer { close(fd) }
        guard fsync(fd) == 0 else { throw TrailError(.io, "cannot fsync \(path): \(errnoText())") }
    }

    /// Atomically replaces `path` with `bytes`: temp file, fsync, rename, fsync directory.
    package static func replaceAtomically(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        let tmp = path + ".tmp"
        try writeFile(tmp, bytes, mode: mode, sync: true)
        try renameDurably(tmp, to: path)
    }

    /// Renames `from` (already durable) to `path` and makes the new name durable (an fsync of
    /// its directory).
    static func renameDurably(_ from: String, to path: String) throws {
        guard rename(from, path) == 0 else { throw TrailError(.io, "cannot rename \(from): \(errnoText())") }
        try fsyncPath(directory(of: path))
    }

    package static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// Makes everything written so far on the file systems holding `roots` durable (data and
    /// metadata: new files and their directory entries). On Linux one syncfs(2) per file
    /// system replaces an fsync per tile: usually one, two when the checkpoint history
    /// (`checkpoints/`) sits on another mount than `trail/`. Elsewhere each listed file and
    /// directory is fsynced.
    static func syncAll(under roots: [String], files: [String], directories: Set<String>) throws {
        #if os(Linux)
        for root in try fileSystemRoots(roots) {
            let fd = open(root, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else { throw TrailError(.io, "cannot open \(root) to sync: \(errnoText())") }
            defer { close(fd) }
            guard c_syncfs(fd) == 0 else { throw TrailError(.io, "syncfs failed for \(root): \(errnoText())") }
        }
        #else
        for f in files { try fsyncPath(f) }
        for d in directories { try fsyncPath(d) }
        #endif
    }

    /// The first of `paths` on each distinct file system (device), in order.
    static func fileSystemRoots(_ paths: [String]) throws -> [String] {
        var seen = Set<UInt64>(), out: [String] = []
        for path in paths {
            var st = stat()
            guard stat(path, &st) == 0 else { throw TrailError(.io, "cannot stat \(path): \(errnoText())") }
            if seen.insert(UInt64(st.st_dev)).inserted { out.append(path) }
        }
        return out
    }

    /// Removes `path` and everything under it, as far as it can (best effort: what stays is
    /// only clutter). POSIX calls, not `FileManager`: each commit that completes a tile removes
    /// that tile's superseded partial versions, and Foundation's walk cost more than the
    /// tile's own write.
    package static func removeTree(_ path: String) {
        if unlink(path) == 0 || errno == ENOENT { return }
        guard let dir = opendir(path) else { return }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        closedir(dir)
        for name in names { removeTree(path + "/" + name) }
        rmdir(path)
    }

    package static func listDirectory(_ path: String) -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
    }
}

#if os(Linux)
@_silgen_name("syncfs")
private func c_syncfs(_ fd: Int32) -> Int32
#endif
