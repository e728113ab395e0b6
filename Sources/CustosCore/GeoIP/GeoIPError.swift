/// What is wrong with a MaxMind DB file (or a lookup in one), and where.
///
/// `message` is a complete sentence naming the problem and, when it is tied to a place in the
/// file, the absolute byte offset (also in `offset`).
public struct GeoIPError: Error, Equatable, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The file could not be read (only from `init(contentsOf:)`).
        case io
        /// The metadata marker is missing, or the metadata is malformed or fails validation.
        case metadata
        /// The search tree is malformed: a record points into the separator or past the data
        /// section, or the tree is deeper than the address has bits.
        case searchTree
        /// A value in the data section is malformed (bad type, size, pointer, UTF-8, nesting...).
        case data
        /// An IPv6 address (not v4-mapped) was looked up in an IPv4-only database. Not a file defect.
        case ipv6LookupInIPv4Database
    }

    public let kind: Kind
    public let message: String
    /// Absolute byte offset in the file the problem was found at, when there is one.
    public let offset: Int?

    public init(_ kind: Kind, _ message: String, offset: Int? = nil) {
        self.kind = kind
        self.message = message
        self.offset = offset
    }

    public var description: String { message }

    /// True for defects of the file itself (everything but a lookup of the wrong address family).
    public var isCorruption: Bool { kind != .ipv6LookupInIPv4Database && kind != .io }
}
