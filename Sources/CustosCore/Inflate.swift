// Pure-Swift gzip (RFC 1952) and DEFLATE (RFC 1951) decompression, for request bodies sent
// with `Content-Encoding: gzip` (Fluent Bit, Vector) to the HTTP ingest endpoint.
//
// The input is untrusted: every malformed stream ends in a `GzipError` naming what was wrong
// and the input byte offset where it was detected (never the data itself). There are no traps
// on any input, the work is linear in input plus output, and memory is bounded by `maxOutput`
// (plus fixed tables of about 21 KiB): output beyond `maxOutput` is an error raised as soon as
// a block would exceed it, so a zip bomb costs at most `maxOutput` bytes and the time to write
// them.
//
// Decoding is table driven: a 10-bit first-level table for literal/length codes and an 8-bit
// one for distances, with second-level tables for longer codes (as in zlib's inflate_table),
// a 64-bit bit buffer refilled a word at a time, and matches copied eight bytes at a time.
//
// Accepted (and refused) the way zlib and GNU gzip do:
// - Huffman tables: over-subscribed sets are refused; incomplete sets are refused except a
//   literal/length or distance set with a single code of length 1; a distance set may be empty
//   (a block of literals only; any match in it is then an error). The code length code must be
//   complete. HLIT > 286 and HDIST > 30 are refused, as is a block without an end-of-block code.
// - Literal/length symbols 286-287 and distance symbols 30-31 (reachable in fixed blocks) are
//   errors, as are distances reaching back before the start of the current member.
// - gzip: magic 1f 8b, method 8, reserved flag bits zero; FEXTRA, FNAME, FCOMMENT skipped;
//   FHCRC checked; trailer CRC-32 and ISIZE checked. Concatenated members are decoded and
//   their outputs joined. After the last member, zero bytes (padding, as GNU gzip tolerates)
//   are ignored; any other trailing byte is an error ("trailing garbage"). Empty input (no
//   member at all) is an error.
// - Raw DEFLATE (`Inflate.decompress(deflate:maxOutput:)`): any byte after the one holding
//   the end of the final block is an error.

/// Why a gzip or DEFLATE stream could not be decoded.
public struct GzipError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What was wrong, in words (never any of the data).
    public var reason: String
    /// Offset in the input (counting from the first byte of the whole input, across
    /// concatenated members) at which the problem was detected.
    public var offset: Int

    public init(reason: String, offset: Int) {
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "\(reason) (at input byte \(offset))" }
}

public enum Gzip {
    /// Decompresses a gzip member sequence (RFC 1952; concatenated members are allowed and
    /// their outputs joined) into at most `maxOutput` bytes.
    public static func decompress(_ data: some Collection<UInt8>, maxOutput: Int) throws(GzipError) -> [UInt8] {
        try withBytes(data) { (b) throws(GzipError) in try decompress(b, maxOutput: maxOutput) }
    }

    /// Decompresses a gzip member sequence held in `data`; see `decompress(_:maxOutput:)`.
    public static func decompress(_ data: UnsafeRawBufferPointer, maxOutput: Int) throws(GzipError) -> [UInt8] {
        guard let base = data.baseAddress, data.count > 0 else {
            throw GzipError(reason: "empty input: no gzip member", offset: 0)
        }
        var inf = Inflater(input: base.assumingMemoryBound(to: UInt8.self), count: data.count, limit: maxOutput)
        defer { inf.release() }
        var p = 0
        while true {
            p = try parseHeader(data, at: p)
            let memberStart = inf.outCount
            try inf.inflate(from: p, memberStart: memberStart)
            p = inf.pos
            guard data.count - p >= 8 else {
                throw GzipError(reason: "truncated gzip trailer (CRC-32 and ISIZE)", offset: data.count)
            }
            let storedCRC = le32(data, p), storedSize = le32(data, p + 4)
            let crc = CRC32.update(0, UnsafeRawPointer(inf.out + memberStart), inf.outCount - memberStart)
            guard crc == storedCRC else {
                throw GzipError(reason: "CRC-32 mismatch: decompressed data does not match the member's checksum", offset: p)
            }
            guard UInt32(truncatingIfNeeded: inf.outCount - memberStart) == storedSize else {
                throw GzipError(reason: "ISIZE mismatch: decompressed length does not match the member's trailer", offset: p + 4)
            }
            p += 8
            if p == data.count { break }
            if data[p] == 0x1F { continue }  // another member (or a truncated/bad one: parseHeader says)
            if let q = (p..<data.count).first(where: { data[$0] != 0 }) {
                throw GzipError(reason: "trailing garbage after the last gzip member", offset: q)
            }
            break  // zero padding
        }
        return inf.takeOutput()
    }

