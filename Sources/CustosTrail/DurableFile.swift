#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Small durable-file helpers for other modules (the witness state, stored cosignatures),
/// with the same guarantees the trail's own files get.
public enum DurableFile {
    /// Atomically replaces `path` with `bytes`: temp file, fsync, rename, fsync directory.
    /// Missing parent directories are created.
    public static func replace(_ path: String, _ bytes: [UInt8], mode: mode_t = 0o644) throws {
        try FileIO.replaceAtomically(path, bytes, mode: mode)
    }

    /// The file's bytes, nil when it does not exist; throws when it is larger than `limit`
    /// or cannot be read.
    public static func read(_ path: String, limit: Int = 1 << 20) throws -> [UInt8]? {
        try FileIO.readFile(path, limit: limit)
    }

    /// Creates the directory and its parents (mode 0755).
    public static func makeDirectories(_ path: String) throws { try FileIO.mkdirs(path) }

    /// Names in a directory (none when it does not exist).
    public static func list(_ path: String) -> [String] { FileIO.listDirectory(path) }
}
