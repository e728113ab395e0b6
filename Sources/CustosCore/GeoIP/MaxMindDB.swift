/// A reader for MaxMind DB (`.mmdb`) files: GeoLite2, GeoIP2, DB-IP and other databases in the
/// format described at https://maxmind.github.io/MaxMind-DB/ (binary format version 2).
///
/// The reader holds the file's bytes and decodes lazily: opening finds and validates the metadata
/// and checks that the search tree fits; each lookup walks the tree and decodes only the record it
/// reaches. Nothing here reads files (except the `init(contentsOf:)` convenience) and nothing
/// traps on bad input: every defect is reported as a `GeoIPError`, at open or at the lookup that
/// reaches it; `verify()` checks the whole file up front.
///
/// Limits on one decoded value: nesting at most 32 deep, at most 100,000 values (pointer
/// fan-out and cycles end there), at most 64 MiB of string and bytes payload. Pointers must
/// point inside their section and never at another pointer. Requires a 64-bit platform.
///
/// Typical costs (release build, GeoIP2-City test database, one core): a tree walk ~0.2 µs,
/// `location` ~2 µs, a path lookup ~0.5 µs, a full `lookup` of a City record ~7 µs.
public struct MaxMindDB: Sendable {
    /// The database's metadata, validated at open.
    public struct Metadata: Sendable, Equatable {
        public let nodeCount: Int
        /// Bits per search tree record: 24, 28 or 32.
        public let recordSize: Int
        /// 4 or 6.
        public let ipVersion: Int
        public let databaseType: String
        public let languages: [String]
        /// `description`: language code to text.
        public let descriptions: [String: String]
        /// Seconds since the Unix epoch; any `UInt64`, not checked for plausibility.
        public let buildEpoch: UInt64
        public let binaryFormatMajorVersion: Int
        public let binaryFormatMinorVersion: Int
        /// The whole metadata map as decoded.
        public let raw: MMDBValue
    }

    /// The result of a lookup with the network the address fell in.
    public struct LookupResult: Sendable, Equatable {
        /// The record, or nil when the address is not in the database.
        public let value: MMDBValue?
        /// The network of the tree leaf the address reached (also when not found). Its family is
        /// the looked-up address's; for an IPv4 address in an IPv6 tree it counts IPv4 bits.
        public let network: CIDR
        public var prefixLength: Int { network.prefixLength }
    }

    public let metadata: Metadata
    let bytes: [UInt8]
    let nodeCount: Int
    let recordSize: Int
    let nodeBytes: Int
    let treeSize: Int
    let dataStart: Int
    let dataEnd: Int
    /// Where IPv4 lookups start in an IPv6 tree: the node after following `::/96`, and how many
    /// bits that took (fewer than 96 if the walk left the tree early).
    let ipv4Start: Int
    let ipv4StartDepth: Int

    static let marker: [UInt8] = [0xAB, 0xCD, 0xEF] + Array("MaxMind.com".utf8)
    static let metadataSearchWindow = 128 * 1024

    // MARK: Opening

    /// Opens a database from its bytes: finds the metadata, validates it, checks the tree fits.
    public init(bytes: [UInt8]) throws(GeoIPError) {
        self.bytes = bytes
        #if arch(i386) || arch(arm) || arch(arm64_32) || arch(wasm32)
        // Offsets and record values (up to 2^32 - 1, plus pointer biases) are held in Int.
        throw GeoIPError(.io, "the MaxMind DB reader needs a 64-bit platform")
        #endif
        guard let markerStart = Self.findMarker(bytes) else {
            throw GeoIPError(.metadata, "metadata marker \\xAB\\xCD\\xEFMaxMind.com not found in the last \(Self.metadataSearchWindow / 1024) KiB of the file (\(bytes.count) bytes); not a MaxMind DB file")
        }
        let metaStart = markerStart + Self.marker.count
        guard metaStart < bytes.count else {
            throw GeoIPError(.metadata, "metadata marker at byte \(markerStart) is not followed by any metadata", offset: markerStart)
        }
        let raw: MMDBValue
        do throws(GeoIPError) {
            raw = try bytes.withUnsafeBufferPointer { (buf) throws(GeoIPError) -> MMDBValue in
                var meta = MMDBDecoder(bytes: buf, start: metaStart, end: buf.count, section: "metadata section")
                return try meta.decode(atSectionOffset: 0)
            }
        } catch {
            throw GeoIPError(.metadata, "metadata: " + error.message, offset: error.offset)
        }
        let m = try Self.validateMetadata(raw, at: metaStart)
        metadata = m
        nodeCount = m.nodeCount
        recordSize = m.recordSize
        nodeBytes = m.recordSize / 4
        let (size, overflow) = m.nodeCount.multipliedReportingOverflow(by: nodeBytes)
        guard !overflow, size <= markerStart, markerStart - size >= 16 else {
            throw GeoIPError(.metadata, "search tree of \(m.nodeCount) nodes × \(m.recordSize / 4) bytes plus the 16-byte separator does not fit before the metadata at byte \(markerStart)", offset: markerStart)
        }
        treeSize = size
        dataStart = size + 16
        dataEnd = markerStart

        var node = 0, depth = 0
        if m.ipVersion == 6 {
            while depth < 96, node < m.nodeCount {
                node = Self.readRecord(bytes, node: node, right: false, recordSize: m.recordSize, nodeBytes: m.recordSize / 4)
                depth += 1
            }
        }
        ipv4Start = node
        ipv4StartDepth = depth
    }