    /// Skips one member header starting at `start`; returns the offset of its DEFLATE data.
    static func parseHeader(_ b: UnsafeRawBufferPointer, at start: Int) throws(GzipError) -> Int {
        let n = b.count
        let truncated = GzipError(reason: "truncated gzip header", offset: n)
        guard n - start >= 10 else {
            if n - start >= 1 && b[start] != 0x1F || n - start >= 2 && b[start + 1] != 0x8B {
                throw GzipError(reason: "not gzip data (bad magic bytes)", offset: start)
            }
            throw truncated
        }
        guard b[start] == 0x1F, b[start + 1] == 0x8B else {
            throw GzipError(reason: "not gzip data (bad magic bytes)", offset: start)
        }
        guard b[start + 2] == 8 else {
            throw GzipError(reason: "unsupported compression method \(b[start + 2]) (only 8, deflate, is defined)", offset: start + 2)
        }
        let flags = b[start + 3]
        guard flags & 0xE0 == 0 else {
            throw GzipError(reason: "reserved gzip header flag bits set", offset: start + 3)
        }
        var p = start + 10
        if flags & 0x04 != 0 {  // FEXTRA
            guard n - p >= 2 else { throw truncated }
            let xlen = Int(b[p]) | Int(b[p + 1]) << 8
            p += 2
            guard n - p >= xlen else { throw truncated }
            p += xlen
        }
        for flag: UInt8 in [0x08, 0x10] where flags & flag != 0 {  // FNAME, FCOMMENT: zero-terminated
            guard let z = (p..<n).first(where: { b[$0] == 0 }) else { throw truncated }
            p = z + 1
        }
        if flags & 0x02 != 0 {  // FHCRC: low 16 bits of the CRC-32 of the header so far
            guard n - p >= 2 else { throw truncated }
            let stored = UInt16(b[p]) | UInt16(b[p + 1]) << 8
            let crc = CRC32.update(0, b.baseAddress! + start, p - start)
            guard UInt16(truncatingIfNeeded: crc) == stored else {
                throw GzipError(reason: "gzip header CRC mismatch", offset: p)
            }
            p += 2
        }
        return p
    }

    static func le32(_ b: UnsafeRawBufferPointer, _ p: Int) -> UInt32 {
        UInt32(b[p]) | UInt32(b[p + 1]) << 8 | UInt32(b[p + 2]) << 16 | UInt32(b[p + 3]) << 24
    }

    /// Runs `body` over the collection's bytes, contiguous already or copied.
    static func withBytes<C: Collection<UInt8>>(
        _ data: C, _ body: (UnsafeRawBufferPointer) throws(GzipError) -> [UInt8]
    ) throws(GzipError) -> [UInt8] {
        let direct: Result<[UInt8], GzipError>? = data.withContiguousStorageIfAvailable { buf in
            Result { () throws(GzipError) -> [UInt8] in try body(UnsafeRawBufferPointer(buf)) }
        }
        if let direct { return try direct.get() }
        let copy = Array(data)
        let result: Result<[UInt8], GzipError> = copy.withUnsafeBytes { b in
            Result { () throws(GzipError) -> [UInt8] in try body(b) }
        }
        return try result.get()
    }
}

