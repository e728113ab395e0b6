import Foundation
import Testing
@testable import CustosCore

/// The MaxMind DB fixtures in Fixtures/geoip (see the README there).
enum GeoFixture {
    static var dir: URL { Fixture.root.appendingPathComponent("geoip") }
    static func bytes(_ name: String) throws -> [UInt8] { try Fixture.data("geoip/" + name) }
    static func open(_ name: String) throws -> MaxMindDB { try MaxMindDB(bytes: bytes(name)) }
}

func ip(_ text: String) throws -> IPAddress { try #require(IPAddress(text), "\(text) must parse") }

/// Runs `body`, returning the GeoIPError it throws (nil if it does not throw; any other error is
/// recorded as a test failure).
func geoError<T>(_ body: () throws -> T) -> GeoIPError? {
    do {
        _ = try body()
        return nil
    } catch let e as GeoIPError {
        return e
    } catch {
        Issue.record("unexpected error \(error)")
        return nil
    }
}

// MARK: - A small writer for test databases

/// Encodes values in the MaxMind DB data format and assembles small databases, so that the tests
/// can cover record sizes, IPv4 trees, every data type, pointer forms and specific defects the
/// fixture files do not have.
enum MMDBTestWriter {
    static func bigEndian(_ v: UInt64, count: Int) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: v >> UInt64(8 * (count - 1 - $0))) }
    }

    /// The shortest big-endian form (no leading zero bytes; zero is empty).
    static func minimal(_ v: UInt64) -> [UInt8] {
        var n = 0
        while n < 8, v >> UInt64(8 * n) != 0 { n += 1 }
        return bigEndian(v, count: n)
    }

    static func control(_ type: Int, _ size: Int) -> [UInt8] {
        let sizeBits: Int, extra: [UInt8]
        switch size {
        case ..<29: sizeBits = size; extra = []
        case ..<285: sizeBits = 29; extra = [UInt8(size - 29)]
        case ..<65_821: sizeBits = 30; extra = bigEndian(UInt64(size - 285), count: 2)
        default: sizeBits = 31; extra = bigEndian(UInt64(size - 65_821), count: 3)
        }
        var out = [UInt8((type <= 7 ? type : 0) << 5 | sizeBits)]
        if type > 7 { out.append(UInt8(type - 7)) }
        return out + extra
    }

    /// A pointer to `offset`, in the smallest form unless `form` (0...3) is given.
    static func pointer(_ offset: Int, form: Int? = nil) -> [UInt8] {
        let f = form ?? (offset < 2048 ? 0 : offset < 526_336 ? 1 : offset < 134_744_064 ? 2 : 3)
        switch f {
        case 0: return [UInt8(0x20 | (offset >> 8)), UInt8(offset & 0xFF)]
        case 1: let v = offset - 2048; return [UInt8(0x28 | (v >> 16))] + bigEndian(UInt64(v), count: 2)
        case 2: let v = offset - 526_336; return [UInt8(0x30 | (v >> 24))] + bigEndian(UInt64(v), count: 3)
        default: return [0x38] + bigEndian(UInt64(offset), count: 4)
        }
    }

    static func encode(_ v: MMDBValue) -> [UInt8] {
        switch v {
        case .string(let s): return control(2, s.utf8.count) + Array(s.utf8)
        case .double(let d): return control(3, 8) + bigEndian(d.bitPattern, count: 8)
        case .bytes(let b): return control(4, b.count) + b
        case .uint16(let u): let b = minimal(UInt64(u)); return control(5, b.count) + b
        case .uint32(let u): let b = minimal(UInt64(u)); return control(6, b.count) + b
        case .map(let entries):
            return entries.reduce(control(7, entries.count)) { $0 + encode(.string($1.key)) + encode($1.value) }
        case .int32(let i): return control(8, 4) + bigEndian(UInt64(UInt32(bitPattern: i)), count: 4)
        case .uint64(let u): let b = minimal(u); return control(9, b.count) + b
        case .uint128(let h, let l):
            let b = h == 0 ? minimal(l) : minimal(h) + bigEndian(l, count: 8)
            return control(10, b.count) + b
        case .array(let items): return items.reduce(control(11, items.count)) { $0 + encode($1) }
        case .bool(let b): return control(14, b ? 1 : 0)
        case .float(let f): return control(15, 4) + bigEndian(UInt64(f.bitPattern), count: 4)
        }
    }

    static func metadata(nodeCount: Int, recordSize: Int, ipVersion: Int) -> [(key: String, value: MMDBValue)] {
        [("binary_format_major_version", .uint16(2)), ("binary_format_minor_version", .uint16(0)),
         ("build_epoch", .uint64(1_700_000_000)), ("database_type", .string("Custos-Test")),
         ("description", .map([("en", .string("test database"))])), ("ip_version", .uint16(UInt16(ipVersion))),
         ("languages", .array([.string("en")])), ("node_count", .uint32(UInt32(nodeCount))),
         ("record_size", .uint16(UInt16(recordSize)))]
    }

    enum Ref { case empty, node(Int), data(Int) }

    /// A database whose tree maps each network to a data section offset (networks must not
    /// overlap). In an IPv6 tree IPv4 networks go under ::/96. `editMetadata` may change the
    /// metadata map; `rawMetadata` replaces its encoding altogether.
    static func database(ipVersion: Int = 6, recordSize: Int = 24, data: [UInt8], networks: [(String, Int)],
                         editMetadata: (inout [(key: String, value: MMDBValue)]) -> Void = { _ in },
                         rawMetadata: [UInt8]? = nil) throws -> [UInt8] {
        var nodes: [[Ref]] = [[.empty, .empty]]
        for (text, offset) in networks {
            let net = try CIDR(parsing: text)
            let (bits, prefix): ((Int) -> Int, Int)
            if ipVersion == 4 {
                let v = try #require(net.network.ipv4Value)
                bits = { Int(v >> UInt32(31 - $0)) & 1 }
                prefix = net.prefixLength
            } else if net.isIPv4 {
                let v = try #require(net.network.ipv4Value)
                bits = { $0 < 96 ? 0 : Int(v >> UInt32(127 - $0)) & 1 }
                prefix = net.prefixLength + 96
            } else {
                let a = net.network
                bits = { a.bit($0) }
                prefix = net.prefixLength
            }
            var node = 0
            for i in 0..<(prefix - 1) {
                switch nodes[node][bits(i)] {
                case .node(let n): node = n
                case .empty:
                    nodes.append([.empty, .empty])
                    nodes[node][bits(i)] = .node(nodes.count - 1)
                    node = nodes.count - 1
                case .data: Issue.record("overlapping test networks"); return []
                }
            }
            nodes[node][bits(prefix - 1)] = .data(offset)
        }
        let n = nodes.count
        func value(_ r: Ref) -> UInt64 {
            switch r {
            case .empty: return UInt64(n)
            case .node(let k): return UInt64(k)
            case .data(let o): return UInt64(n + 16 + o)
            }
        }
        var out: [UInt8] = []
        for node in nodes {
            let l = value(node[0]), r = value(node[1])
            switch recordSize {
            case 24: out += bigEndian(l, count: 3) + bigEndian(r, count: 3)
            case 28:
                out += bigEndian(l & 0xFF_FFFF, count: 3)
                out.append(UInt8((l >> 24) << 4 | (r >> 24)))
                out += bigEndian(r & 0xFF_FFFF, count: 3)
            default: out += bigEndian(l, count: 4) + bigEndian(r, count: 4)
            }
        }
        out += [UInt8](repeating: 0, count: 16)
        out += data
        out += MaxMindDB.marker
        var meta = metadata(nodeCount: n, recordSize: recordSize, ipVersion: ipVersion)
        editMetadata(&meta)
        out += rawMetadata ?? encode(.map(meta))
        return out
    }

    /// A one-record database: every listed network maps to `record`.
    static func database(ipVersion: Int = 6, recordSize: Int = 24, record: MMDBValue, networks: [String]) throws -> [UInt8] {
        try database(ipVersion: ipVersion, recordSize: recordSize, data: encode(record), networks: networks.map { ($0, 0) })
    }
}