    /// The last marker in the final 128 KiB, as the format asks readers to search.
    static func findMarker(_ b: [UInt8]) -> Int? {
        let n = marker.count
        guard b.count >= n else { return nil }
        let lowest = max(0, b.count - metadataSearchWindow)
        var i = b.count - n
        while i >= lowest {
            if b[i] == 0xAB {
                var k = 1
                while k < n, b[i + k] == marker[k] { k += 1 }
                if k == n { return i }
            }
            i -= 1
        }
        return nil
    }

    static func validateMetadata(_ raw: MMDBValue, at pos: Int) throws(GeoIPError) -> Metadata {
        func bad(_ s: String) -> GeoIPError { GeoIPError(.metadata, "metadata (at byte \(pos)): " + s, offset: pos) }
        guard case .map = raw else { throw bad("is a \(raw.typeName), not a map") }
        func unsigned(_ key: String, max: UInt64) throws(GeoIPError) -> UInt64 {
            guard let v = raw[key] else { throw bad("required key \"\(key)\" is missing") }
            switch v {
            case .uint16, .uint32, .uint64: break
            default: throw bad("\"\(key)\" is a \(v.typeName), not an unsigned integer")
            }
            guard let u = v.uint, u <= max else { throw bad("\"\(key)\" is \(v), out of range (at most \(max))") }
            return u
        }
        let nodeCount = try unsigned("node_count", max: UInt64(UInt32.max))
        let recordSize = try unsigned("record_size", max: UInt64(UInt16.max))
        guard [24, 28, 32].contains(recordSize) else { throw bad("record_size is \(recordSize); must be 24, 28 or 32") }
        let ipVersion = try unsigned("ip_version", max: UInt64(UInt16.max))
        guard ipVersion == 4 || ipVersion == 6 else { throw bad("ip_version is \(ipVersion); must be 4 or 6") }
        let major = try unsigned("binary_format_major_version", max: UInt64(UInt16.max))
        guard major == 2 else { throw bad("binary_format_major_version is \(major); only version 2 is supported") }
        let minor = try unsigned("binary_format_minor_version", max: UInt64(UInt16.max))
        let epoch = try unsigned("build_epoch", max: UInt64.max)
        guard let typeValue = raw["database_type"] else { throw bad("required key \"database_type\" is missing") }
        guard let databaseType = typeValue.string else { throw bad("\"database_type\" is a \(typeValue.typeName), not a string") }
        var languages: [String] = []
        if let l = raw["languages"] {
            guard let items = l.array else { throw bad("\"languages\" is a \(l.typeName), not an array") }
            for item in items {
                guard let s = item.string else { throw bad("\"languages\" holds a \(item.typeName), not a string") }
                languages.append(s)
            }
        }
        var descriptions: [String: String] = [:]
        if let d = raw["description"] {
            guard let entries = d.mapEntries else { throw bad("\"description\" is a \(d.typeName), not a map") }
            for (k, v) in entries {
                guard let s = v.string else { throw bad("\"description\".\"\(k)\" is a \(v.typeName), not a string") }
                descriptions[k] = s
            }
        }
        return Metadata(nodeCount: Int(nodeCount), recordSize: Int(recordSize), ipVersion: Int(ipVersion),
                        databaseType: databaseType, languages: languages, descriptions: descriptions,
                        buildEpoch: epoch, binaryFormatMajorVersion: Int(major),
                        binaryFormatMinorVersion: Int(minor), raw: raw)
    }

