/// Everything a scan needs to know about the secrets, built once: every encoding of every
/// secret as a "needle", and two compact indexes over them. After `init` the secrets'
/// values are wiped; only their encodings (needed to verify a hit), names, paths, lengths
/// and fingerprints remain.
///
/// - Tier A (needles of 12 bytes or more): every 8-byte gram of every needle, in a blocked
///   Bloom bit array (two bits in one 64-bit word) and an open-addressing table. The log is
///   probed every 5 bytes, which finds any match of 12 bytes or more.
/// - Tier B (shorter needles and the detectors' keywords): the 4-byte grams (ASCII case
///   folded) at the first `bStride` offsets of each, probed every `bStride` bytes, where
///   `bStride` is the shortest key's length minus 3, at most 4 (2 with the detectors on).
public final class SecretMatcher: @unchecked Sendable {
    struct SecretInfo {
        var name: String
        var path: String?
        var length: Int
        var fingerprint: String
    }

    struct EntryA { var gram: UInt64; var needle: UInt32; var offset: UInt32 }
    struct EntryB { var gram: UInt32; var id: UInt32; var offset: Int32 }   // id: needle, or detector | detectorFlag

    static let detectorFlag: UInt32 = 0x8000_0000
    static let flagCompleteOnly: UInt8 = 1
    static let flagWordBoundary: UInt8 = 2

    let secrets: [SecretInfo]
    // Needles, flattened.
    let nBytes: [UInt8]
    let nSpans: [UInt32]
    let nStart: [Int]
    let nLen: [Int]
    let nSecret: [Int32]
    let nEncoding: [Encoding]
    let nFlags: [UInt8]
    // Tier A.
    let aBits: [UInt64]
    let aWordShift: UInt64
    let aTable: [EntryA]
    let aMask: Int
    let hasTierA: Bool
    // Tier B.
    let bBits: [UInt64]
    let bTable: [EntryB]
    let bMask: Int
    let bStride: Int
    let detectors: [Detector]

    public let fingerprintKey: FingerprintKey
    public let limits: ScanLimits
    /// Names of secrets left out because their values were shorter than `minSecretLength`.
    public let skipped: [String]
    /// The longest span (in cleaned log bytes) a needle or a detector can match.
    let maxMatch: Int

    public var secretCount: Int { secrets.count }
    public var needleCount: Int { nLen.count }

    static let minTruncated = 12
    static let entropyHigh = 3.0
    static let fragmentEntropy = 2.5