// MARK: - Decoding, trees and defects on synthetic databases

@Suite("MaxMindDB synthetic")
struct MaxMindDBSyntheticTests {
    static let everyType: MMDBValue = .map([
        ("utf8_string", .string("unicode! ☯ - ♫")), ("double", .double(42.123456)), ("bytes", .bytes([0, 0, 0, 42])),
        ("uint16", .uint16(100)), ("uint32", .uint32(0x1000_0000)), ("int32", .int32(-268_435_456)),
        ("uint64", .uint64(0x1000_0000_0000_0000)), ("uint128", .uint128(high: 0x0100_0000_0000_0000, low: 0)),
        ("array", .array([.uint32(1), .uint32(2), .uint32(3)])), ("boolean", .bool(true)), ("false", .bool(false)),
        ("float", .float(1.1)), ("empty_map", .map([])), ("empty_array", .array([])), ("zero", .uint32(0)),
        ("map", .map([("mapX", .map([("arrayX", .array([.uint16(7), .uint16(8), .uint16(9)])), ("utf8_stringX", .string("hello"))]))])),
        ("long", .string(String(repeating: "x", count: 300))), ("longer", .string(String(repeating: "y", count: 70_000))),
        ("mid", .bytes([UInt8](repeating: 7, count: 29))), ("small_int32", .int32(5)),
    ])

    @Test(arguments: [24, 28, 32], [4, 6])
    func everyTypeEveryRecordSize(recordSize: Int, ipVersion: Int) throws {
        let db = try MaxMindDB(bytes: MMDBTestWriter.database(
            ipVersion: ipVersion, recordSize: recordSize, record: Self.everyType,
            networks: ["1.1.1.0/24", "128.0.0.0/1", "10.20.30.40/32"] + (ipVersion == 6 ? ["2001:db8::/32", "ffff::/16"] : [])))
        #expect(db.metadata.recordSize == recordSize)
        #expect(db.metadata.ipVersion == ipVersion)
        #expect(db.metadata.databaseType == "Custos-Test")
        #expect(db.metadata.languages == ["en"])
        #expect(db.metadata.descriptions == ["en": "test database"])
        #expect(db.metadata.buildEpoch == 1_700_000_000)
        // In an IPv4 database a v4-mapped IPv6 address is looked up as IPv4 (in an IPv6 database it
        // is found only where the tree has a ::ffff:0:0/96 alias, which this writer does not add).
        for a in ["1.1.1.0", "1.1.1.255", "128.0.0.0", "255.255.255.255", "10.20.30.40"] + (ipVersion == 4 ? ["::ffff:1.1.1.7"] : []) {
            #expect(try db.lookup(ip(a)) == Self.everyType, "\(a)")
        }
        for a in ["1.1.2.0", "1.1.0.255", "0.0.0.0", "127.255.255.255", "10.20.30.41", "10.20.30.39"] {
            #expect(try db.lookup(ip(a)) == nil, "\(a)")
        }
        #expect(try db.lookupWithPrefix(ip("1.1.1.9")).network == CIDR(parsing: "1.1.1.0/24"))
        #expect(try db.lookupWithPrefix(ip("200.1.1.9")).network == CIDR(parsing: "128.0.0.0/1"))
        #expect(try db.lookupWithPrefix(ip("10.20.30.40")).prefixLength == 32)
        let miss = try db.lookupWithPrefix(ip("1.1.2.3"))
        #expect(try miss.value == nil && miss.network.contains(ip("1.1.2.3")))
        if ipVersion == 6 {
            #expect(try db.lookup(ip("2001:db8:1::1")) == Self.everyType)
            #expect(try db.lookup(ip("ffff:1::")) == Self.everyType)
            #expect(try db.lookup(ip("2001:db9::")) == nil)
            #expect(try db.lookup(ip("::ffff:1.1.1.7")) == nil)
            #expect(try db.lookupWithPrefix(ip("2001:db8::5")).network == CIDR(parsing: "2001:db8::/32"))
            // The IPv6 spelling of an IPv4 network in ::/96 reaches the same record.
            #expect(try db.lookup(ip("::1.1.1.1")) == Self.everyType)
            #expect(try db.lookupWithPrefix(ip("::1.1.1.1")).network == CIDR(parsing: "::1.1.1.0/120"))
            #expect(try db.networks() == ["1.1.1.0/24", "10.20.30.40/32", "128.0.0.0/1", "2001:db8::/32", "ffff::/16"].map { try CIDR(parsing: $0) })
        } else {
            // A v4-mapped IPv6 address is looked up as IPv4; another IPv6 address cannot be.
            #expect(try db.lookupWithPrefix(ip("::ffff:1.1.1.1")).network == CIDR(parsing: "::ffff:1.1.1.0/120"))
            let e = geoError { try db.lookup(ip("2001:db8::1")) }
            #expect(e?.kind == .ipv6LookupInIPv4Database)
            #expect(e?.isCorruption == false)
            #expect(try db.networks() == ["1.1.1.0/24", "10.20.30.40/32", "128.0.0.0/1"].map { try CIDR(parsing: $0) })
        }
        try db.verify()
        let record = try #require(try db.lookup(ip("1.1.1.1")))
        #expect(record["utf8_string"]?.string == "unicode! ☯ - ♫")
        #expect(record["double"]?.double == 42.123456)
        #expect(record["float"]?.double == Double(Float(1.1)))
        #expect(record["uint64"]?.uint == 0x1000_0000_0000_0000)
        #expect(record["uint128"]?.uint == nil)
        #expect(record["int32"]?.int == -268_435_456 && record["int32"]?.uint == nil)
        #expect(record["small_int32"]?.uint == 5)
        #expect(record["array"]?[2]?.uint == 3 && record["array"]?[3] == nil)
        #expect(record.value(at: "map", "mapX", "utf8_stringX")?.string == "hello")
        #expect(record["boolean"]?.bool == true && record["false"]?.bool == false)
        #expect(record["longer"]?.string?.utf8.count == 70_000)
        #expect(record["nope"] == nil && record["uint16"]?["x"] == nil)
    }