    // MARK: Search tree

    /// One record of node `node` (which must be < node_count; the tree is known to fit).
    @inline(__always)
    static func readRecord(_ b: [UInt8], node: Int, right: Bool, recordSize: Int, nodeBytes: Int) -> Int {
        let base = node &* nodeBytes
        switch recordSize {
        case 24:
            let o = right ? base + 3 : base
            return Int(b[o]) << 16 | Int(b[o + 1]) << 8 | Int(b[o + 2])
        case 28:
            if right {
                return Int(b[base + 3] & 0x0F) << 24 | Int(b[base + 4]) << 16 | Int(b[base + 5]) << 8 | Int(b[base + 6])
            }
            return Int(b[base + 3] & 0xF0) << 20 | Int(b[base]) << 16 | Int(b[base + 1]) << 8 | Int(b[base + 2])
        default:
            let o = right ? base + 4 : base
            return Int(b[o]) << 24 | Int(b[o + 1]) << 16 | Int(b[o + 2]) << 8 | Int(b[o + 3])
        }
    }

    @inline(__always)
    func record(_ node: Int, _ bit: Int) -> Int {
        Self.readRecord(bytes, node: node, right: bit != 0, recordSize: recordSize, nodeBytes: nodeBytes)
    }

    /// Maps a record value that is not a node (> node_count) to its data section offset.
    func dataOffset(record: Int, node: Int, forNetwork network: @autoclosure () -> String) throws(GeoIPError) -> Int {
        let past = record - nodeCount
        guard past >= 16 else {
            throw GeoIPError(.searchTree, "search tree record of node \(node) (byte \(node * nodeBytes)) for \(network()) has value \(record), which points into the 16-byte data section separator", offset: node * nodeBytes)
        }
        let offset = past - 16
        guard offset < dataEnd - dataStart else {
            throw GeoIPError(.searchTree, "search tree record of node \(node) (byte \(node * nodeBytes)) for \(network()) points to data offset \(offset), past the end of the data section (\(dataEnd - dataStart) bytes)", offset: node * nodeBytes)
        }
        return offset
    }

    /// Walks the tree for `ip`: the data section offset (nil when not found) and the prefix length
    /// in bits of the looked-up family.
    func find(_ ip: IPAddress) throws(GeoIPError) -> (offset: Int?, prefixLength: Int) {
        var node: Int
        var i: Int
        if metadata.ipVersion == 4 {
            guard ip.isIPv4Mapped else {
                throw GeoIPError(.ipv6LookupInIPv4Database, "cannot look up IPv6 address \(ip) in an IPv4-only database")
            }
            node = 0
            i = 96
        } else if ip.isIPv4 {
            node = ipv4Start
            i = ipv4StartDepth
        } else {
            node = 0
            i = 0
        }
        var last = node
        if node < nodeCount, i < 128 {
            // The tree fits in the file (checked at open) and node < node_count is checked before
            // every read, so every record read is in bounds.
            let n = nodeCount, size = recordSize, nb = nodeBytes
            (node, i, last) = bytes.withUnsafeBufferPointer { b in
                var node = node, i = i, last = last
                while i < 128, node < n {
                    last = node
                    let right = ip.bit(i) != 0
                    let base = node &* nb
                    switch size {
                    case 24:
                        let o = right ? base &+ 3 : base
                        node = Int(b[o]) << 16 | Int(b[o &+ 1]) << 8 | Int(b[o &+ 2])
                    case 28:
                        if right {
                            node = Int(b[base &+ 3] & 0x0F) << 24 | Int(b[base &+ 4]) << 16 | Int(b[base &+ 5]) << 8 | Int(b[base &+ 6])
                        } else {
                            node = Int(b[base &+ 3] & 0xF0) << 20 | Int(b[base]) << 16 | Int(b[base &+ 1]) << 8 | Int(b[base &+ 2])
                        }
                    default:
                        let o = right ? base &+ 4 : base
                        node = Int(b[o]) << 24 | Int(b[o &+ 1]) << 16 | Int(b[o &+ 2]) << 8 | Int(b[o &+ 3])
                    }
                    i &+= 1
                }
                return (node, i, last)
            }
        }
        let prefix = ip.isIPv4 ? max(0, i - 96) : i
        if node < nodeCount {
            let bits = metadata.ipVersion == 4 ? 32 : 128
            throw GeoIPError(.searchTree, "search tree is deeper than \(bits) bits: after the last bit of \(ip) it still reaches node \(node) (from node \(last) at byte \(last * nodeBytes))", offset: last * nodeBytes)
        }
        if node == nodeCount { return (nil, prefix) }
        return (try dataOffset(record: node, node: last, forNetwork: "\(ip)/\(prefix)"), prefix)
    }

