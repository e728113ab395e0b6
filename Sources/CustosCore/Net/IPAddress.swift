/// An IPv4 or IPv6 address.
///
/// All addresses are held as 128 bits. An IPv4 address `a.b.c.d` is stored in its IPv4-mapped
/// form `::ffff:a.b.c.d` with `isIPv4 == true`, so one code path (a CIDR match, a MaxMind DB
/// tree walk) serves both families.
///
/// Equality and hashing include `isIPv4`: `IPAddress("1.2.3.4")` and `IPAddress("::ffff:1.2.3.4")`
/// hold the same 128 bits but are different values (the second was written as an IPv6 address).
/// Use `unmapped` to fold the second into the first.
///
/// Text forms (`init?(_:)`) are parsed strictly:
/// - IPv4: exactly four dot-separated decimal octets, each 0...255, no leading zeros (`010` is
///   rejected, since some parsers read it as octal), no signs, no whitespace.
/// - IPv6: eight groups of one to four hex digits (either case), or fewer with a single `::`
///   standing for one or more zero groups; the last 32 bits may be written as a dotted quad
///   (`::ffff:1.2.3.4`, `64:ff9b::192.0.2.1`).
/// - A zone index (`fe80::1%eth0`) is rejected (`nil`): a zone only means something on the host
///   that wrote it, and an address with one cannot be compared or looked up meaningfully.
/// - Brackets (`[::1]`), ports and surrounding whitespace are rejected.
public struct IPAddress: Hashable, Sendable, CustomStringConvertible {
    /// The high and low 64 bits of the 128-bit address, network (big-endian) bit order.
    public let high: UInt64
    public let low: UInt64
    /// True when this address was made as an IPv4 address (it is stored v4-mapped).
    public let isIPv4: Bool

    static let mappedPrefixLow: UInt64 = 0x0000_FFFF_0000_0000

    /// An address from its 128 bits. `isIPv4` is true only if asked for and the bits are v4-mapped.
    public init(high: UInt64, low: UInt64, isIPv4: Bool = false) {
        self.high = high
        self.low = low
        self.isIPv4 = isIPv4 && high == 0 && (low & 0xFFFF_FFFF_0000_0000) == Self.mappedPrefixLow
    }

    /// An IPv4 address from its 32-bit value (`0x01020304` is `1.2.3.4`).
    public init(ipv4 value: UInt32) {
        high = 0
        low = Self.mappedPrefixLow | UInt64(value)
        isIPv4 = true
    }

    /// An IPv4 address from four octets.
    public init(_ a: UInt8, _ b: UInt8, _ c: UInt8, _ d: UInt8) {
        self.init(ipv4: UInt32(a) << 24 | UInt32(b) << 16 | UInt32(c) << 8 | UInt32(d))
    }

    /// An address from raw bytes: 4 bytes make an IPv4 address, 16 an IPv6 one; other lengths give nil.
    public init?(bytes: some Collection<UInt8>) {
        var acc: (UInt64, UInt64) = (0, 0)
        var n = 0
        for b in bytes {
            if n >= 16 { return nil }
            if n < 8 { acc.0 = acc.0 << 8 | UInt64(b) } else { acc.1 = acc.1 << 8 | UInt64(b) }
            n += 1
        }
        switch n {
        case 4: self.init(ipv4: UInt32(truncatingIfNeeded: acc.0))
        case 16: self.init(high: acc.0, low: acc.1)
        default: return nil
        }
    }