    @Test func pointersOfEveryForm() throws {
        // A shared map placed past 526,336 bytes of padding, so that all four pointer forms are needed.
        var data = MMDBTestWriter.encode(.bytes([UInt8](repeating: 0xEE, count: 530_000)))
        let sharedOffset = data.count
        data += MMDBTestWriter.encode(.map([("shared", .string("yes"))]))
        let keyOffset = data.count
        data += MMDBTestWriter.encode(.string("pointed_key"))
        let smallOffset = data.count
        data += MMDBTestWriter.encode(.uint32(77))
        // The record: pointers to the shared map in forms 2 and 3, a form-0 pointer cannot reach it.
        let recordOffset = data.count
        data += MMDBTestWriter.control(7, 4)
        data += MMDBTestWriter.encode(.string("a")) + MMDBTestWriter.pointer(sharedOffset)            // form 2
        data += MMDBTestWriter.encode(.string("b")) + MMDBTestWriter.pointer(sharedOffset, form: 3)
        data += MMDBTestWriter.pointer(keyOffset) + MMDBTestWriter.pointer(smallOffset, form: 3)       // key by pointer
        data += MMDBTestWriter.encode(.string("c")) + MMDBTestWriter.pointer(smallOffset)
        // A second record reaching small offsets with forms 0 and 1.
        let second = data.count
        data += MMDBTestWriter.control(11, 2)
        data += MMDBTestWriter.pointer(0)              // form 0: the padding bytes value
        data += MMDBTestWriter.pointer(2048, form: 1)  // form 1: points into the padding payload
        #expect(MMDBTestWriter.pointer(sharedOffset)[0] >> 3 == 0b00110)
        let bytes = try MMDBTestWriter.database(data: data, networks: [("1.0.0.0/8", recordOffset), ("2.0.0.0/8", second)])
        let db = try MaxMindDB(bytes: bytes)
        let r = try #require(try db.lookup(ip("1.2.3.4")))
        #expect(r == .map([("a", .map([("shared", .string("yes"))])), ("b", .map([("shared", .string("yes"))])),
                           ("pointed_key", .uint32(77)), ("c", .uint32(77))]))
        // Form 1 lands 2048 bytes into the data section: inside the padding payload (0xEE bytes),
        // which decodes as a control byte 0xEE = map of 14 entries whose keys are not strings.
        let e = geoError { try db.lookup(ip("2.2.3.4")) }
        #expect(e?.kind == .data)
        #expect(e?.message.contains("map key") == true, "\(String(describing: e))")
        #expect(try db.dataSectionOffset(ip("1.9.9.9")) == recordOffset)
    }

    /// A database whose only record (for 1.0.0.0/8) is the raw `data`.
    func db(_ data: [UInt8], offset: Int = 0) throws -> MaxMindDB {
        try MaxMindDB(bytes: MMDBTestWriter.database(data: data, networks: [("1.0.0.0/8", offset)]))
    }

    func dataError(_ data: [UInt8], offset: Int = 0) throws -> GeoIPError? {
        let d = try db(data, offset: offset)
        return geoError { try d.lookup(ip("1.1.1.1")) }
    }

    @Test func pointerDefects() throws {
        // Pointer to a pointer.
        var e = try dataError(MMDBTestWriter.pointer(2) + MMDBTestWriter.pointer(4) + MMDBTestWriter.encode(.string("x")))
        #expect(e?.message.contains("points to another pointer") == true, "\(String(describing: e))")
        // Pointer outside the data section.
        e = try dataError(MMDBTestWriter.pointer(500) + [0, 0, 0])
        #expect(e?.message.contains("outside the data section") == true, "\(String(describing: e))")
        #expect(e?.offset != nil)
        e = try dataError(MMDBTestWriter.pointer(0xFFFF_FFFF, form: 3))
        #expect(e?.message.contains("outside the data section") == true)
        // Truncated pointer.
        e = try dataError([0x38, 0, 0])
        #expect(e?.message.contains("pointer at byte") == true && e?.message.contains("ends") == true, "\(String(describing: e))")
        // A map that contains a pointer to itself: caught by the nesting limit.
        e = try dataError(MMDBTestWriter.control(7, 1) + MMDBTestWriter.encode(.string("self")) + MMDBTestWriter.pointer(0))
        #expect(e?.message.contains("nesting deeper than 32") == true, "\(String(describing: e))")
        // Pointer fan-out: each level is a map of four pointers to the level below, 2^... values.
        var data: [UInt8] = MMDBTestWriter.encode(.string("leaf"))
        var below = 0
        for _ in 0..<12 {
            let here = data.count
            data += MMDBTestWriter.control(11, 4)
            for _ in 0..<4 { data += MMDBTestWriter.pointer(below) }
            below = here
        }
        e = try dataError(data, offset: below)
        #expect(e?.message.contains("more than 100000 values") == true, "\(String(describing: e))")
    }

    @Test func nestingLimit() throws {
        func nested(_ depth: Int) -> [UInt8] {
            var out: [UInt8] = []
            for _ in 0..<depth { out += MMDBTestWriter.control(11, 1) }
            return out + MMDBTestWriter.encode(.bool(true))
        }
        #expect(try db(nested(32)).lookup(ip("1.1.1.1")) != nil)
        let e = try dataError(nested(33))
        #expect(e?.message.contains("nesting deeper than 32") == true)
        #expect(e?.kind == .data)
    }

    @Test func sizeAndTypeDefects() throws {
        let cases: [([UInt8], String)] = [
            (MMDBTestWriter.control(2, 10) + Array("short".utf8), "utf8_string length 10 at byte"),
            (MMDBTestWriter.control(4, 70_000) + [1, 2, 3], "bytes length 70000"),
            (MMDBTestWriter.control(3, 4) + [0, 0, 0, 0], "double at byte @0 has size 4; a double is 8 bytes"),
            (MMDBTestWriter.control(15, 8) + [UInt8](repeating: 0, count: 8), "a float is 4 bytes"),
            (MMDBTestWriter.control(5, 3) + [1, 2, 3], "uint16 at byte @0 has size 3"),
            (MMDBTestWriter.control(6, 5) + [1, 2, 3, 4, 5], "uint32 at byte @0 has size 5"),
            (MMDBTestWriter.control(8, 5) + [1, 2, 3, 4, 5], "int32 at byte @0 has size 5"),
            (MMDBTestWriter.control(9, 9) + [UInt8](repeating: 1, count: 9), "uint64 at byte @0 has size 9"),
            (MMDBTestWriter.control(10, 17) + [UInt8](repeating: 1, count: 17), "uint128 at byte @0 has size 17"),
            (MMDBTestWriter.control(14, 2), "boolean at byte @0 has size 2"),
            (MMDBTestWriter.control(12, 0), "data cache container at byte @0 is not allowed"),
            (MMDBTestWriter.control(13, 0), "end marker at byte @0 is not allowed"),
            ([0x00, 0x09], "unknown extended type 16"),
            ([0x00, 0x00], "unknown extended type 7"),
            ([0x00], "extended type byte"),
            ([0x5F, 0x01], "needs 3 more bytes"),
            (MMDBTestWriter.control(7, 1) + MMDBTestWriter.encode(.uint16(1)) + MMDBTestWriter.encode(.uint16(1)), "map key at byte @1 is a uint16, not a string"),
            (MMDBTestWriter.control(7, 2) + MMDBTestWriter.encode(.string("k")), "map at byte @0 declares 2 entries but only 2 bytes remain"),
            (MMDBTestWriter.control(11, 5) + [0x41, 0x41], "array at byte @0 declares 5 elements but only 2 bytes remain"),
            (MMDBTestWriter.control(11, 2) + MMDBTestWriter.encode(.bool(true)), "would start past the end of the data section"),
            (MMDBTestWriter.control(2, 2) + [0xC0, 0x80], "not valid UTF-8"),             // overlong NUL
            (MMDBTestWriter.control(2, 3) + [0xED, 0xA0, 0x80], "not valid UTF-8"),       // surrogate
            (MMDBTestWriter.control(2, 4) + [0xF4, 0x90, 0x80, 0x80], "not valid UTF-8"), // above U+10FFFF
            (MMDBTestWriter.control(2, 2) + [0xE2, 0x82], "not valid UTF-8"),             // truncated sequence
            (MMDBTestWriter.control(2, 1) + [0x80], "not valid UTF-8"),                   // lone continuation
            (MMDBTestWriter.control(7, 1) + MMDBTestWriter.control(2, 1) + [0xFF] + MMDBTestWriter.encode(.bool(true)), "string at byte @1 is not valid UTF-8"),
        ]
        let dataStart = try db([0]).dataStart   // every test database here has the same tree
        for (data, template) in cases {
            let expected = template.replacingOccurrences(of: "@0", with: String(dataStart))
                .replacingOccurrences(of: "@1", with: String(dataStart + 1))
            let e = try dataError(data)
            #expect(e?.kind == .data, "\(data) → \(String(describing: e))")
            #expect(e?.message.contains(expected) == true, "\(data): expected “\(expected)”, got \(String(describing: e))")
        }
        // Valid edge forms: sizes 0 of numbers, 29/285/65821-size strings, 4-byte UTF-8.
        let ok: [(MMDBValue, [UInt8])] = [
            (.uint32(0), MMDBTestWriter.control(6, 0)),
            (.uint128(high: 0, low: 0), MMDBTestWriter.control(10, 0)),
            (.int32(-1), MMDBTestWriter.control(8, 4) + [0xFF, 0xFF, 0xFF, 0xFF]),
            (.int32(0xFFFF), MMDBTestWriter.control(8, 2) + [0xFF, 0xFF]),   // short int32: not sign-extended
            (.uint128(high: 1, low: 2), MMDBTestWriter.control(10, 9) + [1, 0, 0, 0, 0, 0, 0, 0, 2]),
            (.string("𝄞é"), MMDBTestWriter.encode(.string("𝄞é"))),
            (.string(String(repeating: "a", count: 29)), MMDBTestWriter.encode(.string(String(repeating: "a", count: 29)))),
            (.string(String(repeating: "b", count: 285)), MMDBTestWriter.encode(.string(String(repeating: "b", count: 285)))),
            (.string(String(repeating: "c", count: 65_821)), MMDBTestWriter.encode(.string(String(repeating: "c", count: 65_821)))),
        ]
        for (value, data) in ok {
            #expect(try db(data).lookup(ip("1.1.1.1")) == value, "\(data.prefix(8))")
        }
    }

    @Test func searchTreeDefects() throws {
        // A record pointing into the separator: node_count + 1 ... node_count + 15.
        var bytes = try MMDBTestWriter.database(ipVersion: 4, record: .bool(true), networks: ["128.0.0.0/1"])
        bytes[0...2] = [0, 0, 2]   // left record of node 0 := node_count (1) + 1
        var db = try MaxMindDB(bytes: bytes)
        var e = geoError { try db.lookup(ip("1.1.1.1")) }
        #expect(e?.kind == .searchTree)
        #expect(e?.message == "search tree record of node 0 (byte 0) for 1.1.1.1/1 has value 2, which points into the 16-byte data section separator")
        #expect(try db.lookup(ip("200.1.1.1")) == .bool(true))
        #expect(geoError { try db.verify() }?.kind == .searchTree)
        // A record pointing past the end of the data section.
        bytes[0...2] = [0, 0, 100]
        db = try MaxMindDB(bytes: bytes)
        e = geoError { try db.lookup(ip("1.1.1.1")) }
        #expect(e?.message.contains("points to data offset 83, past the end of the data section (2 bytes)") == true, "\(String(describing: e))")
        // A tree that loops on itself is deeper than the address.
        bytes[0...2] = [0, 0, 0]
        db = try MaxMindDB(bytes: bytes)
        e = geoError { try db.lookup(ip("0.0.0.0")) }
        #expect(e?.message == "search tree is deeper than 32 bits: after the last bit of 0.0.0.0 it still reaches node 0 (from node 0 at byte 0)")
        #expect(try db.lookup(ip("1.1.1.1")) == .bool(true))   // loops seven times, then leaves by the right record
        #expect(geoError { try db.networks() } == nil)   // each node is walked once, so the loop ends
        // Nodes the root cannot reach mean node_count does not describe the tree: verify() says so.
        bytes = try MMDBTestWriter.database(ipVersion: 4, record: .bool(true), networks: ["128.0.0.0/1", "1.0.0.0/8"])
        bytes[0...2] = [0, 0, 8]   // node 0's left record: "not found" (node_count) instead of node 1
        db = try MaxMindDB(bytes: bytes)
        #expect(try db.lookup(ip("1.1.1.1")) == nil)
        e = geoError { try db.verify() }
        #expect(e?.message == "search tree has 7 of its 8 nodes unreachable from the root (the first is node 1 at byte 6); the metadata's node_count does not match the tree")
        // A non-zero separator is only noticed by verify().
        bytes = try MMDBTestWriter.database(ipVersion: 4, record: .bool(true), networks: ["128.0.0.0/1"])
        bytes[10] = 1
        db = try MaxMindDB(bytes: bytes)
        #expect(try db.lookup(ip("200.1.1.1")) == .bool(true))
        #expect(geoError { try db.verify() }?.message.contains("separator") == true)
        // A tree deeper than 32 bits in an IPv4 database (33 nodes in a chain).
        var chain: [UInt8] = []
        for k in 0..<33 { chain += MMDBTestWriter.bigEndian(UInt64(k + 1), count: 3) + MMDBTestWriter.bigEndian(33, count: 3) }
        let deep = chain + [UInt8](repeating: 0, count: 16) + MMDBTestWriter.encode(.bool(true)) + MaxMindDB.marker
            + MMDBTestWriter.encode(.map(MMDBTestWriter.metadata(nodeCount: 33, recordSize: 24, ipVersion: 4)))
        db = try MaxMindDB(bytes: deep)
        #expect(geoError { try db.lookup(ip("0.0.0.0")) }?.kind == .searchTree)
        #expect(geoError { try db.networks() }?.message.contains("deeper than 32 bits") == true)
    }

    @Test func metadataDefects() throws {
        func openError(_ edit: @escaping (inout [(key: String, value: MMDBValue)]) -> Void) throws -> GeoIPError? {
            let bytes = try MMDBTestWriter.database(data: MMDBTestWriter.encode(.bool(true)), networks: [("1.0.0.0/8", 0)], editMetadata: edit)
            return geoError { try MaxMindDB(bytes: bytes) }
        }
        func set(_ key: String, _ v: MMDBValue?) -> (inout [(key: String, value: MMDBValue)]) -> Void {
            { m in
                m.removeAll { $0.key == key }
                if let v { m.append((key, v)) }
            }
        }
        let cases: [((inout [(key: String, value: MMDBValue)]) -> Void, String)] = [
            (set("record_size", .uint16(25)), "record_size is 25; must be 24, 28 or 32"),
            (set("ip_version", .uint16(5)), "ip_version is 5; must be 4 or 6"),
            (set("binary_format_major_version", .uint16(3)), "binary_format_major_version is 3; only version 2"),
            (set("node_count", nil), "required key \"node_count\" is missing"),
            (set("node_count", .string("3")), "\"node_count\" is a utf8_string, not an unsigned integer"),
            (set("node_count", .uint128(high: 0, low: 3)), "\"node_count\" is a uint128, not an unsigned integer"),
            (set("node_count", .uint64(1 << 40)), "\"node_count\" is 1099511627776, out of range"),
            (set("node_count", .uint32(1_000)), "search tree of 1000 nodes × 6 bytes plus the 16-byte separator does not fit"),
            (set("node_count", .uint32(UInt32.max)), "search tree of 4294967295 nodes"),
            (set("database_type", nil), "required key \"database_type\" is missing"),
            (set("database_type", .uint16(1)), "\"database_type\" is a uint16, not a string"),
            (set("build_epoch", nil), "required key \"build_epoch\" is missing"),
            (set("languages", .string("en")), "\"languages\" is a utf8_string, not an array"),
            (set("languages", .array([.uint16(1)])), "\"languages\" holds a uint16, not a string"),
            (set("description", .array([])), "\"description\" is a array, not a map"),
            (set("description", .map([("en", .bool(true))])), "\"description\".\"en\" is a boolean, not a string"),
        ]
        for (edit, expected) in cases {
            let e = try openError(edit)
            #expect(e?.kind == .metadata)
            #expect(e?.message.contains(expected) == true, "expected “\(expected)”, got \(String(describing: e))")
        }
        // Optional keys may be absent; build_epoch may be any UInt64.
        #expect(try openError(set("languages", nil)) == nil)
        #expect(try openError(set("description", nil)) == nil)
        #expect(try openError(set("build_epoch", .uint64(.max))) == nil)
        // Not a map; no marker; nothing after the marker; marker too far from the end.
        var e = geoError { try MaxMindDB(bytes: MaxMindDB.marker + MMDBTestWriter.encode(.array([]))) }
        #expect(e?.message.contains("is a array, not a map") == true)
        e = geoError { try MaxMindDB(bytes: []) }
        #expect(e?.message.contains("metadata marker") == true && e?.kind == .metadata)
        e = geoError { try MaxMindDB(bytes: MaxMindDB.marker) }
        #expect(e?.message.contains("not followed by any metadata") == true)
        let good = try MMDBTestWriter.database(record: .bool(true), networks: ["1.0.0.0/8"])
        #expect(geoError { try MaxMindDB(bytes: good) } == nil)
        e = geoError { try MaxMindDB(bytes: good + [UInt8](repeating: 0, count: 128 * 1024)) }
        #expect(e?.message.contains("not found in the last 128 KiB") == true)
        // The last marker wins.
        #expect(geoError { try MaxMindDB(bytes: MaxMindDB.marker + [0xE0] + good) } == nil)
    }

    @Test func fileConvenience() throws {
        let path = GeoFixture.dir.appendingPathComponent("GeoIP2-Country-Test.mmdb").path
        #expect(try MaxMindDB(contentsOf: path).metadata.databaseType == "GeoIP2-Country")
        let e = geoError { try MaxMindDB(contentsOf: path + ".missing") }
        #expect(e?.kind == .io && e?.isCorruption == false)
    }
}