    /// Runs `body` with a decoder over the data section.
    func withDataDecoder<R>(_ body: (inout MMDBDecoder) throws(GeoIPError) -> R) throws(GeoIPError) -> R {
        let start = dataStart, end = dataEnd
        return try bytes.withUnsafeBufferPointer { (buf) throws(GeoIPError) -> R in
            var d = MMDBDecoder(bytes: buf, start: start, end: end, section: "data section")
            return try body(&d)
        }
    }

    func decodeData(at offset: Int) throws(GeoIPError) -> MMDBValue {
        try withDataDecoder { (d) throws(GeoIPError) -> MMDBValue in try d.decode(atSectionOffset: offset) }
    }

    // MARK: Lookups

    /// The record for `ip`, or nil when the database has none. IPv4 addresses are looked up in the
    /// IPv4 part of an IPv6 database (`::/96`); an IPv6 address that is not v4-mapped cannot be
    /// looked up in an IPv4 database (error of kind `.ipv6LookupInIPv4Database`).
    public func lookup(_ ip: IPAddress) throws(GeoIPError) -> MMDBValue? {
        guard let offset = try find(ip).offset else { return nil }
        return try decodeData(at: offset)
    }

    /// Like `lookup`, with the network of the tree leaf the address reached.
    public func lookupWithPrefix(_ ip: IPAddress) throws(GeoIPError) -> LookupResult {
        let (offset, prefix) = try find(ip)
        let value = try offset.map { (o: Int) throws(GeoIPError) -> MMDBValue in try decodeData(at: o) }
        return LookupResult(value: value, network: CIDR(unchecked: ip, prefixLength: prefix))
    }

    /// One value inside the record for `ip`, found by following map keys (e.g. `"country",
    /// "iso_code"`) without decoding the rest of the record. Nil when the address is not in the
    /// database, a key is missing, or a value on the way is not a map. Only the values on the path
    /// are checked: a defect elsewhere in the record goes unnoticed (use `lookup` to check it all).
    public func lookup(_ ip: IPAddress, path: String...) throws(GeoIPError) -> MMDBValue? {
        guard let offset = try find(ip).offset else { return nil }
        return try withDataDecoder { (d) throws(GeoIPError) -> MMDBValue? in
            var pos = d.start + offset
            for key in path {
                guard let next = try d.member(key, ofMapAt: pos) else { return nil }
                pos = next
            }
            return try d.value(at: pos)
        }
    }

    /// The offset in the data section of the record for `ip` (nil when not found), without decoding it.
    public func dataSectionOffset(_ ip: IPAddress) throws(GeoIPError) -> Int? {
        try find(ip).offset
    }

    // MARK: Whole-tree walks