public enum Inflate {
    /// Decompresses a raw DEFLATE stream (RFC 1951, no zlib or gzip wrapper) into at most
    /// `maxOutput` bytes. Bytes after the end of the final block are an error.
    public static func decompress(deflate data: some Collection<UInt8>, maxOutput: Int) throws(GzipError) -> [UInt8] {
        try Gzip.withBytes(data) { (b) throws(GzipError) in
            guard let base = b.baseAddress, b.count > 0 else {
                throw GzipError(reason: "truncated deflate stream (input ends inside it)", offset: 0)
            }
            var inf = Inflater(input: base.assumingMemoryBound(to: UInt8.self), count: b.count, limit: maxOutput)
            defer { inf.release() }
            try inf.inflate(from: 0, memberStart: 0)
            guard inf.pos == b.count else {
                throw GzipError(reason: "trailing data after the end of the deflate stream", offset: inf.pos)
            }
            return inf.takeOutput()
        }
    }
}

// MARK: - CRC-32 (IEEE 802.3, reflected, as in gzip), slicing by eight

public enum CRC32 {
    /// The CRC-32 of `bytes` (ZIP, gzip).
    public static func checksum(_ bytes: [UInt8]) -> UInt32 {
        bytes.withUnsafeBytes { b in b.baseAddress.map { update(0, $0, b.count) } ?? 0 }
    }

    static let table: [UInt32] = {
        var t = [UInt32](repeating: 0, count: 8 * 256)
        for i in 0..<256 {
            var c = UInt32(i)
            for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
            t[i] = c
        }
        for k in 1..<8 {
            for i in 0..<256 {
                let prev = t[(k - 1) * 256 + i]
                t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
            }
        }
        return t
    }()