    /// The 16 bytes of the address (IPv4 addresses in their v4-mapped form).
    public var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 {
            out[i] = UInt8(truncatingIfNeeded: high >> (56 - 8 * i))
            out[8 + i] = UInt8(truncatingIfNeeded: low >> (56 - 8 * i))
        }
        return out
    }

    /// True when the 128 bits are in `::ffff:0:0/96` (always true for IPv4 addresses).
    public var isIPv4Mapped: Bool { high == 0 && (low & 0xFFFF_FFFF_0000_0000) == Self.mappedPrefixLow }

    /// The 32-bit IPv4 value when the address is IPv4 or v4-mapped IPv6, else nil.
    public var ipv4Value: UInt32? { isIPv4Mapped ? UInt32(truncatingIfNeeded: low) : nil }

    /// The IPv4 address for a v4-mapped IPv6 address; any other address unchanged.
    public var unmapped: IPAddress { isIPv4Mapped ? IPAddress(ipv4: UInt32(truncatingIfNeeded: low)) : self }

    /// Bit `index` (0 is the most significant) of the 128-bit form.
    @inline(__always) func bit(_ index: Int) -> Int {
        index < 64 ? Int(truncatingIfNeeded: (high >> UInt64(63 - index)) & 1)
                   : Int(truncatingIfNeeded: (low >> UInt64(127 - index)) & 1)
    }

    // MARK: Parsing

    /// Parses an IPv4 dotted quad or an IPv6 address; nil if the text is not exactly one of those
    /// (see the type's documentation for the rules).
    public init?(_ text: some StringProtocol) {
        // The longest valid form is "ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255" (45 bytes).
        var buf = [UInt8]()
        buf.reserveCapacity(45)
        for c in text.utf8 {
            if buf.count == 45 { return nil }
            buf.append(c)
        }
        if buf.contains(UInt8(ascii: ":")) {
            guard let (h, l) = Self.parseIPv6(buf) else { return nil }
            self.init(high: h, low: l)
        } else {
            guard let v = Self.parseIPv4(buf[...]) else { return nil }
            self.init(ipv4: v)
        }
    }

    /// A strict dotted quad: four parts, each 1–3 digits, no leading zero, at most 255.
    static func parseIPv4(_ s: ArraySlice<UInt8>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var octet = 0
        var digits = 0
        var leadingZero = false
        func finishPart() -> Bool {
            guard digits > 0, octet <= 255, !(leadingZero && digits > 1) else { return false }
            value = value << 8 | UInt32(octet)
            parts += 1
            return true
        }
        for c in s {
            if c == UInt8(ascii: ".") {
                guard parts < 3, finishPart() else { return nil }
                octet = 0; digits = 0; leadingZero = false
            } else if c >= UInt8(ascii: "0"), c <= UInt8(ascii: "9") {
                guard digits < 3 else { return nil }
                if digits == 0 { leadingZero = c == UInt8(ascii: "0") }
                octet = octet * 10 + Int(c - UInt8(ascii: "0"))
                digits += 1
            } else {
                return nil
            }
        }
        guard finishPart(), parts == 4 else { return nil }
        return value
    }

    /// One group of 1–4 hex digits.
    static func parseGroup(_ s: ArraySlice<UInt8>) -> UInt16? {
        guard !s.isEmpty, s.count <= 4 else { return nil }
        var v: UInt16 = 0
        for c in s {
            let d: UInt8
            switch c {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = c - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = c - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = c - UInt8(ascii: "A") + 10
            default: return nil
            }
            v = v << 4 | UInt16(d)
        }
        return v
    }

    /// Colon-separated groups; when `allowIPv4Tail`, the last part may be a dotted quad (two groups).
    /// Empty text gives no groups; an empty part (leading, trailing or doubled colon) fails.
    static func parseGroups(_ s: ArraySlice<UInt8>, allowIPv4Tail: Bool) -> [UInt16]? {
        var out: [UInt16] = []
        if s.isEmpty { return out }
        let parts = s.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        guard parts.count <= 8 else { return nil }
        for (i, part) in parts.enumerated() {
            if i == parts.count - 1, allowIPv4Tail, part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseIPv4(part) else { return nil }
                out.append(UInt16(truncatingIfNeeded: v4 >> 16))
                out.append(UInt16(truncatingIfNeeded: v4))
            } else {
                guard let g = parseGroup(part) else { return nil }
                out.append(g)
            }
        }
        return out
    }

    static func parseIPv6(_ s: [UInt8]) -> (UInt64, UInt64)? {
        let colon = UInt8(ascii: ":")
        // Find the one "::", if any; a second one (including ":::") is an error.
        var gap: Int? = nil
        var i = 0
        while i + 1 < s.count {
            if s[i] == colon, s[i + 1] == colon {
                guard gap == nil else { return nil }
                gap = i
                i += 2
                // ":::" — a colon right after "::" makes an empty group.
                if i < s.count, s[i] == colon { return nil }
                continue
            }
            i += 1
        }
        var groups: [UInt16]
        if let gap {
            guard let head = parseGroups(s[..<gap], allowIPv4Tail: false),
                  let tail = parseGroups(s[(gap + 2)...], allowIPv4Tail: true),
                  head.count + tail.count <= 7
            else { return nil }
            groups = head
            groups.append(contentsOf: repeatElement(0, count: 8 - head.count - tail.count))
            groups.append(contentsOf: tail)
        } else {
            guard let all = parseGroups(s[...], allowIPv4Tail: true), all.count == 8 else { return nil }
            groups = all
        }
        var h: UInt64 = 0, l: UInt64 = 0
        for k in 0..<4 { h = h << 16 | UInt64(groups[k]) }
        for k in 4..<8 { l = l << 16 | UInt64(groups[k]) }
        return (h, l)
    }

    // MARK: Text

    /// Dotted quad for IPv4; RFC 5952 text for IPv6 (lowercase, no leading zeros, the longest run
    /// of two or more zero groups shortened to `::`, the first such run on a tie, and mixed notation
    /// `::ffff:a.b.c.d` for v4-mapped addresses).
    public var description: String {
        if isIPv4 { return Self.dottedQuad(UInt32(truncatingIfNeeded: low)) }
        if isIPv4Mapped { return "::ffff:" + Self.dottedQuad(UInt32(truncatingIfNeeded: low)) }
        var groups = [UInt16](repeating: 0, count: 8)
        for k in 0..<4 {
            groups[k] = UInt16(truncatingIfNeeded: high >> UInt64(48 - 16 * k))
            groups[4 + k] = UInt16(truncatingIfNeeded: low >> UInt64(48 - 16 * k))
        }
        var bestStart = -1, bestLen = 0
        var k = 0
        while k < 8 {
            if groups[k] == 0 {
                var e = k
                while e < 8, groups[e] == 0 { e += 1 }
                if e - k > bestLen { bestStart = k; bestLen = e - k }
                k = e
            } else {
                k += 1
            }
        }
        if bestLen < 2 { bestStart = -1 }
        var out = ""
        k = 0
        while k < 8 {
            if k == bestStart {
                out += "::"
                k += bestLen
                continue
            }
            if !out.isEmpty, !out.hasSuffix(":") { out += ":" }
            out += String(groups[k], radix: 16)
            k += 1
        }
        return out
    }

    static func dottedQuad(_ v: UInt32) -> String {
        "\(v >> 24).\((v >> 16) & 0xFF).\((v >> 8) & 0xFF).\(v & 0xFF)"
    }
}