    /// Builds the matcher and wipes every value in `input` (also when it throws).
    public init(secrets input: inout [ScanSecret], key: FingerprintKey, limits: ScanLimits = ScanLimits(),
                detectors enabled: Bool = true) throws {
        defer { for i in input.indices { input[i].wipe() } }
        guard input.count <= limits.maxSecrets else {
            throw SecretsInputError("\(input.count) secrets; at most \(limits.maxSecrets) are accepted")
        }
        var infos: [SecretInfo] = []
        var skipped: [String] = []
        var bytes: [UInt8] = [], spans: [UInt32] = [], starts: [Int] = [], lens: [Int] = []
        var owners: [Int32] = [], encs: [Encoding] = [], flags: [UInt8] = []
        for s in input {
            guard s.value.count <= limits.maxSecretLength else {
                throw SecretsInputError("secret \(s.name) is \(s.value.count) bytes; at most \(limits.maxSecretLength) are accepted")
            }
            guard s.value.count >= limits.minSecretLength else { skipped.append(s.name); continue }
            let id = Int32(infos.count)
            infos.append(SecretInfo(name: s.name, path: s.path, length: s.value.count, fingerprint: key.fingerprint(s.value)))
            let high = s.value.count >= Self.minTruncated && shannonEntropy(s.value) >= Self.entropyHigh
            let short = s.value.count < 8
            var seen = Set<[UInt8]>()
            for var v in allVariants(of: s.value) {
                v = normalised(v)
                if short, v.encoding != .raw, v.bytes.count < 8 { wipeBytes(&v.bytes); continue }
                if short, [.b64std1, .b64std2, .b64url1, .b64url2].contains(v.encoding) { wipeBytes(&v.bytes); continue }
                if v.bytes.count < limits.minSecretLength || seen.contains(v.bytes) { wipeBytes(&v.bytes); continue }
                seen.insert(v.bytes)
                starts.append(bytes.count); lens.append(v.bytes.count)
                bytes += v.bytes; spans += v.spans
                owners.append(id); encs.append(v.encoding)
                flags.append((high ? 0 : Self.flagCompleteOnly) | (short ? Self.flagWordBoundary : 0))
                wipeBytes(&v.bytes)
            }
        }
        secrets = infos; self.skipped = skipped
        nBytes = bytes; nSpans = spans; nStart = starts; nLen = lens; nSecret = owners; nEncoding = encs; nFlags = flags
        fingerprintKey = key; self.limits = limits
        detectors = enabled ? Detector.all : []

        // Tier A.
        var gramsA = 0
        for l in lens where l >= 12 { gramsA += l - 7 }
        var wordsA = 64
        while wordsA * 64 < gramsA * 8, wordsA < (1 << 22) { wordsA <<= 1 }
        var aBits = [UInt64](repeating: 0, count: wordsA)
        let aWordShift = UInt64(64 - wordsA.trailingZeroBitCount)
        var capA = 16
        while capA < gramsA * 2 { capA <<= 1 }
        var aTable = [EntryA](repeating: EntryA(gram: 0, needle: .max, offset: 0), count: capA)
        let aMask = capA - 1
        bytes.withUnsafeBytes { nb in
            for n in lens.indices where lens[n] >= 12 {
                for off in 0...(lens[n] - 8) {
                    let g = nb.loadUnaligned(fromByteOffset: starts[n] + off, as: UInt64.self)
                    let (w, m) = bloomA(g, shift: aWordShift)
                    aBits[w] |= m
                    var slot = slotA(g) & aMask
                    while aTable[slot].needle != .max { slot = (slot + 1) & aMask }
                    aTable[slot] = EntryA(gram: g, needle: UInt32(n), offset: UInt32(off))
                }
            }
        }
        self.aBits = aBits; self.aWordShift = aWordShift; self.aTable = aTable; self.aMask = aMask; hasTierA = gramsA > 0

        // Tier B.
        var keys: [([UInt8], UInt32)] = []
        for n in lens.indices where lens[n] < 12 { keys.append((Array(bytes[starts[n]..<(starts[n] + lens[n])]), UInt32(n))) }
        for (d, det) in detectors.enumerated() {
            for kw in det.keywords { keys.append((Array(kw.utf8), UInt32(d) | Self.detectorFlag)) }
        }
        let bStride = min(4, max(1, (keys.map(\.0.count).min() ?? 7) - 3))
        var bEntries: [EntryB] = []
        for (k, id) in keys {
            for o in 0..<bStride {
                let g = UInt32(k[o]) | UInt32(k[o + 1]) << 8 | UInt32(k[o + 2]) << 16 | UInt32(k[o + 3]) << 24
                bEntries.append(EntryB(gram: g | 0x2020_2020, id: id, offset: Int32(o)))
            }
        }
        for var k in keys where k.1 & Self.detectorFlag == 0 { wipeBytes(&k.0) }
        self.bStride = bStride
        var bBits = [UInt64](repeating: 0, count: 1024)
        var capB = 16
        while capB < bEntries.count * 2 { capB <<= 1 }
        var bTable = [EntryB](repeating: EntryB(gram: 0, id: .max, offset: 0), count: capB)
        let bMask = capB - 1
        for e in bEntries {
            let (w, m) = bloomB(e.gram)
            bBits[w] |= m
            var slot = slotB(e.gram) & bMask
            var dup = false
            while bTable[slot].id != .max {
                if bTable[slot].gram == e.gram && bTable[slot].id == e.id && bTable[slot].offset == e.offset { dup = true; break }
                slot = (slot + 1) & bMask
            }
            if !dup { bTable[slot] = e }
        }
        self.bBits = bBits; self.bTable = bTable; self.bMask = bMask
        maxMatch = max(lens.max() ?? 0, detectors.map(\.maxLength).max() ?? 0)
    }
}

@inline(__always) func bloomA(_ g: UInt64, shift: UInt64) -> (Int, UInt64) {
    let h = g &* 0x9E37_79B9_7F4A_7C15
    return (Int(truncatingIfNeeded: h >> shift), (1 << ((h >> 20) & 63)) | (1 << ((h >> 26) & 63)))
}
@inline(__always) func slotA(_ g: UInt64) -> Int {
    let h = (g ^ (g >> 29)) &* 0xBF58_476D_1CE4_E5B9
    return Int(truncatingIfNeeded: h >> 32)
}
@inline(__always) func bloomB(_ g: UInt32) -> (Int, UInt64) {
    let h = g &* 0x9E37_79B1
    return (Int(h >> 22), 1 << UInt64(h & 63))
}
@inline(__always) func slotB(_ g: UInt32) -> Int { Int((g &* 0x85EB_CA6B) >> 8) }