// MARK: - The MaxMind test databases

@Suite("MaxMindDB fixtures")
struct MaxMindDBFixtureTests {
    @Test(arguments: [
        ("GeoIP2-City-Test.mmdb", "GeoIP2-City", 1547, ["en", "zh"]),
        ("GeoIP2-Country-Test.mmdb", "GeoIP2-Country", 1704, ["en"]),
        ("GeoLite2-City-Test.mmdb", "GeoLite2-City", 1465, ["en"]),
    ])
    func metadata(file: String, type: String, nodes: Int, languages: [String]) throws {
        let db = try GeoFixture.open(file)
        let m = db.metadata
        #expect(m.databaseType == type)
        #expect(m.ipVersion == 6)
        #expect(m.recordSize == 28)
        #expect(m.nodeCount == nodes)
        #expect(m.languages == languages)
        #expect(m.binaryFormatMajorVersion == 2 && m.binaryFormatMinorVersion == 0)
        #expect(m.buildEpoch == 1_770_245_369)
        #expect(m.descriptions["en"]?.contains("Test Database") == true)
        #expect(m.raw["node_count"]?.uint == UInt64(nodes))
        try db.verify()
    }

    @Test func cityLanguagesAndDescription() throws {
        let m = try GeoFixture.open("GeoIP2-City-Test.mmdb").metadata
        #expect(m.descriptions == ["en": "GeoIP2 City Test Database (fake GeoIP2 data, for example purposes only)", "zh": "小型数据库"])
    }