/// Why a CIDR text was rejected; `description` is a sentence for a person.
public enum CIDRError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No `/` in the text.
    case missingPrefix(input: String)
    /// The part after `/` is empty or not plain decimal digits (signs, spaces, a second `/`,
    /// leading zeros such as `/08` are all rejected).
    case invalidPrefix(input: String, prefix: String)
    /// The prefix is a number but larger than 32 (IPv4) or 128 (IPv6).
    case prefixOutOfRange(input: String, prefix: String, maximum: Int)
    /// The part before `/` is not an address `IPAddress.init?(_:)` accepts.
    case invalidAddress(input: String, address: String)

    public var description: String {
        switch self {
        case .missingPrefix(let input):
            return "CIDR \"\(input)\" has no prefix length (expected address/length, e.g. 10.0.0.0/8)"
        case .invalidPrefix(let input, let prefix):
            return prefix.isEmpty
                ? "CIDR \"\(input)\" has an empty prefix length after \"/\""
                : "CIDR \"\(input)\" has prefix length \"\(prefix)\", which is not a plain decimal number"
        case .prefixOutOfRange(let input, let prefix, let maximum):
            return "CIDR \"\(input)\" has prefix length \(prefix), out of range 0...\(maximum) for "
                + (maximum == 32 ? "IPv4" : "IPv6")
        case .invalidAddress(let input, let address):
            return "CIDR \"\(input)\" has \"\(address)\", which is not a valid IPv4 or IPv6 address"
        }
    }

    public var message: String { description }
}