    /// The CRC-32 of `count` bytes at `p`, continuing from `crc` (0 to start).
    static func update(_ crc: UInt32, _ p: UnsafeRawPointer, _ count: Int) -> UInt32 {
        table.withUnsafeBufferPointer { t in
            var c = ~crc
            var q = p
            var n = count
            while n >= 8 {
                let w = UInt64(littleEndian: q.loadUnaligned(as: UInt64.self)) ^ UInt64(c)
                c = t[7 * 256 + Int(w & 0xFF)] ^ t[6 * 256 + Int((w >> 8) & 0xFF)]
                    ^ t[5 * 256 + Int((w >> 16) & 0xFF)] ^ t[4 * 256 + Int((w >> 24) & 0xFF)]
                    ^ t[3 * 256 + Int((w >> 32) & 0xFF)] ^ t[2 * 256 + Int((w >> 40) & 0xFF)]
                    ^ t[1 * 256 + Int((w >> 48) & 0xFF)] ^ t[Int(w >> 56)]
                q += 8
                n -= 8
            }
            while n > 0 {
                c = t[Int((c ^ UInt32(q.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
                q += 1
                n -= 1
            }
            return ~c
        }
    }
}

// MARK: - Huffman tables

/// A decoding table entry, packed in 32 bits:
/// bits 0-3 code length to consume; bits 4-7 extra bits (length/distance) or, for a link,
/// the second-level table's index bits; bits 8-10 kind; bits 16-31 value (literal byte,
/// length or distance base, or second-level table start).
enum Entry {
    static let literal: UInt32 = 0
    static let match: UInt32 = 1
    static let end: UInt32 = 2
    static let link: UInt32 = 3
    static let invalid: UInt32 = 4
    static let invalidEntry: UInt32 = invalid << 8

    @inline(__always)
    static func make(bits: Int, extra: Int, kind: UInt32, value: Int) -> UInt32 {
        UInt32(truncatingIfNeeded: bits) | UInt32(truncatingIfNeeded: extra) << 4 | kind << 8
            | UInt32(truncatingIfNeeded: value) << 16
    }
}

enum TableKind { case literalLength, distance, codeLength }

enum BuildResult {
    case complete, single, empty, incomplete, overSubscribed, tooLarge
}

enum Huffman {
    static let lengthBase: [Int] = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
                                    35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
    static let lengthExtra: [Int] = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
                                     3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]
    static let distBase: [Int] = [1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
                                  257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145,
                                  8193, 12289, 16385, 24577]
    static let distExtra: [Int] = [0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
                                   7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13]
    /// Order in which the code length code's lengths are sent.
    static let codeLengthOrder: [Int] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]

    static func entry(symbol: Int, bits: Int, kind: TableKind) -> UInt32 {
        switch kind {
        case .codeLength:
            return Entry.make(bits: bits, extra: 0, kind: Entry.literal, value: symbol)
        case .literalLength:
            if symbol < 256 { return Entry.make(bits: bits, extra: 0, kind: Entry.literal, value: symbol) }
            if symbol == 256 { return Entry.make(bits: bits, extra: 0, kind: Entry.end, value: 0) }
            let i = symbol - 257
            if i < 29 { return Entry.make(bits: bits, extra: lengthExtra[i], kind: Entry.match, value: lengthBase[i]) }
            return Entry.make(bits: bits, extra: 0, kind: Entry.invalid, value: 0)
        case .distance:
            if symbol < 30 { return Entry.make(bits: bits, extra: distExtra[symbol], kind: Entry.match, value: distBase[symbol]) }
            return Entry.make(bits: bits, extra: 0, kind: Entry.invalid, value: 0)
        }
    }

    /// Builds the canonical Huffman decoding table for `n` code lengths (each 0...15) into
    /// `table` (`root`-bit first level, second-level tables after it, at most `capacity`
    /// entries). Entries no code reaches are invalid.
    static func build(_ lengths: UnsafePointer<UInt8>, _ n: Int, kind: TableKind, root: Int,
                      into table: UnsafeMutablePointer<UInt32>, capacity: Int) -> BuildResult {
        var count = [Int](repeating: 0, count: 16)
        for s in 0..<n { count[Int(lengths[s] & 15)] += 1 }
        count[0] = 0
        var maxLen = 15
        while maxLen > 0 && count[maxLen] == 0 { maxLen -= 1 }
        let rootSize = 1 << root
        table.update(repeating: Entry.invalidEntry, count: rootSize)
        if maxLen == 0 { return .empty }
        var left = 1
        for l in 1...15 {
            left <<= 1
            left -= count[l]
            if left < 0 { return .overSubscribed }
        }
        let result: BuildResult = left == 0 ? .complete : (maxLen == 1 ? .single : .incomplete)
        if result == .incomplete { return .incomplete }

        var offsets = [Int](repeating: 0, count: 17)
        for l in 1...15 { offsets[l + 1] = offsets[l] + count[l] }
        let total = offsets[16]
        var sorted = [Int](repeating: 0, count: total)
        for s in 0..<n where lengths[s] != 0 {
            let l = Int(lengths[s])
            sorted[offsets[l]] = s
            offsets[l] += 1
        }

        var remaining = count
        var code = 0
        var curLen = Int(lengths[sorted[0]])
        var subPrefix = -1, subStart = 0, subBits = 0, next = rootSize
        for k in 0..<total {
            let sym = sorted[k]
            let len = Int(lengths[sym])
            if len > curLen {
                code <<= len - curLen
                curLen = len
            }
            var rev = 0
            for b in 0..<len where code & (1 << b) != 0 { rev |= 1 << (len - 1 - b) }
            if len <= root {
                let e = entry(symbol: sym, bits: len, kind: kind)
                var i = rev
                while i < rootSize {
                    table[i] = e
                    i += 1 << len
                }
            } else {
                let prefix = rev & (rootSize - 1)
                if prefix != subPrefix {
                    // Size the second-level table to cover the remaining codes with this prefix.
                    var cur = len - root
                    var l2 = 1 << cur
                    while cur + root < maxLen {
                        l2 -= remaining[cur + root]
                        if l2 <= 0 { break }
                        cur += 1
                        l2 <<= 1
                    }
                    subBits = cur
                    subStart = next
                    next += 1 << cur
                    if next > capacity { return .tooLarge }
                    (table + subStart).update(repeating: Entry.invalidEntry, count: 1 << cur)
                    table[prefix] = Entry.make(bits: root, extra: cur, kind: Entry.link, value: subStart)
                    subPrefix = prefix
                }
                let e = entry(symbol: sym, bits: len - root, kind: kind)
                var i = rev >> root
                while i < 1 << subBits {
                    table[subStart + i] = e
                    i += 1 << (len - root)
                }
            }
            remaining[len] -= 1
            code += 1
        }
        return result
    }
}

// MARK: - The decoder

struct Inflater {
    static let litRoot = 10, distRoot = 8, codeRoot = 7
    static let litCapacity = 4096, distCapacity = 1024, codeCapacity = 128
    /// Room past the output capacity for eight-byte match copies that overshoot.
    static let slack = 64

    let input: UnsafePointer<UInt8>
    let count: Int
    /// Next input byte to load into the bit buffer (may run past `count` by zero bytes
    /// near the end; consuming any of those is a truncation error).
    var pos = 0
    var bitbuf: UInt64 = 0
    var bitcnt = 0

    var out: UnsafeMutablePointer<UInt8>
    var outCount = 0
    var outCap: Int
    let limit: Int

    let lit: UnsafeMutablePointer<UInt32>
    let dist: UnsafeMutablePointer<UInt32>
    let codes: UnsafeMutablePointer<UInt32>
    let lengths: UnsafeMutablePointer<UInt8>
    var fixedLoaded = false

    init(input: UnsafePointer<UInt8>, count: Int, limit: Int) {
        self.input = input
        self.count = count
        self.limit = max(0, limit)
        outCap = min(self.limit, max(1 << 16, count.multipliedReportingOverflow(by: 4).overflow ? Int.max : count * 4))
        out = .allocate(capacity: outCap + Self.slack)
        lit = .allocate(capacity: Self.litCapacity)
        dist = .allocate(capacity: Self.distCapacity)
        codes = .allocate(capacity: Self.codeCapacity)
        lengths = .allocate(capacity: 320)
    }

    func release() {
        out.deallocate()
        lit.deallocate()
        dist.deallocate()
        codes.deallocate()
        lengths.deallocate()
    }

    func takeOutput() -> [UInt8] {
        Array(UnsafeBufferPointer(start: out, count: outCount))
    }

    // MARK: Bits

    var consumedBits: Int { pos &* 8 &- bitcnt }

    /// An error at the current position; if the input already ran out, the truncation is
    /// the real problem and is reported instead.
    func fail(_ reason: String) -> GzipError {
        if consumedBits > count &* 8 { return truncated() }
        return GzipError(reason: reason, offset: min(count, max(0, consumedBits / 8)))
    }

    func truncated() -> GzipError {
        GzipError(reason: "truncated deflate stream (input ends inside it)", offset: count)
    }

    /// Makes at least 56 bits available.
    @inline(__always)
    mutating func refill() throws(GzipError) {
        if count &- pos >= 8 {
            let w = UInt64(littleEndian: UnsafeRawPointer(input + pos).loadUnaligned(as: UInt64.self))
            bitbuf |= w &<< UInt64(bitcnt)
            pos &+= 7 &- (bitcnt &>> 3)
            bitcnt |= 56
        } else {
            try refillSlow()
        }
    }

    mutating func refillSlow() throws(GzipError) {
        if consumedBits > count &* 8 { throw truncated() }
        while bitcnt < 56 {
            if pos < count { bitbuf |= UInt64(input[pos]) &<< UInt64(bitcnt) }
            pos += 1
            bitcnt += 8
        }
    }

    @inline(__always)
    mutating func take(_ n: Int) -> Int {
        let v = Int(truncatingIfNeeded: bitbuf & ((1 &<< UInt64(n)) &- 1))
        bitbuf &>>= UInt64(n)
        bitcnt &-= n
        return v
    }

    /// Drops bits up to the byte boundary and empties the bit buffer; `pos` is then the
    /// next unread byte.
    mutating func alignToByte() throws(GzipError) {
        if consumedBits > count &* 8 { throw truncated() }
        let drop = bitcnt & 7
        bitcnt -= drop
        pos -= bitcnt / 8
        bitbuf = 0
        bitcnt = 0
    }

    // MARK: Output

    mutating func grow(_ need: Int) throws(GzipError) {
        if need > limit { throw fail("decompressed size exceeds \(limit) bytes") }
        let doubled = outCap > limit / 2 ? limit : outCap * 2
        let newCap = min(limit, max(need, doubled))
        let p = UnsafeMutablePointer<UInt8>.allocate(capacity: newCap + Self.slack)
        p.update(from: out, count: outCount)
        out.deallocate()
        out = p
        outCap = newCap
    }

    // MARK: Blocks

    /// Decodes one DEFLATE stream starting at input byte `start`; afterwards `pos` is the
    /// byte after the one holding the end of the final block.
    mutating func inflate(from start: Int, memberStart: Int) throws(GzipError) {
        pos = start
        bitbuf = 0
        bitcnt = 0
        while true {
            try refill()
            let final = take(1)
            switch take(2) {
            case 0:
                try storedBlock()
            case 1:
                if !fixedLoaded { loadFixedTables() }
                try huffmanBlock(memberStart: memberStart)
            case 2:
                fixedLoaded = false
                try readDynamicTables()
                try huffmanBlock(memberStart: memberStart)
            default:
                throw fail("invalid block type 3 (reserved)")
            }
            if consumedBits > count &* 8 { throw truncated() }
            if final == 1 { break }
        }
        try alignToByte()
    }

    mutating func storedBlock() throws(GzipError) {
        try alignToByte()
        var p = pos
        guard count - p >= 4 else { throw truncated() }
        let len = Int(input[p]) | Int(input[p + 1]) << 8
        let nlen = Int(input[p + 2]) | Int(input[p + 3]) << 8
        guard len ^ nlen == 0xFFFF else {
            throw GzipError(reason: "stored block length check failed (LEN and NLEN are not complements)", offset: p)
        }
        p += 4
        pos = p
        guard count - p >= len else { throw truncated() }
        if outCount + len > outCap { try grow(outCount + len) }
        (out + outCount).update(from: input + p, count: len)
        outCount += len
        pos = p + len
    }

    mutating func loadFixedTables() {
        for i in 0..<144 { lengths[i] = 8 }
        for i in 144..<256 { lengths[i] = 9 }
        for i in 256..<280 { lengths[i] = 7 }
        for i in 280..<288 { lengths[i] = 8 }
        _ = Huffman.build(lengths, 288, kind: .literalLength, root: Self.litRoot, into: lit, capacity: Self.litCapacity)
        for i in 0..<32 { lengths[i] = 5 }
        _ = Huffman.build(lengths, 32, kind: .distance, root: Self.distRoot, into: dist, capacity: Self.distCapacity)
        fixedLoaded = true
    }

    mutating func readDynamicTables() throws(GzipError) {
        try refill()
        let hlit = take(5) + 257, hdist = take(5) + 1, hclen = take(4) + 4
        guard hlit <= 286, hdist <= 30 else {
            throw fail("too many literal/length or distance codes (HLIT \(hlit), HDIST \(hdist))")
        }
        for i in 0..<19 { lengths[i] = 0 }
        for i in 0..<hclen {
            if bitcnt < 3 { try refill() }
            lengths[Huffman.codeLengthOrder[i]] = UInt8(take(3))
        }
        switch Huffman.build(lengths, 19, kind: .codeLength, root: Self.codeRoot, into: codes, capacity: Self.codeCapacity) {
        case .complete: break
        case .overSubscribed: throw fail("invalid code length code (over-subscribed)")
        default: throw fail("invalid code length code (incomplete)")
        }
        let total = hlit + hdist
        var i = 0
        while i < total {
            if bitcnt < 16 { try refill() }
            let e = codes[Int(truncatingIfNeeded: bitbuf & 0x7F)]
            _ = take(Int(e & 15))
            let sym = Int(e >> 16)
            if sym < 16 {
                lengths[i] = UInt8(sym)
                i += 1
                continue
            }
            var value: UInt8 = 0
            let rep: Int
            switch sym {
            case 16:
                guard i > 0 else { throw fail("code length repeat with no previous length") }
                value = lengths[i - 1]
                rep = 3 + take(2)
            case 17:
                rep = 3 + take(3)
            default:
                rep = 11 + take(7)
            }
            guard total - i >= rep else { throw fail("code length repeat runs past the end of the code lengths") }
            for _ in 0..<rep {
                lengths[i] = value
                i += 1
            }
        }
        if consumedBits > count &* 8 { throw truncated() }
        guard lengths[256] != 0 else { throw fail("no end-of-block code in the literal/length code") }
        switch Huffman.build(lengths, hlit, kind: .literalLength, root: Self.litRoot, into: lit, capacity: Self.litCapacity) {
        case .complete, .single: break
        case .overSubscribed: throw fail("invalid literal/length code lengths (over-subscribed)")
        case .tooLarge: throw fail("literal/length code table too large")
        case .incomplete, .empty: throw fail("invalid literal/length code lengths (incomplete)")
        }
        switch Huffman.build(lengths + hlit, hdist, kind: .distance, root: Self.distRoot, into: dist, capacity: Self.distCapacity) {
        case .complete, .single, .empty: break
        case .overSubscribed: throw fail("invalid distance code lengths (over-subscribed)")
        case .tooLarge: throw fail("distance code table too large")
        case .incomplete: throw fail("invalid distance code lengths (incomplete)")
        }
    }

    /// Decodes the symbols of a fixed or dynamic Huffman block up to its end-of-block code.
    mutating func huffmanBlock(memberStart: Int) throws(GzipError) {
        let lit = self.lit, dist = self.dist
        let litMask: UInt64 = (1 << UInt64(Self.litRoot)) - 1
        let distMask: UInt64 = (1 << UInt64(Self.distRoot)) - 1
        while true {
            // 56 bits cover a literal/length code with its extra bits (15 + 5) and a
            // distance code with its extra bits (15 + 13).
            try refill()
            var e = lit[Int(truncatingIfNeeded: bitbuf & litMask)]
            if (e >> 8) & 7 == Entry.link {
                bitbuf &>>= UInt64(Self.litRoot)
                bitcnt &-= Self.litRoot
                let mask = (UInt64(1) &<< UInt64((e >> 4) & 15)) &- 1
                e = lit[Int(e >> 16) &+ Int(truncatingIfNeeded: bitbuf & mask)]
            }
            bitbuf &>>= UInt64(e & 15)
            bitcnt &-= Int(e & 15)
            let kind = (e >> 8) & 7
            if kind == Entry.literal {
                if outCount >= outCap { try grow(outCount + 1) }
                out[outCount] = UInt8(truncatingIfNeeded: e >> 16)
                outCount &+= 1
                continue
            }
            if kind == Entry.end { return }
            guard kind == Entry.match else { throw fail("invalid literal/length code") }
            let lx = UInt64((e >> 4) & 15)
            let length = Int(e >> 16) &+ Int(truncatingIfNeeded: bitbuf & ((1 &<< lx) &- 1))
            bitbuf &>>= lx
            bitcnt &-= Int(lx)

            var d = dist[Int(truncatingIfNeeded: bitbuf & distMask)]
            if (d >> 8) & 7 == Entry.link {
                bitbuf &>>= UInt64(Self.distRoot)
                bitcnt &-= Self.distRoot
                let mask = (UInt64(1) &<< UInt64((d >> 4) & 15)) &- 1
                d = dist[Int(d >> 16) &+ Int(truncatingIfNeeded: bitbuf & mask)]
            }
            bitbuf &>>= UInt64(d & 15)
            bitcnt &-= Int(d & 15)
            guard (d >> 8) & 7 == Entry.match else { throw fail("invalid distance code") }
            let dx = UInt64((d >> 4) & 15)
            let distance = Int(d >> 16) &+ Int(truncatingIfNeeded: bitbuf & ((1 &<< dx) &- 1))
            bitbuf &>>= dx
            bitcnt &-= Int(dx)
            guard distance <= outCount &- memberStart else {
                throw fail("invalid distance \(distance): reaches back before the start of the data")
            }
            if outCount &+ length > outCap { try grow(outCount + length) }
            copyMatch(distance: distance, length: length)
        }
    }

    @inline(__always)
    mutating func copyMatch(distance: Int, length: Int) {
        let dst = out + outCount
        let src = dst - distance
        if distance >= 8 {
            // Overshoots by up to 7 bytes into the slack; every load reads finished bytes.
            var s = UnsafeRawPointer(src), d = UnsafeMutableRawPointer(dst)
            let end = d + length
            repeat {
                d.storeBytes(of: s.loadUnaligned(as: UInt64.self), as: UInt64.self)
                s += 8
                d += 8
            } while d < end
        } else if distance == 1 {
            dst.update(repeating: src.pointee, count: length)
        } else {
            for i in 0..<length { dst[i] = src[i] }
        }
        outCount &+= length
    }
}