    /// Visits each node reachable from the root once (aliases such as `::ffff:0:0/96` that point
    /// at an already visited subtree are not walked again), calling `leaf` for every record that
    /// is not a node and not "not found", with its network. At most 2 × node_count leaves.
    /// Returns the visited-node bitmap.
    @discardableResult
    func walkLeaves(_ leaf: (_ network: CIDR, _ record: Int, _ node: Int) throws(GeoIPError) -> Void) throws(GeoIPError) -> [UInt64] {
        let v4 = metadata.ipVersion == 4
        let bitCount = v4 ? 32 : 128
        var visited = [UInt64](repeating: 0, count: nodeCount / 64 + 1)
        // (record value, bits so far, address high, address low, node the record is in). The
        // address is in 128-bit form for IPv6 trees and in the low 32 bits for IPv4 trees.
        // Right is pushed before left so networks come out in address order.
        var stack: [(Int, Int, UInt64, UInt64, Int)] = [(0, 0, 0, 0, 0)]
        while let (value, depth, hi, lo, parent) = stack.popLast() {
            if value < nodeCount {
                let node = value
                let w = node >> 6, bit = UInt64(1) << UInt64(node & 63)
                if visited[w] & bit != 0 { continue }
                visited[w] |= bit
                guard depth < bitCount else {
                    throw GeoIPError(.searchTree, "search tree is deeper than \(bitCount) bits: node \(node) (byte \(node * nodeBytes)) is reached after all the address bits", offset: node * nodeBytes)
                }
                var h = hi, l = lo
                if v4 {
                    l |= UInt64(1) << UInt64(31 - depth)
                } else if depth < 64 {
                    h |= UInt64(1) << UInt64(63 - depth)
                } else {
                    l |= UInt64(1) << UInt64(127 - depth)
                }
                stack.append((record(node, 1), depth + 1, h, l, node))
                stack.append((record(node, 0), depth + 1, hi, lo, node))
            } else if value > nodeCount {
                let network: CIDR
                if v4 {
                    network = CIDR(unchecked: IPAddress(ipv4: UInt32(truncatingIfNeeded: lo)), prefixLength: depth)
                } else if depth >= 96, hi == 0, lo >> 32 == 0 {
                    // Inside ::/96, where IPv4 addresses are looked up: report the IPv4 network.
                    network = CIDR(unchecked: IPAddress(ipv4: UInt32(truncatingIfNeeded: lo)), prefixLength: depth - 96)
                } else {
                    network = CIDR(unchecked: IPAddress(high: hi, low: lo), prefixLength: depth)
                }
                try leaf(network, value, parent)
            }
        }
        return visited
    }

    /// Every network in the tree that has a record, in address order (aliases of already listed
    /// subtrees, like `::ffff:0:0/96` in GeoIP2 databases, are left out). A network whose tree
    /// record is corrupt is still listed: looking it up throws. Throws if the tree is deeper than
    /// the address has bits.
    public func networks() throws(GeoIPError) -> [CIDR] {
        var out: [CIDR] = []
        try walkLeaves { (n: CIDR, _: Int, _: Int) throws(GeoIPError) in out.append(n) }
        return out
    }

    /// Checks the whole file, more strictly than opening and lookups do:
    /// - the data section separator is 16 zero bytes;
    /// - every record reachable from the root is a node, "not found", or a data record inside the
    ///   data section, and the tree is no deeper than the address bits;
    /// - every one of the node_count nodes is reachable from the root (a tree with orphaned nodes
    ///   does not have the node_count its metadata claims);
    /// - every data record the tree points to decodes;
    /// - the metadata has a non-empty `database_type` and a non-empty `description` map, as the
    ///   Go and Rust readers' `Verify` require.
    /// Lookups do not need this; it is for tools and for accepting a downloaded database before use.
    public func verify() throws(GeoIPError) {
        for k in treeSize..<(treeSize + 16) where bytes[k] != 0 {
            throw GeoIPError(.searchTree, "data section separator at byte \(treeSize) is not 16 zero bytes (byte \(k) is \(bytes[k]))", offset: k)
        }
        var offsets: [Int] = []
        var seen = Set<Int>()
        let visited = try walkLeaves { (network: CIDR, r: Int, node: Int) throws(GeoIPError) in
            let offset = try dataOffset(record: r, node: node, forNetwork: network.description)
            if seen.insert(offset).inserted { offsets.append(offset) }
        }
        var reachable = 0
        var firstOrphan: Int? = nil
        for node in 0..<nodeCount {
            if visited[node >> 6] & (UInt64(1) << UInt64(node & 63)) != 0 {
                reachable += 1
            } else if firstOrphan == nil {
                firstOrphan = node
            }
        }
        if let firstOrphan {
            throw GeoIPError(.searchTree, "search tree has \(nodeCount - reachable) of its \(nodeCount) nodes unreachable from the root (the first is node \(firstOrphan) at byte \(firstOrphan * nodeBytes)); the metadata's node_count does not match the tree", offset: firstOrphan * nodeBytes)
        }
        for offset in offsets {
            _ = try decodeData(at: offset)
        }
        let metaStart = dataEnd + Self.marker.count
        if metadata.databaseType.isEmpty {
            throw GeoIPError(.metadata, "metadata (at byte \(metaStart)): database_type is empty", offset: metaStart)
        }
        if metadata.descriptions.isEmpty {
            throw GeoIPError(.metadata, "metadata (at byte \(metaStart)): description must be a non-empty map of language to text", offset: metaStart)
        }
    }
}