    /// Compares a decoded value with the JSON the database was written from. Numbers compare by
    /// value (JSON has no integer widths); maps by key set.
    static func compare(_ v: MMDBValue, _ j: Any, _ path: String, _ problems: inout [String]) {
        func number(_ j: Any) -> Double? {
            if j is Bool { return nil }
            if let d = j as? Double { return d }
            if let i = j as? Int { return Double(i) }
            if let n = j as? NSNumber { return n.doubleValue }
            return nil
        }
        switch v {
        case .map(let entries):
            guard let d = j as? [String: Any] else { problems.append("\(path): map vs \(type(of: j))"); return }
            if Set(entries.map(\.key)) != Set(d.keys) { problems.append("\(path): keys \(entries.map(\.key).sorted()) vs \(d.keys.sorted())") }
            for (k, sub) in entries { if let js = d[k] { compare(sub, js, path + "." + k, &problems) } }
        case .array(let items):
            guard let a = j as? [Any], a.count == items.count else { problems.append("\(path): array vs \(j)"); return }
            for (i, sub) in items.enumerated() { compare(sub, a[i], "\(path)[\(i)]", &problems) }
        case .string(let s):
            if (j as? String) != s { problems.append("\(path): \(s) vs \(j)") }
        case .bool(let b):
            if (j as? Bool) != b { problems.append("\(path): \(b) vs \(j)") }
        case .double(let d):
            if number(j) != d { problems.append("\(path): \(d) vs \(j)") }
        case .float(let f):
            if let n = number(j), Float(n) == f {} else { problems.append("\(path): \(f) vs \(j)") }
        case .uint16, .uint32, .uint64, .int32, .uint128:
            if let n = number(j), let i = v.int, Double(i) == n {} else { problems.append("\(path): \(v) vs \(j)") }
        case .bytes:
            problems.append("\(path): unexpected bytes")
        }
    }