/// An IP network: an address and a prefix length.
///
/// Host bits set in the text are allowed and cleared: `10.1.2.3/8` parses as `10.0.0.0/8`.
/// (Operators often paste an interface address with its mask; refusing it helps nobody, and the
/// normalised `description` shows what the network is.)
///
/// Matching: an IPv4 CIDR matches IPv4 addresses and their v4-mapped IPv6 form; an IPv6 CIDR
/// compares all 128 bits, so one that covers `::ffff:0:0/96` (such as `::ffff:0:0/96` itself or
/// `::/0`) also matches IPv4 addresses.
public struct CIDR: Hashable, Sendable, CustomStringConvertible {
    /// The network address (host bits cleared). IPv4 for an IPv4 CIDR.
    public let network: IPAddress
    /// The prefix length, 0...32 for IPv4, 0...128 for IPv6.
    public let prefixLength: Int
    let maskHigh: UInt64
    let maskLow: UInt64

    public var isIPv4: Bool { network.isIPv4 }

    /// The network of `address` with `prefixLength` bits (host bits cleared). The length counts
    /// in the address's own family: 0...32 for IPv4, 0...128 for IPv6.
    public init(_ address: IPAddress, prefixLength: Int) throws(CIDRError) {
        let maximum = address.isIPv4 ? 32 : 128
        guard prefixLength >= 0, prefixLength <= maximum else {
            throw .prefixOutOfRange(input: "\(address)/\(prefixLength)", prefix: String(prefixLength), maximum: maximum)
        }
        self.init(unchecked: address, prefixLength: prefixLength)
    }

    init(unchecked address: IPAddress, prefixLength: Int) {
        let bits = address.isIPv4 ? prefixLength + 96 : prefixLength
        let mh: UInt64 = bits >= 64 ? ~0 : (bits == 0 ? 0 : ~0 << UInt64(64 - bits))
        let ml: UInt64 = bits <= 64 ? 0 : (bits >= 128 ? ~0 : ~0 << UInt64(128 - bits))
        maskHigh = mh
        maskLow = ml
        network = IPAddress(high: address.high & mh, low: address.low & ml, isIPv4: address.isIPv4)
        self.prefixLength = prefixLength
    }

    /// Parses `address/length`; see the type's documentation for the rules.
    public init(parsing text: String) throws(CIDRError) {
        guard let slash = text.utf8.firstIndex(of: UInt8(ascii: "/")) else { throw .missingPrefix(input: text) }
        let addressText = text[..<slash]
        let prefixText = text[text.utf8.index(after: slash)...]
        guard let address = IPAddress(addressText) else {
            throw .invalidAddress(input: text, address: String(addressText))
        }
        guard !prefixText.isEmpty,
              prefixText.utf8.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }),
              prefixText == "0" || prefixText.utf8.first != UInt8(ascii: "0")
        else { throw .invalidPrefix(input: text, prefix: String(prefixText)) }
        let maximum = address.isIPv4 ? 32 : 128
        guard prefixText.utf8.count <= 3, let n = Int(prefixText), n <= maximum else {
            throw .prefixOutOfRange(input: text, prefix: String(prefixText), maximum: maximum)
        }
        self.init(unchecked: address, prefixLength: n)
    }

    /// Whether `ip` is in this network. Allocation-free: two masked compares.
    @inline(__always)
    public func contains(_ ip: IPAddress) -> Bool {
        (ip.high & maskHigh) == network.high && (ip.low & maskLow) == network.low
    }

    public var description: String { "\(network)/\(prefixLength)" }
}