    @Test func cityMatchesItsSourceJSON() throws {
        let db = try GeoFixture.open("GeoIP2-City-Test.mmdb")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(GeoFixture.bytes("GeoIP2-City-Test.json"))) as? [[String: Any]])
        #expect(json.count >= 200)
        var checkedV4 = 0, withCity = 0
        for entry in json {
            for (network, expected) in entry {
                let cidr = try CIDR(parsing: network)
                let expected = try #require(expected as? [String: Any])
                let address = cidr.network
                let result = try db.lookupWithPrefix(address)
                let record = try #require(result.value, "\(network) not found")
                var problems: [String] = []
                Self.compare(record, expected, network, &problems)
                #expect(problems.isEmpty, "\(problems)")
                // The leaf the lookup reached lies inside the JSON network.
                #expect(result.prefixLength >= cidr.prefixLength, "\(network): reached \(result.network)")
                #expect(cidr.contains(result.network.network), "\(network): reached \(result.network)")
                // The last address of the network gives the same record.
                let last = IPAddress(high: address.high | ~cidr.maskHigh, low: address.low | ~cidr.maskLow, isIPv4: address.isIPv4)
                #expect(try db.lookup(last) == record, "\(network): last address \(last)")

                // GeoLocation picks the documented fields.
                let loc = try #require(try db.location(address))
                let country = expected["country"] as? [String: Any]
                let registered = expected["registered_country"] as? [String: Any]
                let city = expected["city"] as? [String: Any]
                let location = expected["location"] as? [String: Any]
                #expect(loc.countryISO == (country?["iso_code"] ?? registered?["iso_code"]) as? String, "\(network)")
                #expect(loc.countryName == ((country?["names"] ?? registered?["names"]) as? [String: Any])?["en"] as? String)
                #expect(loc.city == (city?["names"] as? [String: Any])?["en"] as? String, "\(network)")
                #expect(loc.latitude == (location?["latitude"] as? NSNumber)?.doubleValue, "\(network)")
                #expect(loc.longitude == (location?["longitude"] as? NSNumber)?.doubleValue, "\(network)")
                #expect(loc.accuracyRadiusKm == (location?["accuracy_radius"] as? NSNumber)?.intValue, "\(network)")
                #expect(loc.continent == (expected["continent"] as? [String: Any])?["code"] as? String, "\(network)")
                if loc.city != nil { withCity += 1 }

                // IPv4 networks written as ::a.b.c.d/n+96 are reachable with the IPv4 address too.
                if cidr.prefixLength >= 96, address.high == 0, address.low >> 32 == 0 {
                    let v4 = IPAddress(ipv4: UInt32(truncatingIfNeeded: address.low))
                    #expect(try db.lookup(v4) == record, "\(network) as \(v4)")
                    checkedV4 += 1
                } else if cidr.isIPv4 {
                    checkedV4 += 1
                }
            }
        }
        #expect(checkedV4 >= 3)
        #expect(withCity >= 10)
    }

    @Test func cityKnownAddresses() throws {
        let db = try GeoFixture.open("GeoIP2-City-Test.mmdb")
        let london = try #require(try db.location(ip("81.2.69.160")))
        #expect(london == GeoLocation(countryISO: "GB", countryName: "United Kingdom", city: "London", latitude: 51.5142,
                                      longitude: -0.0931, accuracyRadiusKm: 100, continent: "EU"))
        #expect(try db.lookupWithPrefix(ip("81.2.69.170")).network == CIDR(parsing: "81.2.69.160/27"))
        #expect(try db.location(ip("216.160.83.60"))?.city == "Milton")
        #expect(try db.location(ip("175.16.199.255"))?.city == "Changchun")
        #expect(try db.location(ip("89.160.20.120"), language: "en")?.city == "Linköping")
        // The v4-mapped alias ::ffff:0:0/96 points at the IPv4 subtree; ::a.b.c.d is the subtree itself.
        let viaIPv4 = try db.lookup(ip("81.2.69.160"))
        #expect(viaIPv4 != nil)
        #expect(try db.lookup(ip("::ffff:81.2.69.160")) == viaIPv4)
        #expect(try db.lookup(ip("::81.2.69.160")) == viaIPv4)
        #expect(try db.lookupWithPrefix(ip("::ffff:81.2.69.160")).network == CIDR(parsing: "::ffff:81.2.69.160/123"))
        // A record with no location fields gives an all-nil location, not nil.
        #expect(try db.location(ip("214.1.1.1")) == GeoLocation())
        let jp = try #require(try db.location(ip("2001:218::1")))
        #expect(jp == GeoLocation(countryISO: "JP", countryName: "Japan", city: nil, latitude: 35.68536, longitude: 139.75309,
                                  accuracyRadiusKm: 100, continent: "AS"))
        #expect(try db.location(ip("2001:218::1"), language: "de")?.countryName == "Japan")
        #expect(try db.location(ip("2001:218::1"), language: "ja")?.countryName == "日本")
        for a in ["10.0.0.1", "127.0.0.1", "192.168.1.1", "0.0.0.0", "::1", "fd00::1", "fe80::1", "2001:db8::1"] {
            #expect(try db.lookup(ip(a)) == nil, "\(a) should not be in the test database")
            #expect(try db.location(ip(a)) == nil)
        }
        let miss = try db.lookupWithPrefix(ip("10.0.0.1"))
        #expect(try miss.value == nil && miss.network.contains(ip("10.0.0.1")) && miss.network.prefixLength <= 8)
    }

    @Test func geoLite2CityAndCountry() throws {
        let lite = try GeoFixture.open("GeoLite2-City-Test.mmdb")
        let country = try GeoFixture.open("GeoIP2-Country-Test.mmdb")
        let boxford = try #require(try lite.location(ip("2.125.160.218")))
        #expect(boxford == GeoLocation(countryISO: "GB", countryName: "United Kingdom", city: "Boxford", latitude: 51.75,
                                       longitude: -1.25, accuracyRadiusKm: 100, continent: "EU"))
        #expect(try lite.location(ip("89.160.20.112"))?.city == "Linköping")
        #expect(try lite.location(ip("216.160.83.56")) == GeoLocation(countryISO: "US", countryName: "United States", city: "Milton",
                                                                      latitude: 47.2513, longitude: -122.3149, accuracyRadiusKm: 22, continent: "NA"))
        #expect(try lite.location(ip("2001:218::1"))?.countryISO == "JP")
        #expect(try lite.lookup(ip("214.1.1.1")) == nil)
        #expect(try lite.lookupWithPrefix(ip("214.1.1.1")).network == CIDR(parsing: "214.0.0.0/10"))
        #expect(try lite.lookup(ip("10.0.0.1")) == nil)

        // A Country database has no city or location.
        #expect(try country.location(ip("81.2.69.160")) == GeoLocation(countryISO: "GB", countryName: "United Kingdom", continent: "EU"))
        #expect(try country.location(ip("67.43.156.1")) == GeoLocation(countryISO: "BT", countryName: "Bhutan", continent: "AS"))
        #expect(try country.location(ip("2001:218::1"))?.countryISO == "JP")
        #expect(try country.lookup(ip("81.2.69.160"))?["city"] == nil)
        #expect(try country.lookup(ip("81.2.69.160"))?["location"] == nil)
        #expect(try country.lookup(ip("10.0.0.1")) == nil)
        #expect(try country.networks().count == 345)
        #expect(try lite.networks().count == 242)
    }

    @Test func networksAreConsistentWithLookups() throws {
        for file in ["GeoIP2-City-Test.mmdb", "GeoIP2-Country-Test.mmdb", "GeoLite2-City-Test.mmdb"] {
            let db = try GeoFixture.open(file)
            let networks = try db.networks()
            #expect(networks.count > 100, "\(file)")
            for n in networks {
                let r = try db.lookupWithPrefix(n.network)
                let record = try #require(r.value, "\(file): \(n)")
                #expect(r.network == n, "\(file): \(n) looked up as \(r.network)")
                // location() reads only the fields it needs; it must agree with a full decode.
                for language in ["en", "de", "zh-CN", "xx"] {
                    #expect(try db.location(n.network, language: language) == GeoLocation(record: record, language: language), "\(file): \(n)")
                }
                // Path lookups agree with the full record.
                #expect(try db.lookup(n.network, path: "country", "iso_code") == record["country"]?["iso_code"])
                #expect(try db.lookup(n.network, path: "location") == record["location"])
                #expect(try db.lookup(n.network, path: "continent", "names", "en") == record.value(at: "continent", "names", "en"))
                #expect(try db.lookup(n.network, path: "country", "iso_code", "deeper") == nil)
                #expect(try db.lookup(n.network, path: "no such key") == nil)
            }
        }
    }

    // MARK: Bad data

    /// Files in bad-data whose lookups succeed in the reference readers, and here: libmaxminddb's
    /// t/empty_container_metadata_t.c and t/bad_epoch_t.c open the first three and look up 1.2.3.4
    /// without error (they catch reader bugs: a bounds check that rejected an empty map or array
    /// as the last metadata value, overflow when printing a UINT64_MAX build_epoch), and
    /// MaxMind-DB's bad-data/README.md calls the epoch file a valid database. The fourth has 99
    /// orphaned zero nodes that no lookup reaches. maxminddb-golang's and maxminddb-rust's
    /// Verify reject all four, and so does `verify()` here, which is where their error comes from.
    static let rejectedOnlyByVerify: Set<String> = [
        "libmaxminddb-empty-array-last-in-metadata.mmdb",
        "libmaxminddb-empty-map-last-in-metadata.mmdb",
        "libmaxminddb-uint64-max-epoch.mmdb",
        "libmaxminddb-corrupt-search-tree.mmdb",
    ]

    /// Addresses that reach many parts of a tree: every /8 of IPv4 (first, middle and a .1.1.1
    /// address), the addresses the upstream tests use, and a spread of IPv6 prefixes.
    static let probes: [IPAddress] = {
        var out: [IPAddress] = []
        for a in 0..<256 {
            let b = UInt32(a) << 24
            out += [IPAddress(ipv4: b), IPAddress(ipv4: b | 0x0101_0101), IPAddress(ipv4: b | 0x0080_0000), IPAddress(ipv4: b | 0x00FF_FFFF)]
            out.append(IPAddress(high: UInt64(a) << 56, low: 0))
            out.append(IPAddress(high: 0x2001_0000_0000_0000 | UInt64(a) << 40, low: 1))
            out.append(IPAddress(high: 0x2A02_0000_0000_0000 | UInt64(a) << 40, low: 0))
        }
        for t in ["1.1.1.1", "1.1.1.2", "1.1.1.3", "1.1.1.4", "1.1.1.8", "1.1.1.16", "1.1.1.32", "1.2.3.4",
                  "::", "::1", "::1.1.1.1", "::ffff:1.1.1.1", "2001:218::", "2001:220::1", "2002:101:101::",
                  "::ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"] {
            if let a = IPAddress(t) { out.append(a) }
        }
        return out
    }()

    /// Opens `bytes` and exercises it: probe lookups (record, location, prefix), a lookup of the
    /// first address of every network the tree lists, and verify(). Returns the error from
    /// opening, the distinct corruption errors from lookups and networks(), and verify()'s error.
    static func exercise(_ bytes: [UInt8], probes: [IPAddress] = MaxMindDBFixtureTests.probes)
        -> (open: GeoIPError?, lookups: [GeoIPError], verify: GeoIPError?) {
        let db: MaxMindDB
        do throws(GeoIPError) { db = try MaxMindDB(bytes: bytes) } catch { return (error, [], nil) }
        var errors: [GeoIPError] = []
        func note(_ e: GeoIPError?) {
            if let e, e.isCorruption, !errors.contains(e) { errors.append(e) }
        }
        for a in probes {
            note(geoError { try db.lookup(a) })
            note(geoError { try db.location(a) })
            note(geoError { try db.lookupWithPrefix(a) })
        }
        do throws(GeoIPError) {
            for n in try db.networks() {
                note(geoError { try db.lookup(n.network) })
            }
        } catch { note(error) }
        return (nil, errors, geoError { try db.verify() })
    }

    @Test func everyBadDatabaseIsRejected() throws {
        let dir = GeoFixture.dir.appendingPathComponent("bad-data")
        let files = try FileManager.default.contentsOfDirectory(at: dir, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "mmdb" }
            .sorted { $0.lastPathComponent < $1.lastPathComponent }
        #expect(files.count >= 20)
        #expect(Self.rejectedOnlyByVerify.isSubset(of: Set(files.map(\.lastPathComponent))))
        let clock = ContinuousClock()
        let started = clock.now
        for url in files {
            let name = url.lastPathComponent
            let bytes = [UInt8](try Data(contentsOf: url))
            let (open, lookups, verify) = Self.exercise(bytes)
            let all = [open].compactMap { $0 } + lookups + [verify].compactMap { $0 }
            #expect(!all.isEmpty, "\(name) must be rejected at open, by a lookup or by verify()")
            for e in all {
                #expect(!e.message.isEmpty && e.isCorruption, "\(name): \(e)")
            }
            if Self.rejectedOnlyByVerify.contains(name) {
                #expect(open == nil && lookups.isEmpty, "\(name): lookups must work as in libmaxminddb: \(String(describing: open)) \(lookups)")
                #expect(try MaxMindDB(bytes: bytes).lookup(ip("1.2.3.4")) == .map([("ip", .string("test"))]), "\(name)")
                #expect(verify != nil, "\(name)")
            } else {
                #expect(open != nil || !lookups.isEmpty, "\(name) must fail at open or at some lookup, not only in verify()")
            }
        }
        #expect(clock.now - started < .seconds(10))
    }

    /// What each bad file is rejected with (any of its errors), pinned so that a change is noticed.
    @Test func badDatabasesFailForTheirDefect() throws {
        let expected: [(String, GeoIPError.Kind, String)] = [
            ("GeoIP2-City-Test-Broken-Double-Format.mmdb", .data, "has size 5; a double is 8 bytes"),
            ("GeoIP2-City-Test-Invalid-Node-Count.mmdb", .metadata, "search tree of 100000 nodes × 7 bytes plus the 16-byte separator does not fit before the metadata at byte 22571"),
            ("MaxMind-DB-test-broken-pointers-24.mmdb", .data, "pointer at byte 1000 points to offset 1000000, outside the data section (65 bytes)"),
            ("MaxMind-DB-test-broken-pointers-24.mmdb", .searchTree, "for 1.1.1.32/32 points to data offset 100052, past the end of the data section (65 bytes)"),
            ("MaxMind-DB-test-broken-search-tree-24.mmdb", .searchTree, "search tree is deeper than 32 bits"),
            ("MaxMind-DB-test-broken-search-tree-24.mmdb", .searchTree, "112 of its 164 nodes unreachable"),
            ("bad-unicode-in-map-key.mmdb", .searchTree, "points to data offset 13882143, past the end of the data section (2311 bytes)"),
            ("cyclic-data-structure.mmdb", .metadata, "uint16 length 1 at byte 2730 runs past the end of the metadata section"),
            ("invalid-bytes-length.mmdb", .metadata, "map at byte 14 declares 9 entries but only 17 bytes remain in the metadata section"),
            ("invalid-data-record-offset.mmdb", .metadata, "string at byte 15 is not valid UTF-8"),
            ("invalid-map-key-length.mmdb", .metadata, "uint16 length 1 at byte 2730 runs past the end of the metadata section"),
            ("invalid-string-length.mmdb", .metadata, "pointer at byte 186 needs 1 more bytes but the metadata section ends"),
            ("libmaxminddb-corrupt-search-tree.mmdb", .searchTree, "99 of its 100 nodes unreachable from the root"),
            ("libmaxminddb-deep-array-nesting.mmdb", .data, "nesting deeper than 32"),
            ("libmaxminddb-deep-nesting.mmdb", .data, "nesting deeper than 32"),
            ("libmaxminddb-empty-array-last-in-metadata.mmdb", .metadata, "description must be a non-empty map"),
            ("libmaxminddb-empty-map-last-in-metadata.mmdb", .metadata, "description must be a non-empty map"),
            ("libmaxminddb-metadata-marker-only.mmdb", .metadata, "metadata marker at byte 0 is not followed by any metadata"),
            ("libmaxminddb-offset-integer-overflow.mmdb", .metadata, "points to offset 943208504, outside the metadata section"),
            ("libmaxminddb-oversized-array.mmdb", .data, "array at byte 22 declares 1000000 elements but only 4 bytes remain"),
            ("libmaxminddb-oversized-map.mmdb", .data, "map at byte 22 declares 1000000 entries but only 4 bytes remain"),
            ("libmaxminddb-separator-record-max-left.mmdb", .searchTree, "for 0.0.0.0/1 has value 16, which points into the 16-byte data section separator"),
            ("libmaxminddb-separator-record-min-left.mmdb", .searchTree, "for 0.0.0.0/1 has value 2, which points into the 16-byte data section separator"),
            ("libmaxminddb-separator-record-min-right.mmdb", .searchTree, "for 128.0.0.0/1 has value 2, which points into the 16-byte data section separator"),
            ("libmaxminddb-uint64-max-epoch.mmdb", .metadata, "description must be a non-empty map"),
            ("metadata-is-an-uint128.mmdb", .metadata, "uint128 length 2 at byte 14 runs past the end of the metadata section"),
            ("unexpected-bytes.mmdb", .metadata, "a value at byte 2333 would start past the end of the metadata section"),
        ]
        for (name, kind, text) in expected {
            let (open, lookups, verify) = Self.exercise(try GeoFixture.bytes("bad-data/" + name))
            let all = [open].compactMap { $0 } + lookups + [verify].compactMap { $0 }
            #expect(all.contains { $0.kind == kind && $0.message.contains(text) }, "\(name): expected \(kind) “\(text)”, got \(all.map(\.message))")
        }
        // Every file in the folder is covered by the table.
        let names = try FileManager.default.contentsOfDirectory(atPath: GeoFixture.dir.appendingPathComponent("bad-data").path)
            .filter { $0.hasSuffix(".mmdb") }
        #expect(Set(names) == Set(expected.map(\.0)))
    }

    // MARK: Fuzzing

    @Test func mutatedDatabasesNeverCrash() throws {
        let base = try GeoFixture.bytes("GeoIP2-City-Test.mmdb")
        let probes = try ["214.1.1.1", "214.0.0.1", "2001:218::1", "2a02:d000::1", "1.1.1.1", "::", "10.0.0.1",
                          "2001:220::77", "::ffff:214.0.1.9"].map(ip)
        let metadataStart = try #require(MaxMindDB.findMarker(base))
        var rng = SeededRNG(seed: 0xC057_05)
        var opened = 0, failedOpen = 0, lookupErrors = 0, lookupsOK = 0
        let clock = ContinuousClock()
        let started = clock.now
        for round in 0..<3000 {
            var b = base
            let kind = round % 6
            switch kind {
            case 0, 1:
                // Byte flips, half of them aimed at the data section and metadata.
                for _ in 0..<rng.int(1...8) {
                    let lo = rng.chance(0.5) ? 0 : max(0, metadataStart - 4000)
                    let i = rng.int(lo...(b.count - 1))
                    b[i] ^= UInt8(truncatingIfNeeded: rng.int(1...255))
                }
            case 2:
                // Flips inside the metadata only.
                for _ in 0..<rng.int(1...3) {
                    let i = rng.int(metadataStart...(b.count - 1))
                    b[i] = UInt8(truncatingIfNeeded: rng.int(0...255))
                }
            case 3:
                b.removeLast(rng.int(1...(b.count - 1)))
            case 4:
                let at = rng.int(0...b.count)
                b.insert(contentsOf: (0..<rng.int(1...16)).map { _ in UInt8(truncatingIfNeeded: rng.int(0...255)) }, at: at)
            default:
                let at = rng.int(0...(b.count - 2))
                b.removeSubrange(at..<min(b.count, at + rng.int(1...32)))
            }
            let db: MaxMindDB
            do { db = try MaxMindDB(bytes: b) } catch { failedOpen += 1; continue }
            opened += 1
            for a in probes {
                do {
                    _ = try db.location(a)
                    _ = try db.lookup(a, path: "city", "names", "en")
                    _ = try db.lookupWithPrefix(a)
                    lookupsOK += 1
                } catch {
                    lookupErrors += 1
                }
            }
            if round % 25 == 0 {
                _ = try? db.networks()
                _ = try? db.verify()
            }
        }
        #expect(opened > 500 && failedOpen > 100)
        #expect(lookupErrors > 0 && lookupsOK > 0)
        #expect(clock.now - started < .seconds(20))
    }
}
